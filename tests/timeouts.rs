//! Timeouts and retries after a request reached a backend: a hung backend answers 504 after
//! `first_byte_timeout` while a started stream may stay silent far longer; routes and rules
//! override the pool's timeouts; safe methods and declared idempotent tools are resent to
//! another backend, other calls never are.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::http::{get, post_mcp};
use common::{Edge, Mock};

const LIST: &str = r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#;
const WHOAMI: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"whoami"}}"#;
const SSE: (&str, &str) = ("Accept", "application/json, text/event-stream");

/// A backend that reads requests and never answers; counts the requests that reached it.
struct Hung {
    addr: String,
    seen: Arc<AtomicUsize>,
}

fn hung_backend() -> Hung {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&seen);
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let count = Arc::clone(&count);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut counted = false;
                // Hold the connection open, answering nothing, until the proxy gives up.
                while conn.read(&mut buf).is_ok_and(|n| n > 0) {
                    if !counted {
                        count.fetch_add(1, Ordering::SeqCst);
                        counted = true;
                    }
                }
            });
        }
    });
    Hung { addr, seen }
}

fn mock_requests(mock: &Mock) -> u64 {
    let port: u16 = mock.addr().rsplit(':').next().and_then(|p| p.parse().ok()).expect("mock port");
    get(port, "/_mock/stats").json()["requests"].as_u64().expect("requests")
}

/// One pool over `backends` (no active health check, a breaker that never trips, so every
/// request meets every backend), with `pool_extra` lines, and `routes`.
fn config(backends: &[&str], pool_extra: &str, routes: &str) -> String {
    let list: Vec<String> = backends.iter().map(|b| format!("\"{b}\"")).collect();
    format!(
        "[[pool]]\nname = \"main\"\nbackends = [{}]\npath = \"/mcp\"\n{pool_extra}\n[pool.health]\ncheck = \"none\"\n[pool.breaker]\nfailures = 1000\n[pool.retry]\nmin_per_window = 100\n\n{routes}",
        list.join(", ")
    )
}

fn route(name: &str, path: &str, extra: &str) -> String {
    format!("[[route]]\nname = \"{name}\"\npath = \"{path}\"\npool = \"main\"\n{extra}\n")
}

/// Posts `body` and returns the status, the JSON-RPC error code and how long it took.
fn timed(edge: &Edge, path: &str, body: &str) -> (u16, Option<i64>, Duration) {
    let start = Instant::now();
    let r = post_mcp(edge.port, path, &[], body);
    let code = if r.status == 200 { None } else { r.json()["error"]["code"].as_i64() };
    (r.status, code, start.elapsed())
}

#[test]
fn a_hung_backend_gets_504_after_the_first_byte_timeout() {
    let hung = hung_backend();
    let edge = Edge::start(&config(
        &[&hung.addr],
        "first_byte_timeout = \"300ms\"\nidle_timeout = \"1h\"",
        &route("mcp", "/mcp", "inspect = \"always\""),
    ));
    let start = Instant::now();
    let r = post_mcp(edge.port, "/mcp", &[], WHOAMI);
    let took = start.elapsed();
    assert_eq!(r.status, 504, "{}", r.text());
    let body = r.json();
    assert_eq!((body["id"].as_i64(), body["error"]["code"].as_i64()), (Some(7), Some(-32000)), "{body}");
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(3), "answered after {took:?}");
    assert_eq!(hung.seen.load(Ordering::SeqCst), 1, "the call reached the backend once, and was not resent");
    edge.wait_metric(r#"reason="upstream_timeout""#);
}

#[test]
fn a_started_stream_may_stay_silent_longer_than_the_first_byte_timeout() {
    let mock = Mock::start("a", false);
    let edge = Edge::start(&config(
        &[&mock.addr()],
        "first_byte_timeout = \"300ms\"\nidle_timeout = \"5s\"",
        &route("mcp", "/mcp", ""),
    ));
    let slow = r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"slow","arguments":{"steps":2,"delay_ms":800},"_meta":{"progressToken":"p"}}}"#;
    let r = post_mcp(edge.port, "/mcp", &[SSE], slow);
    assert_eq!(r.status, 200);
    let text = r.text();
    assert_eq!(text.matches("notifications/progress").count(), 2, "both progress events, 800 ms apart: {text}");
    assert!(text.contains(r#""id":9"#) && text.contains("result"), "and the result: {text}");
}

#[test]
fn routes_and_rules_override_the_pools_timeouts() {
    let hung = hung_backend();
    let routes = route("fast", "/mcp", "[[route.rule]]\ntool = \"render*\"\nfirst_byte_timeout = \"1500ms\"\n")
        + &route("patient", "/patient", "first_byte_timeout = \"1500ms\"");
    let edge = Edge::start(&config(&[&hung.addr], "first_byte_timeout = \"200ms\"", &routes));
    let render = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"render_chart"}}"#;

    let (status, _, pool_wait) = timed(&edge, "/mcp", WHOAMI);
    let (_, _, rule_wait) = timed(&edge, "/mcp", render);
    let (_, _, route_wait) = timed(&edge, "/patient", WHOAMI);
    assert_eq!(status, 504);
    assert!(pool_wait < Duration::from_millis(1200), "the pool's 200 ms: {pool_wait:?}");
    assert!(rule_wait >= Duration::from_millis(1500), "the rule's 1500 ms: {rule_wait:?}");
    assert!(route_wait >= Duration::from_millis(1500), "the route's 1500 ms: {route_wait:?}");
}

