//! Passive health: a circuit breaker per backend, fed by live traffic. Consecutive failures
//! (refused or timed-out connections, 5xx answers) open the circuit: the backend gets no new
//! requests for a cool-down that doubles with each ejection in a row (up to a cap). After the
//! cool-down one request is let through (half-open); its success closes the circuit, its
//! failure opens it again. Active health checks and the breaker combine: a backend is used
//! only when both allow it.
//!
//! The half-open probe cannot wedge the circuit: an attempt that ends without an outcome (its
//! client went away) hands the probe back with [`Breaker::release`], and a probe that gives no
//! word within the cool-down in force is presumed lost, so another is let through. Only the
//! probe's success closes the circuit: answers from requests already in flight when it opened
//! say nothing about whether the cool-down did its work.
//!
//! Not here: which failures count (`proxy::failure`), active health checks (`upstream::health`).

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::config::model::BreakerConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Circuit {
    Closed = 0,
    Open = 1,
    HalfOpen = 2,
}

impl Circuit {
    pub fn as_str(self) -> &'static str {
        match self {
            Circuit::Closed => "closed",
            Circuit::Open => "open",
            Circuit::HalfOpen => "half_open",
        }
    }
}

/// The claim on a half-open probe, handed back with [`Breaker::release`] when the attempt that
/// held it ends without an outcome. A claim that has since been superseded releases nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe(u64);

/// What only changes when the circuit does (ms since `epoch`).
#[derive(Debug, Default)]
struct Ejection {
    /// Ejections in a row without a probe succeeding in between (drives the back-off).
    streak: u32,
    /// When the current ejection ends.
    open_until: u64,
    /// The cool-down in force, which also bounds how long a probe may stay silent.
    backoff: u64,
    /// While half-open: when the probe in flight is presumed lost. Zero: none in flight.
    probe_until: u64,
}

pub struct Breaker {
    config: BreakerConfig,
    epoch: Instant,
    /// Mirrors the state for lock-free reads: a closed circuit (the common case) never locks.
    state: AtomicU8,
    failures: AtomicU32,
    /// Transitions are decided under this lock, so two failures cannot both open the circuit
    /// and two callers cannot both claim the probe.
    ejection: Mutex<Ejection>,
    pub ejections: AtomicU64,
    /// Open to half-open (a probe let through), and half-open to closed (the probe
    /// succeeded): counted here, exported by the health loop.
    pub half_opened: AtomicU64,
    pub closed: AtomicU64,
}

impl Breaker {
    pub fn new(config: &BreakerConfig) -> Breaker {
        Breaker {
            config: config.clone(),
            epoch: Instant::now(),
            state: AtomicU8::new(Circuit::Closed as u8),
            failures: AtomicU32::new(0),
            ejection: Mutex::new(Ejection::default()),
            ejections: AtomicU64::new(0),
            half_opened: AtomicU64::new(0),
            closed: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        millis(self.epoch.elapsed())
    }

    fn lock(&self) -> MutexGuard<'_, Ejection> {
        // The guarded data is plain numbers, consistent after any panic.
        self.ejection.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, to: Circuit) {
        self.state.store(to as u8, Ordering::Release);
    }

    pub fn state(&self) -> Circuit {
        match self.state.load(Ordering::Acquire) {
            1 => Circuit::Open,
            2 => Circuit::HalfOpen,
            _ => Circuit::Closed,
        }
    }

    /// Whether a new request may go to this backend. An open circuit past its cool-down lets
    /// exactly one request through (the probe); a half-open one lets another through once
    /// the probe in flight is presumed lost.
    pub fn allows(&self) -> bool {
        self.allows_at(self.now_ms())
    }

