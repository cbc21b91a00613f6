//! What the proxy reads from clients, over raw sockets: request deadlines (slow heads and
//! bodies get 408 and are closed), the connection cap (503), client aborts (counted, logged
//! at debug), malformed bodies (400, no backend blamed), `Content-Length: N, N`, pipelining.

mod common;

use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::{http, pool, Edge, Mock, Opts};

/// `/mcp` reads bodies to route them (a tool rule); every other path streams them through.
fn routes() -> &'static str {
    "[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"main\"\n[[route.rule]]\ntool = \"deploy_*\"\npool = \"main\"\n\n\
     [[route]]\nname = \"raw\"\npath_prefix = \"/\"\npool = \"main\"\n"
}

fn start(proxy: &str) -> (Edge, Mock) {
    start_with(proxy, "", &[])
}

fn start_with(proxy: &str, pool_extra: &str, env: &[(&'static str, &'static str)]) -> (Edge, Mock) {
    let mock = Mock::start("deadlines", false);
    let body = format!("{}{}", pool("main", &[&mock], pool_extra), routes());
    let edge = Edge::start_opts(&body, Opts { proxy, env, ..Opts::default() });
    (edge, mock)
}

const TOOL_CALL: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"deploy_x","arguments":{}}}"#;

fn connect(edge: &Edge) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", edge.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
    s
}

/// Sends `bytes` one at a time, `every` apart, reading whatever comes back, until the proxy
/// closes the connection or `give_up` passes. Returns what was read and when it closed.
fn trickle(port: u16, bytes: &[u8], every: Duration, give_up: Duration) -> (Vec<u8>, Option<Duration>) {
    let started = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(every)).expect("read timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    let mut next = bytes.iter();
    while started.elapsed() < give_up {
        if let Some(b) = next.next() {
            // The proxy may have closed already; the read below notices.
            let _ = s.write_all(&[*b]);
        }
        match s.read(&mut buf) {
            Ok(0) => return (got, Some(started.elapsed())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return (got, Some(started.elapsed())),
        }
    }
    (got, None)
}

/// Reads until the proxy closes the connection (a reset counts as closed).
fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

fn status_of(reply: &[u8]) -> Option<u16> {
    std::str::from_utf8(reply.get(9..12)?).ok()?.parse().ok()
}

#[test]
fn trickling_heads_get_408_and_are_closed_while_a_normal_client_is_served() {
    let (edge, _mock) = start("header_timeout = \"1s\"");
    let head = format!("GET /status/200 HTTP/1.1\r\nHost: localhost\r\nX-Slow: {}\r\n\r\n", "a".repeat(200));
    let tricklers: Vec<_> = (0..20)
        .map(|_| {
            let (port, head) = (edge.port, head.clone());
            thread::spawn(move || trickle(port, head.as_bytes(), Duration::from_millis(300), Duration::from_secs(8)))
        })
        .collect();

    let served = http::get(edge.port, "/status/200");
    assert_eq!(served.status, 200, "a normal client is served while 20 others trickle");

    for t in tricklers {
        let (reply, closed) = t.join().expect("trickler");
        let closed = closed.expect("the proxy closed the trickling connection");
        assert!(closed < Duration::from_millis(3500), "closed by the 1 s head deadline, not later: {closed:?}");
        assert_eq!(status_of(&reply), Some(408), "{}", String::from_utf8_lossy(&reply));
    }
    edge.wait_metric("mcp_edge_client_timeouts_total{phase=\"head\"} 20");
}

#[test]
fn trickled_bodies_get_408_whether_read_by_the_proxy_or_streamed() {
    let (edge, _mock) = start("body_timeout = \"1s\"");
    for path in ["/mcp", "/status/200"] {
        let mut s = connect(&edge);
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
        );
        s.write_all(head.as_bytes()).expect("write");
        let started = Instant::now();
        let reply = read_to_close(&mut s);
        assert_eq!(status_of(&reply), Some(408), "{path}: {}", String::from_utf8_lossy(&reply));
        assert!(started.elapsed() < Duration::from_secs(4), "{path}: closed by the deadline");
        assert!(String::from_utf8_lossy(&reply).contains("body_timeout"), "{path}: the reply names the setting");
    }
    edge.wait_metric("mcp_edge_client_timeouts_total{phase=\"body\"} 2");
    edge.wait_metric("mcp_edge_rejections_total{reason=\"request_timeout\"} 2");
}

