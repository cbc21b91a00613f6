//! One immutable view of the config and everything compiled from it: router, pools, tool
//! labels. Built before it is swapped in; pools whose config did not change are carried over
//! from the previous snapshot (and pools whose credentials or header rules alone changed keep
//! their state) so their health and circuit state survives a reload.

use std::sync::Arc;

use crate::auth::remote_keys::RemoteKeys;
use crate::config::model::BackendConfig;
use crate::config::Config;
use crate::limits::redis_store::RedisStore;
use crate::limits::Limiter;
use crate::metrics::Metrics;
use crate::router::Router;
use crate::stdio::Supervisor;
use crate::trace::export::{Counters, Exporter};
use crate::upstream::token::TokenSource;
use crate::upstream::{Pool, PoolError};

pub struct Snapshot {
    pub config: Config,
    pub router: Router,
    /// Same order as `config.pools`: routes and rules refer to pools by index.
    pub pools: Vec<Arc<Pool>>,
    /// Same order as `config.limits`. A limiter whose config did not change is carried over,
    /// so its counters and in-flight guards survive a reload.
    pub limiters: Vec<Arc<Limiter>>,
    /// The store of Redis-backed limits; carried over while `[redis]` is unchanged, so its
    /// connections survive a reload.
    pub redis: Option<Arc<RedisStore>>,
    pub generation: u64,
    /// Same order as the router's routes: each route's compiled authentication.
    pub gates: Vec<crate::auth::Gate>,
    /// Key sets fetched from `jwks_url`s; carried over while their config is unchanged, so a
    /// reload keeps the last good set.
    pub remote_keys: Vec<Arc<RemoteKeys>>,
    /// The span export queue and thread, when `[traces]` is on; carried over while its
    /// settings are unchanged (a change starts a new one; the old one sends what it holds).
    pub traces: Option<Arc<Exporter>>,
    /// Same order as the router's routes: the body-byte counters (in, out), resolved once.
    pub route_bytes: Vec<[prometheus::IntCounter; 2]>,
    /// Same order as the router's routes: `auth_total`, for routes with `auth`.
    pub route_auth: Vec<Option<crate::metrics::AuthCounters>>,
    /// The request path's metric series, resolved per worker thread on first use; indexed by
    /// this snapshot's route and pool numbers, so it starts empty with every snapshot.
    pub series: super::series::Series,
    /// Same order as the router's routes: the merged tool lists of federated routes.
    pub catalogs: Vec<Option<crate::federation::catalog::Catalog>>,
}

fn remote_keys(config: &Config, previous: Option<&Snapshot>) -> Vec<Arc<RemoteKeys>> {
    let mut out: Vec<Arc<RemoteKeys>> = Vec::new();
    for a in &config.authenticators {
        let crate::config::model::AuthKind::Jwt(j) = &a.kind else { continue };
        let Some(r) = &j.remote else { continue };
        if out.iter().any(|k| k.config == *r) {
            continue;
        }
        let kept = previous.and_then(|p| p.remote_keys.iter().find(|k| k.config == *r));
        out.push(kept.map_or_else(|| RemoteKeys::new(r.clone()), Arc::clone));
    }
    out
}

/// The `[pool.oauth]` token source of pool `pc`: the previous snapshot's pool's while its
/// table is unchanged (the token survives the reload), else a new one.
fn token(
    pc: &crate::config::model::PoolConfig,
    previous: Option<&Snapshot>,
    metrics: &Metrics,
) -> Option<Arc<TokenSource>> {
    let oauth = pc.oauth.as_ref()?;
    let kept = previous
        .and_then(|p| p.pools.iter().find(|old| old.name() == pc.name))
        .and_then(|old| old.token.as_ref())
        .filter(|t| t.config == *oauth);
    Some(kept.map_or_else(|| TokenSource::new(oauth.clone(), &pc.name, metrics.token_fetches.clone()), Arc::clone))
}

fn traces(config: &Config, previous: Option<&Snapshot>, metrics: &Metrics) -> Option<Arc<Exporter>> {
    let settings = config.traces.as_ref()?;
    if let Some(kept) = previous.and_then(|p| p.traces.as_ref()).filter(|t| t.settings == *settings) {
        return Some(Arc::clone(kept));
    }
    let result = |r: &str| metrics.trace_spans.with_label_values(&[r]);
    let counters = Counters { exported: result("exported"), failed: result("failed"), dropped: result("dropped") };
    match Exporter::start(settings.clone(), counters) {
        Ok(exporter) => Some(Arc::new(exporter)),
        Err(e) => {
            tracing::error!(error = %e, "trace export thread could not start; tracing is off");
            None
        }
    }
}

