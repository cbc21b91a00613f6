//! The metric series a finished request and an upstream attempt write to, resolved once per
//! snapshot and worker thread instead of once per request.
//!
//! `with_label_values` hashes every label string and takes the vector's lock; a request wrote
//! five such series. Here each thread keeps the handles it resolved, keyed by small integers
//! (route and pool index, method, tool label index, status, error type), so a request pays one
//! lookup in a map no other thread touches. The cache lives in the [`Snapshot`](super::Snapshot),
//! so a reload (which renumbers routes and pools) starts an empty one.
//!
//! What it does not own: metric names and label sets (`crate::metrics`), nor which labels a
//! request has (`proxy::finish`, `proxy::attempt` decide; this only remembers).

use std::cell::RefCell;
use std::collections::HashMap;

use prometheus::{Histogram, IntCounter};
use thread_local::ThreadLocal;

use crate::mcp::method::Method;
use crate::metrics::{status_class, status_label, ErrorType, Metrics};

/// Entries per thread and kind; past it the map starts over (a bound, not an expected case:
/// the label sets themselves are bounded).
const MAX_ENTRIES: usize = 4096;
/// Route, pool and tool indexes at or above this are not cached (they would not fit the key).
const INDEX_LIMIT: usize = u16::MAX as usize;

/// A request's (or an attempt's) labels, as integers for the key and as the strings the
/// series carry.
pub struct Labels<'a> {
    pub route: Option<usize>,
    pub route_name: &'a str,
    pub method: Method,
    /// Index of the tool label ([`crate::state::Snapshot::tool`]).
    pub tool: usize,
    pub tool_name: &'a str,
    pub status: u16,
    pub error: ErrorType,
}

/// The series of one finished-request label set.
pub struct FinishedSeries {
    pub requests: IntCounter,
    pub duration: Histogram,
    pub server: Histogram,
    /// Resolved when first observed: a label set whose requests never saw a first byte
    /// exports no empty series.
    first_byte: Option<Histogram>,
}

/// The labels of an upstream attempt.
pub struct Attempt<'a> {
    /// The attempt's own status and error type.
    pub labels: Labels<'a>,
    pub pool: Option<usize>,
    pub pool_name: &'a str,
}

#[derive(Default)]
struct Local {
    finished: HashMap<u64, FinishedSeries>,
    attempts: HashMap<u64, Histogram>,
}

#[derive(Default)]
pub struct Series {
    local: ThreadLocal<RefCell<Local>>,
}

fn index(i: Option<usize>) -> Option<u64> {
    match i {
        None => Some(INDEX_LIMIT as u64),
        Some(i) if i < INDEX_LIMIT => Some(i as u64),
        Some(_) => None,
    }
}

impl Labels<'_> {
    fn key(&self) -> Option<u64> {
        let route = index(self.route)?;
        let tool = index(Some(self.tool))?;
        Some(route << 48 | tool << 32 | (self.method as u64) << 24 | (self.error as u64) << 16 | u64::from(self.status))
    }

    fn resolve(&self, m: &Metrics) -> FinishedSeries {
        let server =
            [self.route_name, self.method.as_str(), self.tool_name, status_class(self.status), self.error.as_str()];
        FinishedSeries {
            requests: m.requests.with_label_values(&[
                self.route_name,
                self.method.as_str(),
                self.tool_name,
                status_label(self.status),
            ]),
            duration: m.duration.with_label_values(&[self.route_name, self.method.as_str()]),
            server: m.server_duration.with_label_values(&server),
            first_byte: None,
        }
    }

    fn first_byte(&self, m: &Metrics) -> Histogram {
        let labels =
            [self.route_name, self.method.as_str(), self.tool_name, status_class(self.status), self.error.as_str()];
        m.first_byte.with_label_values(&labels)
    }
}

impl Attempt<'_> {
    fn key(&self) -> Option<u64> {
        let f = &self.labels;
        let (route, pool, tool) = (index(f.route)?, index(self.pool)?, index(Some(f.tool))?);
        // The attempt histogram takes the status class, not the status: key by the class.
        let class = u64::from(f.status / 100).min(9);
        Some(route << 48 | pool << 32 | tool << 16 | (f.method as u64) << 8 | (f.error as u64) << 4 | class)
    }

    fn resolve(&self, m: &Metrics) -> Histogram {
        let f = &self.labels;
        let labels =
            [f.route_name, self.pool_name, f.method.as_str(), f.tool_name, status_class(f.status), f.error.as_str()];
        m.client_duration.with_label_values(&labels)
    }
}

