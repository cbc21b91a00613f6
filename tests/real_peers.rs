//! Real MCP clients talking to real MCP servers through mcp-edge: the Python SDK 2.x (both
//! eras) and 1.x (FastMCP), `@modelcontextprotocol/server-everything` in streamableHttp and
//! sse modes, and the TypeScript SDK client. Each story starts its own servers and proxy.

mod common;

use common::peers::{PeerServer, Peers};
use common::Edge;
use serde_json::Value;

const PY2: &str = "PEERS_PY2_SERVER";
const PY1: &str = "PEERS_PY1_SERVER";
const EVERYTHING: &str = "PEERS_EVERYTHING";
const PY2_CLIENT: &str = "PEERS_PY2_CLIENT";
const PY1_CLIENT: &str = "PEERS_PY1_CLIENT";
const TS_CLIENT: &str = "PEERS_TS_CLIENT";

/// A pool over real servers, health-checked with `check`.
fn pool(name: &str, servers: &[&PeerServer], check: &str) -> String {
    let list: Vec<String> = servers.iter().map(|s| format!("\"{}\"", s.addr())).collect();
    format!("[[pool]]\nname = \"{name}\"\nbackends = [{}]\npath = \"/mcp\"\n[pool.health]\ncheck = \"{check}\"\ninterval = \"1s\"\n\n", list.join(", "))
}

/// `/mcp` served by pool `main`, with `deploy_*` tools sent to pool `deploy` when it exists.
fn mcp_route(with_deploy_rule: bool) -> String {
    let rule = if with_deploy_rule { "[[route.rule]]\ntool = \"deploy_*\"\npool = \"deploy\"\n" } else { "" };
    format!("[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"main\"\n{rule}")
}

/// Everything else (the legacy /sse and its message endpoint) passes through to `main`.
const SSE_ROUTE: &str = "[[route]]\nname = \"legacy-sse\"\npath_prefix = \"/\"\npool = \"main\"\ninspect = \"never\"\n";

fn assert_progress_streamed(r: &Value, at_least: usize) {
    let progress = r["progress"].as_array().expect("progress list");
    let result_t = r["result_t"].as_f64().expect("result time");
    assert!(progress.len() >= at_least, "{r}");
    let first = progress[0]["t"].as_f64().expect("t");
    assert!(first < result_t - 0.7, "first progress must arrive well before the result: {r}");
}

#[test]
fn python_sdk_2_sessions_pagination_and_progress_over_two_stateful_backends() {
    let peers = Peers::load();
    let (a, b) = (peers.server(PY2, &["--name", "A"]), peers.server(PY2, &["--name", "B"]));
    let edge = Edge::start(&(pool("main", &[&a, &b], "mcp") + &mcp_route(false)));
    let url = edge.url("/mcp");

    let r = peers.client(PY2_CLIENT, &url, &["--scenario", "basic"]);
    assert_eq!((r["pages"].as_u64(), r["tools_count"].as_u64()), (Some(3), Some(66)), "{r}");
    let server = r["server"].as_str().expect("server").to_owned();
    assert_eq!(r["resource_text"], format!("Hello from {server}"));
    assert_eq!(r["prompt_text"], format!("Hello, proxy! ({server})"));
    assert!(r["session_id"].as_str().is_some_and(|s| s.starts_with("e1.")), "the client holds a proxy token: {r}");

    let mut backends = std::collections::HashSet::new();
    for _ in 0..2 {
        let r = peers.client(PY2_CLIENT, &url, &["--scenario", "many_calls", "--count", "20"]);
        let names: Vec<&str> = r["names"].as_array().expect("names").iter().filter_map(Value::as_str).collect();
        assert_eq!(names.len(), 10, "half of the 20 calls are whoami: {r}");
        assert!(names.iter().all(|n| *n == names[0]), "one session, one backend: {names:?}");
        backends.insert(names[0].to_owned());
    }
    assert_eq!(backends.len(), 2, "consecutive sessions land on both backends");

    assert_progress_streamed(&peers.client(PY2_CLIENT, &url, &["--scenario", "progress"]), 3);
    assert_progress_streamed(&peers.client(TS_CLIENT, &url, &["--scenario", "progress"]), 3);

    for client in [PY2_CLIENT, TS_CLIENT] {
        let r = peers.client(client, &url, &["--scenario", "terminate"]);
        assert_eq!((r["delete_status"].as_u64(), r["after_delete_status"].as_u64()), (Some(200), Some(404)), "{r}");
    }
}

