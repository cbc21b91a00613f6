//! The error table: every kind of bad input gets its status and a JSON-RPC error body that
//! echoes the request id when known, and nothing reaches a backend.

mod common;

use common::http::{post_mcp, request, JSON_HEADERS};
use common::{pool, Edge, Mock, Opts, DEAD_BACKEND};
use serde_json::Value;

/// One route reading every body, in front of `mock`.
fn edge(mock: &Mock) -> Edge {
    let body = format!(
        "{}[[route]]\nname = \"main\"\npath = \"/mcp\"\npool = \"p\"\ninspect = \"always\"\n",
        pool("p", &[mock], "")
    );
    Edge::start_opts(&body, Opts { proxy: "max_body_bytes = 4096", ..Opts::default() })
}

fn assert_rpc_error(r: &common::http::Resp, status: u16, code: i64, id: Value) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["id"], id, "{body}");
    assert!(r.header("x-mock-backend").is_none(), "the backend must not have answered");
}

#[test]
fn malformed_bodies_get_parse_and_invalid_request_errors() {
    let mock = Mock::start("m", false);
    let edge = edge(&mock);
    assert_rpc_error(&post_mcp(edge.port, "/mcp", &[], "{not json"), 400, -32700, Value::Null);
    assert_rpc_error(&post_mcp(edge.port, "/mcp", &[], r#"{"id":7,"method":"ping"}"#), 400, -32600, 7.into());
    assert_rpc_error(&post_mcp(edge.port, "/mcp", &[], r#"{"jsonrpc":"2.0","id":"x"}"#), 400, -32600, "x".into());
    assert_rpc_error(&post_mcp(edge.port, "/mcp", &[], "[1,2"), 400, -32700, Value::Null);
}

#[test]
fn oversized_bodies_get_413() {
    let mock = Mock::start("m", false);
    let edge = edge(&mock);
    let big = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#, "x".repeat(5000));
    assert_rpc_error(&post_mcp(edge.port, "/mcp", &[], &big), 413, -32600, Value::Null);
}

#[test]
fn unknown_paths_and_unmatched_rules_get_404_method_not_found() {
    let mock = Mock::start("m", false);
    let body = format!(
        "{}[[route]]\nname = \"rules-only\"\npath = \"/mcp\"\n[[route.rule]]\ntool = \"deploy_*\"\npool = \"p\"\n",
        pool("p", &[&mock], "")
    );
    let edge = Edge::start(&body);
    assert_rpc_error(
        &post_mcp(edge.port, "/nowhere", &[], r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#),
        404,
        -32601,
        Value::Null,
    );
    let r =
        post_mcp(edge.port, "/mcp", &[], r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo"}}"#);
    assert_rpc_error(&r, 404, -32601, 2.into());
    let r = post_mcp(
        edge.port,
        "/mcp",
        &[],
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"deploy_x"}}"#,
    );
    assert_eq!(r.status, 200, "the rule still routes: {}", r.text());
}

#[test]
fn unknown_session_tokens_get_404() {
    let mock = Mock::start("m", true);
    let edge = edge(&mock);
    let r =
        post_mcp(edge.port, "/mcp", &[("Mcp-Session-Id", "e1.forged")], r#"{"jsonrpc":"2.0","id":4,"method":"ping"}"#);
    assert_rpc_error(&r, 404, -32001, 4.into());
    let r = request(edge.port, "DELETE", "/mcp", &[("Mcp-Session-Id", "e1.forged")], b"");
    assert_rpc_error(&r, 404, -32001, Value::Null);
}

#[test]
fn no_healthy_backend_is_503_and_failed_connects_are_502() {
    // A pool whose only backend never listens: the health check marks it down -> 503.
    let body = format!(
        "[[pool]]\nname = \"p\"\nbackends = [\"{DEAD_BACKEND}\"]\n[pool.health]\ncheck = \"tcp\"\ninterval = \"1s\"\n\n[[route]]\nname = \"main\"\npath = \"/mcp\"\npool = \"p\"\n"
    );
    let edge = Edge::start(&body);
    let r = post_mcp(edge.port, "/mcp", &[], r#"{"jsonrpc":"2.0","id":5,"method":"ping"}"#);
    // Every MCP route reads its bodies, so even upstream failures echo the id.
    assert_rpc_error(&r, 503, -32000, 5.into());
    // Without health checks the proxy tries to connect, is refused, and says 502.
    let body = body.replace("check = \"tcp\"", "check = \"none\"");
    let edge = Edge::start(&body);
    let r = request(edge.port, "POST", "/mcp", &JSON_HEADERS, br#"{"jsonrpc":"2.0","id":6,"method":"ping"}"#);
    assert_rpc_error(&r, 502, -32000, 6.into());
    edge.wait_metric(r#"mcp_edge_rejections_total{reason="upstream_failed"} 1"#);
}

#[test]
fn disallowed_origins_get_403() {
    let mock = Mock::start("m", false);
    let body = format!(
        "{}[[route]]\nname = \"main\"\npath = \"/mcp\"\npool = \"p\"\nallowed_origins = [\"https://app.example\"]\n",
        pool("p", &[&mock], "")
    );
    let edge = Edge::start(&body);
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    assert_eq!(post_mcp(edge.port, "/mcp", &[("Origin", "https://evil.example")], ping).status, 403);
    assert_eq!(post_mcp(edge.port, "/mcp", &[("Origin", "https://app.example")], ping).status, 200);
    assert_eq!(post_mcp(edge.port, "/mcp", &[], ping).status, 200);
}
