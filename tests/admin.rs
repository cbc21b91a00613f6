//! The admin listener: liveness, readiness after the first health pass, status with backend
//! health, the effective config without secrets, Prometheus metrics with bounded labels, and
//! reload (a bad file is refused and the old config keeps serving).

mod common;

use common::http::{get, post_mcp, request};
use common::{pool, Edge, Mock, Opts};

fn config(mock: &Mock, tools_label: &str) -> String {
    format!("[metrics]\ntools = [\"{tools_label}\"]\n\n{}[[route]]\nname = \"main\"\npath = \"/mcp\"\npool = \"p\"\ninspect = \"always\"\n", pool("p", &[mock], ""))
}

#[test]
fn health_status_and_config_endpoints_describe_the_running_proxy() {
    let mock = Mock::start("m", false);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("key");
    std::fs::write(&key, "super-secret-session-key-material-0123456789").expect("key");
    let edge = Edge::start_opts(&config(&mock, "echo"), Opts { key: Some(&key), ..Opts::default() });
    assert_eq!(get(edge.admin, "/livez").status, 200);
    assert_eq!(get(edge.admin, "/readyz").status, 200);
    let status = get(edge.admin, "/status").json();
    assert_eq!(status["ready"], true);
    assert_eq!(status["config"]["generation"], 1);
    assert_eq!(status["config"]["digest"].as_str().map(str::len), Some(64));
    assert_eq!(status["pools"][0]["backends"][0]["addr"], mock.addr());
    assert_eq!(status["pools"][0]["backends"][0]["healthy"], true);
    let config = get(edge.admin, "/config");
    assert_eq!(config.status, 200);
    assert!(!config.text().contains("super-secret"), "no secret in /config");
    assert_eq!(config.json()["routes"][0]["inspect"], "always");
    assert_eq!(get(edge.admin, "/nope").status, 404);
    assert_eq!(request(edge.admin, "POST", "/status", &[], b"").status, 405);
}

#[test]
fn metrics_count_by_route_method_and_bounded_tool_labels() {
    let mock = Mock::start("m", false);
    let edge = Edge::start(&config(&mock, "echo"));
    for tool in ["echo", "echo", "attacker-chosen-name-1", "attacker-chosen-name-2"] {
        let r = post_mcp(
            edge.port,
            "/mcp",
            &[],
            &format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{tool}"}}}}"#),
        );
        assert_eq!(r.status, 200);
    }
    post_mcp(edge.port, "/mcp", &[], "{oops");
    edge.wait_metric(r#"mcp_edge_rejections_total{reason="parse_error"} 1"#);
    let m = edge.metrics();
    assert!(
        m.contains(r#"mcp_edge_requests_total{method="tools/call",route="main",status="200",tool="echo"} 2"#),
        "{m}"
    );
    assert!(
        m.contains(r#"mcp_edge_requests_total{method="tools/call",route="main",status="200",tool="other"} 2"#),
        "{m}"
    );
    assert!(m.contains(r#"mcp_edge_rejections_total{reason="parse_error"} 1"#), "{m}");
    assert!(m.contains("mcp_edge_request_duration_seconds_bucket"), "{m}");
    assert!(m.contains(&format!(r#"mcp_edge_upstream_healthy{{backend="{}",pool="p"}} 1"#, mock.addr())), "{m}");
    assert!(!m.contains("attacker-chosen"), "client input never becomes a label");
}

#[test]
fn reload_applies_a_valid_file_and_refuses_a_broken_one() {
    let (a, b) = (Mock::start("first", false), Mock::start("second", false));
    let edge = Edge::start(&config(&a, "echo"));
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}}"#;
    assert_eq!(post_mcp(edge.port, "/mcp", &[], ping).header("x-mock-backend"), Some("first"));

    edge.rewrite(&config(&b, "echo"), &Opts::default());
    let r = request(edge.admin, "POST", "/reload", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["generation"], 2);
    assert_eq!(post_mcp(edge.port, "/mcp", &[], ping).header("x-mock-backend"), Some("second"));

    edge.rewrite(&config(&b, "echo").replace("pool = \"p\"\ninspect", "pool = \"missing\"\ninspect"), &Opts::default());
    let r = request(edge.admin, "POST", "/reload", &[], b"");
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().is_some_and(|e| e.contains("no pool named `missing`")), "{}", r.text());
    assert_eq!(
        post_mcp(edge.port, "/mcp", &[], ping).header("x-mock-backend"),
        Some("second"),
        "old config still serves"
    );
    let status = get(edge.admin, "/status").json();
    assert_eq!(status["config"]["generation"], 2);
    assert!(status["config"]["last_error"].as_str().is_some_and(|e| e.contains("missing")));
}

#[test]
fn each_request_writes_one_access_line_without_secrets() {
    let mock = Mock::start("m", true);
    let edge = Edge::start(&config(&mock, "echo"));
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let token = post_mcp(edge.port, "/mcp", &[], init).header("mcp-session-id").expect("token").to_owned();
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"secret-argument"}}}"#;
    assert_eq!(post_mcp(edge.port, "/mcp?session_id=e1.zzz", &[("Mcp-Session-Id", &token)], call).status, 200);
    edge.wait_log("mcp=tools/call tool=echo");
    let log = edge.log();
    let line = log.lines().find(|l| l.contains("mcp=tools/call")).expect("access line");
    assert!(
        line.contains(r#"route=main method=POST path="/mcp" mcp=tools/call tool=echo era=legacy status=200"#),
        "{line}"
    );
    assert_eq!(log.lines().filter(|l| l.contains(" access ")).count(), 2, "one line per request:\n{log}");
    assert!(
        !log.contains(&token) && !log.contains("e1.zzz") && !log.contains("secret-argument"),
        "no tokens or bodies in logs:\n{log}"
    );
}
