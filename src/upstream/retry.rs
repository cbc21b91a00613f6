//! Connect retries without retry storms: a per-pool retry budget (retries may be at most a
//! ratio of recent requests, plus a small floor so a quiet pool can still retry) and a jittered
//! exponential back-off before each retry. Counts come from pingora-limits rate estimators over
//! a 10 s window, so the budget follows traffic without per-request bookkeeping.

use std::time::Duration;

use pingora_limits::rate::Rate;
use rand::Rng;

use crate::config::model::RetryConfig;

const WINDOW: Duration = Duration::from_secs(10);

pub struct RetryBudget {
    config: RetryConfig,
    requests: Rate,
    retries: Rate,
}

impl RetryBudget {
    pub fn new(config: &RetryConfig) -> RetryBudget {
        RetryBudget { config: config.clone(), requests: Rate::new(WINDOW), retries: Rate::new(WINDOW) }
    }

    pub fn record_request(&self) {
        self.requests.observe(&(), 1);
    }

    /// Takes one retry from the budget, or says there is none left.
    pub fn try_retry(&self) -> bool {
        let recent = |r: &Rate| {
            r.rate_with(&(), |c| c.prev_samples as f64 * (1.0 - c.current_interval_fraction) + c.curr_samples as f64)
        };
        let allowed = self.config.budget * recent(&self.requests) + self.config.min_per_window as f64;
        if recent(&self.retries) >= allowed {
            return false;
        }
        self.retries.observe(&(), 1);
        true
    }

    /// The pause before retry number `attempt` (1-based): doubling from `backoff`, capped at
    /// `max_backoff`, with ±50 % jitter so retries of many requests do not move in lockstep.
    pub fn backoff(&self, attempt: usize) -> Duration {
        let base =
            self.config.backoff.saturating_mul(1u32 << attempt.saturating_sub(1).min(16)).min(self.config.max_backoff);
        base.mul_f64(rand::thread_rng().gen_range(0.5..1.5))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(ratio: f64, floor: u64) -> RetryBudget {
        RetryBudget::new(&RetryConfig {
            budget: ratio,
            min_per_window: floor,
            backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(40),
        })
    }

    #[test]
    fn retries_are_capped_at_a_ratio_of_requests_plus_a_floor() {
        let b = budget(0.2, 3);
        for _ in 0..100 {
            b.record_request();
        }
        let granted = (0..100).filter(|_| b.try_retry()).count();
        assert_eq!(granted, 23, "20 % of 100 requests plus a floor of 3");
    }

    #[test]
    fn backoff_doubles_with_jitter_and_stays_capped() {
        let b = budget(0.2, 3);
        for _ in 0..50 {
            let first = b.backoff(1);
            assert!(first >= Duration::from_millis(5) && first <= Duration::from_millis(15), "{first:?}");
            assert!(b.backoff(10) <= Duration::from_millis(60), "capped at max_backoff +50 %");
        }
    }
}
