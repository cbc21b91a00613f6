//! Session processes: a `per_session` pool starts one process per client session, for servers
//! that keep per-client state. A client's `initialize` (its own, so the server sees the
//! client's version, capabilities and name) starts a process; its answer comes back with a
//! random `Mcp-Session-Id` naming that process, and every later request in the session reaches
//! only it. DELETE, `session_idle` without a request, the process exiting, closing its stdout
//! or leaving a liveness `ping` unanswered, and the pool stopping each end the process and the
//! session (a request naming it then gets 404, so the client starts a new one). Nothing is
//! restarted: a process is its session. At most `max_sessions` run at once.
//! Not owned here: running one process (`stdio::process`), HTTP (`stdio::bridge`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{IntCounter, IntGauge};
use serde_json::Value;
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::link::Link;
use super::process::{self, Exit, Who};
use crate::config::stdio::StdioConfig;

/// How often health probes have a trial process started and ended while starts succeed.
const RETRIAL: Duration = Duration::from_secs(60);

/// Why no session was opened.
#[derive(Debug, thiserror::Error)]
pub enum NotOpened {
    #[error("the stdio pool runs its most sessions at once")]
    Full,
    #[error("the stdio server did not start: {0}")]
    Start(#[from] process::Failed),
    #[error("the stdio pool is trying a start")]
    Trying,
}

/// One session's process as requests find it.
struct Entry {
    link: Arc<Link>,
    /// Milliseconds from [`Sessions::epoch`] at the latest request.
    used: AtomicU64,
    ended: Notify,
}

/// A `per_session` pool's live sessions.
pub struct Sessions {
    pool: String,
    config: Arc<StdioConfig>,
    live: Mutex<HashMap<String, Arc<Entry>>>,
    places: Arc<Semaphore>,
    /// Numbers sessions in the log.
    next: AtomicUsize,
    epoch: Instant,
    /// The latest trial start failed, and no start succeeded since: health probes do not vouch
    /// for the pool. Only mcp-edge's own trials set it: a client whose `initialize` makes the
    /// server fail must not take the pool down for everyone.
    failing: AtomicBool,
    /// A trial start is under way.
    trying: AtomicBool,
    /// When the latest trial ended (probes start one again every [`RETRIAL`]).
    tried: Mutex<Option<std::time::Instant>>,
    /// The latest started process's `initialize` result: a health probe's answer.
    vouched: Mutex<Option<Value>>,
    up: IntGauge,
    /// `stdio_sessions_total` by outcome: opened, full, failed.
    outcomes: [IntCounter; 3],
    stop: watch::Receiver<bool>,
}

impl Sessions {
    /// `outcomes`: `stdio_sessions_total` by pool, for opened, full and failed.
    pub fn new(
        pool: &str,
        config: Arc<StdioConfig>,
        up: IntGauge,
        outcomes: [IntCounter; 3],
        stop: watch::Receiver<bool>,
    ) -> Sessions {
        let max = config.sessions.map_or(1, |s| s.max);
        Sessions {
            pool: pool.to_owned(),
            config,
            live: Mutex::new(HashMap::new()),
            places: Arc::new(Semaphore::new(max)),
            next: AtomicUsize::new(0),
            epoch: Instant::now(),
            failing: AtomicBool::new(false),
            trying: AtomicBool::new(false),
            tried: Mutex::new(None),
            vouched: Mutex::new(None),
            up,
            outcomes,
            stop,
        }
    }

    /// Starts a process for a new session with the client's `initialize` (numbered
    /// `frame::INIT_ID`) and returns the session's id and the process's link.
    pub async fn open(self: &Arc<Self>, init: Vec<u8>) -> Result<(String, Arc<Link>), NotOpened> {
        self.start(init, true).await
    }

    /// [`Sessions::open`]; `client`: counted in `stdio_sessions_total` (mcp-edge's own trials
    /// are not a client's sessions).
    async fn start(self: &Arc<Self>, init: Vec<u8>, client: bool) -> Result<(String, Arc<Link>), NotOpened> {
        let count = |outcome: usize| {
            if client {
                self.outcomes[outcome].inc();
            }
        };
        let Ok(place) = Arc::clone(&self.places).try_acquire_owned() else {
            count(1);
            tracing::debug!(pool = %self.pool, "stdio pool at max_sessions; a session refused");
            return Err(NotOpened::Full);
        };
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        let who = Who { pool: self.pool.clone(), index, changes: None };
        let lines = (init, super::frame::INITIALIZED.to_vec());
        let mut stop = self.stop.clone();
        let started = process::start(&self.config, &who, lines, async move {
            let _ = stop.changed().await;
        })
        .await;
        let process = match started {
            Ok(process) => process,
            Err(failed) => {
                count(2);
                tracing::warn!(pool = %self.pool, session = index, error = %failed, "stdio session process did not start");
                return Err(failed.into());
            }
        };
        count(0);
        self.failing.store(false, Ordering::Relaxed);
        if let Ok(mut tried) = self.tried.lock() {
            // A process that started proves the command as a trial would.
            *tried = Some(std::time::Instant::now());
        }
        if let (Some(init), Ok(mut vouched)) = (process.link.init(), self.vouched.lock()) {
            *vouched = Some(init.clone());
        }
        let id = super::secret();
        let entry = Arc::new(Entry { link: Arc::clone(&process.link), used: AtomicU64::new(0), ended: Notify::new() });
        self.touch(&entry);
        if let Ok(mut live) = self.live.lock() {
            live.insert(id.clone(), Arc::clone(&entry));
        }
        self.up.inc();
        tracing::debug!(pool = %self.pool, session = index, pid = process.pid, "stdio session process ready");
        let link = Arc::clone(&entry.link);
        tokio::spawn(Arc::clone(self).serve(id.clone(), entry, process, place));
        Ok((id, link))
    }

