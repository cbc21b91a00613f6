//! The official MCP conformance suite's `dns-rebinding-protection` scenario, run against a
//! real Python SDK server behind mcp-edge. The server's own Host/Origin check is off (the
//! peer script's default), so only the proxy can pass it: a foreign Host and Origin must get a
//! 4xx, a localhost one a 2xx.

use crate::common::peers::Peers;
use crate::common::Edge;

#[test]
fn conformance_dns_rebinding_protection_passes_through_the_proxy() {
    let peers = Peers::load();
    let server = peers.server("PEERS_PY2_SERVER", &["--name", "main"]);
    let edge = Edge::start(&format!(
        "[[pool]]\nname = \"main\"\nbackends = [\"{}\"]\npath = \"/mcp\"\n\n[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"main\"\n",
        server.addr()
    ));
    let checks = peers.conformance("dns-rebinding-protection", &edge.url("/mcp"));
    let ids: Vec<&str> = checks.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["localhost-host-rebinding-rejected", "localhost-host-valid-accepted"], "{checks:#?}");
    for check in &checks {
        assert_eq!(check.status, "SUCCESS", "{}: {:#}", check.id, check.detail);
    }
}
