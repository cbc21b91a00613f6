//! `GET /servers`: the members of every federated route as this replica sees them: their
//! pool and its usable backends, and for each era the counts of the latest merged lists
//! (tools, prompts, resources, templates: null until a client asked), the tool list's age, and
//! why the member's part of a list is missing or stale. Built from the snapshot on each
//! request; asks no member anything (a list is refreshed by client traffic, not by a look).
//! Also the catalog statistics `/status` shows ([`CatalogState`]), read from the counters
//! `federation::stats` keeps.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::federation::catalog::Merged;
use crate::federation::kind::Kind;

use crate::metrics::Metrics;
use crate::state::snapshot::Snapshot;
use crate::state::State;

#[derive(Debug, Serialize)]
pub struct Servers {
    pub routes: Vec<Route>,
}

#[derive(Debug, Serialize)]
pub struct Route {
    pub route: String,
    pub catalog_ttl_ms: u64,
    pub members: Vec<Member>,
}

#[derive(Debug, Serialize)]
pub struct Member {
    pub prefix: String,
    pub pool: String,
    pub transport: &'static str,
    pub backends: usize,
    pub usable_backends: usize,
    /// The 2025-11-25-and-earlier list, then the 2026-07-28 one; null until a client asked.
    pub legacy: Option<Listing>,
    pub modern: Option<Listing>,
}

#[derive(Debug, Serialize)]
pub struct Listing {
    pub tools: Option<usize>,
    pub prompts: Option<usize>,
    pub resources: Option<usize>,
    pub resource_templates: Option<usize>,
    /// Bytes of this member's entries held in these lists (as offered; each list's answer
    /// holds them once more).
    pub bytes: usize,
    /// Age of the oldest of these lists.
    pub age_ms: u64,
    /// Why this member's part of a list is missing or stale, the list named (no values from
    /// the member).
    pub last_error: Option<String>,
}

pub fn build(state: &State) -> Servers {
    let snap = state.snapshot();
    let mut routes = Vec::new();
    for (ri, route) in snap.router.routes().iter().enumerate() {
        let (Some(fed), Some(Some(catalog))) = (&route.federation, snap.catalogs.get(ri)) else { continue };
        let latest = Kind::ALL.map(|kind| catalog.latest(kind));
        let members = fed
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let pool = snap.pools.get(m.pool);
                let listing = |era: usize| {
                    let lists: Vec<(Kind, &Arc<Merged>)> =
                        Kind::ALL.iter().zip(&latest).filter_map(|(k, l)| Some((*k, l.get(era)?.as_ref()?))).collect();
                    let oldest = lists.iter().map(|(_, m)| m.made().elapsed()).max()?;
                    let count = |kind: Kind| lists.iter().find(|(k, _)| *k == kind).map(|(_, m)| m.count_of(i));
                    let error = lists.iter().find_map(|(k, m)| Some(format!("{}: {}", k.key(), m.failure_of(i)?)));
                    Some(Listing {
                        tools: count(Kind::Tools),
                        prompts: count(Kind::Prompts),
                        resources: count(Kind::Resources),
                        resource_templates: count(Kind::Templates),
                        bytes: lists.iter().map(|(_, m)| m.bytes_of(i)).sum(),
                        age_ms: u64::try_from(oldest.as_millis()).unwrap_or(u64::MAX),
                        last_error: error,
                    })
                };
                Member {
                    prefix: m.prefix.clone(),
                    pool: pool.map_or("-", |p| p.name()).to_owned(),
                    // A stdio pool's backends are its bridges: its servers speak stdio.
                    transport: match pool.is_some_and(|p| p.config.stdio.is_some()) {
                        true => "stdio",
                        false => "http",
                    },
                    backends: pool.map_or(0, |p| p.config.backends.len()),
                    usable_backends: pool.map_or(0, |p| p.config.backends.iter().filter(|b| p.usable(b.addr)).count()),
                    legacy: listing(0),
                    modern: listing(1),
                }
            })
            .collect();
        routes.push(Route {
            route: route.name.clone(),
            catalog_ttl_ms: u64::try_from(fed.catalog_ttl.as_millis()).unwrap_or(u64::MAX),
            members,
        });
    }
    Servers { routes }
}

/// One federated route's catalog cache, in `/status`: counts since start (they outlive a
/// reload), entries and bytes as the route's latest lists hold them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogState {
    pub route: String,
    /// Lists made cold before their time: by `POST /cache/invalidate`, a member's
    /// `list_changed`, or to stay within `catalog_max_bytes`.
    pub evictions: u64,
    pub lists: Vec<ListStats>,
    pub members: Vec<MemberStats>,
    /// The route's `[route.result_cache]`, when it has one.
    #[serde(default)]
    pub results: Option<ResultStats>,
}

/// A route's tool-result cache: calls answered from it and sent on, what it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultStats {
    pub hits: u64,
    pub misses: u64,
    pub entries: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListStats {
    /// `tools`, `prompts`, `resources` or `resourceTemplates`.
    pub list: String,
    /// Served fresh from the cache.
    pub hits: u64,
    /// Served past `catalog_ttl` while one refresh ran in the background.
    pub stale: u64,
    /// The caller waited for the members.
    pub misses: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberStats {
    pub prefix: String,
    /// Over every list and both eras.
    pub entries: u64,
    pub bytes: u64,
    /// The member's lists asked for (each refresh of each list), and those it failed.
    pub refreshes: u64,
    pub failed_refreshes: u64,
}

pub fn catalogs(snap: &Snapshot, metrics: &Metrics) -> Vec<CatalogState> {
    let mut out = Vec::new();
    for (route, catalog) in snap.router.routes().iter().zip(&snap.catalogs) {
        let (Some(fed), Some(catalog)) = (&route.federation, catalog) else { continue };
        let lists = Kind::ALL
            .iter()
            .map(|k| {
                let [hits, stale, misses] = catalog.stats.lookups(*k);
                ListStats { list: k.key().to_owned(), hits, stale, misses }
            })
            .collect();
        let members = fed
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let asked = |result: &str| -> u64 {
                    let labels = |k: &Kind| [route.name.as_str(), m.prefix.as_str(), k.key(), result];
                    Kind::ALL.iter().map(|k| metrics.member_lists.with_label_values(&labels(k)).get()).sum()
                };
                let (entries, bytes) = catalog.stats.held_by(i);
                let failed = asked("failed");
                MemberStats {
                    prefix: m.prefix.clone(),
                    entries,
                    bytes,
                    refreshes: asked("ok") + failed,
                    failed_refreshes: failed,
                }
            })
            .collect();
        let results = catalog.results.as_ref().map(|r| {
            let [hits, misses, entries, bytes] = r.counts();
            ResultStats { hits, misses, entries, bytes }
        });
        out.push(CatalogState {
            route: route.name.clone(),
            evictions: catalog.stats.evictions(),
            lists,
            members,
            results,
        });
    }
    out
}
