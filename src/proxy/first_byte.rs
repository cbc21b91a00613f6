//! The time-to-first-byte timeout: how long a backend may take to start its response (the
//! header), separately from how long a started response (an SSE stream) may stay silent.
//!
//! Pingora 0.9 applies one `read_timeout` to every upstream read and offers no hook to change
//! it once the header is in, so the peer carries the long idle timeout and this timer cuts
//! the wait for the header short: when it fires first, it shuts the upstream socket down, the
//! pending read fails, and the proxy answers 504 (or retries a safe request elsewhere).
//!
//! The timer holds its own duplicate of the socket's descriptor, so the descriptor number it
//! acts on can never belong to another connection: the socket lives at least as long as the
//! timer. It is armed only when `first_byte` is shorter than `idle` (else Pingora's own read
//! timeout already is the first-byte timeout), and disarmed when the header arrives or the
//! request ends.

use std::net::{Shutdown, TcpStream};
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

const WAITING: u8 = 0;
const ARRIVED: u8 = 1;
const EXPIRED: u8 = 2;

pub struct FirstByteTimer {
    state: Arc<AtomicU8>,
    task: JoinHandle<()>,
}

impl FirstByteTimer {
    /// Starts the clock on the upstream connection `fd`. None if the descriptor cannot be
    /// duplicated (out of descriptors): the request then runs under the idle timeout alone.
    pub fn arm(fd: RawFd, after: Duration) -> Option<FirstByteTimer> {
        // SAFETY: Pingora hands us the descriptor of the live connection it is about to use;
        // it stays open for the duration of this call, and we only duplicate it.
        let owned = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned().ok()?;
        let socket = TcpStream::from(owned);
        let state = Arc::new(AtomicU8::new(WAITING));
        let watch = Arc::clone(&state);
        let task = tokio::spawn(async move {
            tokio::time::sleep(after).await;
            if watch.compare_exchange(WAITING, EXPIRED, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                // Fails only if the peer already closed it, which ends the read as well.
                let _ = socket.shutdown(Shutdown::Both);
            }
        });
        Some(FirstByteTimer { state, task })
    }

    /// The response header arrived: stop the clock. False if the timer had already fired.
    pub fn arrived(&self) -> bool {
        let ok = self.state.compare_exchange(WAITING, ARRIVED, Ordering::AcqRel, Ordering::Acquire).is_ok();
        self.task.abort();
        ok
    }

    pub fn expired(&self) -> bool {
        self.state.load(Ordering::Acquire) == EXPIRED
    }
}

impl Drop for FirstByteTimer {
    fn drop(&mut self) {
        // Dropping the task drops its duplicate descriptor.
        self.task.abort();
    }
}
