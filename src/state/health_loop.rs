//! The one background service that health-checks the pools of the *current* snapshot and
//! keeps the process's periodic chores. Pingora services cannot be added after start-up, so it
//! runs its own tasks, none of which waits for another:
//! - one probe task per pool, on that pool's own `interval`: a slow or hung backend delays only
//!   its own pool's next pass. The set follows reloads: a new or changed pool (a new `Pool`)
//!   gets a task, a removed or replaced one loses its task;
//! - a housekeeping timer that flushes the access log and feeds systemd's watchdog;
//! - the supervisor itself, which reconciles the probe tasks, exports health and circuit
//!   gauges, and declares readiness once every pool had its first pass.
//!
//! Not here: what a probe does (`upstream::health`, Pingora's checks), probing new pools before
//! a reload swaps them in (`reload`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use tokio::task::{AbortHandle, JoinSet};

use super::{Snapshot, State};
use crate::upstream::Pool;

/// How often the supervisor reconciles and exports, and how often the access log is flushed
/// (the access log promises lines within this).
const TICK: Duration = Duration::from_millis(200);

/// Whether every proxy listener accepts connections: Pingora binds each service's listeners on
/// that service's own runtime, so the admin API (and this loop) can be up before the proxy is.
async fn listening(addrs: &[std::net::SocketAddr]) -> bool {
    for addr in addrs {
        let mut target = *addr;
        if target.ip().is_unspecified() {
            target.set_ip(if target.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
        }
        let connect = tokio::net::TcpStream::connect(target);
        if !matches!(tokio::time::timeout(Duration::from_millis(500), connect).await, Ok(Ok(_))) {
            return false;
        }
    }
    true
}

/// Probes one pool for as long as it is in the current snapshot (the supervisor aborts it
/// otherwise): a pass, then the rest of `interval`. A pass longer than the interval is
/// followed at once by the next, never overlapped by it.
async fn probe(pool: Arc<Pool>) {
    let health = &pool.config.health;
    // A backend that stalls a probe (slow TLS, an endless SSE answer) must not stall the pool:
    // an MCP check may take two requests of `timeout` each.
    let deadline = health.timeout.saturating_mul(2).saturating_add(Duration::from_secs(1));
    loop {
        let started = tokio::time::Instant::now();
        if tokio::time::timeout(deadline, pool.run_health_check()).await.is_err() {
            tracing::warn!(pool = pool.name(), "health check pass timed out");
        }
        tokio::time::sleep_until(started + health.interval).await;
    }
}

/// Flushes the access log every tick and pings systemd's watchdog at the interval it asked
/// for. It shares the runtime with the proxy's background work, so a stalled runtime still
/// misses its pings and gets restarted; a slow probe no longer can.
async fn housekeeping() {
    let watchdog = crate::systemd::watchdog_interval();
    let mut last_ping = Instant::now();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        crate::telemetry::flush_access();
        if watchdog.is_some_and(|every| last_ping.elapsed() >= every) {
            crate::systemd::notify("WATCHDOG=1");
            last_ping = Instant::now();
        }
    }
}

pub struct HealthLoop {
    pub state: Arc<State>,
}

#[async_trait]
impl BackgroundService for HealthLoop {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        // Dropped on shutdown, which aborts every task in it.
        let mut tasks = JoinSet::new();
        tasks.spawn(housekeeping());
        // Probe tasks keyed by pool address: a pool carried over by a reload keeps its task
        // (and schedule). The task owns an `Arc` of its pool, so the address is not reused
        // while the key is here.
        let mut probes: HashMap<usize, AbortHandle> = HashMap::new();
        // (pool, backend) label pairs exported so far, to retire series a reload removed.
        let mut exported: Vec<(String, String)> = Vec::new();
        loop {
            let snap = self.state.snapshot();
            follow(&snap, &mut probes, &mut tasks);
            exported = self.export(&snap, exported);
            if !self.state.is_ready()
                && snap.pools.iter().all(|p| p.checked_once())
                && listening(&snap.config.proxy.listen).await
            {
                self.state.set_ready();
            }
            drop(snap);
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Starts a probe task for each pool of `snap` that has none, and stops the tasks of pools
/// that are gone.
fn follow(snap: &Snapshot, probes: &mut HashMap<usize, AbortHandle>, tasks: &mut JoinSet<()>) {
    let key = |pool: &Arc<Pool>| Arc::as_ptr(pool) as usize;
    probes.retain(|k, task| {
        let kept = snap.pools.iter().any(|p| key(p) == *k);
        if !kept {
            task.abort();
        }
        kept
    });
    for pool in &snap.pools {
        probes.entry(key(pool)).or_insert_with(|| tasks.spawn(probe(Arc::clone(pool))));
    }
    // Reap the aborted ones so the set does not grow with every reload.
    while tasks.try_join_next().is_some() {}
}

impl HealthLoop {
    /// Sets the health and circuit gauges of every backend, retires those of backends a reload
    /// removed, and returns the label pairs now exported. The only writer of these gauges, so
    /// a probe task being stopped cannot bring a retired series back.
    fn export(&self, snap: &Snapshot, exported: Vec<(String, String)>) -> Vec<(String, String)> {
        let metrics = &self.state.metrics;
        let mut current = Vec::with_capacity(exported.len());
        for pool in &snap.pools {
            for b in &pool.config.backends {
                let labels = (pool.name().to_owned(), b.addr.to_string());
                let pair = [labels.0.as_str(), labels.1.as_str()];
                // Before its first pass a pool's backends only count as healthy by default.
                if pool.checked_once() {
                    metrics.upstream_healthy.with_label_values(&pair).set(pool.is_healthy(b.addr) as i64);
                }
                let breaker = pool.breaker(b.addr);
                metrics.circuit.with_label_values(&pair).set(breaker.map_or(0, |br| br.state() as i64));
                if let Some(br) = breaker {
                    for (to, count) in [("half_open", &br.half_opened), ("closed", &br.closed)] {
                        // A counter cannot be set: it catches up with the breaker's count. (A
                        // pool rebuilt by a reload starts new breakers at 0; its series waits
                        // until they pass the old count.)
                        let series = metrics.circuit_transitions.with_label_values(&[pair[0], pair[1], to]);
                        let now = count.load(std::sync::atomic::Ordering::Relaxed);
                        if now > series.get() {
                            series.inc_by(now - series.get());
                        }
                    }
                }
                current.push(labels);
            }
        }
        for gone in exported.iter().filter(|e| !current.contains(e)) {
            let _ = metrics.upstream_healthy.remove_label_values(&[&gone.0, &gone.1]);
            let _ = metrics.circuit.remove_label_values(&[&gone.0, &gone.1]);
        }
        current
    }
}
