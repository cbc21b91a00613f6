//! The request clock of one client connection: which part of a request the connection is
//! reading and by when that part must be complete. The proxy phases move it forward through
//! the task-local handle ([`with`]); the connection's stream ([`super::timed`]) moves it when
//! bytes arrive and enforces its deadline on every read that would wait. It does not decide
//! what the client is told when time runs out (the stream and `proxy::failure` do).
//!
//! It also carries one hint the other way, from the proxy to the stream: how many of the
//! response's next flushes may wait for a later one ([`Clock::merge_next_flush`]).
//!
//! One connection is served by one task (Pingora handles HTTP/1 keep-alive requests in a loop
//! inside the connection's task), so the clock is never touched concurrently; atomics with
//! relaxed ordering only make it `Sync` so it can live in a task-local.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

/// What the connection is reading now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Stage {
    /// A new connection before its first byte: the head deadline already runs (a connection
    /// that never sends a request is closed when it expires, without an answer).
    Opened = 0,
    /// Part of a request head has arrived.
    Head = 1,
    /// The head is complete and a body follows.
    Body = 2,
    /// The request is read; the wait for the next one is the keep-alive wait (`super::idle`).
    Done = 3,
}

impl Stage {
    fn from_u8(v: u8) -> Stage {
        match v {
            0 => Stage::Opened,
            1 => Stage::Head,
            2 => Stage::Body,
            _ => Stage::Done,
        }
    }
}

#[derive(Debug)]
pub struct Clock {
    start: Instant,
    header_timeout: Duration,
    body_timeout: Duration,
    stage: AtomicU8,
    /// Milliseconds from `start` to the deadline of the current stage (meaningful while the
    /// stage has one).
    deadline_ms: AtomicU64,
    /// Flushes the stream may skip, leaving the bytes for the next flush (at most
    /// [`MAX_MERGES`]); cleared with every new request head.
    merges: AtomicU8,
    /// The client's socket (its descriptor, -1 for none) and its cookie once read (0: not
    /// yet): watched while a request waits for its backend's header
    /// (`proxy::first_byte::Client`).
    socket: std::os::fd::RawFd,
    cookie: AtomicU64,
}

/// More merges than a response asks for (its head's and its last chunk's).
const MAX_MERGES: u8 = 2;

impl Clock {
    /// A clock for a connection accepted now: its first head is due within `header_timeout`.
    pub fn new(header_timeout: Duration, body_timeout: Duration) -> Clock {
        Clock {
            start: Instant::now(),
            header_timeout,
            body_timeout,
            stage: AtomicU8::new(Stage::Opened as u8),
            deadline_ms: AtomicU64::new(millis(header_timeout)),
            merges: AtomicU8::new(0),
            socket: -1,
            cookie: AtomicU64::new(0),
        }
    }

    /// The clock of the connection on socket `fd`.
    pub fn on_socket(mut self, fd: std::os::fd::RawFd) -> Clock {
        self.socket = fd;
        self
    }

    /// The client's socket, to watch for its leaving (its cookie read once per connection).
    pub fn client(&self) -> Option<crate::proxy::first_byte::Client> {
        if self.socket < 0 {
            return None;
        }
        let cookie = match self.cookie.load(Relaxed) {
            0 => {
                let cookie = crate::proxy::first_byte::cookie_of(self.socket)?;
                self.cookie.store(cookie, Relaxed);
                cookie
            }
            cookie => cookie,
        };
        Some(crate::proxy::first_byte::Client { fd: self.socket, cookie })
    }

    pub fn stage(&self) -> Stage {
        Stage::from_u8(self.stage.load(Relaxed))
    }

    /// When the current stage must be over; None when nothing is being read against time.
    pub fn deadline(&self) -> Option<Instant> {
        match self.stage() {
            Stage::Opened | Stage::Head | Stage::Body => {
                Some(self.start + Duration::from_millis(self.deadline_ms.load(Relaxed)))
            }
            Stage::Done => None,
        }
    }

    /// Bytes arrived: a new request starts when none was being read.
    pub(super) fn bytes_arrived(&self) {
        match self.stage() {
            Stage::Opened => self.enter(Stage::Head, None),
            Stage::Done => self.enter(Stage::Head, Some(self.header_timeout)),
            Stage::Head | Stage::Body => {}
        }
    }

    /// The proxy is still answering the previous request: a pipelined head that arrived in
    /// the meantime cannot be read yet, so its time starts when the proxy stops writing.
    pub(super) fn proxy_wrote(&self) {
        if self.stage() == Stage::Head {
            self.enter(Stage::Head, Some(self.header_timeout));
        }
    }

