//! Client address lists: a route's `allow_ips` / `deny_ips` answer 403 before anything is
//! forwarded, and the proxy-wide lists close a connection at accept, unanswered. Addresses are
//! the connection's own (forwarded headers are never believed), read canonically on a
//! dual-stack listener.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::raw;
use crate::common::{Edge, Opts};
use crate::story::*;

/// `/mcp` with the lists in `lists`, and `/ok` open to everyone (for the liveness probe),
/// both forwarded to the backend's `/mcp`.
fn routes(b: &Backend, lists: &str) -> String {
    format!(
        "[[pool]]\nname = \"main\"\nbackends = [\"{}\"]\npath = \"/mcp\"\n\n\
         [[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"main\"\n{lists}\n\n\
         [[route]]\nname = \"ok\"\npath = \"/ok\"\npool = \"main\"\n",
        b.mock.addr()
    )
}

/// The current value of the counter `name` on the admin listener.
fn counter(edge: &Edge, name: &str) -> u64 {
    let metrics = edge.metrics();
    let line = metrics.lines().find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '));
    line.and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0)
}

#[test]
fn a_route_denying_the_client_address_answers_403_and_forwards_nothing() {
    let main = backend("main");
    let edge = Edge::start(&routes(&main, "deny_ips = [\"10.0.0.0/8\", \"127.0.0.0/8\"]"));
    // A forwarded header naming an allowed address changes nothing.
    let r = post(&edge, "/mcp", &[("X-Forwarded-For", "192.0.2.1"), ("Forwarded", "for=192.0.2.1")], &call("echo"));
    assert_refused(&r, 403, -32600);
    assert!(r.text().contains("allow_ips"), "{}", r.text());
    edge.wait_metric("mcp_edge_rejections_total{reason=\"ip_denied\"} 1");
    assert_alive_and_only_probe(&edge, "/ok", &main);
}

#[test]
fn an_allow_list_admits_its_addresses_only() {
    let main = backend("main");
    let edge = Edge::start(&routes(&main, "allow_ips = [\"10.0.0.0/8\"]"));
    assert_refused(&post(&edge, "/mcp", &[], &call("echo")), 403, -32600);
    assert_alive_and_only_probe(&edge, "/ok", &main);

    let other = backend("main");
    let edge =
        Edge::start(&routes(&other, "allow_ips = [\"10.0.0.0/8\", \"127.0.0.1\"]\ndeny_ips = [\"192.0.2.0/24\"]"));
    let r = post(&edge, "/mcp", &[], &call("echo"));
    assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("main")), "{}", r.text());
}

#[test]
fn an_ipv4_client_of_a_dual_stack_listener_meets_ipv4_lists() {
    let main = backend("main");
    let body = routes(&main, "deny_ips = [\"127.0.0.1/32\"]");
    let edge = Edge::start_opts(&body, Opts { listen_ip: Some("[::]"), ..Opts::default() });
    assert_refused(&post(&edge, "/mcp", &[], &call("echo")), 403, -32600);
}

#[test]
fn a_listener_deny_list_closes_the_connection_unanswered() {
    let main = backend("main");
    let edge = Edge::start_opts(&routes(&main, ""), Opts { proxy: "deny_ips = [\"127.0.0.0/8\"]", ..Opts::default() });
    // The harness's readiness probe was one denied connection already; it is counted once
    // the proxy has closed it (seen late on a loaded machine: read first, it made `before` 0).
    crate::common::wait_until("the probe's denial to be counted", Duration::from_secs(5), || {
        counter(&edge, "mcp_edge_connections_denied_total") >= 1
    });
    let before = counter(&edge, "mcp_edge_connections_denied_total");
    let mut conn = TcpStream::connect(("127.0.0.1", edge.port)).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let _ = conn.write_all(&raw::post(edge.port, "/ok", &[], &call("echo")));
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    assert!(answer.is_empty(), "closed without a word: {}", String::from_utf8_lossy(&answer));
    edge.wait_metric(&format!("mcp_edge_connections_denied_total {}", before + 1));
    assert!(main.rec.lines().is_empty(), "the backend received: {:?}", main.rec.lines());
}