#[test]
fn safe_methods_are_resent_to_another_backend_and_other_calls_are_not() {
    let (hung, good) = (hung_backend(), Mock::start("good", false));
    // The method is known when the route reads bodies (`inspect`, rules, limits by method or
    // tool, `idempotent_tools`) or from a modern client's Mcp-Method header.
    let routes =
        route("mcp", "/mcp", "inspect = \"always\"") + &route("idem", "/idem", "idempotent_tools = [\"who*\"]");
    let edge = Edge::start(&config(&[&hung.addr, &good.addr()], "first_byte_timeout = \"250ms\"", &routes));

    // Round robin sends some requests to the hung backend first; those are resent.
    for _ in 0..4 {
        assert_eq!(timed(&edge, "/mcp", LIST).0, 200, "tools/list is safe: resent to the good backend");
        assert_eq!(timed(&edge, "/idem", WHOAMI).0, 200, "a tool the route declares idempotent, too");
    }
    let resent = hung.seen.load(Ordering::SeqCst);
    assert!(resent >= 1, "the hung backend was tried");
    edge.wait_metric(&format!(r#"mcp_edge_upstream_retries_total{{pool="main"}} {resent}"#));

    let before = mock_requests(&good);
    let outcomes: Vec<u16> = (0..6).map(|_| timed(&edge, "/mcp", WHOAMI).0).collect();
    let timed_out = outcomes.iter().filter(|&&s| s == 504).count();
    assert!(timed_out >= 1, "a plain tool call that reached the hung backend times out: {outcomes:?}");
    assert_eq!(hung.seen.load(Ordering::SeqCst) - resent, timed_out, "each 504 is one hung attempt: {outcomes:?}");
    // The stats request counts itself.
    assert_eq!(mock_requests(&good) - before - 1, (6 - timed_out) as u64, "and was never resent: {outcomes:?}");
}

/// Posts `body` and reads whatever comes back until the connection ends (a cut answer too).
fn post_and_drain(port: u16, body: &str) {
    let mut conn = common::http::connect(port);
    let req = format!(
        "POST /mcp HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(req.as_bytes()).expect("send");
    let _ = conn.read_to_end(&mut Vec::new());
}

/// A backend that starts a 200 answer, sends part of its body, then closes the connection.
fn half_answer_backend() -> Hung {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&seen);
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            if conn.read(&mut buf).is_ok_and(|n| n > 0) {
                count.fetch_add(1, Ordering::SeqCst);
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\":",
                );
            }
        }
    });
    Hung { addr, seen }
}

#[test]
fn a_safe_request_whose_answer_had_started_is_never_resent() {
    let (broken, good) = (half_answer_backend(), Mock::start("good", false));
    let edge = Edge::start(&config(&[&broken.addr, &good.addr()], "", &route("mcp", "/mcp", "inspect = \"always\"")));
    let before = mock_requests(&good);
    for _ in 0..4 {
        post_and_drain(edge.port, LIST);
    }
    let cut = broken.seen.load(Ordering::SeqCst);
    assert!(cut >= 1, "the broken backend was tried");
    assert_eq!(
        mock_requests(&good) - before - 1,
        (4 - cut) as u64,
        "a second answer cannot follow the first one's start: only the good backend's own share reached it"
    );
}

#[test]
fn a_slow_upload_is_the_clients_time_not_the_backends() {
    let mock = Mock::start("a", false);
    // No rules: the body streams through, so the upload happens on the upstream connection.
    let edge = Edge::start(&config(&[&mock.addr()], "first_byte_timeout = \"300ms\"", &route("mcp", "/mcp", "")));
    let body = WHOAMI.as_bytes();
    let mut conn = common::http::connect(edge.port);
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).and_then(|()| conn.write_all(&body[..10])).expect("send the start");
    // The client takes 800 ms over the rest of its body: longer than first_byte_timeout.
    std::thread::sleep(Duration::from_millis(800));
    conn.write_all(&body[10..]).expect("send the rest");
    let r = common::http::read_response(&mut std::io::BufReader::new(conn));
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn timeouts_open_the_hung_backends_circuit() {
    let (hung, good) = (hung_backend(), Mock::start("good", false));
    let pool = format!(
        "[[pool]]\nname = \"main\"\nbackends = [\"{}\", \"{}\"]\npath = \"/mcp\"\nfirst_byte_timeout = \"200ms\"\n[pool.health]\ncheck = \"none\"\n[pool.breaker]\nfailures = 2\ncooldown = \"1m\"\n\n",
        hung.addr,
        good.addr()
    );
    let edge = Edge::start(&(pool + &route("mcp", "/mcp", "inspect = \"always\"")));
    for _ in 0..8 {
        assert_eq!(timed(&edge, "/mcp", LIST).0, 200, "resent to the good backend while the circuit closes");
    }
    assert_eq!(
        hung.seen.load(Ordering::SeqCst),
        2,
        "two timeouts open the circuit; then the hung backend gets nothing"
    );
    assert_eq!(get(edge.admin, "/status").json()["pools"][0]["backends"][0]["circuit"], "open");
    edge.wait_metric(&format!(r#"mcp_edge_upstream_ejections_total{{backend="{}",pool="main"}} 1"#, hung.addr));
}