impl Snapshot {
    pub fn build(
        mut config: Config,
        previous: Option<&Snapshot>,
        metrics: &Metrics,
        stdio: &Supervisor,
    ) -> Result<Snapshot, PoolError> {
        // A stdio pool's backends are its bridges, running (or kept running) before it is built.
        for pc in &mut config.pools {
            if let Some(sc) = &pc.stdio {
                let bridges = stdio.ensure(&pc.name, sc)?;
                pc.backends = bridges.addrs.into_iter().map(|addr| BackendConfig { addr, weight: 1 }).collect();
                pc.credentials.push(bridges.credential);
            }
        }
        let limiters = config
            .limits
            .iter()
            .map(|lc| match previous.and_then(|p| p.limiters.iter().find(|old| old.config == *lc)) {
                Some(old) => Arc::clone(old),
                None => Arc::new(Limiter::new(lc)),
            })
            .collect();
        let redis = config.redis.as_ref().map(|settings| {
            match previous.and_then(|p| p.redis.as_ref()).filter(|old| old.settings == *settings) {
                Some(old) => Arc::clone(old),
                None => Arc::new(RedisStore::new(settings)),
            }
        });
        // Unchanged: the same pool. Only credentials or header rules changed: a new pool
        // carrying the old one's health, circuit and retry state. New pools are built first:
        // that can fail, and `carry` gives the running pool's probes the new credentials.
        let kept: Vec<_> = config
            .pools
            .iter()
            .map(|pc| previous.and_then(|p| p.pools.iter().find(|old| old.config.same_connections(pc))))
            .collect();
        let mut built = Vec::with_capacity(config.pools.len());
        for (pc, kept) in config.pools.iter().zip(&kept) {
            built.push(if kept.is_none() {
                Some(Arc::new(Pool::new(pc, token(pc, previous, metrics), metrics)?))
            } else {
                None
            });
        }
        let mut pools = Vec::with_capacity(config.pools.len());
        for ((pc, kept), built) in config.pools.iter().zip(kept).zip(built) {
            pools.push(match (kept, built) {
                (_, Some(new)) => new,
                (Some(old), None) if old.config == *pc => Arc::clone(old),
                (Some(old), None) => Arc::new(Pool::carry(old, pc, token(pc, previous, metrics))),
                (None, None) => Arc::new(Pool::new(pc, token(pc, previous, metrics), metrics)?),
            });
        }
        let remote_keys = remote_keys(&config, previous);
        let traces = traces(&config, previous, metrics);

        let router = Router::new(&config);
        let route_bytes = router
            .routes()
            .iter()
            .map(|r| [metrics.bytes_in.with_label_values(&[&r.name]), metrics.bytes_out.with_label_values(&[&r.name])])
            .collect();
        let route_auth = router
            .routes()
            .iter()
            .map(|r| (!r.auth.accept.is_empty()).then(|| crate::metrics::AuthCounters::new(metrics, &r.name)))
            .collect();
        let catalogs = router
            .routes()
            .iter()
            .map(|r| {
                let stats = |fed| crate::federation::stats::Stats::new(&r.name, fed, metrics);
                let results = |fed: &crate::config::model::Federation| {
                    fed.results.as_ref().map(|c| crate::federation::results::Results::new(&r.name, c, metrics))
                };
                r.federation.as_ref().map(|fed| crate::federation::catalog::Catalog::new(stats(fed), results(fed)))
            })
            .collect();
        let gates = router.routes().iter().map(|r| crate::auth::Gate::compile(&config, r, &remote_keys)).collect();
        Ok(Snapshot {
            router,
            gates,
            remote_keys,
            generation: previous.map_or(1, |p| p.generation + 1),
            config,
            pools,
            limiters,
            redis,
            traces,
            route_bytes,
            route_auth,
            series: Default::default(),
            catalogs,
        })
    }

    pub fn pool_index(&self, name: &str) -> Option<usize> {
        self.pools.iter().position(|p| p.name() == name)
    }

    /// The metric label for a tool, and its number for [`super::series`]: its name when listed
    /// under `[metrics] tools` (numbered from 2), else `other` (1). 0 is `-`, no tool.
    pub fn tool_label<'a>(&'a self, tool: &str) -> (usize, &'a str) {
        match self.config.tool_labels.iter().enumerate().find(|(_, t)| *t == tool) {
            Some((i, t)) => (i + 2, t.as_str()),
            None => (1, "other"),
        }
    }
}
