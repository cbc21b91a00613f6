//! `GET /servers`: the members of every federated route as this replica sees them: their
//! pool and its usable backends, and for each era the tool count of the latest merged list,
//! its age, and why the member's part is missing or stale. Built from the snapshot on each
//! request; asks no member anything (a list is refreshed by client traffic, not by a look).

use serde::Serialize;

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
    pub tools: usize,
    pub age_ms: u64,
    /// Why this member's part of the list is missing or stale (no values from the member).
    pub last_error: Option<String>,
}

pub fn build(state: &State) -> Servers {
    let snap = state.snapshot();
    let mut routes = Vec::new();
    for (ri, route) in snap.router.routes().iter().enumerate() {
        let (Some(fed), Some(Some(catalog))) = (&route.federation, snap.catalogs.get(ri)) else { continue };
        let latest = catalog.latest();
        let members = fed
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let pool = snap.pools.get(m.pool);
                let listing = |era: usize| {
                    latest.get(era).and_then(Option::as_ref).map(|merged| Listing {
                        tools: merged.tools_of(i),
                        age_ms: u64::try_from(merged.made().elapsed().as_millis()).unwrap_or(u64::MAX),
                        last_error: merged.failure_of(i).map(ToString::to_string),
                    })
                };
                Member {
                    prefix: m.prefix.clone(),
                    pool: pool.map_or("-", |p| p.name()).to_owned(),
                    transport: "http",
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
