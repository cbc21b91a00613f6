//! Cheap inputs that cost the proxy dear. Log flooding: a client can make one connection after
//! another and drop each mid-head; those are counted in `client_aborts_total` and logged at
//! debug, and Pingora's own ERROR line for each (`pingora_proxy`) stays off even when the
//! operator sets `RUST_LOG` (the test harness runs with `RUST_LOG=info`). CPU: Pingora parses a
//! head again from its first byte after every read (up to 1 MiB), so a trickled head costs
//! quadratic CPU; heads over 64 KiB are refused with 431.

use std::io::Write;
use std::net::TcpStream;

use crate::common::{http, raw, Edge};
use crate::story::*;

fn one_route(main: &Backend) -> Edge {
    Edge::start(&format!("{}[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"main\"\n", pool("main", main)))
}

/// A POST of `call("echo")` whose head carries `pad` bytes in 1 KiB `X-Pad-N` headers.
fn padded_post(edge: &Edge, pad: usize) -> Vec<u8> {
    let filler = "p".repeat(1024);
    let pads: Vec<String> = (0..pad / 1024).map(|i| format!("X-Pad-{i}: {filler}")).collect();
    let len = format!("Content-Length: {}", call("echo").len());
    let host = format!("Host: {}", host(edge));
    let mut lines =
        vec![host.as_str(), "Content-Type: application/json", "Accept: application/json, text/event-stream"];
    lines.extend(pads.iter().map(String::as_str));
    lines.extend([len.as_str(), "Connection: close"]);
    raw::lines("POST /mcp HTTP/1.1", &lines, &call("echo"))
}

#[test]
fn heads_over_64_kib_get_431_and_reach_no_backend() {
    let main = backend("main");
    let edge = one_route(&main);
    let r = raw::send(edge.port, &padded_post(&edge, 100 * 1024));
    assert_eq!(r.status, 431, "{}", r.text());
    assert_local(&r);
    main.rec.assert_nothing();
    // A large head under the limit still passes.
    let r = raw::send(edge.port, &padded_post(&edge, 48 * 1024));
    assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("main")), "{}", r.text());
    assert_eq!(main.rec.wait_count(1).len(), 1);
    assert_eq!(http::try_status(edge.admin, "/livez"), Some(200), "mcp-edge /livez");
}

#[test]
fn clients_dropping_heads_flood_no_error_lines_under_rust_log() {
    let main = backend("main");
    let edge = one_route(&main);
    const DROPPED: usize = 20;
    for _ in 0..DROPPED {
        let mut s = TcpStream::connect(("127.0.0.1", edge.port)).expect("connect");
        s.write_all(b"POST /mcp HTTP/1.1\r\nHost: loc").expect("write");
    }
    edge.wait_metric(&format!("mcp_edge_client_aborts_total{{phase=\"head\"}} {DROPPED}"));
    assert_alive_and_only_probe(&edge, "/mcp", &main);
    let log = edge.log();
    let loud: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert!(loud.is_empty(), "{} ERROR lines for {DROPPED} dropped heads:\n{}", loud.len(), loud.join("\n"));
}
