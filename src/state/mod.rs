//! Runtime state: the current [`Snapshot`] behind an `ArcSwap`, plus what lives for the whole
//! process (metrics, the session key ring, readiness, reload bookkeeping). A request loads one
//! snapshot in `new_ctx` and keeps it to the end, so it sees the old config or the new one,
//! never a mix; an old snapshot is freed when its last request ends.

pub mod health_loop;
pub mod reload;
pub mod series;
pub mod snapshot;
pub mod watch;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;

use crate::metrics::Metrics;
use crate::session::KeyRing;
pub use snapshot::Snapshot;

/// The outcome of the last reload, for `/status`.
#[derive(Debug, Clone, Default)]
pub struct ReloadStatus {
    pub at: Option<SystemTime>,
    pub ok: bool,
    pub error: Option<String>,
    pub last_success: Option<SystemTime>,
    pub changes: Vec<String>,
}

pub struct State {
    current: ArcSwap<Snapshot>,
    pub metrics: Metrics,
    pub keys: ArcSwap<KeyRing>,
    ready: AtomicBool,
    pub started: SystemTime,
    pub last_reload: Mutex<ReloadStatus>,
    /// Serializes reloads (SIGHUP, admin, file watch) so they never interleave.
    reloading: tokio::sync::Mutex<()>,
    /// Legacy sessions served recently, and the ones an operator ended (`/sessions`).
    pub sessions: crate::session::seen::Seen,
    /// The processes of stdio pools, across reloads.
    pub stdio: crate::stdio::Supervisor,
}

impl State {
    pub fn new(snapshot: Snapshot, metrics: Metrics, keys: KeyRing, stdio: crate::stdio::Supervisor) -> State {
        metrics.config_generation.set(snapshot.generation as i64);
        State {
            current: ArcSwap::from_pointee(snapshot),
            metrics,
            keys: ArcSwap::from_pointee(keys),
            ready: AtomicBool::new(false),
            started: SystemTime::now(),
            last_reload: Mutex::new(ReloadStatus::default()),
            reloading: tokio::sync::Mutex::new(()),
            sessions: crate::session::seen::Seen::default(),
            stdio,
        }
    }

    /// The snapshot a new request will use.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    fn swap(&self, next: Snapshot) {
        self.metrics.config_generation.set(next.generation as i64);
        self.current.store(Arc::new(next));
    }

    /// Ready once listeners are up and every pool had its first health pass.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn set_ready(&self) {
        if !self.ready.swap(true, Ordering::AcqRel) {
            tracing::info!("ready: listeners up and first health pass done");
            crate::systemd::ready("serving");
        }
    }
}
