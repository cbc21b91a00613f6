//! Live traffic for `/status`: request and error rates and p50/p99 per route, the busiest
//! tools, refusals by reason and attempt and error rates per backend, all computed from the
//! owned registry (`requests_total`, `request_duration_seconds`, `rejections_total`,
//! `upstream_attempts_total`); nothing is counted on the request path for them.
//!
//! A rate is the difference between two samples of those counters over the time between
//! them. Each `/status` takes a sample; at most one per [`SPACING`] is kept, for [`WINDOW`],
//! so the page polling every two seconds sees rates over the last ten, and a lone `curl` (no
//! kept sample between one and ten seconds old) sees averages since start. Quantiles are
//! estimated from the histogram's buckets the way Prometheus' `histogram_quantile` does, over
//! the same window. A backend's errors are its attempts that ended `5xx` or `failed` (not
//! `4xx`: a client's mistake; not `cancelled`: the client's doing). Cost: one pass over the
//! series of four metrics per `/status` (about 2 ms for 900 series in a debug build), on the
//! admin thread.
//!
//! Owns the samples and the arithmetic; the schema is [`super::status`]'s, the metric names
//! `crate::metrics`'.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::core::Collector;
use prometheus::proto::Metric;

use super::status::{BackendTraffic, Traffic};
use crate::metrics::{AttemptResult, Metrics};

/// The longest span a rate is taken over.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Kept samples are at least this far apart, so many pollers keep few samples.
const SPACING: Duration = Duration::from_secs(1);
/// Methods whose requests last as long as a stream stays open: their durations would swamp
/// the quantiles (as in the dashboard and the `McpEdgeSlowRequests` rule).
const STREAMS: [&str; 2] = ["-", "subscriptions/listen"];

/// Cumulative counts of one route, tool or the whole proxy.
#[derive(Debug, Clone, Default)]
struct Counts {
    requests: u64,
    client_errors: u64,
    server_errors: u64,
    /// Cumulative histogram counts, one per finite bucket bound, then the total (`+Inf`).
    buckets: Vec<u64>,
}

impl Counts {
    fn add_status(&mut self, status: &str, n: u64) {
        self.requests += n;
        match status.as_bytes().first() {
            Some(b'4') => self.client_errors += n,
            Some(b'5') => self.server_errors += n,
            _ => {}
        }
    }

    fn add_histogram(&mut self, cumulative: impl Iterator<Item = u64>) {
        for (i, n) in cumulative.enumerate() {
            match self.buckets.get_mut(i) {
                Some(b) => *b += n,
                None => self.buckets.push(n),
            }
        }
    }
}

/// Cumulative upstream attempts of one backend of one pool.
#[derive(Debug, Clone, Copy, Default)]
struct Attempts {
    attempts: u64,
    /// Ended `5xx` or `failed`.
    errors: u64,
}

/// The counters at one instant.
#[derive(Debug, Default)]
struct Sample {
    routes: HashMap<String, Counts>,
    tools: HashMap<String, Counts>,
    rejections: HashMap<String, u64>,
    /// By pool, then backend address.
    backends: HashMap<String, HashMap<String, Attempts>>,
    total: Counts,
}

impl Sample {
    fn backend(&self, pool: &str, addr: &str) -> Attempts {
        self.backends.get(pool).and_then(|b| b.get(addr)).copied().unwrap_or_default()
    }
}

/// The kept samples; one per admin listener.
pub struct Sampler {
    started: Instant,
    kept: Mutex<VecDeque<(Instant, Arc<Sample>)>>,
}

/// A sample and the one it is compared with.
pub struct Observed {
    now: Arc<Sample>,
    base: Arc<Sample>,
    /// Seconds between them (never zero).
    pub window_secs: f64,
    bounds: Vec<f64>,
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler { started: Instant::now(), kept: Mutex::new(VecDeque::new()) }
    }
}

