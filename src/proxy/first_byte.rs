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
//! timeout already is the first-byte timeout), and disarmed when the header arrives or the
//! request ends.
//!
//! Cost: a task and a tokio timer per request cost about 10 % of throughput in the shared
//! benchmark, so watches are plain entries in a few sharded lists instead, swept every
//! [`TICK`] by one thread: per request that is one `dup`, one small allocation and one
//! uncontended lock. The price is resolution (a timeout fires up to one tick late) and
//! descriptors closed up to one tick after the request let go of them.

use std::net::{Shutdown, TcpStream};
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

const WAITING: u8 = 0;
const DONE: u8 = 1;
const EXPIRED: u8 = 2;

/// How often the sweeper looks at the watches.
pub const TICK: Duration = Duration::from_millis(20);

const SHARDS: usize = 8;

struct Watch {
    deadline: Instant,
    state: Arc<AtomicU8>,
    socket: TcpStream,
}

static WATCHES: [Mutex<Vec<Watch>>; SHARDS] = [const { Mutex::new(Vec::new()) }; SHARDS];
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);
static SWEEPER: Once = Once::new();

thread_local! {
    /// Each worker thread registers in its own shard, so registrations do not contend.
    static SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
}

pub struct FirstByteTimer {
    state: Arc<AtomicU8>,
}

impl FirstByteTimer {
    /// Starts the clock on the upstream connection `fd`. None if the descriptor cannot be
    /// duplicated (out of descriptors): the request then runs under the idle timeout alone.
    pub fn arm(fd: RawFd, after: Duration) -> Option<FirstByteTimer> {
        SWEEPER.call_once(start_sweeper);
        // SAFETY: Pingora hands us the descriptor of the live connection it is about to use;
        // it stays open for the duration of this call, and we only duplicate it.
        let owned = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned().ok()?;
        let state = Arc::new(AtomicU8::new(WAITING));
        let watch = Watch { deadline: Instant::now() + after, state: Arc::clone(&state), socket: owned.into() };
        let shard = SHARD.with(|s| *s);
        WATCHES.get(shard)?.lock().ok()?.push(watch);
        Some(FirstByteTimer { state })
    }

    /// The response header arrived: stop the clock. (Should the timer fire in the same
    /// instant, the response is cut: indistinguishable from a header that came just late.)
    pub fn arrived(&self) {
        let _ = self.state.compare_exchange(WAITING, DONE, Ordering::AcqRel, Ordering::Acquire);
    }

    pub fn expired(&self) -> bool {
        self.state.load(Ordering::Acquire) == EXPIRED
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
    if let Err(e) = spawned {
        // Without the sweeper no watch fires: requests fall back to the idle timeout.
        tracing::error!(error = %e, "could not start the first-byte timer thread");
    }
}

/// Fires the watches past their deadline and drops the finished ones (closing their
/// duplicate descriptors). The shard is locked only to take and to give back its list, so
/// the system calls never hold up a request registering a watch.
fn sweep(now: Instant) {
    for shard in &WATCHES {
        let Ok(taken) = shard.lock().map(|mut w| std::mem::take(&mut *w)) else { continue };
        let mut pending: Vec<Watch> = taken
            .into_iter()
            .filter(|w| {
                if w.deadline > now {
                    return w.state.load(Ordering::Acquire) == WAITING;
                }
                if w.state.compare_exchange(WAITING, EXPIRED, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                    // Fails only if the peer already closed it, which ends the read as well.
                    let _ = w.socket.shutdown(Shutdown::Both);
                }
                false
            })
            .collect();
        if let Ok(mut watches) = shard.lock() {
            watches.append(&mut pending);
        }
    }
}