impl Series {
    /// Counts a finished request: its duration in seconds and, when it answered, its time to
    /// first byte.
    pub fn finish(&self, m: &Metrics, labels: &Labels<'_>, secs: f64, first_byte: Option<f64>) {
        let observe = |s: &FinishedSeries| {
            s.requests.inc();
            s.duration.observe(secs);
            s.server.observe(secs);
        };
        let cell = self.local.get_or_default();
        let (Some(key), Ok(mut local)) = (labels.key(), cell.try_borrow_mut()) else {
            let s = labels.resolve(m);
            observe(&s);
            if let Some(t) = first_byte {
                labels.first_byte(m).observe(t);
            }
            return;
        };
        if local.finished.len() >= MAX_ENTRIES && !local.finished.contains_key(&key) {
            local.finished.clear();
        }
        let s = local.finished.entry(key).or_insert_with(|| labels.resolve(m));
        observe(s);
        if let Some(t) = first_byte {
            s.first_byte.get_or_insert_with(|| labels.first_byte(m)).observe(t);
        }
    }

    /// Observes an upstream attempt's duration in seconds.
    pub fn attempt(&self, m: &Metrics, labels: &Attempt<'_>, secs: f64) {
        let cell = self.local.get_or_default();
        let (Some(key), Ok(mut local)) = (labels.key(), cell.try_borrow_mut()) else {
            labels.resolve(m).observe(secs);
            return;
        };
        if local.attempts.len() >= MAX_ENTRIES && !local.attempts.contains_key(&key) {
            local.attempts.clear();
        }
        local.attempts.entry(key).or_insert_with(|| labels.resolve(m)).observe(secs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(route: Option<usize>, tool: usize, status: u16, error: ErrorType) -> Labels<'static> {
        Labels { route, route_name: "r", method: Method::ToolsCall, tool, tool_name: "t", status, error }
    }

    fn requests(m: &Metrics, status: &str) -> u64 {
        m.requests.with_label_values(&["r", "tools/call", "t", status]).get()
    }

    #[test]
    fn a_cached_series_counts_each_request_and_statuses_stay_apart() {
        let (m, series) = (Metrics::new().unwrap(), Series::default());
        for _ in 0..3 {
            series.finish(&m, &labels(Some(0), 2, 200, ErrorType::None), 0.5, Some(0.1));
        }
        series.finish(&m, &labels(Some(0), 2, 404, ErrorType::Refused), 0.5, None);
        assert_eq!(requests(&m, "200"), 3);
        assert_eq!(requests(&m, "404"), 1);
        let first_byte = |class: &str, error: &str| {
            m.first_byte.with_label_values(&["r", "tools/call", "t", class, error]).get_sample_count()
        };
        assert_eq!(first_byte("2xx", "_none"), 3);
        assert_eq!(m.duration.with_label_values(&["r", "tools/call"]).get_sample_count(), 4);
        // A request without a first byte makes no first-byte series.
        let text = String::from_utf8(m.render()).unwrap();
        let first_byte_lines = text.lines().filter(|l| l.starts_with("mcp_edge_time_to_first_byte_seconds_count"));
        assert_eq!(first_byte_lines.map(|l| l.contains("refused")).collect::<Vec<_>>(), [false]);
    }

    #[test]
    fn indexes_too_large_for_the_key_are_counted_uncached() {
        let (m, series) = (Metrics::new().unwrap(), Series::default());
        series.finish(&m, &labels(Some(INDEX_LIMIT), 2, 200, ErrorType::None), 0.5, None);
        series.finish(&m, &labels(Some(0), INDEX_LIMIT + 7, 200, ErrorType::None), 0.5, None);
        assert_eq!(requests(&m, "200"), 2);
        assert!(series.local.get().is_some_and(|l| l.borrow().finished.is_empty()));
    }

    #[test]
    fn attempts_are_keyed_by_pool_and_status_class() {
        let (m, series) = (Metrics::new().unwrap(), Series::default());
        let attempt =
            |pool, pool_name, status| Attempt { labels: labels(Some(0), 0, status, ErrorType::None), pool, pool_name };
        series.attempt(&m, &attempt(Some(0), "a", 200), 0.1);
        series.attempt(&m, &attempt(Some(0), "a", 204), 0.1);
        series.attempt(&m, &attempt(Some(1), "b", 200), 0.1);
        let count = |pool: &str| {
            m.client_duration.with_label_values(&["r", pool, "tools/call", "t", "2xx", "_none"]).get_sample_count()
        };
        assert_eq!((count("a"), count("b")), (2, 1));
    }

    #[test]
    fn threads_keep_their_own_handles_to_the_same_series() {
        let (m, series) = (Metrics::new().unwrap(), Series::default());
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    (0..100).for_each(|_| series.finish(&m, &labels(Some(3), 2, 200, ErrorType::None), 0.5, None))
                });
            }
        });
        assert_eq!(requests(&m, "200"), 400);
    }
}