#[test]
fn connections_over_max_connections_get_503_and_the_admitted_keep_working() {
    let (edge, _mock) = start("max_connections = 3");
    let held: Vec<TcpStream> = (0..3).map(|_| connect(&edge)).collect();
    edge.wait_metric("mcp_edge_connections_open 3");

    let refused = http::raw(edge.port, b"GET /status/200 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_eq!(refused.status, 503);
    assert_eq!(refused.header("Retry-After"), Some("1"));
    edge.wait_metric("mcp_edge_connections_refused_total 1");

    for s in held {
        let mut r = BufReader::new(s);
        r.get_mut()
            .write_all(b"GET /status/200 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .expect("write");
        assert_eq!(http::read_response(&mut r).status, 200, "an admitted connection is unaffected");
    }
    edge.wait_metric("mcp_edge_connections_open 0");
    assert_eq!(http::get(edge.port, "/status/200").status, 200, "a place freed is a place taken");
}

#[test]
fn client_aborts_are_counted_and_never_logged_above_debug() {
    // A RUST_LOG that does not parse makes mcp-edge use its own default filter, as in production.
    let (edge, mock) = start_with("", "", &[("RUST_LOG", "mcp_edge=not-a-level")]);
    let abort = |bytes: &[u8]| {
        let mut s = connect(&edge);
        s.write_all(bytes).expect("write");
        s
    };
    drop(abort(b"GET /status/200 HTTP/1.1\r\nHo"));
    edge.wait_metric("mcp_edge_client_aborts_total{phase=\"head\"} 1");
    for path in ["/mcp", "/status/200"] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
        );
        drop(abort(head.as_bytes()));
    }
    edge.wait_metric("mcp_edge_client_aborts_total{phase=\"body\"} 2");
    let hanging = abort(b"GET /hang HTTP/1.1\r\nHost: localhost\r\n\r\n");
    common::wait_until("the mock holds /hang", Duration::from_secs(5), || {
        http::get(mock.port, "/_mock/stats").json()["requests"].as_u64() >= Some(4)
    });
    drop(hanging);
    edge.wait_metric("mcp_edge_client_aborts_total{phase=\"response\"} 1");

    let noisy: Vec<String> = edge
        .log()
        .lines()
        .filter(|l| (l.contains(" ERROR ") || l.contains(" WARN ")) && !l.contains("key_file"))
        .map(str::to_owned)
        .collect();
    assert!(noisy.is_empty(), "client aborts logged above debug:\n{}", noisy.join("\n"));
}

#[test]
fn malformed_chunked_bodies_get_400_and_blame_no_backend() {
    // One failure would open the circuit: a blamed backend would turn the next request into 503.
    let (edge, _mock) = start_with("", "[pool.breaker]\nfailures = 1\n", &[]);
    for path in ["/mcp", "/status/200"] {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n"
        );
        let reply = http::raw(edge.port, req.as_bytes());
        assert_eq!(reply.status, 400, "{path}: {}", reply.text());
        assert!(reply.text().contains("malformed request"), "{path}: {}", reply.text());
        assert_eq!(reply.header("Connection"), Some("close"), "{path}: framing lost, connection closed");
    }
    edge.wait_metric("mcp_edge_rejections_total{reason=\"malformed_body\"} 2");
    assert_eq!(http::post_mcp(edge.port, "/mcp", &[], TOOL_CALL).status, 200, "the backend was not blamed");
    assert!(!edge.metrics().contains("mcp_edge_upstream_ejections_total{"), "no ejection");
}

#[test]
fn a_repeated_identical_content_length_is_one_length() {
    let (edge, _mock) = start("max_body_bytes = 1000");
    let mut s = connect(&edge);
    s.write_all(
        b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 5000, 5000\r\n\r\n",
    )
    .expect("write");
    assert_eq!(status_of(&read_to_close(&mut s)), Some(413), "refused before the body is sent");

    let n = TOOL_CALL.len();
    let call = |length: String| {
        let req = format!(
            "POST /mcp HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {length}\r\n\r\n{TOOL_CALL}"
        );
        http::raw(edge.port, req.as_bytes())
    };
    let ok = call(format!("{n}, {n}"));
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json()["id"], 7);
    assert_eq!(call(format!("{n}, {}", n + 1)).status, 400, "differing lengths are refused");
}

