//! The busiest keys of one limit, for `/status`. The estimators cannot list their keys, so
//! each limiter keeps a handful of the keys last seen near or over their quota.
//!
//! Cost: nothing for keys under half their quota (the common case). A key at half or more
//! takes a `try_lock` (skipped when contended: the table is a view, not an account) and, on
//! first entry only, builds its display label.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys kept per limit.
const SLOTS: usize = 8;

/// Usage from this fraction of the quota up makes a key "busy".
const BUSY: f64 = 0.5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rate,
    Concurrency,
}

#[derive(Debug, Clone)]
pub struct Hot {
    pub key: u64,
    pub tier: usize,
    pub kind: Kind,
    /// How the key reads in `/status` (never a raw header value).
    pub label: String,
    /// Units used when last seen (rate: in the sliding window; concurrency: in flight).
    pub used: f64,
    pub quota: f64,
    pub seen: Instant,
}

#[derive(Default)]
pub struct HotKeys {
    slots: Mutex<Vec<Hot>>,
}

impl HotKeys {
    pub fn is_busy(used: f64, quota: f64) -> bool {
        used >= quota * BUSY
    }

    /// Records a busy key: updates its entry, or takes a free slot, or replaces the entry
    /// with the least usage if this key uses more (stale entries count as unused).
    pub fn record(&self, key: u64, tier: usize, kind: Kind, used: f64, quota: f64, label: impl FnOnce() -> String) {
        let Ok(mut slots) = self.slots.try_lock() else { return };
        let now = Instant::now();
        if let Some(e) = slots.iter_mut().find(|e| e.key == key && e.tier == tier && e.kind == kind) {
            (e.used, e.quota, e.seen) = (used, quota, now);
            return;
        }
        let entry = Hot { key, tier, kind, label: label(), used, quota, seen: now };
        if slots.len() < SLOTS {
            slots.push(entry);
            return;
        }
        let weight = |e: &Hot| if stale(e, now) { 0.0 } else { e.used / e.quota.max(1.0) };
        let least = slots.iter().enumerate().min_by(|a, b| weight(a.1).total_cmp(&weight(b.1))).map(|(i, _)| i);
        if let Some(i) = least.filter(|&i| slots.get(i).is_some_and(|e| weight(e) < used / quota.max(1.0))) {
            slots[i] = entry;
        }
    }

    /// The busiest fresh key's usage as a fraction of its quota (0 when none is busy).
    pub fn usage(&self) -> f64 {
        let now = Instant::now();
        let Ok(slots) = self.slots.lock() else { return 0.0 };
        slots.iter().filter(|e| !stale(e, now)).map(|e| e.used / e.quota.max(1.0)).fold(0.0, f64::max)
    }

    /// The entries seen in the last minute, busiest first.
    pub fn busiest(&self) -> Vec<Hot> {
        let now = Instant::now();
        let mut out: Vec<Hot> = match self.slots.lock() {
            Ok(s) => s.iter().filter(|e| !stale(e, now)).cloned().collect(),
            Err(_) => Vec::new(),
        };
        out.sort_by(|a, b| (b.used / b.quota.max(1.0)).total_cmp(&(a.used / a.quota.max(1.0))));
        out
    }
}

fn stale(e: &Hot, now: Instant) -> bool {
    now.duration_since(e.seen) > Duration::from_secs(60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_busiest_keys_and_updates_known_ones() {
        let hot = HotKeys::default();
        for k in 0..20u64 {
            hot.record(k, 0, Kind::Rate, k as f64, 20.0, || format!("k{k}"));
        }
        let labels = |hot: &HotKeys| hot.busiest().iter().map(|h| h.label.clone()).collect::<Vec<_>>();
        assert_eq!(labels(&hot), ["k19", "k18", "k17", "k16", "k15", "k14", "k13", "k12"]);
        // A known key is updated in place (its label is not rebuilt)...
        hot.record(12, 0, Kind::Rate, 20.0, 20.0, || panic!("known key keeps its label"));
        assert_eq!(labels(&hot)[0], "k12");
        // ...a new busier key replaces the least busy, a quieter one does not get in.
        hot.record(40, 0, Kind::Rate, 19.5, 20.0, || "k40".into());
        hot.record(41, 0, Kind::Rate, 1.0, 20.0, || "k41".into());
        assert_eq!(labels(&hot), ["k12", "k40", "k19", "k18", "k17", "k16", "k15", "k14"]);
        assert!(HotKeys::is_busy(10.0, 20.0) && !HotKeys::is_busy(9.9, 20.0));
        assert_eq!(hot.usage(), 1.0);
        assert_eq!(HotKeys::default().usage(), 0.0);
    }
}
