//! Passive health and failover: a backend that answers 500s or refuses connections is ejected
//! by its circuit breaker and skipped, a half-open probe abandoned by its client is handed
//! back, a dead primary pool fails over to the fallback pool (where sessions opened there keep
//! working), and a session on an ejected backend gets 404 so its client re-initializes.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::http::{get, post_mcp};
use common::{wait_until, Edge, Mock, DEAD_BACKEND};

const WHOAMI: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}}"#;

/// A backend that answers every request with 500 (and keeps the connection).
fn always_500() -> u16 {
    scripted(Arc::new(AtomicU8::new(BROKEN)))
}

/// What a [`scripted`] backend does with each request, switchable while it runs.
const BROKEN: u8 = 0;
const HUNG: u8 = 1;
const FINE: u8 = 2;

/// A backend that answers each request as `mode` says when it arrives: 500, nothing ever
/// (the connection stays open), or 200 (`X-Mock-Backend: scripted`).
fn scripted(mode: Arc<AtomicU8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mode = Arc::clone(&mode);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                let mut conn = conn;
                loop {
                    let (mut line, mut length) = (String::new(), 0usize);
                    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                        let l = line.trim_end().to_ascii_lowercase();
                        if let Some(v) = l.strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                        if l.is_empty() {
                            break;
                        }
                        line.clear();
                    }
                    if line.is_empty() {
                        return;
                    }
                    let mut body = vec![0; length];
                    if std::io::Read::read_exact(&mut reader, &mut body).is_err() {
                        return;
                    }
                    let answer: &[u8] = match mode.load(Ordering::SeqCst) {
                        BROKEN => b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 2\r\nX-Mock-Backend: broken\r\n\r\n{}",
                        FINE => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Mock-Backend: scripted\r\n\r\n{}",
                        // Hung: hold the connection until the peer closes it.
                        _ => {
                            let _ = std::io::Read::read_to_end(&mut reader, &mut Vec::new());
                            return;
                        }
                    };
                    if conn.write_all(answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn route_over(pools: &str, route_extra: &str) -> String {
    format!("{pools}[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"main\"\n{route_extra}")
}

fn pool(name: &str, backends: &[String], check: &str) -> String {
    let list: Vec<String> = backends.iter().map(|b| format!("\"{b}\"")).collect();
    format!(
        "[[pool]]\nname = \"{name}\"\nbackends = [{}]\npath = \"/mcp\"\n[pool.health]\ncheck = \"{check}\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n[pool.breaker]\nfailures = 3\ncooldown = \"30s\"\n\n",
        list.join(", ")
    )
}

fn circuit(edge: &Edge, addr: &str) -> String {
    let status = get(edge.admin, "/status").json();
    let backends = status["pools"][0]["backends"].as_array().cloned().unwrap_or_default();
    backends
        .iter()
        .find(|b| b["addr"] == addr)
        .and_then(|b| b["circuit"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[test]
fn a_backend_answering_500s_is_ejected_and_skipped() {
    let good = Mock::start("good", false);
    let broken = format!("127.0.0.1:{}", always_500());
    let edge = Edge::start(&route_over(&pool("main", &[broken.clone(), good.addr()], "none"), ""));
    let served: Vec<String> = (0..20)
        .map(|_| post_mcp(edge.port, "/mcp", &[], WHOAMI).header("x-mock-backend").unwrap_or("-").to_owned())
        .collect();
    assert_eq!(served.iter().filter(|s| *s == "broken").count(), 3, "three 500s open the circuit: {served:?}");
    assert!(served[10..].iter().all(|s| s == "good"), "then only the good backend: {served:?}");
    assert_eq!(circuit(&edge, &broken), "open");
    edge.wait_metric(&format!(r#"mcp_edge_upstream_ejections_total{{backend="{broken}",pool="main"}} 1"#));
    edge.wait_metric(&format!(r#"mcp_edge_upstream_circuit_state{{backend="{broken}",pool="main"}} 1"#));
}

#[test]
fn refused_connections_open_the_circuit_too() {
    let good = Mock::start("good", false);
    let edge = Edge::start(&route_over(&pool("main", &[DEAD_BACKEND.into(), good.addr()], "none"), ""));
    for _ in 0..20 {
        assert_eq!(post_mcp(edge.port, "/mcp", &[], WHOAMI).status, 200, "retried on the good backend");
    }
    assert_eq!(circuit(&edge, DEAD_BACKEND), "open");
    let retries = edge.metrics();
    assert!(
        retries.contains(r#"mcp_edge_upstream_retries_total{pool="main"} 3"#),
        "after 3 failures no more attempts:\n{retries}"
    );
}

#[test]
fn a_dead_primary_pool_fails_over_to_the_fallback() {
    let spare = Mock::start("spare", false);
    let pools = pool("main", &[DEAD_BACKEND.into()], "tcp") + &pool("spare", &[spare.addr()], "tcp");
    let edge = Edge::start(&route_over(&pools, "fallback = [\"spare\"]\n"));
    let r = post_mcp(edge.port, "/mcp", &[], WHOAMI);
    assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("spare")));
    edge.wait_metric(r#"mcp_edge_failovers_total{pool="spare",route="mcp"} 1"#);
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

#[test]
fn a_session_opened_on_the_fallback_pool_keeps_working_there() {
    let spare = Mock::start("spare", true);
    let pools = pool("main", &[DEAD_BACKEND.into()], "tcp") + &pool("spare", &[spare.addr()], "tcp");
    let edge = Edge::start(&route_over(&pools, "fallback = [\"spare\"]\n"));
    let init = post_mcp(edge.port, "/mcp", &[], INITIALIZE);
    assert_eq!((init.status, init.header("x-mock-backend")), (200, Some("spare")), "failed over");
    let token = init.header("mcp-session-id").expect("a session token").to_owned();

    let call = post_mcp(edge.port, "/mcp", &[("Mcp-Session-Id", &token)], WHOAMI);
    assert_eq!(call.status, 200, "the session stays valid on the fallback pool: {}", call.text());
    assert_eq!(call.header("x-mock-backend"), Some("spare"));
}

#[test]
fn a_session_on_an_ejected_backend_gets_404_so_the_client_reinitializes() {
    let (a, b) = (Mock::start("a", true), Mock::start("b", true));
    let edge = Edge::start(&route_over(&pool("main", &[a.addr(), b.addr()], "tcp"), ""));
    let init = INITIALIZE;
    let (token, owner) = loop {
        let r = post_mcp(edge.port, "/mcp", &[], init);
        let token = r.header("mcp-session-id").expect("token").to_owned();
        if r.header("x-mock-backend") == Some("a") {
            break (token, a);
        }
    };
    let addr = owner.addr();
    owner.stop();
    wait_until("a marked down", Duration::from_secs(10), || {
        get(edge.admin, "/status").json()["pools"][0]["backends"]
            .as_array()
            .is_some_and(|bs| bs.iter().any(|x| x["addr"] == addr.as_str() && x["usable"] == false))
    });
    let r = post_mcp(edge.port, "/mcp", &[("Mcp-Session-Id", &token)], WHOAMI);
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], -32001);
    let fresh = post_mcp(edge.port, "/mcp", &[], init);
    assert_eq!(
        (fresh.status, fresh.header("x-mock-backend")),
        (200, Some("b")),
        "re-initializing lands on the healthy backend"
    );
    drop(b);
}

#[test]
fn the_retry_budget_stops_retry_storms() {
    let good = Mock::start("good", false);
    let pools = format!(
        "[[pool]]\nname = \"main\"\nbackends = [\"{DEAD_BACKEND}\", \"{}\"]\npath = \"/mcp\"\n[pool.health]\ncheck = \"none\"\n[pool.breaker]\nfailures = 1000\n[pool.retry]\nbudget = 0.0\nmin_per_window = 2\n\n",
        good.addr()
    );
    let edge = Edge::start(&route_over(&pools, ""));
    let statuses: Vec<u16> = (0..12).map(|_| post_mcp(edge.port, "/mcp", &[], WHOAMI).status).collect();
    let failed = statuses.iter().filter(|s| **s == 502).count();
    assert!(failed >= 1, "once the budget is spent, refused connections are not retried: {statuses:?}");
    assert_eq!(failed + statuses.iter().filter(|s| **s == 200).count(), 12, "{statuses:?}");
    edge.wait_metric(r#"mcp_edge_upstream_retries_total{pool="main"} 2"#);
    edge.wait_metric(&format!(r#"mcp_edge_upstream_retries_denied_total{{pool="main"}} {failed}"#));
}

#[test]
fn a_killed_backend_is_ejected_then_readmitted_by_a_half_open_probe_once_it_is_back() {
    let (a, b) = (Mock::start("a", false), Mock::start("b", false));
    let (a_port, a_addr) = (a.port, a.addr());
    // No active check: only live traffic (the breaker) can take `a` out and bring it back.
    let pools = pool("main", &[a_addr.clone(), b.addr()], "none").replace("cooldown = \"30s\"", "cooldown = \"300ms\"");
    let edge = Edge::start(&route_over(&pools, ""));
    a.stop();
    wait_until("a ejected", Duration::from_secs(10), || {
        assert_eq!(post_mcp(edge.port, "/mcp", &[], WHOAMI).status, 200, "refusals are retried on b");
        circuit(&edge, &a_addr) == "open"
    });

    let _a = Mock::start_on(a_port, "a", false, &[]);
    wait_until("a serves again", Duration::from_secs(10), || {
        post_mcp(edge.port, "/mcp", &[], WHOAMI).header("x-mock-backend") == Some("a")
    });
    assert_eq!(circuit(&edge, &a_addr), "closed", "the half-open probe succeeded");
    edge.wait_metric(&format!(r#"mcp_edge_upstream_circuit_state{{backend="{a_addr}",pool="main"}} 0"#));
    for to in ["half_open", "closed"] {
        let line =
            format!(r#"mcp_edge_upstream_circuit_transitions_total{{backend="{a_addr}",pool="main",to="{to}"}}"#);
        edge.wait_metric(&line);
        let n: u64 = edge.metrics().lines().find_map(|l| l.strip_prefix(&line)?.trim().parse().ok()).unwrap_or(0);
        assert!(n >= 1, "{line} {n}");
    }
}

#[test]
fn a_half_open_probe_whose_client_goes_away_is_handed_back_at_once() {
    let mode = Arc::new(AtomicU8::new(BROKEN));
    let backend = format!("127.0.0.1:{}", scripted(Arc::clone(&mode)));
    // One backend, ejected by one failure for 5 s: a probe left held would block it as long.
    let pools = pool("main", std::slice::from_ref(&backend), "none")
        .replace("failures = 3", "failures = 1")
        .replace("cooldown = \"30s\"", "cooldown = \"5s\"");
    let edge = Edge::start(&route_over(&pools, ""));
    assert_eq!(post_mcp(edge.port, "/mcp", &[], WHOAMI).status, 500, "the backend's own 500 goes through");
    assert_eq!(circuit(&edge, &backend), "open");

    mode.store(HUNG, Ordering::SeqCst);
    wait_until("the cool-down over", Duration::from_secs(10), || usable(&edge, &backend));
    abandoned_call(edge.port);
    assert_eq!(circuit(&edge, &backend), "half_open", "that call was the probe");

    mode.store(FINE, Ordering::SeqCst);
    let handed_back = Instant::now();
    wait_until("the next request probes and closes the circuit", Duration::from_secs(2), || {
        post_mcp(edge.port, "/mcp", &[], WHOAMI).status == 200
    });
    assert!(handed_back.elapsed() < Duration::from_secs(2), "well before the 5 s the probe would have had");
    assert_eq!(circuit(&edge, &backend), "closed");
}

fn usable(edge: &Edge, addr: &str) -> bool {
    let status = get(edge.admin, "/status").json();
    status["pools"][0]["backends"]
        .as_array()
        .is_some_and(|bs| bs.iter().any(|b| b["addr"] == addr && b["usable"] == true))
}

/// Sends a tools/call and hangs up before any answer, once the edge has had time to forward it.
fn abandoned_call(port: u16) {
    let mut conn = common::http::connect(port);
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n{WHOAMI}",
        WHOAMI.len()
    );
    conn.write_all(head.as_bytes()).expect("send");
    conn.set_read_timeout(Some(Duration::from_millis(300))).expect("timeout");
    let mut byte = [0u8; 1];
    assert!(std::io::Read::read(&mut conn, &mut byte).is_err(), "no answer from a hung backend");
    drop(conn);
}