#[test]
fn pipelined_requests_on_one_connection_are_all_answered() {
    let (edge, _mock) = start("");
    let second = "GET /status/201 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let first_get = "GET /status/200 HTTP/1.1\r\nHost: localhost\r\n\r\n".to_owned();
    let first_post = format!(
        "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n{TOOL_CALL}",
        TOOL_CALL.len()
    );
    for first in [first_get, first_post] {
        let mut r = BufReader::new(connect(&edge));
        r.get_mut().write_all(format!("{first}{second}").as_bytes()).expect("one write, two requests");
        assert_eq!(http::read_response(&mut r).status, 200);
        assert_eq!(http::read_response(&mut r).status, 201, "the pipelined request is answered too");
    }
}

#[test]
fn a_silent_connection_is_closed_at_the_head_deadline_without_an_answer() {
    let (edge, _mock) = start("header_timeout = \"1s\"");
    let mut silent = connect(&edge);
    let opened = Instant::now();
    let reply = read_to_close(&mut silent);
    let closed = opened.elapsed();
    assert!(reply.is_empty(), "nothing was asked, nothing is answered: {}", String::from_utf8_lossy(&reply));
    assert!(
        closed >= Duration::from_millis(900) && closed < Duration::from_secs(4),
        "closed at the 1 s deadline: {closed:?}"
    );
    edge.wait_metric("mcp_edge_client_timeouts_total{phase=\"head\"} 1");
}

#[test]
fn an_idle_keep_alive_connection_serves_until_keepalive_timeout_then_is_closed() {
    let (edge, _mock) = start("keepalive_timeout = \"1s\"\nheader_timeout = \"10s\"");
    let mut r = BufReader::new(connect(&edge));
    let ask = "GET /status/200 HTTP/1.1\r\nHost: localhost\r\n\r\n";
    for pause in [Duration::ZERO, Duration::from_millis(500)] {
        thread::sleep(pause);
        r.get_mut().write_all(ask.as_bytes()).expect("ask");
        assert_eq!(http::read_response(&mut r).status, 200, "served on the same connection after {pause:?}");
    }
    let idle = Instant::now();
    let rest = read_to_close(r.get_mut());
    let closed = idle.elapsed();
    assert!(rest.is_empty(), "an idle connection is closed without an answer");
    assert!(
        closed >= Duration::from_millis(900) && closed < Duration::from_secs(4),
        "closed after 1 s idle: {closed:?}"
    );
    let timeouts = edge.metrics();
    assert!(
        !timeouts.contains("mcp_edge_client_timeouts_total{phase=\"head\"} 1"),
        "idling between requests is no head timeout"
    );
}

#[test]
fn a_draining_proxy_closes_idle_keep_alive_connections_at_once() {
    let (edge, _mock) = start("keepalive_timeout = \"60s\"");
    let ask = "GET /status/200 HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut idle = BufReader::new(connect(&edge));
    idle.get_mut().write_all(ask.as_bytes()).expect("ask");
    assert_eq!(http::read_response(&mut idle).status, 200);

    let asked = Instant::now();
    edge.proc.signal("TERM");
    let rest = read_to_close(idle.get_mut());
    assert!(rest.is_empty());
    // Closed after the 250 ms handover, long before the 1 s grace period ends the process.
    assert!(asked.elapsed() < Duration::from_millis(800), "not held until the process ends: {:?}", asked.elapsed());
}

#[test]
fn a_client_that_stops_reading_its_response_is_disconnected_after_send_timeout() {
    let (edge, _mock) = start("send_timeout = \"1s\"");
    let mut stalled = connect(&edge);
    let ask = "GET /bytes/20000000 HTTP/1.1\r\nHost: localhost\r\n\r\n";
    stalled.write_all(ask.as_bytes()).expect("ask for 20 MB, then read nothing");
    edge.wait_metric("mcp_edge_client_timeouts_total{phase=\"response\"} 1");
    edge.wait_metric("mcp_edge_connections_open 0");
    assert_eq!(http::get(edge.port, "/status/200").status, 200, "the proxy serves on");
}