impl Sampler {
    /// Samples the registry and pairs the sample with the oldest kept one in [`WINDOW`] that is
    /// at least [`SPACING`] old (else with the empty counters at start).
    pub fn observe(&self, metrics: &Metrics) -> Observed {
        let (now, bounds) = sample(metrics);
        let (now, at) = (Arc::new(now), Instant::now());
        let mut base = (self.started, Arc::new(Sample::default()));
        if let Ok(mut kept) = self.kept.lock() {
            while kept.front().is_some_and(|(t, _)| at.duration_since(*t) > WINDOW) {
                kept.pop_front();
            }
            // A sample younger than SPACING makes a window too short to mean anything (and
            // hides what happened just before it): averages since start then.
            if let Some(oldest) = kept.front().filter(|(t, _)| at.duration_since(*t) >= SPACING) {
                base = oldest.clone();
            }
            if kept.back().is_none_or(|(t, _)| at.duration_since(*t) >= SPACING) {
                kept.push_back((at, Arc::clone(&now)));
            }
        }
        let window_secs = at.duration_since(base.0).as_secs_f64().max(0.001);
        Observed { now, base: base.1, window_secs, bounds }
    }
}

impl Observed {
    pub fn route(&self, name: &str) -> Traffic {
        self.traffic(self.now.routes.get(name), self.base.routes.get(name))
    }

    pub fn total(&self) -> Traffic {
        self.traffic(Some(&self.now.total), Some(&self.base.total))
    }

    /// Tool labels with calls, the busiest (by rate, then by count) first.
    pub fn tools(&self, top: usize) -> Vec<(String, Traffic)> {
        let mut tools: Vec<_> = self
            .now
            .tools
            .iter()
            .map(|(name, now)| (name.clone(), self.traffic(Some(now), self.base.tools.get(name))))
            .collect();
        tools.sort_by(|a, b| busier(&b.1, &a.1).then_with(|| a.0.cmp(&b.0)));
        tools.truncate(top);
        tools
    }

    /// Upstream attempts to backend `addr` (its configured address) of `pool`.
    pub fn backend(&self, pool: &str, addr: &str) -> BackendTraffic {
        let (now, base) = (self.now.backend(pool, addr), self.base.backend(pool, addr));
        BackendTraffic {
            attempts: now.attempts,
            errors: now.errors,
            attempts_per_sec: self.per_sec(now.attempts, base.attempts),
            errors_per_sec: self.per_sec(now.errors, base.errors),
        }
    }

    /// Refusal reasons seen since start: (reason, total, per second), most frequent first.
    pub fn rejections(&self) -> Vec<(String, u64, f64)> {
        let mut out: Vec<_> = self
            .now
            .rejections
            .iter()
            .map(|(reason, &n)| {
                let before = self.base.rejections.get(reason).copied().unwrap_or(0);
                (reason.clone(), n, self.per_sec(n, before))
            })
            .collect();
        out.sort_by(|a, b| b.2.total_cmp(&a.2).then(b.1.cmp(&a.1)).then_with(|| a.0.cmp(&b.0)));
        out
    }

    fn traffic(&self, now: Option<&Counts>, base: Option<&Counts>) -> Traffic {
        let (now, base) = (now.cloned().unwrap_or_default(), base.cloned().unwrap_or_default());
        let delta: Vec<u64> = now
            .buckets
            .iter()
            .enumerate()
            .map(|(i, n)| n.saturating_sub(base.buckets.get(i).copied().unwrap_or(0)))
            .collect();
        let ms = |q: f64| quantile(q, &self.bounds, &delta).map(|s| (s * 1e5).round() / 100.0);
        Traffic {
            requests: now.requests,
            client_errors: now.client_errors,
            server_errors: now.server_errors,
            requests_per_sec: self.per_sec(now.requests, base.requests),
            client_errors_per_sec: self.per_sec(now.client_errors, base.client_errors),
            server_errors_per_sec: self.per_sec(now.server_errors, base.server_errors),
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
        }
    }

