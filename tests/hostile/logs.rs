//! Log flooding: a client can make one connection after another and drop each mid-head. Those
//! are counted in `client_aborts_total` and logged at debug; Pingora's own ERROR line for each
//! (`pingora_proxy`) stays off even when the operator sets `RUST_LOG` (the test harness runs
//! with `RUST_LOG=info`, as the README's "`RUST_LOG` overrides the level" invites).

use std::io::Write;
use std::net::TcpStream;

use crate::common::Edge;
use crate::story::*;

#[test]
fn clients_dropping_heads_flood_no_error_lines_under_rust_log() {
    let main = backend("main");
    let edge =
        Edge::start(&format!("{}[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"main\"\n", pool("main", &main)));
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
