//! Rates shared by every replica, counted in Redis (`backend = "redis"`). Owns the connections
//! and the one atomic script; the caller (`proxy::throttle`) owns the fallback policy.
//!
//! The script runs the same sliding-window-with-burst rule as the local limiter (see
//! `limits`), with Redis's clock, so every replica sees one budget and a limit means the same
//! whichever backend counts it. Keys hold a hash of the limit's key, never raw client input.
//!
//! Connections: `connections` multiplexed connections, each carrying any number of concurrent
//! calls, opened lazily on the proxy's runtime by the first request, reconnected by the redis
//! crate's `ConnectionManager`. After a failure the store stays "down" for `retry_interval`:
//! calls fail at once instead of each waiting out the timeout.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::model::RedisSettings;

/// KEYS[1]: the counter's prefix; ARGV: limit, window (ms), burst, cost.
/// Returns {0 when admitted else the milliseconds to wait, the key's usage x 1000}.
const SCRIPT: &str = r"
local limit, per, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local w = math.floor(now / per)
local f = (now - w * per) / per
local cur_key = KEYS[1] .. ':' .. w
local cur = tonumber(redis.call('GET', cur_key) or '0')
local prev = tonumber(redis.call('GET', KEYS[1] .. ':' .. (w - 1)) or '0')
local used = prev * (1 - f) + cur
local bonus = burst * (1 - math.min(prev / limit, 1))
if used + cost > limit + bonus then
  return {math.max(1, math.ceil(per * math.max(used + cost - limit, 1) / limit)), math.floor(used * 1000)}
end
redis.call('INCRBY', cur_key, cost)
redis.call('PEXPIRE', cur_key, per * 2 + 1000)
return {0, math.floor((used + cost) * 1000)}
";

/// Failed calls in a row that mark the store down: one slow answer is not an outage.
const FAILURES_TO_DOWN: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis did not answer within the timeout")]
    Timeout,
    /// Marked down after a recent failure; not tried.
    #[error("redis is marked down after a recent failure")]
    Down,
    /// The kind only: redis errors can quote the connection details.
    #[error("redis call failed: {0:?}")]
    Failed(redis::ErrorKind),
}

impl StoreError {
    /// Bounded metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Timeout => "timeout",
            StoreError::Down => "down",
            StoreError::Failed(_) => "error",
        }
    }
}

pub struct RedisStore {
    pub settings: RedisSettings,
    client: Option<redis::Client>,
    conns: OnceLock<Vec<ConnectionManager>>,
    next: AtomicUsize,
    epoch: Instant,
    /// Milliseconds since `epoch` until which the store counts as down.
    down_until: AtomicU64,
    /// Failed calls in a row; [`FAILURES_TO_DOWN`] of them mark the store down.
    failures: AtomicU32,
    script: redis::Script,
}

impl RedisStore {
    pub fn new(settings: &RedisSettings) -> RedisStore {
        RedisStore {
            settings: settings.clone(),
            // Validation already checked the URL; a failure here shows up as `Failed` calls.
            client: redis::Client::open(settings.url.as_str()).ok(),
            conns: OnceLock::new(),
            next: AtomicUsize::new(0),
            epoch: Instant::now(),
            down_until: AtomicU64::new(0),
            failures: AtomicU32::new(0),
            script: redis::Script::new(SCRIPT),
        }
    }

    /// Charges `cost` to `key` under `limit` per `per` with `burst`: (None, usage) when
    /// admitted, (Some(seconds until it would pass), usage) when refused.
    pub async fn check(
        &self,
        key: &str,
        limit: u64,
        per: Duration,
        burst: u64,
        cost: u64,
    ) -> Result<(Option<u64>, f64), StoreError> {
        let now = self.epoch.elapsed().as_millis() as u64;
        if now < self.down_until.load(Ordering::Relaxed) {
            return Err(StoreError::Down);
        }
        let mut conn = self.connection().ok_or(StoreError::Failed(redis::ErrorKind::Client))?;
        let per_ms = per.as_millis().max(1) as u64;
        let mut call = self.script.key(key);
        call.arg(limit).arg(per_ms).arg(burst).arg(cost);
        let answer = call.invoke_async::<(u64, u64)>(&mut conn);
        let result = match tokio::time::timeout(self.settings.timeout, answer).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(StoreError::Failed(e.kind())),
            Err(_) => Err(StoreError::Timeout),
        };
        let (wait_ms, used) = match result {
            Ok(answer) => answer,
            Err(e) => {
                self.failed(&e);
                return Err(e);
            }
        };
        if self.failures.swap(0, Ordering::Relaxed) >= FAILURES_TO_DOWN {
            tracing::info!(redis = %self.settings.display_url(), "redis limit store reachable again");
        }
        let used = used as f64 / 1000.0;
        match wait_ms {
            0 => Ok((None, used)),
            ms => Ok((Some(ms.div_ceil(1000).clamp(1, per.as_secs().max(1))), used)),
        }
    }

    /// Counts a failure; the one that makes [`FAILURES_TO_DOWN`] in a row marks the store down
    /// for `retry_interval` and is logged (once per outage, not per request). While down,
    /// every further failure (each retry after `retry_interval`) extends it.
    fn failed(&self, e: &StoreError) {
        let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if n < FAILURES_TO_DOWN {
            return;
        }
        let until = self.epoch.elapsed() + self.settings.retry_interval;
        self.down_until.store(until.as_millis() as u64, Ordering::Relaxed);
        if n == FAILURES_TO_DOWN {
            tracing::warn!(
                redis = %self.settings.display_url(),
                error = %e,
                retry_in = ?self.settings.retry_interval,
                "redis limit store unreachable; limits apply on_redis_error"
            );
        }
    }

    /// Whether the last call succeeded (or none failed within `retry_interval`).
    pub fn is_up(&self) -> bool {
        self.epoch.elapsed().as_millis() as u64 >= self.down_until.load(Ordering::Relaxed)
    }

    /// One of the connections, round robin. Created on first use, on the calling task's
    /// runtime (the proxy's), since the connection drivers are tasks on that runtime.
    fn connection(&self) -> Option<ConnectionManager> {
        let conns = self.conns.get_or_init(|| {
            let Some(client) = &self.client else { return Vec::new() };
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(self.settings.timeout.max(Duration::from_millis(250))))
                .set_response_timeout(Some(self.settings.timeout))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_secs(1));
            let conns: Vec<ConnectionManager> = (0..self.settings.connections)
                .filter_map(|_| ConnectionManager::new_lazy_with_config(client.clone(), config.clone()).ok())
                .collect();
            // Drive each connection's set-up in the background, so it completes even when it
            // takes longer than one check's `timeout` (which drops the checks waiting on it).
            for conn in &conns {
                let mut conn = conn.clone();
                tokio::spawn(async move {
                    let _ = redis::cmd("PING").query_async::<()>(&mut conn).await;
                });
            }
            conns
        });
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        conns.get(i % conns.len().max(1)).cloned()
    }

    /// The Redis key prefix for one limit's key: `<prefix>:{<limit>:<tier>:<hash>}`, with the
    /// first 128 bits of the key's SHA-256 (the same in every replica and build). The braces
    /// keep the window counters of one key together under a hash tag.
    pub fn key(&self, limit: &str, tier: usize, sha256: &[u8; 32]) -> String {
        let mut out = format!("{}:{{{limit}:{tier}:", self.settings.key_prefix);
        for b in &sha256[..16] {
            out.push_str(&format!("{b:02x}"));
        }
        out.push('}');
        out
    }
}
