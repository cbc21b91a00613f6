//! Limiter behaviour: rate accuracy against a flood, burst, tiers, costs, concurrency caps,
//! and memory that stays flat across 100k distinct keys.

use std::time::{Duration, Instant};

use super::*;
use crate::config::model::{KeyPart, LimitBackend, Quota};

fn limit(rate: Option<(u64, u64)>, burst: u64, concurrency: Option<u64>) -> LimitConfig {
    LimitConfig {
        name: "t".into(),
        key: vec![KeyPart::ClientIp],
        quota: Quota { rate: rate.map(|(n, s)| (n, Duration::from_secs(s))), burst, concurrency },
        tiers: vec![],
        assign: vec![],
        costs: vec![],
        backend: LimitBackend::Local,
    }
}

/// Offers `per_sec` requests a second for `secs` seconds, paced by the clock; counts admissions.
fn flood(l: &Limiter, key: u64, per_sec: u64, secs: u64) -> u64 {
    let start = Instant::now();
    let gap = Duration::from_secs(1) / per_sec as u32;
    let mut passed = 0;
    for i in 0..per_sec * secs {
        if let Some(wait) = (start + gap * i as u32).checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        passed += l.admit(key, None, 1, &String::new).is_ok() as u64;
    }
    passed
}

#[test]
fn a_two_second_flood_at_5x_passes_the_rate_plus_burst() {
    let l = Limiter::new(&limit(Some((100, 1)), 20, None));
    let passed = flood(&l, 7, 500, 2);
    assert!((180..=220).contains(&passed), "100/s burst 20 over 2 s at 500/s passed {passed}");
}

#[test]
fn burst_is_available_after_idle_and_refusals_say_when_to_retry() {
    let l = Limiter::new(&limit(Some((10, 60)), 5, None));
    let passed = (0..100).filter(|_| l.admit(1, None, 1, &String::new).is_ok()).count();
    assert_eq!(passed, 15, "10/min plus a burst of 5, all at once");
    match l.admit(1, None, 1, &String::new) {
        Err(Refusal::Rate { retry_after }) => assert!((1..=60).contains(&retry_after), "{retry_after}"),
        other => panic!("expected a rate refusal, got {other:?}"),
    }
    assert!(l.admit(2, None, 1, &String::new).is_ok(), "other keys are unaffected");
}

#[test]
fn tool_costs_spend_the_budget_faster() {
    let mut cfg = limit(Some((10, 60)), 0, None);
    cfg.costs = vec![("deploy".into(), 5)];
    let l = Limiter::new(&cfg);
    assert_eq!(l.cost(Some("deploy")), 5);
    assert_eq!(l.cost(Some("echo")), 1);
    assert!(l.admit(1, None, 5, &String::new).is_ok() && l.admit(1, None, 5, &String::new).is_ok());
    assert!(l.admit(1, None, 5, &String::new).is_err());
}

#[test]
fn tiers_are_picked_by_key_value_with_a_default() {
    let mut cfg = limit(Some((2, 60)), 0, None);
    cfg.tiers = vec![("gold".into(), Quota { rate: Some((50, Duration::from_secs(60))), burst: 0, concurrency: None })];
    cfg.assign = vec![("key-gold".into(), 0)];
    let l = Limiter::new(&cfg);
    assert_eq!((0..10).filter(|_| l.admit(1, Some("key-free"), 1, &String::new).is_ok()).count(), 2);
    assert_eq!((0..10).filter(|_| l.admit(2, Some("key-gold"), 1, &String::new).is_ok()).count(), 10);
}

#[test]
fn concurrency_caps_hold_until_guards_drop() {
    let l = Limiter::new(&limit(None, 0, Some(2)));
    let a = l.admit(1, None, 1, &String::new).expect("first");
    let _b = l.admit(1, None, 1, &String::new).expect("second");
    assert_eq!(l.admit(1, None, 1, &String::new).err(), Some(Refusal::Concurrency));
    drop(a);
    assert!(l.admit(1, None, 1, &String::new).is_ok(), "a finished request frees its slot");
}

#[test]
fn memory_stays_flat_across_100k_distinct_keys() {
    let rss_kib = || -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
        statm.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0) * 4
    };
    let l = Limiter::new(&limit(Some((1000, 1)), 0, Some(10)));
    for k in 0..1_000u64 {
        let _ = l.admit(k, None, 1, &String::new);
    }
    let before = rss_kib();
    let mut guards = Vec::new();
    for k in 0..100_000u64 {
        let mut h = KeyHasher::new();
        h.part(&k.to_le_bytes());
        if let Ok(g) = l.admit(h.finish(), None, 1, &String::new) {
            guards.push(g);
        }
        guards.clear();
    }
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 2048, "100k keys grew RSS by {grown} KiB; the sketches are fixed-size");
}
