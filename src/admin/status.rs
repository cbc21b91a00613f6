//! The one schema of `GET /status`, which the status page (`GET /`) polls too: serde structs
//! (both ways, unknown fields refused, so a test can read the endpoint back into them) and
//! [`build`], which fills them from the running [`State`] and a traffic sample.
//!
//! Only names, addresses, counts and states appear here: never a session key, token, header
//! value (limit keys are shown as keyed hashes by `limits::hot`) or Redis credential.
//! Owns the shape; the rates and quantiles are [`super::traffic`]'s.

use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::core::Collector;
use serde::{Deserialize, Serialize};

use super::traffic::Observed;
use crate::config::model::{LimitBackend, PathMatch};
use crate::limits::hot::Kind;
use crate::state::State;

/// Tools listed, busiest first.
const TOP_TOOLS: usize = 10;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Status {
    pub version: String,
    pub ready: bool,
    /// Unix seconds.
    pub started_at: u64,
    pub uptime_secs: u64,
    pub config: ConfigState,
    pub sessions: SessionKeys,
    pub connections: Connections,
    /// The span the rates and quantiles below are taken over (see `admin::traffic`).
    pub window_secs: f64,
    /// Every request, routed or not.
    pub totals: Traffic,
    /// Panics contained since start (each one a bug).
    pub panics: u64,
    pub routes: Vec<RouteState>,
    /// Busiest tool labels (configured names or `other`); no latency per tool.
    pub tools: Vec<ToolState>,
    /// Requests the proxy answered itself, by reason, most frequent first.
    pub rejections: Vec<Rejection>,
    pub limits: Vec<LimitState>,
    pub redis: Option<RedisState>,
    pub pools: Vec<PoolState>,
    /// The catalog cache of each federated route (`GET /servers` has the members' lists).
    pub catalogs: Vec<super::servers::CatalogState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigState {
    pub source: Option<String>,
    pub digest: String,
    pub generation: u64,
    pub last_reload: Option<u64>,
    pub last_reload_ok: Option<bool>,
    pub last_error: Option<String>,
    pub last_success: Option<u64>,
    pub last_changes: Vec<String>,
    pub reloads_ok: u64,
    pub reloads_failed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionKeys {
    pub shared_key: bool,
    pub previous_key_accepted: bool,
    /// Legacy sessions this replica served recently (`GET /sessions` lists them).
    pub seen: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connections {
    pub open: i64,
    /// SSE responses being streamed now (`streams_open`).
    pub streams: i64,
    pub refused: u64,
    pub denied: u64,
}

/// Counts since start, and rates and quantiles over `window_secs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Traffic {
    pub requests: u64,
    /// 4xx answers (limits, auth, bad requests).
    pub client_errors: u64,
    /// 5xx answers.
    pub server_errors: u64,
    pub requests_per_sec: f64,
    pub client_errors_per_sec: f64,
    pub server_errors_per_sec: f64,
    /// None without requests in the window; streams (`GET`, `subscriptions/listen`) excluded.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteState {
    pub name: String,
    /// The path, with a trailing `*` for a prefix.
    pub path: String,
    /// Every pool the route may send to (its pool, rules' pools, fallbacks).
    pub pools: Vec<String>,
    pub traffic: Traffic,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolState {
    pub name: String,
    pub traffic: Traffic,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rejection {
    pub reason: String,
    pub total: u64,
    pub per_sec: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitState {
    pub name: String,
    /// `local` or `redis`.
    pub backend: String,
    /// Keys seen at half their quota or more in the last minute, busiest first.
    pub busiest: Vec<HotKey>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HotKey {
    /// The key's parts, header values as keyed hashes.
    pub key: String,
    pub tier: String,
    /// `rate` or `concurrency`.
    pub kind: String,
    pub used: f64,
    pub quota: f64,
    pub seen_ms_ago: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisState {
    /// Credentials and query redacted.
    pub url: String,
    pub up: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolState {
    pub name: String,
    /// Whether the first health pass is done.
    pub checked: bool,
    pub backends: Vec<BackendState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendState {
    pub addr: String,
    pub weight: usize,
    pub healthy: bool,
    /// `closed`, `open` or `half-open`; None when the pool has no breaker.
    pub circuit: Option<String>,
    pub ejections: Option<u64>,
    /// Healthy and its circuit lets requests through.
    pub usable: bool,
    pub traffic: BackendTraffic,
}

/// Upstream attempts to one backend (`upstream_attempts_total`; each retry is one more):
/// counts since start, rates over `window_secs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendTraffic {
    pub attempts: u64,
    /// Attempts that got a 5xx or no complete answer (connect error, timeout, reset).
    pub errors: u64,
    pub attempts_per_sec: f64,
    pub errors_per_sec: f64,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The status of the running proxy, with `traffic` sampled just before.
pub fn build(state: &State, traffic: &Observed) -> Status {
    let snap = state.snapshot();
    let last = state.last_reload.lock().map(|l| l.clone()).unwrap_or_default();
    let m = &state.metrics;
    let reloads = |result: &str| {
        let families = m.config_reloads.collect();
        let metrics = families.iter().flat_map(|f| f.get_metric());
        metrics
            .filter(|x| x.get_label().iter().any(|l| l.value() == result))
            .map(|x| x.get_counter().get_value() as u64)
            .sum()
    };
    let pool_name = |i: &usize| snap.pools.get(*i).map(|p| p.name().to_owned());
    Status {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        ready: state.is_ready(),
        started_at: unix(state.started),
        uptime_secs: state.started.elapsed().map_or(0, |d| d.as_secs()),
        config: ConfigState {
            source: snap.config.source.as_ref().map(|p| p.display().to_string()),
            digest: snap.config.digest.clone(),
            generation: snap.generation,
            last_reload: last.at.map(unix),
            last_reload_ok: last.at.map(|_| last.ok),
            last_error: last.error,
            last_success: last.last_success.map(unix),
            last_changes: last.changes,
            reloads_ok: reloads("ok"),
            reloads_failed: reloads("error"),
        },
        sessions: SessionKeys {
            shared_key: state.keys.load().current.shared,
            previous_key_accepted: state.keys.load().in_overlap(),
            seen: state.sessions.len() as u64,
        },
        connections: Connections {
            open: m.connections_open.get(),
            streams: m.streams_open.get(),
            refused: m.connections_refused.get(),
            denied: m.connections_denied.get(),
        },
        window_secs: (traffic.window_secs * 100.0).round() / 100.0,
        totals: traffic.total(),
        panics: crate::fault::PANICS.load(Ordering::Relaxed),
        routes: snap
            .router
            .routes()
            .iter()
            .map(|r| RouteState {
                name: r.name.clone(),
                path: match &r.path {
                    PathMatch::Exact(p) => p.clone(),
                    PathMatch::Prefix(p) => format!("{p}*"),
                },
                pools: r.serves.iter().filter_map(pool_name).collect(),
                traffic: traffic.route(&r.name),
            })
            .collect(),
        tools: traffic.tools(TOP_TOOLS).into_iter().map(|(name, traffic)| ToolState { name, traffic }).collect(),
        rejections: traffic
            .rejections()
            .into_iter()
            .map(|(reason, total, per_sec)| Rejection { reason, total, per_sec })
            .collect(),
        limits: snap
            .limiters
            .iter()
            .map(|l| LimitState {
                name: l.name().to_owned(),
                backend: if matches!(l.config.backend, LimitBackend::Local) { "local" } else { "redis" }.to_owned(),
                busiest: l
                    .hot
                    .busiest()
                    .iter()
                    .map(|h| HotKey {
                        key: h.label.clone(),
                        tier: l.tier_name(h.tier).to_owned(),
                        kind: match h.kind {
                            Kind::Rate => "rate",
                            Kind::Concurrency => "concurrency",
                        }
                        .to_owned(),
                        used: (h.used * 10.0).round() / 10.0,
                        quota: h.quota,
                        seen_ms_ago: h.seen.elapsed().as_millis() as u64,
                    })
                    .collect(),
            })
            .collect(),
        redis: snap.redis.as_ref().map(|r| RedisState { url: r.settings.display_url(), up: r.is_up() }),
        catalogs: super::servers::catalogs(&snap, m),
        pools: snap
            .pools
            .iter()
            .map(|p| PoolState {
                name: p.name().to_owned(),
                checked: p.checked_once(),
                backends: p
                    .config
                    .backends
                    .iter()
                    .map(|b| BackendState {
                        addr: b.addr.to_string(),
                        weight: b.weight,
                        healthy: p.is_healthy(b.addr),
                        circuit: p.breaker(b.addr).map(|br| br.state().as_str().to_owned()),
                        ejections: p.breaker(b.addr).map(|br| br.ejections.load(Ordering::Relaxed)),
                        usable: p.usable(b.addr),
                        traffic: traffic.backend(p.name(), p.backend_label(b.addr).unwrap_or_default()),
                    })
                    .collect(),
            })
            .collect(),
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
