use std::time::Duration;

use super::*;
use crate::metrics::ErrorType;

const BOUNDS: [f64; 4] = [0.01, 0.1, 1.0, 10.0];

#[test]
fn quantiles_interpolate_inside_the_bucket_that_holds_them() {
    // 100 observations: 50 up to 10 ms, 40 more up to 100 ms, 10 more up to 1 s.
    let cumulative = [50, 90, 100, 100, 100];
    assert_eq!(quantile(0.5, &BOUNDS, &cumulative), Some(0.01));
    let p99 = quantile(0.99, &BOUNDS, &cumulative).expect("p99");
    assert!((p99 - 0.91).abs() < 1e-9, "p99 {p99}: 0.1 + 0.9 × 9/10");
    let p25 = quantile(0.25, &BOUNDS, &cumulative).expect("p25");
    assert!((p25 - 0.005).abs() < 1e-9, "p25 {p25}: half of the first bucket");
}

#[test]
fn quantiles_need_observations_and_stop_at_the_top_finite_bound() {
    assert_eq!(quantile(0.5, &BOUNDS, &[0, 0, 0, 0, 0]), None);
    assert_eq!(quantile(0.5, &BOUNDS, &[]), None);
    assert_eq!(quantile(0.5, &[], &[3]), None);
    assert_eq!(quantile(0.99, &BOUNDS, &[0, 0, 0, 0, 4]), Some(10.0), "everything above 10 s");
}

fn finish(m: &Metrics, route: &str, method: &str, tool: &str, status: &str, secs: f64) {
    m.requests.with_label_values(&[route, method, tool, status]).inc();
    m.duration.with_label_values(&[route, method]).observe(secs);
}

#[test]
fn counts_rates_and_quantiles_come_from_the_registry_and_streams_stay_out_of_latency() {
    let m = Metrics::new().expect("metrics");
    let sampler = Sampler::default();
    let first = sampler.observe(&m).route("main");
    assert_eq!((first.requests, first.requests_per_sec, first.p50_ms), (0, 0.0, None));

    for _ in 0..8 {
        finish(&m, "main", "tools/call", "echo", "200", 0.004);
    }
    finish(&m, "main", "tools/call", "other", "429", 0.0001);
    finish(&m, "main", "tools/list", "-", "502", 0.2);
    finish(&m, "main", "-", "-", "200", 50.0);
    m.rejections.with_label_values(&["rate_limited"]).inc();

    let seen = sampler.observe(&m);
    let main = seen.route("main");
    assert_eq!((main.requests, main.client_errors, main.server_errors), (11, 1, 1));
    assert!(main.requests_per_sec > 0.0 && main.server_errors_per_sec > 0.0, "{main:?}");
    assert!(main.p50_ms.is_some_and(|p| p > 2.5 && p <= 5.0), "p50 in the 2.5-5 ms bucket: {main:?}");
    assert!(main.p99_ms.is_some_and(|p| p <= 250.0), "the 50 s stream is not in p99: {main:?}");
    assert_eq!(seen.route("unknown").requests, 0);
    assert_eq!(seen.total().requests, 11);
    let tools: Vec<_> = seen.tools(10).into_iter().map(|(name, t)| (name, t.requests)).collect();
    assert_eq!(tools, vec![("echo".to_owned(), 8), ("other".to_owned(), 1)], "busiest first, no `-`");
    assert_eq!(seen.rejections().first().map(|r| (r.0.as_str(), r.1)), Some(("rate_limited", 1)));
}