    /// The link of session `id`, marked used now.
    pub fn get(&self, id: &str) -> Option<Arc<Link>> {
        let entry = self.live.lock().ok()?.get(id).cloned()?;
        self.touch(&entry);
        Some(Arc::clone(&entry.link))
    }

    /// Ends session `id` (DELETE); false when there is none.
    pub fn end(&self, id: &str) -> bool {
        let entry = self.live.lock().ok().and_then(|mut live| live.remove(id));
        entry.map(|e| e.ended.notify_one()).is_some()
    }

    /// A health probe's answer: the latest process's `initialize` result unless the latest
    /// trial failed. A trial start runs in the background (one at a time, however slow the
    /// server is to start) after a failed one and every [`RETRIAL`], so a command that broke is
    /// noticed without a client's help.
    pub fn probe(self: &Arc<Self>) -> Result<Value, NotOpened> {
        let failing = self.failing.load(Ordering::Relaxed);
        let stale = self.tried.lock().map_or(true, |t| t.is_none_or(|t| t.elapsed() >= RETRIAL));
        if (failing || stale) && !self.trying.swap(true, Ordering::AcqRel) {
            let sessions = Arc::clone(self);
            tokio::spawn(async move {
                sessions.trial().await;
                sessions.trying.store(false, Ordering::Release);
            });
        }
        let vouched = self.vouched.lock().ok().and_then(|v| v.clone());
        vouched.filter(|_| !failing).ok_or(NotOpened::Trying)
    }

    /// One process started with mcp-edge's own `initialize` and ended at once: whether the
    /// pool's command starts (at the pool's start, and for health probes after a failure).
    pub async fn trial(self: &Arc<Self>) {
        let (init, _) = super::frame::handshake(crate::federation::LEGACY_VERSIONS[0]);
        match self.start(init, false).await {
            Ok((id, _)) => {
                self.end(&id);
            }
            // Sessions run: the command starts; nothing learnt.
            Err(NotOpened::Full | NotOpened::Trying) => {}
            Err(NotOpened::Start(_)) => self.failing.store(true, Ordering::Relaxed),
        }
        if let Ok(mut tried) = self.tried.lock() {
            *tried = Some(std::time::Instant::now());
        }
    }

    fn touch(&self, entry: &Entry) {
        entry.used.store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Serves session `id`'s process until it ends or is ended, then forgets it.
    async fn serve(
        self: Arc<Self>,
        id: String,
        entry: Arc<Entry>,
        mut process: process::Process,
        place: OwnedSemaphorePermit,
    ) {
        let mut stop = self.stop.clone();
        let idle = self.config.sessions.map_or(Duration::MAX, |s| s.idle);
        let ended = async {
            tokio::select! {
                _ = entry.ended.notified() => "ended by its client",
                _ = self.idle(&entry, idle) => "idle",
                _ = stop.changed() => "the pool stopped",
            }
        };
        let why = match process.wait(&self.config, ended).await {
            Exit::Stopped => "ended",
            Exit::Exited(_) => "exited",
            Exit::ClosedStdout => "closed its stdout",
            Exit::Hung(_) => "stopped answering ping",
        };
        if let Ok(mut live) = self.live.lock() {
            live.remove(&id);
        }
        tracing::debug!(pool = %self.pool, pid = process.pid, why, "stdio session process ends");
        process.end().await;
        // Counted up until its group is reaped and its place given back: a client that sees
        // the gauge fall finds the place free.
        drop(place);
        self.up.dec();
    }

    /// Completes once `entry` saw no request for `idle`, and has no stream open (a client
    /// listening is in its session however long it is quiet).
    async fn idle(&self, entry: &Entry, idle: Duration) {
        loop {
            if entry.link.listened() {
                self.touch(entry);
            }
            let used = Duration::from_millis(entry.used.load(Ordering::Relaxed));
            let quiet = self.epoch.elapsed().saturating_sub(used);
            if quiet >= idle {
                return;
            }
            tokio::time::sleep(idle - quiet).await;
        }
    }
}
