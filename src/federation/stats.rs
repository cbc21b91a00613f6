//! The catalog cache's statistics for one federated route: how each merged list was served
//! (hit, stale, miss), lists evicted, and what each member's part of the lists holds. The
//! metric handles are resolved once, when the snapshot builds the catalog, so counting on the
//! request path is one atomic add. Read back by `/status`. Not here: the metric names
//! (`metrics`) or the lists themselves (`catalog`).

use prometheus::{IntCounter, IntGauge};

use super::catalog::Lookup;
use super::kind::Kind;
use crate::config::model::Federation;
use crate::metrics::Metrics;

/// How a list was served, in `lookups`' order.
const RESULTS: [&str; 3] = ["hit", "stale", "miss"];

pub struct Stats {
    /// Per kind, in [`Kind::ALL`]'s order: hits, stale serves, misses.
    lookups: [[IntCounter; 3]; 4],
    evicted: IntCounter,
    /// Lists made cold by a member's `list_changed`.
    changed: IntCounter,
    /// Lists dropped to keep the route within `catalog_max_bytes`.
    evicted_size: IntCounter,
    /// Per member: entries and bytes per kind.
    held: Vec<[(IntGauge, IntGauge); 4]>,
}

impl Stats {
    /// The handles of `route`'s series. A new catalog (start, reload) holds nothing yet, so
    /// its gauges start at zero.
    pub fn new(route: &str, fed: &Federation, metrics: &Metrics) -> Stats {
        let m = &metrics.catalog;
        let lookups = Kind::ALL.map(|k| RESULTS.map(|r| m.lookups.with_label_values(&[route, k.key(), r])));
        let held = fed
            .members
            .iter()
            .map(|member| {
                Kind::ALL.map(|k| {
                    let labels = [route, member.prefix.as_str(), k.key()];
                    let (entries, bytes) = (m.entries.with_label_values(&labels), m.bytes.with_label_values(&labels));
                    entries.set(0);
                    bytes.set(0);
                    (entries, bytes)
                })
            })
            .collect();
        Stats {
            lookups,
            evicted: m.evictions.with_label_values(&[route, "invalidated"]),
            changed: m.evictions.with_label_values(&[route, "list_changed"]),
            evicted_size: m.evictions.with_label_values(&[route, "size"]),
            held,
        }
    }

    /// Counts how a client's list was served.
    pub fn looked_up(&self, kind: Kind, found: &Lookup) {
        let result = match found {
            Lookup::Fresh(_) => 0,
            Lookup::Stale(_) => 1,
            Lookup::Cold => 2,
        };
        self.lookups[kind.index()][result].inc();
    }

    pub fn evicted(&self, lists: u64) {
        self.evicted.inc_by(lists);
    }

    pub fn changed(&self, lists: u64) {
        self.changed.inc_by(lists);
    }

    pub fn evicted_for_size(&self, lists: u64) {
        self.evicted_size.inc_by(lists);
    }

    /// What member `i`'s part of the `kind` lists (both eras) now holds.
    pub fn held(&self, i: usize, kind: Kind, entries: usize, bytes: usize) {
        if let Some((e, b)) = self.held.get(i).map(|h| &h[kind.index()]) {
            e.set(i64::try_from(entries).unwrap_or(i64::MAX));
            b.set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
    }

    /// Hits, stale serves and misses of `kind`'s lists since start (the series outlive a
    /// reload).
    pub fn lookups(&self, kind: Kind) -> [u64; 3] {
        self.lookups[kind.index()].each_ref().map(IntCounter::get)
    }

    /// Lists made cold before their time, for every reason.
    pub fn evictions(&self) -> u64 {
        self.evicted.get() + self.changed.get() + self.evicted_size.get()
    }

    /// Member `i`'s entries and bytes over every list.
    pub fn held_by(&self, i: usize) -> (u64, u64) {
        let sum = |f: fn(&(IntGauge, IntGauge)) -> i64| {
            self.held.get(i).map_or(0, |h| h.iter().map(|p| u64::try_from(f(p)).unwrap_or(0)).sum())
        };
        (sum(|(e, _)| e.get()), sum(|(_, b)| b.get()))
    }
}

/// Removes the held-entries and held-bytes series of members `next` no longer has (a route
/// removed or made plain, a member removed), and of result caches it no longer has, so `/metrics` stops reporting what a catalog that
/// is gone once held. Called just before `next` serves; its own series were made when its
/// catalogs were.
pub fn retire(metrics: &Metrics, next: &crate::state::Snapshot) {
    let live: Vec<(&str, &str)> = next
        .router
        .routes()
        .iter()
        .filter_map(|r| r.federation.as_ref().map(|f| (r, f)))
        .flat_map(|(r, f)| f.members.iter().map(move |m| (r.name.as_str(), m.prefix.as_str())))
        .collect();
    let cached: Vec<&str> = next
        .router
        .routes()
        .iter()
        .filter(|r| r.federation.as_ref().is_some_and(|f| f.results.is_some()))
        .map(|r| r.name.as_str())
        .collect();
    for gauge in [&metrics.results.entries, &metrics.results.bytes] {
        for family in prometheus::core::Collector::collect(gauge) {
            for metric in family.get_metric() {
                let route = metric.get_label().iter().find(|l| l.name() == "route").map(|l| l.value());
                if let Some(route) = route.filter(|r| !cached.contains(r)) {
                    let _ = gauge.remove_label_values(&[route]);
                }
            }
        }
    }
    for gauge in [&metrics.catalog.entries, &metrics.catalog.bytes] {
        for family in prometheus::core::Collector::collect(gauge) {
            for metric in family.get_metric() {
                let label = |name: &str| metric.get_label().iter().find(|l| l.name() == name).map(|l| l.value());
                let (Some(route), Some(member), Some(list)) = (label("route"), label("member"), label("list")) else {
                    continue;
                };
                if !live.contains(&(route, member)) {
                    let _ = gauge.remove_label_values(&[route, member, list]);
                }
            }
        }
    }
}
