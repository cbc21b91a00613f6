//! stdio pools: local MCP servers mcp-edge starts from `[pool.stdio]` (never from a request),
//! supervises ([`process`]) and serves to the rest of the proxy through a loopback bridge
//! ([`bridge`]) per process, so a stdio pool's "backends" are its bridges and everything a
//! pool has (health checks, breakers, routes, federation, policy) applies unchanged.
//!
//! The [`Supervisor`] lives as long as mcp-edge, on a thread and runtime of its own (started
//! on first use), so processes outlive reloads: a reload that keeps a pool's `[pool.stdio]`
//! keeps its processes and addresses; one that changes or removes it starts the new ones
//! first and stops the old after a drain. Not owned here: the config (`config::stdio`).

pub mod answer;
pub mod bridge;
pub mod frame;
pub mod link;
pub mod process;
pub mod session;
mod shared;
mod tree;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use http::{HeaderName, HeaderValue};
use prometheus::{IntCounter, IntGauge};
use rand::RngCore;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::identity::Secret;
use crate::config::header_model::{Credential, CredentialSource};
use crate::config::stdio::StdioConfig;
use crate::metrics::Metrics;

/// How long processes a reload replaced keep serving requests that were already under way.
const DRAIN: Duration = Duration::from_secs(5);

/// One process and the bridge in front of it.
pub struct Slot {
    pub pool: String,
    pub index: usize,
    /// The bridge's secret, as the proxy sends it (`bridge::HEADER`).
    secret: String,
    /// The running, initialized process; None while it starts or restarts.
    pub link: ArcSwapOption<link::Link>,
    restarts: IntCounter,
    up: IntGauge,
    /// Counts the pool's processes that finished their first start.
    started: Arc<watch::Sender<usize>>,
    /// A `per_session` pool's sessions: its one slot starts a process per client session and
    /// never has a `link` of its own.
    pub sessions: Option<Arc<session::Sessions>>,
    /// What its shared process's `list_changed` is told to.
    changes: Changes,
}

/// What a pool needs to reach its processes: their bridges and the credential they want.
pub struct Bridges {
    pub addrs: Vec<SocketAddr>,
    pub credential: Credential,
}

#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    #[error("pool `{pool}`: cannot listen on loopback for its stdio bridge: {source}")]
    Listen { pool: String, source: std::io::Error },
    #[error("cannot start the stdio supervisor thread: {0}")]
    Thread(String),
}

struct Running {
    pool: String,
    config: Arc<StdioConfig>,
    addrs: Vec<SocketAddr>,
    credential: Credential,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// Set until [`Supervisor::started`] waited for this pool's first start.
    fresh: bool,
    started: watch::Receiver<usize>,
}

/// Told when a shared process says its lists changed (`notifications/…/list_changed`), with
/// its pool: nothing in a stdio pool knows which routes list it, so the server sets this once
/// ([`Supervisor::on_changed`]) and every slot reads it when told.
pub type Changes = Arc<OnceLock<Box<dyn Fn(&str, frame::Lists) + Send + Sync>>>;

pub struct Supervisor {
    runtime: OnceLock<Result<Handle, String>>,
    changes: Changes,
    running: Mutex<Vec<Running>>,
    restarts: prometheus::IntCounterVec,
    up: prometheus::IntGaugeVec,
    sessions: prometheus::IntCounterVec,
}

impl Supervisor {
    pub fn new(metrics: &Metrics) -> Supervisor {
        Supervisor {
            runtime: OnceLock::new(),
            changes: Changes::default(),
            running: Mutex::new(Vec::new()),
            restarts: metrics.stdio_restarts.clone(),
            up: metrics.stdio_up.clone(),
            sessions: metrics.stdio_sessions.clone(),
        }
    }

    /// What a shared process's `list_changed` is told to, from now on (set once; later calls
    /// are ignored).
    pub fn on_changed(&self, changed: impl Fn(&str, frame::Lists) + Send + Sync + 'static) {
        let _ = self.changes.set(Box::new(changed));
    }

