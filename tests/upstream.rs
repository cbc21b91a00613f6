//! Health-checked pools under faults: a dead backend is taken out by the active health check
//! and brought back when it returns; refused connections are retried on another backend; a
//! request that reached a backend is never sent again; idle streams live as long as the pool's
//! idle timeout allows.

mod common;

use std::time::Duration;

use common::http::{get, post_mcp, Stream};
use common::{wait_until, Edge, Mock};

const WHOAMI: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}}"#;

fn served_by(edge: &Edge) -> String {
    let r = post_mcp(edge.port, "/mcp", &[], WHOAMI);
    assert_eq!(r.status, 200, "{}", r.text());
    r.header("x-mock-backend").expect("mock names itself").to_owned()
}

fn healthy(edge: &Edge, addr: &str) -> bool {
    let status = get(edge.admin, "/status").json();
    status["pools"][0]["backends"]
        .as_array()
        .expect("backends")
        .iter()
        .any(|b| b["addr"] == addr && b["healthy"] == true)
}

fn edge_over(backends: &[String], check: &str, pool_extra: &str) -> Edge {
    let list: Vec<String> = backends.iter().map(|b| format!("\"{b}\"")).collect();
    Edge::start(&format!(
        "[[pool]]\nname = \"p\"\nbackends = [{}]\npath = \"/mcp\"\n{pool_extra}\n[pool.health]\ncheck = \"{check}\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n\n[[route]]\nname = \"main\"\npath = \"/mcp\"\npool = \"p\"\n",
        list.join(", ")
    ))
}

#[test]
fn a_dead_backend_is_taken_out_and_brought_back_by_the_health_check() {
    let (a, b) = (Mock::start("a", false), Mock::start("b", false));
    let (a_port, a_addr) = (a.port, a.addr());
    let edge = edge_over(&[a.addr(), b.addr()], "mcp", "");
    let seen: std::collections::HashSet<String> = (0..6).map(|_| served_by(&edge)).collect();
    assert_eq!(seen.len(), 2);

    a.stop();
    wait_until("a marked unhealthy", Duration::from_secs(10), || !healthy(&edge, &a_addr));
    for _ in 0..10 {
        assert_eq!(served_by(&edge), "b", "no request goes to the dead backend");
    }
    edge.wait_metric(&format!(r#"mcp_edge_upstream_healthy{{backend="{a_addr}",pool="p"}} 0"#));

    let _a = Mock::start_on(a_port, "a", false, &[]);
    wait_until("a healthy again", Duration::from_secs(10), || healthy(&edge, &a_addr));
    let seen: std::collections::HashSet<String> = (0..6).map(|_| served_by(&edge)).collect();
    assert!(seen.contains("a"), "the returning backend gets traffic again");
}

#[test]
fn refused_connections_are_retried_on_another_backend() {
    let live = Mock::start("live", false);
    let dead = common::DEAD_BACKEND.to_owned();
    let edge = edge_over(&[dead, live.addr()], "none", "");
    for _ in 0..10 {
        assert_eq!(served_by(&edge), "live");
    }
    let m = edge.metrics();
    assert!(m.contains(r#"mcp_edge_upstream_retries_total{pool="p"}"#), "{m}");
}

#[test]
fn a_request_that_reached_a_backend_is_never_resent() {
    let (a, b) = (Mock::start("a", false), Mock::start("b", false));
    let edge = Edge::start(&format!(
        "[[pool]]\nname = \"p\"\nbackends = [\"{}\", \"{}\"]\n[pool.health]\ncheck = \"none\"\n\n[[route]]\nname = \"main\"\npath_prefix = \"/\"\npool = \"p\"\n",
        a.addr(),
        b.addr()
    ));
    let count = |m: &Mock| get(m.port, "/_mock/stats").json()["requests"].as_u64().expect("requests");
    let before = count(&a) + count(&b);
    // The backend reads the POST and closes without answering.
    let r = post_mcp(edge.port, "/close", &[], WHOAMI);
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], -32000);
    // Two stats calls per backend (before and after) plus exactly one /close between them.
    assert_eq!(count(&a) + count(&b), before + 2 + 1, "the POST reached one backend exactly once");
}

#[test]
fn idle_streams_survive_until_the_pools_idle_timeout() {
    let mock = Mock::start_with("m", true, &["--tick-ms", "2500"]);
    let open = |edge: &Edge| {
        let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
        let token = post_mcp(edge.port, "/mcp", &[], init).header("mcp-session-id").expect("session").to_owned();
        let mut s =
            Stream::open(edge.port, "GET", "/mcp", &[("Mcp-Session-Id", &token), ("Accept", "text/event-stream")], b"");
        assert!(s.next_event().is_some(), "first event at once");
        s
    };
    let patient = edge_over(&[mock.addr()], "tcp", "");
    let mut s = open(&patient);
    let (event, _) = s.next_event().expect("a second event after 2.5 s of silence");
    assert!(event.contains("notifications/message"), "{event}");

    let strict = edge_over(&[mock.addr()], "tcp", "idle_timeout = \"1s\"");
    let mut s = open(&strict);
    assert!(s.next_event().is_none(), "a stream silent for longer than idle_timeout is closed");
}

#[test]
fn http_checks_use_the_path_and_fall_after_the_configured_failures() {
    let (good, bad) = (Mock::start("good", false), Mock::start("bad", false));
    let list = format!("\"{}\", \"{}\"", good.addr(), bad.addr());
    let edge = Edge::start(&format!(
        "[[pool]]\nname = \"p\"\nbackends = [{list}]\n[pool.health]\ncheck = \"http\"\npath = \"/healthz\"\ninterval = \"1s\"\ntimeout = \"500ms\"\nfall = 2\n\n[[route]]\nname = \"main\"\npath = \"/mcp\"\npool = \"p\"\n"
    ));
    assert!(healthy(&edge, &good.addr()) && healthy(&edge, &bad.addr()));
    let bad_addr = bad.addr();
    bad.stop();
    let stopped = std::time::Instant::now();
    wait_until("the stopped backend marked down", Duration::from_secs(10), || !healthy(&edge, &bad_addr));
    assert!(stopped.elapsed() >= Duration::from_millis(900), "fall = 2 needs two failed probes, a second apart");
    assert!(healthy(&edge, &good.addr()));
}
