//! The time-to-first-byte timeout: how long a backend may take to start its response (the
//! header), separately from how long a started response (an SSE stream) may stay silent.
//!
//! Pingora 0.9 applies one `read_timeout` to every upstream read and offers no hook to change
//! it once the header is in, so the peer carries the long idle timeout and this timer cuts
//! the wait for the header short: when it fires first, it shuts the upstream socket down, the
//! pending read fails, and the proxy answers 504 (or retries a safe request elsewhere).
//!
//! The watch holds its own duplicate of the socket's descriptor, so the descriptor number it
//! acts on can never belong to another connection: the socket lives at least as long as the
//! watch. It is armed only when `first_byte` is shorter than `idle` (else Pingora's own read
//! timeout already is the first-byte timeout). The clock starts once the request is fully
//! sent (a slow upload is the client's time) and stops when the header arrives or the
//! request ends. Upstream connections are HTTP/1.1 (Pingora's default ALPN), so shutting one
//! down never touches another request's stream.

//!
//! Cost: a task and a tokio timer per request cost about 10 % of throughput in the shared
//! benchmark, so watches are plain entries in a few sharded lists instead, swept every
//! [`TICK`] by one thread: per request that is one `dup`, one small allocation and one
//! uncontended lock. The price is resolution (a timeout fires up to one tick late) and
//! descriptors closed up to one tick after the request let go of them.

use std::net::{Shutdown, TcpStream};
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

/// How often the sweeper looks at the watches.
pub const TICK: Duration = Duration::from_millis(20);

const SHARDS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Connected, the request still going up: the clock has not started.
    Armed,
    /// The request is sent; the header is due by this instant.
    Running(Instant),
    /// The header arrived, or the request ended.
    Done,
    /// Fired: the socket was shut down.
    Expired,
}

struct Watch {
    phase: Arc<Mutex<Phase>>,
    socket: TcpStream,
}

static WATCHES: [Mutex<Vec<Watch>>; SHARDS] = [const { Mutex::new(Vec::new()) }; SHARDS];
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);
static SWEEPER: Once = Once::new();
static SWEEPING: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Each worker thread registers in its own shard, so registrations do not contend.
    static SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
}

pub struct FirstByteTimer {
    phase: Arc<Mutex<Phase>>,
    after: Duration,
}

impl FirstByteTimer {
    /// Watches the upstream connection `fd`; the clock starts with [`FirstByteTimer::start`].
    /// None if the descriptor cannot be duplicated (out of descriptors) or the sweeper thread
    /// could not start: the request then runs under the idle timeout alone.
    pub fn arm(fd: RawFd, after: Duration) -> Option<FirstByteTimer> {
        SWEEPER.call_once(start_sweeper);
        if !SWEEPING.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: Pingora hands us the descriptor of the live connection it is about to use;
        // it stays open for the duration of this call, and we only duplicate it.
        let owned = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned().ok()?;
        let phase = Arc::new(Mutex::new(Phase::Armed));
        let watch = Watch { phase: Arc::clone(&phase), socket: owned.into() };
        let shard = SHARD.with(|s| *s);
        WATCHES.get(shard)?.lock().ok()?.push(watch);
        Some(FirstByteTimer { phase, after })
    }

    /// The request is fully sent: the backend's time starts now (a slow upload is the
    /// client's time, never counted against the backend).
    pub fn start(&self) {
        if let Ok(mut p) = self.phase.lock() {
            if *p == Phase::Armed {
                *p = Phase::Running(Instant::now() + self.after);
            }
        }
    }

    /// The response header arrived: stop the clock. False if the timer fired first; the
    /// connection is then shut down and must not be used for this response or reused.
    pub fn arrived(&self) -> bool {
        self.phase.lock().map_or(true, |mut p| match *p {
            Phase::Expired => false,
            _ => {
                *p = Phase::Done;
                true
            }
        })
    }

    pub fn expired(&self) -> bool {
        self.phase.lock().is_ok_and(|p| *p == Phase::Expired)
    }
}

impl Drop for FirstByteTimer {
    fn drop(&mut self) {
        self.arrived();
    }
}

fn start_sweeper() {
    let spawned = std::thread::Builder::new().name("first-byte".into()).spawn(|| loop {
        std::thread::sleep(TICK);
        sweep(Instant::now());
    });
    match spawned {
        Ok(_) => SWEEPING.store(true, Ordering::Release),
        // Without the sweeper no watch could fire or be released: none are armed.
        Err(e) => tracing::error!(error = %e, "could not start the first-byte timer thread; first_byte_timeout is off"),
    }
}

/// Fires the watches past their deadline and drops the finished ones (closing their
/// duplicate descriptors). The shard is locked only to take and to give back its list, so
/// the system calls never hold up a request registering a watch.
fn sweep(now: Instant) {
    for shard in &WATCHES {
        let Ok(taken) = shard.lock().map(|mut w| std::mem::take(&mut *w)) else { continue };
        let mut pending: Vec<Watch> = taken.into_iter().filter(|w| keep(w, now)).collect();
        if let Ok(mut watches) = shard.lock() {
            watches.append(&mut pending);
        }
    }
}

/// Whether a watch is still waiting; fires it when due. The phase lock is held across the
/// shutdown, so a header that `arrived` first can never have its connection cut afterwards.
fn keep(w: &Watch, now: Instant) -> bool {
    let Ok(mut phase) = w.phase.lock() else { return false };
    match *phase {
        Phase::Armed => true,
        Phase::Running(deadline) if deadline > now => true,
        Phase::Running(_) => {
            *phase = Phase::Expired;
            // Fails only if the peer already closed it, which ends the read as well.
            let _ = w.socket.shutdown(Shutdown::Both);
            false
        }
        Phase::Done | Phase::Expired => false,
    }
}