    /// Pingora has parsed the head. `has_body`: a body follows (its own deadline starts now).
    /// Upgrades (101) get no exemption: MCP has none, and a request header that switched
    /// deadlines off would let any client turn them off.
    pub fn head_done(&self, has_body: bool) {
        self.forget_merges();
        if has_body {
            self.enter(Stage::Body, Some(self.body_timeout));
        } else {
            self.enter(Stage::Done, None);
        }
    }

    /// The whole body has been read.
    pub fn body_done(&self) {
        if self.stage() == Stage::Body {
            self.enter(Stage::Done, None);
        }
    }

    /// The proxy knows Pingora's next flush of the response is not its last: the stream may
    /// leave what it holds for the later one. Pingora flushes a chunked response's head, each
    /// chunk and its last chunk apart; a held answer (`proxy::contents`) goes out whole, so
    /// its three flushes can be one write (measured: five system calls per federated call
    /// against three for the same call passed with its length). Only ever asked for a flush
    /// that is sure to be followed by another within the same response: a merged flush with
    /// nothing after it would leave the answer in the proxy (the connection also flushes
    /// between requests, `downstream::Listener`).
    pub fn merge_next_flush(&self) {
        let _ = self.merges.fetch_update(Relaxed, Relaxed, |n| (n < MAX_MERGES).then_some(n + 1));
    }

    /// Forgets merges no flush took up.
    pub(super) fn forget_merges(&self) {
        self.merges.store(0, Relaxed);
    }

    /// Takes one merge, if the proxy asked for any.
    pub(super) fn take_merge(&self) -> bool {
        self.merges.fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1)).is_ok()
    }

    /// `within`: the new stage's deadline from now; None keeps the current deadline.
    fn enter(&self, stage: Stage, within: Option<Duration>) {
        if let Some(within) = within {
            self.deadline_ms.store(millis(self.start.elapsed().saturating_add(within)), Relaxed);
        }
        self.stage.store(stage as u8, Relaxed);
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

tokio::task_local! {
    static CLOCK: Arc<Clock>;
}

/// Runs `f` (one connection's whole life) with `clock` as its task's clock.
pub async fn scope<F: std::future::Future>(clock: Arc<Clock>, f: F) -> F::Output {
    CLOCK.scope(clock, f).await
}

/// Calls `f` with the current connection's clock; does nothing outside a connection task
/// (unit tests, HTTP/2 streams, which Pingora serves on tasks of their own).
pub fn with(f: impl FnOnce(&Clock)) {
    let _ = CLOCK.try_with(|c| f(c));
}

/// The current connection's client socket; None outside a connection task (HTTP/2 streams).
pub fn client() -> Option<crate::proxy::first_byte::Client> {
    CLOCK.try_with(|c| c.client()).ok().flatten()
}

/// The current connection's stage; None outside a connection task.
pub fn stage() -> Option<Stage> {
    CLOCK.try_with(|c| c.stage()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> Clock {
        Clock::new(Duration::from_secs(10), Duration::from_secs(60))
    }

    #[tokio::test]
    async fn a_new_connection_owes_its_head_from_accept() {
        let c = clock();
        assert_eq!(c.stage(), Stage::Opened);
        let due = c.deadline().expect("head deadline");
        assert!(due <= Instant::now() + Duration::from_secs(10));
        c.bytes_arrived();
        assert_eq!(c.stage(), Stage::Head);
        assert_eq!(c.deadline(), Some(due), "the first bytes do not restart the head clock");
    }

    #[tokio::test]
    async fn a_body_gets_its_own_deadline_and_a_finished_request_none() {
        let c = clock();
        c.bytes_arrived();
        c.head_done(true);
        assert_eq!(c.stage(), Stage::Body);
        assert!(c.deadline().expect("body deadline") > Instant::now() + Duration::from_secs(50));
        c.body_done();
        assert_eq!(c.deadline(), None);
        c.bytes_arrived();
        assert_eq!(c.stage(), Stage::Head, "the next request's first bytes start its head clock");
    }

    #[tokio::test]
    async fn a_pipelined_head_waits_while_the_proxy_still_answers() {
        let c = clock();
        c.head_done(false);
        c.bytes_arrived();
        let first = c.deadline().expect("head deadline");
        tokio::time::sleep(Duration::from_millis(5)).await;
        c.proxy_wrote();
        assert!(c.deadline().expect("head deadline") > first, "writing the previous answer pushes it back");
    }

    #[tokio::test]
    async fn merged_flushes_are_few_and_end_with_their_request() {
        let c = clock();
        for _ in 0..5 {
            c.merge_next_flush();
        }
        assert!(c.take_merge() && c.take_merge(), "a head's and a last chunk's");
        assert!(!c.take_merge(), "no more than a response asks for");
        c.merge_next_flush();
        c.head_done(false);
        assert!(!c.take_merge(), "a merge no flush took up does not reach the next request");
    }
}