#[test]
fn rates_are_taken_against_the_oldest_sample_in_the_window() {
    let m = Metrics::new().expect("metrics");
    let sampler = Sampler::default();
    for _ in 0..5 {
        finish(&m, "main", "tools/call", "echo", "200", 0.004);
    }
    // A sample kept a while ago, before the next requests.
    let then = Instant::now() - Duration::from_secs(4);
    let (old, _) = sample(&m);
    if let Ok(mut kept) = sampler.kept.lock() {
        kept.push_back((then, Arc::new(old)));
    }
    for _ in 0..4 {
        finish(&m, "main", "tools/call", "echo", "200", 0.2);
    }
    let seen = sampler.observe(&m);
    assert!((seen.window_secs - 4.0).abs() < 0.5, "{}", seen.window_secs);
    let main = seen.route("main");
    assert_eq!(main.requests, 9, "counts stay totals");
    assert!((main.requests_per_sec - 1.0).abs() < 0.15, "4 requests in 4 s: {main:?}");
    assert!(main.p50_ms.is_some_and(|p| p > 100.0), "only the window's slow requests count: {main:?}");

    // A sample older than the window is dropped: averages are since start again.
    if let Ok(mut kept) = sampler.kept.lock() {
        kept.clear();
        kept.push_back((Instant::now() - WINDOW - Duration::from_secs(1), Arc::new(Sample::default())));
    }
    let seen = sampler.observe(&m);
    assert!(seen.window_secs < 4.0, "since the sampler started: {}", seen.window_secs);

    // So is one taken a moment ago: it would hide the requests just before it.
    if let Ok(mut kept) = sampler.kept.lock() {
        kept.clear();
        kept.push_back((Instant::now(), Arc::new(sample(&m).0)));
    }
    let seen = sampler.observe(&m);
    assert_eq!(seen.route("main").requests, 9);
    assert!(seen.route("main").p50_ms.is_some(), "the requests before the fresh sample still count");
}

#[test]
fn backend_rates_count_every_attempt_and_errors_are_5xx_or_failed() {
    let m = Metrics::new().expect("metrics");
    let sampler = Sampler::default();
    let attempt = |backend: &str, status: u16, kind: ErrorType| {
        let result = AttemptResult::of(status, kind).as_str();
        m.upstream_attempts.with_label_values(&["tools", backend, result]).inc();
    };
    for _ in 0..6 {
        attempt("127.0.0.1:9101", 200, ErrorType::None);
    }
    attempt("127.0.0.1:9101", 404, ErrorType::None);
    attempt("127.0.0.1:9101", 0, ErrorType::ClientGone);
    attempt("127.0.0.1:9102", 502, ErrorType::Upstream5xx);
    attempt("127.0.0.1:9102", 0, ErrorType::Connect);
    attempt("127.0.0.1:9102", 200, ErrorType::UpstreamError);

    let seen = sampler.observe(&m);
    let a = seen.backend("tools", "127.0.0.1:9101");
    assert_eq!((a.attempts, a.errors), (8, 0), "a 4xx and a client gone are not the backend's errors: {a:?}");
    assert!(a.attempts_per_sec > 0.0 && a.errors_per_sec == 0.0, "{a:?}");
    let b = seen.backend("tools", "127.0.0.1:9102");
    assert_eq!((b.attempts, b.errors), (3, 3), "a 5xx, a refused connection, a stream cut by the backend: {b:?}");
    assert!(b.errors_per_sec > 0.0, "{b:?}");
    let none = seen.backend("other", "127.0.0.1:9101");
    assert_eq!((none.attempts, none.attempts_per_sec), (0, 0.0), "by pool and backend");
}

#[test]
fn an_attempt_result_is_the_backend_s_answer_unless_the_exchange_broke() {
    use AttemptResult::*;
    let cases = [
        (200, ErrorType::None, Ok),
        (302, ErrorType::None, Ok),
        (200, ErrorType::ClientGone, Ok),
        (429, ErrorType::None, ClientError),
        (503, ErrorType::Upstream5xx, ServerError),
        (0, ErrorType::Timeout, Failed),
        (0, ErrorType::Connect, Failed),
        (200, ErrorType::Timeout, Failed),
        (0, ErrorType::ClientGone, Cancelled),
        (0, ErrorType::Refused, Cancelled),
    ];
    for (status, kind, want) in cases {
        assert_eq!(AttemptResult::of(status, kind), want, "{status} {kind:?}");
    }
}
