//! Process assembly: the Pingora server with the proxy service, the admin service, the health
//! loop, the SIGHUP reloader and the SIGUSR1 access-log reopener. Owns start-up checks (ports free, key readable) so a broken
//! start exits non-zero with a clear message instead of leaving a half-alive process.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use async_trait::async_trait;
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch, ShutdownWatch};
use pingora::services::background::{background_service, BackgroundService};
use pingora::services::listening::Service;

use crate::admin::Admin;
use crate::config::Config;
use crate::downstream::accept::ProxyService;
use crate::downstream::Listener;
use crate::metrics::{Metrics, MetricsError};
use crate::proxy::Edge;
use crate::session::key::KeyError;
use crate::session::{KeyRing, SessionKey};
use crate::state::health_loop::HealthLoop;
use crate::state::watch::ConfigWatcher;
use crate::telemetry::reopen::Reopener;
use crate::upgrade::Upgrader;

use crate::state::{Snapshot, State};
use crate::upstream::PoolError;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr} ({what}): {source}; is another process using it?")]
    PortTaken { addr: SocketAddr, what: &'static str, source: std::io::Error },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Pool(#[from] PoolError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
}

pub struct RunOptions {
    /// Take the listening sockets over from a running instance (graceful upgrade).
    pub upgrade: bool,
}

/// Builds everything and runs until shutdown. Only returns on a start-up error.
pub fn run(config: Config, opts: RunOptions) -> Result<(), StartError> {
    if !opts.upgrade {
        check_ports(&config)?;
    }
    let key = match &config.sessions.key_file {
        Some(path) => SessionKey::from_file(path)?,
        None => {
            tracing::warn!(
                "no [sessions] key_file: using a random session key; sessions will not survive a restart and replicas cannot serve each other's sessions"
            );
            SessionKey::random()
        }
    };
    let conf = ServerConf {
        threads: config.proxy.threads,
        pid_file: config.proxy.pid_file.clone(),
        upgrade_sock: config.proxy.upgrade_sock.clone(),
        grace_period_seconds: Some(config.proxy.grace_period.as_secs()),
        graceful_shutdown_timeout_seconds: Some(config.proxy.shutdown_timeout.as_secs()),
        ..ServerConf::default()
    };
    let opt = Opt { upgrade: opts.upgrade, ..Opt::default() };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();
    // Built now, not by the first request that needs it (it reads the platform's trust roots).
    crate::upstream::client::connector();

    let listen = config.proxy.listen.clone();
    let threads = config.proxy.threads;
    let admin_addr = config.admin.listen;
    let metrics = Metrics::new()?;
    let stdio = crate::stdio::Supervisor::new(&metrics);
    let snapshot = Snapshot::build(config, None, &metrics, &stdio)?;
    stdio.started_blocking();
    let state = Arc::new(State::new(snapshot, metrics, KeyRing::new(key), stdio));
    let weak = Arc::downgrade(&state);
    state.stdio.on_changed(move |pool, lists| {
        if let Some(state) = weak.upgrade() {
            crate::federation::pool_changed(&state.snapshot(), pool, lists);
        }
    });

    let http = pingora::proxy::http_proxy(&server.configuration, Edge { state: Arc::clone(&state) });
    let proxy = ProxyService::new(listen.clone(), threads, Listener::new(http, Arc::clone(&state)));
    let mut admin = Service::new("mcp-edge admin".to_owned(), Admin::new(Arc::clone(&state)));
    admin.add_tcp(&admin_addr.to_string());
    admin.threads = Some(1);

    server.add_service(proxy);
    server.add_service(admin);
    server.add_service(background_service("health checks", HealthLoop { state: Arc::clone(&state) }));
    server.add_service(background_service("config watcher", ConfigWatcher { state: Arc::clone(&state) }));
    server.add_service(background_service("reload on SIGHUP", Reloader { state: Arc::clone(&state) }));
    let upgrade_sock = state.snapshot().config.proxy.upgrade_sock.clone().into();
    server.add_service(background_service("upgrade on SIGUSR2", Upgrader { upgrade_sock }));
    server.add_service(background_service("reopen the access log on SIGUSR1", Reopener));
    tracing::info!(listen = ?listen, admin = %admin_addr, upgrade = opts.upgrade, "mcp-edge starting");
    server.run(RunArgs { shutdown_signal: Box::new(Signals) });
    // Spans of the last requests are still queued: sent before the process ends.
    if let Some(traces) = state.snapshot().traces.clone() {
        if !traces.flush(std::time::Duration::from_secs(5)) {
            tracing::warn!("trace spans still queued at exit were not all sent within 5s");
        }
    }
    state.stdio.shutdown(std::time::Duration::from_secs(5));
    tracing::info!("mcp-edge stopped");
    Ok(())
}

/// Fails fast when a port is taken: Pingora would otherwise panic on a service thread and
/// leave the process running without that listener.
fn check_ports(config: &Config) -> Result<(), StartError> {
    let admin = std::iter::once((config.admin.listen, "admin.listen"));
    for (addr, what) in config.proxy.listen.iter().map(|a| (*a, "proxy.listen")).chain(admin) {
        TcpListener::bind(addr).map_err(|source| StartError::PortTaken { addr, what, source })?;
    }
    Ok(())
}

/// Shutdown signals: SIGQUIT hands the listeners to a new process (graceful upgrade); SIGTERM
/// and SIGINT both stop accepting and drain in-flight requests for `grace_period` (Pingora's
/// own SIGINT would exit at once and cut streams).
struct Signals;

#[async_trait]
impl ShutdownSignalWatch for Signals {
    async fn recv(&self) -> ShutdownSignal {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut quit), Ok(mut term), Ok(mut int)) =
            (signal(SignalKind::quit()), signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
        else {
            tracing::error!("cannot install signal handlers; shutting down");
            return ShutdownSignal::FastShutdown;
        };
        let signal = tokio::select! {
            _ = quit.recv() => ShutdownSignal::GracefulUpgrade,
            _ = term.recv() => ShutdownSignal::GracefulTerminate,
            _ = int.recv() => ShutdownSignal::GracefulTerminate,
        };
        tracing::info!(?signal, "shutdown signal: draining in-flight requests");
        crate::systemd::stopping();
        signal
    }
}

struct Reloader {
    state: Arc<State>,
}

#[async_trait]
impl BackgroundService for Reloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot install the SIGHUP handler; reload through the admin API only");
                return;
            }
        };
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading config");
                    if let Some(path) = self.state.snapshot().config.source.clone() {
                        // The outcome is logged, counted and shown in /status by `reload`.
                        let _ = self.state.reload(&path).await;
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}
