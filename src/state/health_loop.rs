//! The one background service that health-checks the pools of the *current* snapshot. Pingora
//! services cannot be added after start-up, so a per-pool service would not survive a reload;
//! this loop simply walks whatever the snapshot holds on each tick.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use super::State;

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

pub struct HealthLoop {
    pub state: Arc<State>,
}

#[async_trait]
impl BackgroundService for HealthLoop {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        // Keyed by pool address: a pool carried over by a reload keeps its schedule.
        let mut next_due: HashMap<usize, Instant> = HashMap::new();
        // (pool, backend) label pairs exported so far, to retire series a reload removed.
        let mut exported: Vec<(String, String)> = Vec::new();
        // systemd's watchdog is fed from this loop: if the runtime stalls, systemd notices.
        let watchdog = crate::systemd::watchdog_interval();
        let mut last_ping = Instant::now();
        loop {
            crate::telemetry::flush_access();
            if watchdog.is_some_and(|every| last_ping.elapsed() >= every) {
                crate::systemd::notify("WATCHDOG=1");
                last_ping = Instant::now();
            }

            let snap = self.state.snapshot();
            let now = Instant::now();
            let mut checks = tokio::task::JoinSet::new();
            for pool in &snap.pools {
                let key = Arc::as_ptr(pool) as usize;
                if next_due.get(&key).is_none_or(|due| *due <= now) {
                    next_due.insert(key, now + pool.config.health.interval);
                    let pool = Arc::clone(pool);
                    // A backend that stalls a probe (slow TLS, an endless SSE answer) must not
                    // stall the loop, which also feeds systemd's watchdog.
                    let deadline = pool.config.health.timeout * 2 + Duration::from_secs(1);
                    checks.spawn(async move {
                        if tokio::time::timeout(deadline, pool.run_health_check()).await.is_err() {
                            tracing::warn!(pool = pool.name(), "health check pass timed out");
                        }
                        pool
                    });
                }
            }
            while let Some(done) = checks.join_next().await {
                if let Ok(pool) = done {
                    for b in &pool.config.backends {
                        let healthy = pool.is_healthy(b.addr) as i64;
                        self.state
                            .metrics
                            .upstream_healthy
                            .with_label_values(&[pool.name(), &b.addr.to_string()])
                            .set(healthy);
                    }
                }
            }
            for pool in &snap.pools {
                for b in &pool.config.backends {
                    let state = pool.breaker(b.addr).map_or(0, |br| br.state() as i64);
                    self.state.metrics.circuit.with_label_values(&[pool.name(), &b.addr.to_string()]).set(state);
                }
            }
            let current: Vec<(String, String)> = snap
                .pools
                .iter()
                .flat_map(|p| p.config.backends.iter().map(|b| (p.name().to_owned(), b.addr.to_string())))
                .collect();
            for gone in exported.iter().filter(|e| !current.contains(e)) {
                let _ = self.state.metrics.upstream_healthy.remove_label_values(&[&gone.0, &gone.1]);
                let _ = self.state.metrics.circuit.remove_label_values(&[&gone.0, &gone.1]);
            }
            exported = current;
            if !self.state.is_ready()
                && snap.pools.iter().all(|p| p.checked_once())
                && listening(&snap.config.proxy.listen).await
            {
                self.state.set_ready();
            }
            next_due.retain(|k, _| snap.pools.iter().any(|p| Arc::as_ptr(p) as usize == *k));
            drop(snap);
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
