//! One request's fault stays in that request: a panic inside one request's handling (forced
//! through the operator-only MCP_EDGE_FAULT_PATH) ends that request's connection only. An SSE
//! stream open at the time keeps streaming, later requests are served, and the panic is logged
//! once and counted.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;

use common::http::{self, post_mcp};
use common::{pool, Edge, Mock, Opts};

const PING: &str = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;

#[test]
fn a_panic_in_one_request_leaves_every_other_request_and_stream_alone() {
    let mock = Mock::start("m", false);
    let body = format!("{}[[route]]\nname = \"main\"\npath_prefix = \"/\"\npool = \"p\"\n", pool("p", &[&mock], ""));
    let edge = Edge::start_opts(&body, Opts { env: &[("MCP_EDGE_FAULT_PATH", "/boom")], ..Opts::default() });

    // A tool call streaming progress, open before the fault and still running after it.
    let slow = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"slow","arguments":{"steps":5,"delay_ms":300}}}"#;
    let mut stream = http::connect(edge.port);
    stream
        .write_all(format!("POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{slow}", slow.len()).as_bytes())
        .expect("open stream");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).expect("status line");
    assert!(status.contains(" 200 "), "{status}");

    // The faulting request: its connection ends without an answer.
    let mut s = http::connect(edge.port);
    s.write_all(format!("POST /boom HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{PING}", PING.len()).as_bytes())
        .expect("send");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    assert!(answer.is_empty(), "the faulting request got no answer: {}", String::from_utf8_lossy(&answer));

    // Everything else carries on.
    let r = post_mcp(edge.port, "/mcp", &[], PING);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(http::get(edge.admin, "/livez").status, 200);
    let mut rest = String::new();
    reader.read_to_string(&mut rest).expect("the stream runs to its end");
    assert!(rest.contains(r#""id":7"#) && rest.contains("result"), "the streamed call finished: {rest}");
    edge.wait_metric("mcp_edge_panics_total 1");
    edge.wait_log("panic contained");
    assert_eq!(edge.log().matches("panic contained").count(), 1, "logged once");
}
