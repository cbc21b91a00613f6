//! Passive health: a circuit breaker per backend, fed by live traffic. Consecutive failures
//! (refused or timed-out connections, 5xx answers) open the circuit: the backend gets no new
//! requests for a cool-down that doubles with each ejection in a row (up to a cap). After the
//! cool-down one request is let through (half-open); its success closes the circuit, its
//! failure opens it again. Active health checks and the breaker combine: a backend is used
//! only when both allow it.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
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

pub struct Breaker {
    config: BreakerConfig,
    epoch: Instant,
    state: AtomicU8,
    failures: AtomicU32,
    /// Ejections in a row without a success in between (drives the back-off).
    streak: AtomicU32,
    /// When the current ejection ends, in ms since `epoch`.
    open_until_ms: AtomicU64,
    pub ejections: AtomicU64,
}

impl Breaker {
    pub fn new(config: &BreakerConfig) -> Breaker {
        Breaker {
            config: config.clone(),
            epoch: Instant::now(),
            state: AtomicU8::new(Circuit::Closed as u8),
            failures: AtomicU32::new(0),
            streak: AtomicU32::new(0),
            open_until_ms: AtomicU64::new(0),
            ejections: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub fn state(&self) -> Circuit {
        match self.state.load(Ordering::Acquire) {
            1 => Circuit::Open,
            2 => Circuit::HalfOpen,
            _ => Circuit::Closed,
        }
    }

    /// Whether a new request may go to this backend. An open circuit past its cool-down lets
    /// exactly one request through (the caller that flips it to half-open).
    pub fn allows(&self) -> bool {
        match self.state() {
            Circuit::Closed => true,
            Circuit::HalfOpen => false,
            Circuit::Open => {
                self.now_ms() >= self.open_until_ms.load(Ordering::Acquire)
                    && self
                        .state
                        .compare_exchange(
                            Circuit::Open as u8,
                            Circuit::HalfOpen as u8,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        )
                        .is_ok()
            }
        }
    }

    /// Whether the backend may be used, without claiming the half-open probe (for `/status`
    /// and session checks).
    pub fn usable(&self) -> bool {
        match self.state() {
            Circuit::Closed => true,
            Circuit::HalfOpen => false,
            Circuit::Open => self.now_ms() >= self.open_until_ms.load(Ordering::Acquire),
        }
    }

    pub fn success(&self) {
        self.failures.store(0, Ordering::Release);
        if self.state() != Circuit::Closed {
            self.streak.store(0, Ordering::Release);
            self.state.store(Circuit::Closed as u8, Ordering::Release);
        }
    }

    /// Records a failure; true when this failure opened the circuit.
    pub fn failure(&self) -> bool {
        let n = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        let half_open = self.state() == Circuit::HalfOpen;
        if !half_open && (n < self.config.failures || self.state() == Circuit::Open) {
            return false;
        }
        let streak = self.streak.fetch_add(1, Ordering::AcqRel);
        let cooldown = self.config.cooldown.saturating_mul(1u32 << streak.min(16)).min(self.config.max_cooldown);
        self.open_until_ms.store(self.now_ms() + cooldown.as_millis() as u64, Ordering::Release);
        self.failures.store(0, Ordering::Release);
        self.state.store(Circuit::Open as u8, Ordering::Release);
        self.ejections.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Time left in the current ejection (zero when not open).
    pub fn remaining(&self) -> Duration {
        Duration::from_millis(self.open_until_ms.load(Ordering::Acquire).saturating_sub(self.now_ms()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(failures: u32, cooldown_ms: u64) -> Breaker {
        Breaker::new(&BreakerConfig {
            failures,
            cooldown: Duration::from_millis(cooldown_ms),
            max_cooldown: Duration::from_millis(cooldown_ms * 4),
        })
    }

    #[test]
    fn consecutive_failures_open_and_a_success_resets_the_count() {
        let b = breaker(3, 50);
        assert!(!b.failure() && !b.failure());
        b.success();
        assert!(!b.failure() && !b.failure());
        assert!(b.failure(), "the third failure in a row opens");
        assert_eq!(b.state(), Circuit::Open);
        assert!(!b.allows());
    }

    #[test]
    fn after_the_cooldown_one_probe_goes_through_and_decides() {
        let b = breaker(1, 30);
        b.failure();
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allows(), "one probe after the cool-down");
        assert!(!b.allows(), "only one");
        assert!(b.failure(), "a failed probe re-opens");
        assert!(b.remaining() > Duration::from_millis(40), "with a doubled cool-down: {:?}", b.remaining());
        std::thread::sleep(b.remaining() + Duration::from_millis(10));
        assert!(b.allows());
        b.success();
        assert_eq!(b.state(), Circuit::Closed);
        assert!(b.allows());
    }
}
