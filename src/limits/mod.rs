//! Throttling with `pingora-limits`: one [`Limiter`] per `[[limit]]`, holding a rate estimator
//! per tier and one in-flight estimator. Both are count-min sketches of fixed size, so memory
//! does not grow with the number of distinct keys (at the price of rare over-counting when
//! keys collide). Owns the admission decision; the proxy decides what key a request has and
//! what a refusal looks like on the wire. `redis_store` counts rates shared by every replica
//! (`backend = "redis"`); `hot` keeps each limit's busiest keys for `/status`.
//!
//! Rate with burst, on top of `Rate`'s two fixed windows: the sliding estimate
//! `prev * (1 - f) + cur` must stay within `rate + bonus`, where the burst `bonus` shrinks as
//! the previous window fills. After an idle window a key may spend `rate + burst` at once;
//! under sustained load it gets `rate` per window. That is a token bucket's behaviour (a 2 s
//! flood at 5x a 100/s limit with burst 20 passes 220, as a bucket would), without per-key state.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::time::Duration;

pub mod hot;
pub mod redis_store;

use pingora_limits::inflight::{Guard, Inflight};
use pingora_limits::rate::Rate;

use crate::config::model::{LimitConfig, Quota};
use hot::{HotKeys, Kind};

/// Count-min sketch width for rate estimators: 2 windows x 4 rows x 8192 slots x 8 bytes
/// = 512 KiB per tier, whatever the number of keys.
const RATE_SLOTS: usize = 8192;
const RATE_HASHES: usize = 4;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Over the rate: try again after this many seconds.
    Rate { retry_after: u64 },
    /// Over the in-flight cap: try again soon.
    Concurrency,
    /// The shared store cannot be reached and the limit fails closed.
    Unavailable { retry_after: u64 },
}

pub struct Limiter {
    pub config: LimitConfig,
    /// Index 0: the default quota; then one per tier, in `config.tiers` order.
    rates: Vec<Option<Rate>>,
    inflight: Inflight,
    assign: HashMap<String, usize>,
    /// Keys seen near or over their quota, for `/status`.
    pub hot: HotKeys,
    /// This limit's `limit_admitted_total` series, resolved on first use.
    admitted: std::sync::OnceLock<prometheus::IntCounter>,
}

impl Limiter {
    pub fn new(config: &LimitConfig) -> Limiter {
        let quotas = std::iter::once(&config.quota).chain(config.tiers.iter().map(|(_, q)| q));
        let rates = quotas
            .map(|q| q.rate.map(|(_, per)| Rate::new_with_estimator_config(per, RATE_HASHES, RATE_SLOTS)))
            .collect();
        Limiter {
            config: config.clone(),
            rates,
            inflight: Inflight::new(),
            assign: config.assign.iter().map(|(k, i)| (k.clone(), *i)).collect(),
            hot: HotKeys::default(),
            admitted: std::sync::OnceLock::new(),
        }
    }

