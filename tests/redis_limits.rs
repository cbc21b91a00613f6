//! Limits shared across replicas through a real `redis-server`: two mcp-edge processes spend
//! one budget; when Redis dies mid-test each limit follows its `on_redis_error` policy
//! (count locally, fail open, fail closed with 503), and the shared budget is back once Redis is.

mod common;

use std::time::Duration;

use common::http::{get, post_mcp};
use common::redis::Redis;
use common::{pool, wait_until, Edge, Mock};

const CALL: &str = r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo"}}"#;

/// `[redis]` at `redis`, one limit per route: `limits` is a list of (route path, limit TOML).
fn config(redis: &Redis, mock: &Mock, limits: &[(&str, &str)]) -> String {
    let mut out = format!("[redis]\nurl = \"{}\"\ntimeout = \"200ms\"\nretry_interval = \"300ms\"\n\n", redis.url());
    out += &pool("p", &[mock], "");
    for (n, (path, limit)) in limits.iter().enumerate() {
        out += &format!("[[limit]]\nname = \"l{n}\"\nbackend = \"redis\"\n{limit}\n");
        out += &format!("[[route]]\nname = \"r{n}\"\npath = \"{path}\"\npool = \"p\"\nlimits = [\"l{n}\"]\n\n");
    }
    out
}

fn statuses(edge: &Edge, path: &str, n: usize) -> Vec<u16> {
    (0..n).map(|_| post_mcp(edge.port, path, &[], CALL).status).collect()
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|&&s| s == status).count()
}

#[test]
fn two_replicas_share_one_budget() {
    let (redis, mock) = (Redis::start(), Mock::start("m", false));
    // Per hour, so the test never straddles a window boundary that matters.
    let body = config(&redis, &mock, &[("/mcp", "key = [\"route\"]\nrate = \"20/h\"")]);
    let (a, b) = (Edge::start(&body), Edge::start(&body));

    let mut seen = (Vec::new(), Vec::new());
    for _ in 0..15 {
        seen.0.push(post_mcp(a.port, "/mcp", &[], CALL).status);
        seen.1.push(post_mcp(b.port, "/mcp", &[], CALL).status);
    }
    let passed = count(&seen.0, 200) + count(&seen.1, 200);
    assert_eq!(passed, 20, "20/h across both replicas, not 20 each: {seen:?}");
    assert!(count(&seen.0, 429) >= 1 && count(&seen.1, 429) >= 1, "both replicas refuse: {seen:?}");
    let r = post_mcp(b.port, "/mcp", &[], CALL);
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    assert_eq!(r.json()["id"], 5);
    a.wait_metric(r#"mcp_edge_limit_rejections_total{limit="l0",reason="rate_limited",route="r0"}"#);
    assert!(!a.metrics().contains("mcp_edge_redis_limit_errors_total{"), "no Redis errors while it runs");
    // /status shows the shared usage as Redis reported it, and Redis up.
    let status = get(b.admin, "/status").json();
    let hot = &status["limits"][0]["busiest"][0];
    assert_eq!(
        (hot["key"].as_str(), hot["used"].as_f64(), hot["quota"].as_f64()),
        (Some("route=r0"), Some(20.0), Some(20.0))
    );
    assert_eq!(status["redis"]["up"], true);
}

#[test]
fn when_redis_dies_each_limit_follows_its_policy_and_recovers() {
    let (redis, mock) = (Redis::start(), Mock::start("m", false));
    let limits = [
        ("/local", "key = [\"route\"]\nrate = \"3/h\"\non_redis_error = \"local\""),
        ("/open", "key = [\"route\"]\nrate = \"1000/h\"\non_redis_error = \"allow\""),
        ("/closed", "key = [\"route\"]\nrate = \"1000/h\"\non_redis_error = \"deny\""),
    ];
    let edge = Edge::start(&config(&redis, &mock, &limits));
    assert_eq!(statuses(&edge, "/closed", 3), vec![200; 3], "Redis up: the fail-closed limit admits");

    let port = redis.stop();
    let local = statuses(&edge, "/local", 6);
    assert_eq!((count(&local, 200), count(&local, 429)), (3, 3), "counted in this process instead: {local:?}");
    assert_eq!(statuses(&edge, "/open", 5), vec![200; 5], "fail open");
    let r = post_mcp(edge.port, "/closed", &[], CALL);
    assert_eq!(r.status, 503, "fail closed: {}", r.text());
    assert!(r.header("retry-after").is_some());
    assert!(r.json()["error"]["message"].as_str().is_some_and(|m| m.contains("`l2`")), "{}", r.text());

    let m = edge.metrics();
    for policy in [r#"limit="l0",policy="local""#, r#"limit="l1",policy="allow""#, r#"limit="l2",policy="deny""#] {
        assert!(m.contains(&format!("mcp_edge_redis_limit_fallbacks_total{{{policy}}}")), "{policy}:\n{m}");
    }
    assert!(m.contains(r#"mcp_edge_limit_rejections_total{limit="l2",reason="limiter_unavailable",route="r2"} 1"#));
    let log = edge.log();
    assert_eq!(log.matches("redis limit store unreachable").count(), 1, "logged once per outage:\n{log}");

    // Back on the same port: after retry_interval the shared budget is in force again.
    let _redis = Redis::start_on(port);
    wait_until("fail-closed limit admits again", Duration::from_secs(10), || {
        post_mcp(edge.port, "/closed", &[], CALL).status == 200
    });
    edge.wait_log("redis limit store reachable again");
    let config = get(edge.admin, "/config").json();
    assert_eq!(config["redis"]["url"], format!("redis://127.0.0.1:{port}/0"));
}

#[test]
fn redis_credentials_never_appear_in_config_or_logs() {
    let (redis, mock) = (Redis::start(), Mock::start("m", false));
    let body = config(&redis, &mock, &[("/mcp", "key = [\"route\"]\nrate = \"10/s\"")])
        .replace("redis://127.0.0.1", "redis://user:s3cret-pass@127.0.0.1");
    let edge = Edge::start(&body);
    // Redis has no such user: every check fails, and the default policy counts locally.
    for _ in 0..3 {
        assert_eq!(post_mcp(edge.port, "/mcp", &[], CALL).status, 200);
    }
    edge.wait_log("redis limit store unreachable");
    assert!(edge.log().contains("redis://<redacted>@127.0.0.1"), "the log names the store, without credentials");
    let shown = get(edge.admin, "/config").text();
    assert!(shown.contains("redis://<redacted>@127.0.0.1"), "{shown}");
    assert!(!shown.contains("s3cret-pass") && !edge.log().contains("s3cret-pass"));
    assert!(!edge.metrics().contains("s3cret-pass"));
}