#[test]
fn modern_era_requests_are_routed_by_tool_rules() {
    let peers = Peers::load();
    let (main, deploy) = (peers.server(PY2, &["--name", "main"]), peers.server(PY2, &["--name", "deploy"]));
    let edge = Edge::start(&(pool("main", &[&main], "mcp") + &pool("deploy", &[&deploy], "mcp") + &mcp_route(true)));
    let url = edge.url("/mcp");
    let modern = |tool: &str, args: &str| {
        peers.client(PY2_CLIENT, &url, &["--era", "modern", "--scenario", "tool", "--tool", tool, "--args", args])
    };
    let r = modern("deploy_app", r#"{"env":"staging"}"#);
    assert_eq!(r["text"], "deployed app by deploy", "{r}");
    assert!(
        r["http"]
            .as_array()
            .is_some_and(|h| h.iter().any(|e| e.as_str().is_some_and(|e| e.contains("mcp-param-env=staging")))),
        "{r}"
    );
    assert_eq!(modern("whoami", "{}")["text"], "main");
    let r = peers.client(PY2_CLIENT, &url, &["--scenario", "modern"]);
    assert_eq!((r["protocol_version"].as_str(), r["pages"].as_u64()), (Some("2026-07-28"), Some(3)), "{r}");
    assert_progress_streamed(&peers.client(PY2_CLIENT, &url, &["--era", "modern", "--scenario", "progress"]), 3);
    // A dual-era client probes with server/discover; a legacy server's 400 body must pass through.
    let legacy = peers.server(PY1, &["--name", "old"]);
    let edge_old = Edge::start(&(pool("main", &[&legacy], "mcp") + &mcp_route(false)));
    let r =
        peers.client(PY2_CLIENT, &edge_old.url("/mcp"), &["--era", "auto", "--scenario", "many_calls", "--count", "2"]);
    assert_eq!(r["protocol_version"], "2025-11-25", "{r}");
}

#[test]
fn session_less_legacy_servers_are_routed_by_tool_rules() {
    let peers = Peers::load();
    let (main, deploy) = (
        peers.server(PY2, &["--name", "main", "--stateless"]),
        peers.server(PY1, &["--name", "deploy", "--stateless"]),
    );
    let edge = Edge::start(&(pool("main", &[&main], "mcp") + &pool("deploy", &[&deploy], "mcp") + &mcp_route(true)));
    let url = edge.url("/mcp");
    for client in [PY2_CLIENT, PY1_CLIENT, TS_CLIENT] {
        let r = peers.client(client, &url, &["--scenario", "tool", "--tool", "whoami"]);
        assert_eq!(r["text"], "main", "{client}: {r}");
    }
    // FastMCP 1.x has no deploy tools: the call reaches it (and it says so), proving the route.
    let r = peers.client(PY2_CLIENT, &url, &["--scenario", "tool", "--tool", "deploy_app"]);
    assert_eq!(r["is_error"], true, "{r}");
    assert!(r["text"].as_str().is_some_and(|t| t.contains("deploy_app")), "{r}");
}

#[test]
fn fastmcp_1x_over_streamable_http_and_the_legacy_sse_transport() {
    let peers = Peers::load();
    let (b1, b2) = (peers.server(PY1, &["--name", "B1", "--sse"]), peers.server(PY1, &["--name", "B2", "--sse"]));
    let edge = Edge::start(&(pool("main", &[&b1, &b2], "tcp") + &mcp_route(false) + SSE_ROUTE));
    let r = peers.client(PY1_CLIENT, &edge.url("/mcp"), &["--scenario", "basic"]);
    assert!(r["server"].as_str().is_some_and(|s| s.starts_with('B')), "{r}");
    assert_progress_streamed(&peers.client(PY1_CLIENT, &edge.url("/mcp"), &["--scenario", "progress"]), 3);
    for client in [PY1_CLIENT, PY2_CLIENT, TS_CLIENT] {
        for _ in 0..2 {
            let r = peers.client(
                client,
                &edge.url("/sse"),
                &["--transport", "sse", "--scenario", "many_calls", "--count", "10"],
            );
            let names: Vec<&str> = r["names"].as_array().expect("names").iter().filter_map(Value::as_str).collect();
            assert!(names.len() == 5 && names.iter().all(|n| *n == names[0]), "{client}: {r}");
        }
    }
    assert_progress_streamed(
        &peers.client(PY1_CLIENT, &edge.url("/sse"), &["--transport", "sse", "--scenario", "progress"]),
        3,
    );
}

#[test]
fn server_everything_in_both_modes_with_typescript_and_python_clients() {
    let peers = Peers::load();
    let (h1, h2) = (
        peers.server(EVERYTHING, &["--mode", "streamableHttp"]),
        peers.server(EVERYTHING, &["--mode", "streamableHttp"]),
    );
    let edge = Edge::start(&(pool("main", &[&h1, &h2], "mcp") + &mcp_route(false)));
    let url = edge.url("/mcp");
    let r = peers.client(TS_CLIENT, &url, &["--scenario", "basic"]);
    assert_eq!(
        (r["server_info"].as_str(), r["echo"].as_str()),
        (Some("mcp-servers/everything"), Some("Echo: hello proxy")),
        "{r}"
    );
    assert_progress_streamed(&peers.client(TS_CLIENT, &url, &["--scenario", "progress"]), 2);
    assert_eq!(peers.client(PY2_CLIENT, &url, &["--scenario", "many_calls", "--count", "20"])["echoes"], 10);

    let sse = peers.server(EVERYTHING, &["--mode", "sse"]);
    let edge = Edge::start(&(pool("main", &[&sse], "tcp") + SSE_ROUTE));
    let r = peers.client(TS_CLIENT, &edge.url("/sse"), &["--transport", "sse", "--scenario", "basic"]);
    assert_eq!(r["echo"], "Echo: hello proxy", "{r}");
    assert_progress_streamed(
        &peers.client(PY2_CLIENT, &edge.url("/sse"), &["--transport", "sse", "--scenario", "progress"]),
        2,
    );
}