    /// Counts a check this limit let through.
    pub fn count_admitted(&self, counters: &prometheus::IntCounterVec) {
        self.admitted.get_or_init(|| counters.with_label_values(&[self.name()])).inc();
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Whether the key or cost depends on what the body says (method, tool, costs): such
    /// limits are checked after the body is read, the others before it.
    pub fn by_call(&self) -> bool {
        use crate::config::model::KeyPart;
        !self.config.costs.is_empty() || self.config.key.iter().any(|k| matches!(k, KeyPart::Method | KeyPart::Tool))
    }

    /// The cost of a call to `tool` (1 unless configured).
    pub fn cost(&self, tool: Option<&str>) -> u64 {
        tool.and_then(|t| self.config.costs.iter().find(|(name, _)| name == t)).map_or(1, |(_, c)| *c)
    }

    /// Admits or refuses one request with `key` (the hash of its key parts). `tier_value` is
    /// the raw value of the first key part, looked up in `assign`. An admitted request under a
    /// concurrency cap gets a guard to hold until it ends. `label` names the key in `/status`
    /// and is called only for a key near its quota.
    pub fn admit(
        &self,
        key: u64,
        tier_value: Option<&str>,
        cost: u64,
        label: &dyn Fn() -> String,
    ) -> Result<Option<Guard>, Refusal> {
        let (tier, quota) = self.tier(tier_value);
        let guard = self.hold(tier, quota, key, cost, label)?;
        self.check_local_rate(tier, quota, key, cost, label)?;
        Ok(guard)
    }

    /// The tier's name for `/status` ("default" for the limit's own quota).
    pub fn tier_name(&self, tier: usize) -> &str {
        tier.checked_sub(1).and_then(|i| self.config.tiers.get(i)).map_or("default", |(n, _)| n.as_str())
    }

    /// The tier `tier_value` is assigned to (0: the default) and its quota.
    pub fn tier(&self, tier_value: Option<&str>) -> (usize, &Quota) {
        let assigned =
            tier_value.and_then(|v| self.assign.get(v)).and_then(|&i| Some((i + 1, &self.config.tiers.get(i)?.1)));
        assigned.unwrap_or((0, &self.config.quota))
    }

    /// Takes an in-flight slot under the tier's concurrency cap (always counted in this
    /// process), if it has one.
    pub fn hold(
        &self,
        tier: usize,
        quota: &Quota,
        key: u64,
        cost: u64,
        label: &dyn Fn() -> String,
    ) -> Result<Option<Guard>, Refusal> {
        let Some(cap) = quota.concurrency else { return Ok(None) };
        let (guard, now) = self.inflight.incr((tier, key), cost as isize);
        if HotKeys::is_busy(now as f64, cap as f64) {
            self.hot.record(key, tier, Kind::Concurrency, now as f64, cap as f64, label);
        }
        if now > cap as isize {
            return Err(Refusal::Concurrency);
        }
        Ok(Some(guard))
    }

    /// Charges the tier's rate in this process's estimator.
    pub fn check_local_rate(
        &self,
        tier: usize,
        quota: &Quota,
        key: u64,
        cost: u64,
        label: &dyn Fn() -> String,
    ) -> Result<(), Refusal> {
        let (Some(rate), Some((limit, per))) = (self.rates.get(tier).and_then(Option::as_ref), quota.rate) else {
            return Ok(());
        };
        let (outcome, used) = check_rate(rate, key, cost, limit, quota.burst, per);
        self.note_rate(key, tier, used, limit, label);
        outcome
    }

    /// Notes a key's rate usage (from this process or from Redis) if it is near its quota.
    pub fn note_rate(&self, key: u64, tier: usize, used: f64, limit: u64, label: &dyn Fn() -> String) {
        if HotKeys::is_busy(used, limit as f64) {
            self.hot.record(key, tier, Kind::Rate, used, limit as f64, label);
        }
    }
}

/// The outcome, and the key's usage in the sliding window (including this request when admitted).
fn check_rate(rate: &Rate, key: u64, cost: u64, limit: u64, burst: u64, per: Duration) -> (Result<(), Refusal>, f64) {
    let (limit_f, cost_f) = (limit as f64, cost as f64);
    let (used, bonus) = rate.rate_with(&key, |c| {
        let prev = c.prev_samples.max(0) as f64;
        let used = prev * (1.0 - c.current_interval_fraction) + c.curr_samples.max(0) as f64;
        (used, burst as f64 * (1.0 - (prev / limit_f).min(1.0)))
    });
    if used + cost_f > limit_f + bonus {
        // Time for the sliding estimate to drain enough at the configured rate.
        let wait = per.as_secs_f64() * (used + cost_f - limit_f).max(1.0) / limit_f;
        let retry_after = wait.ceil().clamp(1.0, per.as_secs_f64().max(1.0)) as u64;
        return (Err(Refusal::Rate { retry_after }), used);
    }
    rate.observe(&key, cost as isize);
    (Ok(()), used + cost_f)
}

/// Hashes key parts into one estimator key. A fixed hasher (SipHash with zero keys), so a key
/// means the same in every process; the estimators rehash it with their own random seeds.
pub struct KeyHasher(std::collections::hash_map::DefaultHasher);

impl KeyHasher {
    pub fn new() -> KeyHasher {
        KeyHasher(std::collections::hash_map::DefaultHasher::new())
    }

    pub fn part(&mut self, bytes: &[u8]) {
        // Length-prefixed, so ("ab","c") and ("a","bc") differ.
        bytes.len().hash(&mut self.0);
        self.0.write(bytes);
    }

    pub fn finish(&self) -> u64 {
        self.0.finish()
    }
}

impl Default for KeyHasher {
    fn default() -> Self {
        KeyHasher::new()
    }
}

#[cfg(test)]
mod tests;
