//! One pool: a pingora `LoadBalancer` (weighted round robin over health state) plus the
//! per-pool settings used to build peers. Built from config once and reused across reloads
//! while its config is unchanged, so health state survives; when only its credentials or
//! header rules changed, a new `Pool` carries the old one's state over (`carry`).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use pingora::upstreams::peer::HttpPeer;
use pingora_load_balancing::discovery::Static;
use pingora_load_balancing::health_check::{HealthCheck, TcpHealthCheck};
use pingora_load_balancing::selection::RoundRobin;
use pingora_load_balancing::{Backend, Backends, LoadBalancer};

use super::breaker::Breaker;
use super::health::{self, McpHealthCheck, SwapCheck, TokenHttpCheck};
use super::retry::RetryBudget;
use super::token::TokenSource;
use crate::config::model::{HealthKind, PoolConfig, Timeouts};
use crate::metrics::{AttemptResult, PoolCounters};

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("pool `{pool}`: backend {addr}: {message}")]
    Backend { pool: String, addr: SocketAddr, message: String },
    #[error("pool `{pool}`: backend discovery did not complete synchronously")]
    Discovery { pool: String },
    #[error(transparent)]
    Stdio(#[from] crate::stdio::StdioError),
}

pub struct Pool {
    pub config: PoolConfig,
    // The state below is shared with every pool carried over from this one.
    lb: Arc<LoadBalancer<RoundRobin>>,
    /// One per backend, same order as `config.backends`.
    breakers: Arc<[Breaker]>,
    /// Each backend's address as a metric label and the pool's upstream counters, resolved
    /// once so counting an attempt or a connection allocates and hashes nothing.
    counters: Arc<PoolCounters>,
    pub retry: Arc<RetryBudget>,
    /// Set after the first completed health pass (readiness).
    checked: Arc<AtomicBool>,
    /// The HTTP or MCP check (they send the credentials), replaced by `carry`.
    check: Option<SwapCheck>,
    /// `[pool.oauth]`'s token, kept by a reload that leaves that table unchanged.
    pub token: Option<Arc<TokenSource>>,
}

