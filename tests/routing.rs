//! MCP-aware routing through the real binary: tool rules send tools to different pools in
//! both eras (legacy: read from the body; modern: from Mcp-Method/Mcp-Name headers), and
//! headers that disagree with the body are refused.

mod common;

use common::http::post_mcp;
use common::{pool, Edge, Mock};

fn call(tool: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":"c-{tool}","method":"tools/call","params":{{"name":"{tool}","arguments":{{}}}}}}"#
    )
}

/// The backend that answered, as the mock reports it.
fn served_by(resp: &common::http::Resp) -> String {
    resp.header("x-mock-backend").unwrap_or("<none>").to_owned()
}

fn two_pool_edge(main: &Mock, deploy: &Mock) -> Edge {
    Edge::start(&two_pool_config(main, deploy))
}

fn two_pool_config(main: &Mock, deploy: &Mock) -> String {
    format!(
        "{}{}[[route]]\nname = \"main\"\npath = \"/mcp\"\npool = \"main\"\n[[route.rule]]\ntool = \"deploy_*\"\npool = \"deploy\"\n",
        pool("main", &[main], ""),
        pool("deploy", &[deploy], "")
    )
}

#[test]
fn legacy_tool_calls_are_routed_by_the_name_in_the_body() {
    let (main, deploy) = (Mock::start("main", false), Mock::start("deploy", false));
    let edge = two_pool_edge(&main, &deploy);
    let r = post_mcp(edge.port, "/mcp", &[], &call("deploy_app"));
    assert_eq!((r.status, served_by(&r)), (200, "deploy".into()), "{}", r.text());
    let r = post_mcp(edge.port, "/mcp", &[], &call("echo"));
    assert_eq!((r.status, served_by(&r)), (200, "main".into()));
    // Methods without a rule go to the route's default pool.
    let r = post_mcp(edge.port, "/mcp", &[], r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
    assert_eq!(served_by(&r), "main");
    edge.wait_metric(r#"mcp_edge_requests_total{method="tools/call",route="main",status="200",tool="other"} 2"#);
}

#[test]
fn modern_requests_are_routed_by_headers_and_mismatches_refused() {
    let (main, deploy) = (Mock::start("main", false), Mock::start("deploy", false));
    let edge = two_pool_edge(&main, &deploy);
    fn modern(tool: &str) -> Vec<(&str, &str)> {
        vec![("MCP-Protocol-Version", "2026-07-28"), ("Mcp-Method", "tools/call"), ("Mcp-Name", tool)]
    }
    let r = post_mcp(edge.port, "/mcp", &modern("deploy_db"), &call("deploy_db"));
    assert_eq!((r.status, served_by(&r)), (200, "deploy".into()));
    let r = post_mcp(edge.port, "/mcp", &modern("echo"), &call("echo"));
    assert_eq!((r.status, served_by(&r)), (200, "main".into()));
}

#[test]
fn modern_header_body_mismatch_is_400_with_header_mismatch_error() {
    let (main, deploy) = (Mock::start("main", false), Mock::start("deploy", false));
    let edge = Edge::start(&format!(
        "{}{}[[route]]\nname = \"main\"\npath = \"/mcp\"\npool = \"main\"\ninspect = \"always\"\n[[route.rule]]\ntool = \"deploy_*\"\npool = \"deploy\"\n",
        pool("main", &[&main], ""),
        pool("deploy", &[&deploy], "")
    ));
    // Header says an allowed tool, body calls another: a bypass attempt if believed.
    let headers = [("MCP-Protocol-Version", "2026-07-28"), ("Mcp-Method", "tools/call"), ("Mcp-Name", "echo")];
    let r = post_mcp(edge.port, "/mcp", &headers, &call("deploy_app"));
    assert_eq!(r.status, 400);
    let body = r.json();
    assert_eq!(body["error"]["code"], -32020);
    assert_eq!(body["id"], "c-deploy_app");
    assert_eq!(served_by(&r), "<none>", "nothing reached a backend");
}

#[test]
fn batches_are_refused_unless_the_route_accepts_them_and_then_route_by_every_element() {
    let (main, deploy) = (Mock::start("main", false), Mock::start("deploy", false));
    let edge = two_pool_edge(&main, &deploy);
    let split = format!("[{},{}]", call("deploy_app"), call("echo"));
    let r = post_mcp(edge.port, "/mcp", &[], &split);
    assert_eq!((r.status, served_by(&r), r.json()["error"]["code"].as_i64()), (400, "<none>".into(), Some(-32600)));

    let edge =
        Edge::start(&two_pool_config(&main, &deploy).replace("pool = \"main\"\n", "pool = \"main\"\nbatches = true\n"));
    let r = post_mcp(edge.port, "/mcp", &[], &split);
    assert_eq!((r.status, served_by(&r)), (400, "<none>".into()), "elements for two pools: {}", r.text());
    let together = format!("[{},{}]", call("deploy_app"), call("deploy_db"));
    let r = post_mcp(edge.port, "/mcp", &[], &together);
    assert_eq!((r.status, served_by(&r)), (200, "deploy".into()), "{}", r.text());
    edge.wait_metric(r#"method="batch""#);
}

#[test]
fn base64_encoded_mcp_names_are_decoded_before_rules_see_them() {
    let (main, deploy) = (Mock::start("main", false), Mock::start("deploy", false));
    let edge = two_pool_edge(&main, &deploy);
    // "deploy_app" as the spec's =?base64?...?= form: must not slip past the deploy_* rule.
    let headers = [
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", "=?base64?ZGVwbG95X2FwcA==?="),
    ];
    let r = post_mcp(edge.port, "/mcp", &headers, &call("deploy_app"));
    assert_eq!((r.status, served_by(&r)), (200, "deploy".into()), "{}", r.text());
    let bad = [("MCP-Protocol-Version", "2026-07-28"), ("Mcp-Method", "tools/call"), ("Mcp-Name", "=?base64?***?=")];
    assert_eq!(post_mcp(edge.port, "/mcp", &bad, &call("deploy_app")).status, 400);
}