    /// The supervisor's runtime: two worker threads for every bridge and process (one busy
    /// server cannot stall the others), started once. Its workers never end, which
    /// `process::spawn`'s parent-death signal relies on.
    fn handle(&self) -> Result<Handle, StdioError> {
        let started = self.runtime.get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::Builder::new()
                .name("mcp-edge stdio".into())
                .spawn(move || {
                    match tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .thread_name("mcp-edge stdio")
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => {
                            let _ = tx.send(Ok(rt.handle().clone()));
                            rt.block_on(std::future::pending::<()>());
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e.to_string()));
                        }
                    }
                })
                .map_err(|e| e.to_string())?;
            rx.recv().map_err(|e| e.to_string())?
        });
        started.clone().map_err(StdioError::Thread)
    }

    /// Runs `pool`'s processes, or finds them running with this very config.
    pub fn ensure(&self, pool: &str, config: &StdioConfig) -> Result<Bridges, StdioError> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = running.iter().find(|r| r.pool == pool && *r.config == *config) {
            return Ok(Bridges { addrs: r.addrs.clone(), credential: r.credential.clone() });
        }
        let handle = self.handle()?;
        let listen = |_| {
            let l = std::net::TcpListener::bind(("127.0.0.1", 0))?;
            l.set_nonblocking(true)?;
            Ok(l)
        };
        let listeners = (0..config.processes)
            .map(listen)
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|source| StdioError::Listen { pool: pool.to_owned(), source })?;
        let addrs = listeners
            .iter()
            .map(std::net::TcpListener::local_addr)
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|source| StdioError::Listen { pool: pool.to_owned(), source })?;
        let secret = secret();
        let config = Arc::new(config.clone());
        let (stop, _) = watch::channel(false);
        let (started, started_rx) = watch::channel(0);
        let started = Arc::new(started);
        let mut tasks = Vec::with_capacity(2 * listeners.len());
        for (index, listener) in listeners.into_iter().enumerate() {
            let slot = Arc::new(Slot {
                pool: pool.to_owned(),
                index,
                secret: secret.clone(),
                link: ArcSwapOption::empty(),
                restarts: self.restarts.with_label_values(&[pool]),
                up: self.up.with_label_values(&[pool]),
                started: Arc::clone(&started),
                changes: Arc::clone(&self.changes),
                sessions: config.sessions.map(|_| {
                    let up = self.up.with_label_values(&[pool]);
                    let outcomes = ["opened", "full", "failed"].map(|o| self.sessions.with_label_values(&[pool, o]));
                    Arc::new(session::Sessions::new(pool, Arc::clone(&config), up, outcomes, stop.subscribe()))
                }),
            });
            if let Some(sessions) = slot.sessions.clone() {
                // Processes start with their sessions: one trial start proves the command (and
                // vouches for the pool to its health probes) before mcp-edge reports ready.
                let started = Arc::clone(&started);
                tasks.push(handle.spawn(async move {
                    sessions.trial().await;
                    started.send_modify(|n| *n += 1);
                }));
            } else {
                let (s, c, rx) = (Arc::clone(&slot), Arc::clone(&config), stop.subscribe());
                tasks.push(handle.spawn(shared::supervise(s, c, rx)));
            }
            let rx = stop.subscribe();
            tasks.push(handle.spawn(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => bridge::serve(listener, slot, rx).await,
                    Err(e) => tracing::error!(pool = %slot.pool, error = %e, "stdio bridge cannot listen"),
                }
            }));
        }
        let mut value = HeaderValue::from_str(&secret).unwrap_or_else(|_| HeaderValue::from_static("-"));
        value.set_sensitive(true);
        let credential = Credential {
            header: HeaderName::from_static(bridge::HEADER),
            source: CredentialSource::Bridge,
            value: Secret::new(value),
        };
        tracing::info!(pool, processes = config.processes, "stdio pool starting");
        running.push(Running {
            pool: pool.to_owned(),
            config,
            addrs: addrs.clone(),
            credential: credential.clone(),
            stop,
            tasks,
            fresh: true,
            started: started_rx,
        });
        Ok(Bridges { addrs, credential })
    }

    /// Waits until the processes of pools started since the last call answered their first
    /// `initialize` (each pool at most its `start_timeout`), so the first health pass sees them
    /// up. A pool that does not start in time is left to its restarts and health checks.
    pub async fn started(&self) {
        let waits: Vec<_> = {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            running
                .iter_mut()
                .filter_map(|r| {
                    std::mem::take(&mut r.fresh)
                        .then(|| (r.started.clone(), r.config.processes, r.config.start_timeout))
                })
                .collect()
        };
        // One deadline for all: pools start at once, so waiting is not summed over them.
        let start = tokio::time::Instant::now();
        for (mut rx, processes, within) in waits {
            let _ = tokio::time::timeout_at(start + within, rx.wait_for(|n| *n >= processes)).await;
        }
    }

    /// [`Supervisor::started`] from outside any runtime (mcp-edge's start).
    pub fn started_blocking(&self) {
        if let Some(Ok(handle)) = self.runtime.get() {
            handle.block_on(self.started());
        }
    }

    /// Stops, after a drain, the processes of pools `keep` no longer names with the same
    /// `[pool.stdio]` (after a reload swapped, or failed to).
    pub fn retain(&self, keep: &[(&str, &StdioConfig)]) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let (kept, gone): (Vec<_>, Vec<_>) = std::mem::take(&mut *running)
            .into_iter()
            .partition(|r| keep.iter().any(|(pool, config)| r.pool == *pool && *r.config == **config));
        *running = kept;
        let Ok(handle) = self.handle() else { return };
        for r in gone {
            tracing::info!(pool = %r.pool, "stdio pool removed or changed; stopping its processes after a drain");
            handle.spawn(async move {
                tokio::time::sleep(DRAIN).await;
                let _ = r.stop.send(true);
            });
        }
    }

    /// Stops every process and waits (at most `within`) for them to end.
    pub fn shutdown(&self, within: Duration) {
        let running = std::mem::take(&mut *self.running.lock().unwrap_or_else(|e| e.into_inner()));
        let Some(Ok(handle)) = self.runtime.get() else { return };
        let tasks: Vec<_> = running
            .into_iter()
            .flat_map(|r| {
                let _ = r.stop.send(true);
                r.tasks
            })
            .collect();
        handle.block_on(async {
            let _ = tokio::time::timeout(within, async {
                for t in tasks {
                    let _ = t.await;
                }
            })
            .await;
        });
    }
}

/// 32 random bytes, hex: the bridge's secret for one pool's processes.
fn secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    crate::config::hex(&bytes)
}