impl Pool {
    pub fn new(
        config: &PoolConfig,
        token: Option<Arc<TokenSource>>,
        metrics: &crate::metrics::Metrics,
    ) -> Result<Pool, PoolError> {
        let mut set = std::collections::BTreeSet::new();
        for b in &config.backends {
            let backend = Backend::new_with_weight(&b.addr.to_string(), b.weight).map_err(|e| PoolError::Backend {
                pool: config.name.clone(),
                addr: b.addr,
                message: e.to_string(),
            })?;
            set.insert(backend);
        }
        let mut backends = Backends::new(Static::new(set));
        let check = sent_check(config, token.as_ref()).map(SwapCheck::new);
        let observed = |c| super::health::Observed::wrap(c, &config.name, metrics);
        match (&check, config.health.kind) {
            (Some(swap), _) => backends.set_health_check(observed(Box::new(swap.clone()))),
            (None, HealthKind::Tcp) => backends.set_health_check(observed(tcp_check(config))),
            (None, _) => {}
        }
        let lb = LoadBalancer::<RoundRobin>::from_backends(backends);
        // Static discovery never waits; poll its update once instead of needing a runtime.
        match pin!(lb.update()).as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(())) => {}
            _ => return Err(PoolError::Discovery { pool: config.name.clone() }),
        }
        Ok(Pool {
            config: config.clone(),
            lb: Arc::new(lb),
            breakers: match config.stdio.as_ref().is_some_and(|s| s.sessions.is_some()) {
                // A `per_session` pool's one backend is a bridge to many clients' processes:
                // one client's failures (its process dying, its initialize refused, the pool
                // full) must not eject it for everyone (found by an attack: five bad
                // initializes locked every session out). Its health check still ejects it.
                true => Arc::from([]),
                false => config.backends.iter().map(|_| Breaker::new(&config.breaker)).collect(),
            },
            counters: Arc::new(PoolCounters::new(
                metrics,
                &config.name,
                config.backends.iter().map(|b| b.addr.to_string()).collect(),
            )),
            retry: Arc::new(RetryBudget::new(&config.retry)),
            checked: Arc::new(AtomicBool::new(config.health.kind == HealthKind::None)),
            check,
            token,
        })
    }

    /// A pool with `config` that keeps `old`'s health, circuit and retry state: for a config
    /// that differs only in credentials or header rules (`PoolConfig::same_connections`). Its
    /// health checks send the new credentials from now on, `old`'s included (they are one).
    pub fn carry(old: &Pool, config: &PoolConfig, token: Option<Arc<TokenSource>>) -> Pool {
        if let (Some(swap), Some(check)) = (&old.check, sent_check(config, token.as_ref())) {
            swap.store(check);
        }
        Pool {
            config: config.clone(),
            lb: Arc::clone(&old.lb),
            breakers: Arc::clone(&old.breakers),
            // `same_connections` holds: the backends are the same.
            counters: Arc::clone(&old.counters),
            retry: Arc::clone(&old.retry),
            checked: Arc::clone(&old.checked),
            check: old.check.clone(),
            token,
        }
    }

    /// Whether `other` is this pool or one carried over from it (or it from this).
    pub fn shares_state(&self, other: &Pool) -> bool {
        Arc::ptr_eq(&self.lb, &other.lb)
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Puts the pool's own credentials on a request the proxy makes itself (a session's
    /// DELETE, a federated route's list): its static credential headers and its
    /// `[pool.oauth]` token when it has its own (a token-exchange pool has none without a
    /// caller, and the request goes without).
    pub async fn own_credentials(&self, req: &mut pingora::http::RequestHeader) -> pingora::Result<()> {
        for c in &self.config.credentials {
            req.insert_header(&c.header, c.value.expose().clone())?;
        }
        if let Some(token) = &self.token {
            if let Some(value) = token.header().await {
                req.insert_header(http::header::AUTHORIZATION, value)?;
            }
        }
        Ok(())
    }

    /// A healthy backend, skipping `exclude` (backends that already failed this request).
    pub fn select(&self, exclude: &[SocketAddr]) -> Option<SocketAddr> {
        let n = self.config.backends.len().max(1) * 2;
        // Without a health check, pingora's default health (healthy) stands: all are usable.
        self.lb
            .select_with(b"", n, |b, healthy| {
                // The breaker goes last: `allows` may claim the one half-open probe.
                healthy
                    && b.addr
                        .as_inet()
                        .is_some_and(|a| !exclude.contains(a) && self.breaker(*a).is_none_or(Breaker::allows))
            })
            .and_then(|b| b.addr.as_inet().copied())
    }

    /// The circuit breaker of a backend of this pool.
    pub fn breaker(&self, addr: SocketAddr) -> Option<&Breaker> {
        self.config.backends.iter().position(|b| b.addr == addr).and_then(|i| self.breakers.get(i))
    }

    /// The `backend` metric label of a backend of this pool (its configured address), without
    /// allocating; None for an address the pool does not have.
    pub fn backend_label(&self, addr: SocketAddr) -> Option<&str> {
        self.config.backends.iter().position(|b| b.addr == addr).and_then(|i| self.counters.backend_label(i))
    }

    /// Counts an upstream attempt of `addr` (`upstream_attempts_total`).
    pub fn count_attempt(&self, addr: SocketAddr, result: AttemptResult) {
        if let Some(i) = self.config.backends.iter().position(|b| b.addr == addr) {
            self.counters.attempt(i, result);
        }
    }

    /// Counts the connection an attempt used (`upstream_connections_total`).
    pub fn count_connection(&self, reused: bool) {
        self.counters.connection(reused);
    }

    /// Active health check and circuit breaker both allow the backend.
    pub fn usable(&self, addr: SocketAddr) -> bool {
        self.is_healthy(addr) && self.breaker(addr).is_none_or(Breaker::usable)
    }

    pub fn contains(&self, addr: SocketAddr) -> bool {
        self.config.backends.iter().any(|b| b.addr == addr)
    }

    pub fn is_healthy(&self, addr: SocketAddr) -> bool {
        self.lb
            .backends()
            .get_backend()
            .iter()
            .find(|b| b.addr.as_inet() == Some(&addr))
            .is_some_and(|b| self.lb.backends().ready(b))
    }

    /// A peer for `addr` carrying this pool's TLS settings and `timeouts` (the pool's, or a
    /// route's overrides of them).
    pub fn peer(&self, addr: SocketAddr, timeouts: &Timeouts) -> HttpPeer {
        let mut peer = HttpPeer::new(addr, self.config.tls, self.config.sni.clone());
        peer.options.connection_timeout = Some(timeouts.connect);
        peer.options.total_connection_timeout = Some(timeouts.connect.saturating_add(Duration::from_secs(1)));
        // Pingora applies one timeout to every upstream read, including the gaps between SSE
        // events, so it is the long idle one; the proxy's first-byte timer shortens the wait
        // for the response header.
        peer.options.read_timeout = Some(timeouts.idle);
        peer.options.idle_timeout = Some(Duration::from_secs(60));
        self.config.upstream_tls.apply(&mut peer);
        peer
    }

    pub async fn run_health_check(&self) {
        if self.config.health.kind != HealthKind::None {
            self.lb.backends().run_health_check(true).await;
        }
        self.checked.store(true, Ordering::Release);
    }

    pub fn checked_once(&self) -> bool {
        self.checked.load(Ordering::Acquire)
    }
}

fn tcp_check(config: &PoolConfig) -> Box<dyn HealthCheck + Send + Sync> {
    let h = &config.health;
    let mut c = TcpHealthCheck::new();
    c.consecutive_success = h.rise;
    c.consecutive_failure = h.fall;
    c.peer_template.options.connection_timeout = Some(h.timeout);
    c
}

/// The check that sends requests (and so the pool's credentials), for `http` and `mcp`.
fn sent_check(config: &PoolConfig, token: Option<&Arc<TokenSource>>) -> Option<Box<dyn HealthCheck + Send + Sync>> {
    match (config.health.kind, token) {
        (HealthKind::None | HealthKind::Tcp, _) => None,
        (HealthKind::Http, None) => Some(Box::new(health::http_check(config, None))),
        (HealthKind::Http, Some(token)) => Some(Box::new(TokenHttpCheck::new(config, Arc::clone(token)))),
        (HealthKind::Mcp, _) => Some(Box::new(McpHealthCheck::new(config, token.cloned()))),
    }
}