    fn allows_at(&self, now: u64) -> bool {
        if self.state() == Circuit::Closed {
            return true;
        }
        let mut e = self.lock();
        let was = self.state();
        let due = match was {
            Circuit::Closed => return true,
            Circuit::Open => e.open_until,
            Circuit::HalfOpen => e.probe_until,
        };
        if now < due {
            return false;
        }
        e.probe_until = now.saturating_add(e.backoff.max(1));
        self.set(Circuit::HalfOpen);
        if was == Circuit::Open {
            self.half_opened.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// The probe this breaker has out, if half-open: asked right after `allows` let a request
    /// through, so that request can hand it back should it end without an outcome.
    pub fn probe(&self) -> Option<Probe> {
        if self.state() != Circuit::HalfOpen {
            return None;
        }
        let e = self.lock();
        (self.state() == Circuit::HalfOpen && e.probe_until != 0).then_some(Probe(e.probe_until))
    }

    /// The attempt holding `probe` ended without a success or failure to report: the next
    /// request may probe at once.
    pub fn release(&self, probe: Probe) {
        let mut e = self.lock();
        if self.state() == Circuit::HalfOpen && e.probe_until == probe.0 {
            e.probe_until = 0;
        }
    }

    /// Whether the backend may be used, without claiming the half-open probe (for `/status`
    /// and session checks).
    pub fn usable(&self) -> bool {
        self.usable_at(self.now_ms())
    }

    fn usable_at(&self, now: u64) -> bool {
        if self.state() == Circuit::Closed {
            return true;
        }
        let e = self.lock();
        match self.state() {
            Circuit::Closed => true,
            Circuit::Open => now >= e.open_until,
            Circuit::HalfOpen => now >= e.probe_until,
        }
    }

    /// Records a success: resets the failure count when closed, closes the circuit when
    /// half-open, and is ignored while open (a late answer from before the ejection).
    pub fn success(&self) {
        match self.state() {
            Circuit::Closed => {
                // Read first: most successes find it zero, and skip a write to a shared line.
                if self.failures.load(Ordering::Relaxed) != 0 {
                    self.failures.store(0, Ordering::Release);
                }
            }
            Circuit::Open => {}
            Circuit::HalfOpen => {
                let mut e = self.lock();
                if self.state() == Circuit::HalfOpen {
                    *e = Ejection::default();
                    self.failures.store(0, Ordering::Release);
                    self.set(Circuit::Closed);
                    self.closed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Records a failure; true when this failure opened the circuit.
    pub fn failure(&self) -> bool {
        self.failure_at(self.now_ms())
    }

    fn failure_at(&self, now: u64) -> bool {
        match self.state() {
            // Already out: a failure of a request from before the ejection adds nothing.
            Circuit::Open => return false,
            Circuit::Closed => {
                let n = self.failures.fetch_add(1, Ordering::AcqRel).saturating_add(1);
                if n < self.config.failures {
                    return false;
                }
            }
            Circuit::HalfOpen => {}
        }
        let mut e = self.lock();
        if self.state() == Circuit::Open {
            return false;
        }
        let cooldown = self.config.cooldown.saturating_mul(1u32 << e.streak.min(16)).min(self.config.max_cooldown);
        e.streak = e.streak.saturating_add(1);
        e.backoff = millis(cooldown);
        e.open_until = now.saturating_add(e.backoff);
        e.probe_until = 0;
        self.failures.store(0, Ordering::Release);
        self.set(Circuit::Open);
        self.ejections.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Time left in the current ejection (zero when not open).
    pub fn remaining(&self) -> Duration {
        self.remaining_at(self.now_ms())
    }

    fn remaining_at(&self, now: u64) -> Duration {
        if self.state() != Circuit::Open {
            return Duration::ZERO;
        }
        Duration::from_millis(self.lock().open_until.saturating_sub(now))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A breaker whose clock the test drives: times are ms passed to the `_at` methods.
    fn breaker(failures: u32, cooldown_ms: u64) -> Breaker {
        Breaker::new(&BreakerConfig {
            failures,
            cooldown: Duration::from_millis(cooldown_ms),
            max_cooldown: Duration::from_millis(cooldown_ms * 4),
        })
    }

    /// Opened by one failure at t=0 with a 100 ms cool-down, then probed at t=100.
    fn half_open() -> Breaker {
        let b = breaker(1, 100);
        assert!(b.failure_at(0));
        assert!(b.allows_at(100), "one probe after the cool-down");
        assert_eq!(b.state(), Circuit::HalfOpen);
        b
    }

    #[test]
    fn consecutive_failures_open_and_a_success_resets_the_count() {
        let b = breaker(3, 50);
        assert!(!b.failure_at(0) && !b.failure_at(0));
        b.success();
        assert!(!b.failure_at(0) && !b.failure_at(0));
        assert!(b.failure_at(0), "the third failure in a row opens");
        assert_eq!(b.state(), Circuit::Open);
        assert!(!b.allows_at(49));
        assert_eq!(b.remaining_at(20), Duration::from_millis(30));
    }

    #[test]
    fn after_the_cooldown_one_probe_goes_through_and_decides() {
        let b = breaker(1, 30);
        assert!(b.failure_at(0));
        assert!(!b.allows_at(29), "still cooling down");
        assert!(b.allows_at(30), "one probe after the cool-down");
        assert!(!b.allows_at(31), "only one");
        assert!(!b.usable_at(31), "not for pinned sessions either while the probe is out");
        assert!(b.failure_at(31), "a failed probe re-opens");
        assert_eq!(b.remaining_at(31), Duration::from_millis(60), "with a doubled cool-down");
        assert!(b.allows_at(91));
        b.success();
        assert_eq!(b.state(), Circuit::Closed);
        assert!(b.allows_at(91));
        assert!(b.failure_at(100));
        assert_eq!(b.remaining_at(100), Duration::from_millis(30), "a closed circuit starts the back-off over");
    }

    #[test]
    fn a_probe_that_gives_no_word_within_the_cooldown_is_replaced() {
        let b = half_open();
        assert!(!b.allows_at(199), "the probe has the cool-down in force to answer");
        assert!(b.usable_at(200) && b.allows_at(200), "then another request may probe");
        assert!(!b.allows_at(201), "one at a time still");
        b.success();
        assert_eq!(b.state(), Circuit::Closed);
    }

    #[test]
    fn a_released_probe_lets_the_next_request_probe_at_once() {
        let b = half_open();
        let probe = b.probe().expect("half-open with a probe out");
        b.release(probe);
        assert!(b.allows_at(101), "handed back, not waited out");
        assert!(!b.allows_at(102));
    }

    #[test]
    fn a_superseded_probe_releases_nothing() {
        let b = half_open();
        let stale = b.probe().expect("probe");
        assert!(b.allows_at(200), "presumed lost, replaced");
        b.release(stale);
        assert!(!b.allows_at(201), "the stale claim did not free the new probe");
        assert_eq!(b.probe(), Some(Probe(300)));
    }

    #[test]
    fn a_closed_or_open_circuit_has_no_probe_to_release() {
        let b = breaker(1, 100);
        assert_eq!(b.probe(), None);
        assert!(b.failure_at(0));
        assert_eq!(b.probe(), None, "open: nothing out yet");
    }

    #[test]
    fn a_late_success_while_open_does_not_close_the_circuit() {
        let b = breaker(1, 100);
        assert!(b.failure_at(0));
        b.success();
        assert_eq!(b.state(), Circuit::Open, "a request from before the ejection answered late");
        assert!(!b.allows_at(50), "the cool-down still holds");
        assert!(b.allows_at(100));
        assert!(b.failure_at(100), "the probe fails");
        assert_eq!(
            b.remaining_at(100),
            Duration::from_millis(200),
            "the back-off kept growing: the late success did not reset the streak"
        );
    }

    #[test]
    fn late_failures_while_open_do_not_extend_the_ejection() {
        let b = breaker(1, 100);
        assert!(b.failure_at(0));
        assert!(!b.failure_at(50) && !b.failure_at(60));
        assert_eq!(b.remaining_at(50), Duration::from_millis(50));
        assert_eq!(b.ejections.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn transitions_are_counted_once_each() {
        let b = half_open();
        assert!(b.allows_at(10_000), "a lost probe is replaced: still half-open");
        assert_eq!(b.half_opened.load(Ordering::Relaxed), 1, "half-open again is no transition");
        b.success();
        b.success();
        assert_eq!((b.state(), b.closed.load(Ordering::Relaxed)), (Circuit::Closed, 1));
    }
}