    fn per_sec(&self, now: u64, before: u64) -> f64 {
        (now.saturating_sub(before) as f64 / self.window_secs * 100.0).round() / 100.0
    }
}

fn busier(a: &Traffic, b: &Traffic) -> std::cmp::Ordering {
    a.requests_per_sec.total_cmp(&b.requests_per_sec).then(a.requests.cmp(&b.requests))
}

fn label<'a>(m: &'a Metric, name: &str) -> &'a str {
    m.get_label().iter().find(|l| l.name() == name).map_or("", |l| l.value())
}

// One small allocation per series and poll: the admin path, never the request path.
fn entry<'a>(map: &'a mut HashMap<String, Counts>, key: &str) -> &'a mut Counts {
    map.entry(key.to_owned()).or_default()
}

/// One reading of the counters, and the histogram's finite bucket bounds.
fn sample(metrics: &Metrics) -> (Sample, Vec<f64>) {
    let mut s = Sample::default();
    for m in metrics.requests.collect().iter().flat_map(|f| f.get_metric()) {
        let (n, status) = (m.get_counter().get_value() as u64, label(m, "status"));
        entry(&mut s.routes, label(m, "route")).add_status(status, n);
        s.total.add_status(status, n);
        match label(m, "tool") {
            "-" | "" => {}
            tool => entry(&mut s.tools, tool).add_status(status, n),
        }
    }
    let mut bounds = Vec::new();
    for m in metrics.duration.collect().iter().flat_map(|f| f.get_metric()) {
        if STREAMS.contains(&label(m, "method")) {
            continue;
        }
        let h = m.get_histogram();
        if bounds.is_empty() {
            bounds = h.get_bucket().iter().map(|b| b.upper_bound()).collect();
        }
        let cumulative = || h.get_bucket().iter().map(|b| b.cumulative_count()).chain([h.get_sample_count()]);
        entry(&mut s.routes, label(m, "route")).add_histogram(cumulative());
        s.total.add_histogram(cumulative());
    }
    for m in metrics.rejections.collect().iter().flat_map(|f| f.get_metric()) {
        *s.rejections.entry(label(m, "reason").to_owned()).or_default() += m.get_counter().get_value() as u64;
    }
    let errors = [AttemptResult::ServerError.as_str(), AttemptResult::Failed.as_str()];
    for m in metrics.upstream_attempts.collect().iter().flat_map(|f| f.get_metric()) {
        let n = m.get_counter().get_value() as u64;
        let pool = s.backends.entry(label(m, "pool").to_owned()).or_default();
        let backend = pool.entry(label(m, "backend").to_owned()).or_default();
        backend.attempts += n;
        if errors.contains(&label(m, "result")) {
            backend.errors += n;
        }
    }
    (s, bounds)
}

/// The `q` quantile of a histogram with finite bucket `bounds` and `cumulative` counts (one
/// per bound, then the total), interpolating linearly inside the bucket that holds it, as
/// Prometheus' `histogram_quantile` does. None without observations; the top finite bound
/// when the quantile falls in `+Inf`.
pub fn quantile(q: f64, bounds: &[f64], cumulative: &[u64]) -> Option<f64> {
    let total = *cumulative.last()?;
    if total == 0 || bounds.is_empty() {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let i = cumulative.iter().position(|&c| c as f64 >= rank)?;
    let Some(&upper) = bounds.get(i) else { return bounds.last().copied() };
    let (lower, below) = match i.checked_sub(1) {
        Some(p) => (bounds.get(p).copied().unwrap_or(0.0), cumulative.get(p).copied().unwrap_or(0)),
        None => (0.0, 0),
    };
    let inside = cumulative.get(i).copied().unwrap_or(0).saturating_sub(below);
    if inside == 0 {
        return Some(upper);
    }
    Some(lower + (upper - lower) * (rank - below as f64) / inside as f64)
}

#[cfg(test)]
#[path = "traffic_tests.rs"]
mod tests;
