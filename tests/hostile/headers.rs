//! Headers the proxy routes or guards by: modern-era `Mcp-Method`/`Mcp-Name` that must agree
//! with the body (D8), hop-by-hop stripping of routing headers, duplicated routing headers,
//! `Host` (missing, or disagreeing with an absolute-form target), and the MCP DNS-rebinding
//! rule for loopback listeners (Host and Origin).

use crate::common::raw::{self, RawResponse};
use crate::common::{Edge, Opts};
use crate::story::*;

fn deploy_rule(main: &Backend, deploy: &Backend) -> Edge {
    Edge::start(&format!(
        "{}{}[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"main\"\n[[route.rule]]\ntool = \"deploy_*\"\npool = \"deploy\"\n",
        pool("main", main),
        pool("deploy", deploy)
    ))
}

/// A JSON POST with exactly these header lines (Host included or not, as given).
fn post_lines(edge: &Edge, request_line: &str, extra: &[&str], body: &str) -> RawResponse {
    let len = format!("Content-Length: {}", body.len());
    let mut lines = vec![
        "Content-Type: application/json",
        "Accept: application/json, text/event-stream",
        &len,
        "Connection: close",
    ];
    lines.extend_from_slice(extra);
    raw::send(edge.port, &raw::lines(request_line, &lines, body))
}

#[test]
fn d8_modern_headers_naming_another_tool_than_the_body_are_refused() {
    let (main, deploy) = (backend("main"), backend("deploy"));
    let edge = deploy_rule(&main, &deploy);
    let r = post(&edge, "/mcp", &modern_call("safe"), &call("deploy_x"));
    assert_refused(&r, 400, -32020);
    assert_alive_and_only_probe(&edge, "/mcp", &main);
    deploy.rec.assert_nothing();
}

#[test]
fn d8_modern_headers_naming_another_tool_are_refused_on_a_route_without_rules() {
    let main = backend("main");
    let edge =
        Edge::start(&format!("{}[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"main\"\n", pool("main", &main)));
    assert_refused(&post(&edge, "/mcp", &modern_call("safe"), &call("deploy_x")), 400, -32020);
    assert_alive_and_only_probe(&edge, "/mcp", &main);
}

#[test]
fn d8_a_modern_tools_call_without_mcp_name_is_refused() {
    let (main, deploy) = (backend("main"), backend("deploy"));
    let edge = deploy_rule(&main, &deploy);
    let h = [("MCP-Protocol-Version", MODERN), ("Mcp-Method", "tools/call")];
    assert_refused(&post(&edge, "/mcp", &h, &call("deploy_x")), 400, -32020);
    assert_alive_and_only_probe(&edge, "/mcp", &main);
    deploy.rec.assert_nothing();
}

#[test]
fn d8_a_modern_request_without_mcp_method_is_refused() {
    let (main, deploy) = (backend("main"), backend("deploy"));
    let edge = deploy_rule(&main, &deploy);
    let h = [("MCP-Protocol-Version", MODERN), ("Mcp-Name", "deploy_x")];
    assert_refused(&post(&edge, "/mcp", &h, &call("deploy_x")), 400, -32020);
    assert_alive_and_only_probe(&edge, "/mcp", &main);
    deploy.rec.assert_nothing();
}

#[test]
fn d8_modern_headers_that_match_the_body_are_forwarded_intact() {
    let (main, deploy) = (backend("main"), backend("deploy"));
    let edge = deploy_rule(&main, &deploy);
    let r = post(&edge, "/mcp", &modern_call("deploy_x"), &call("deploy_x"));
    assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("deploy")), "{}", r.text());
    let got = &deploy.rec.wait_count(1)[0];
    for (name, value) in modern_call("deploy_x") {
        assert_eq!(got.header_all(name), vec![value], "{name} reaches the backend as sent: {got:#?}");
    }
    assert_eq!(got.body, call("deploy_x"));
    main.rec.assert_nothing();
}

#[test]
fn routing_headers_named_hop_by_hop_are_refused_not_stripped() {
    let (main, deploy) = (backend("main"), backend("deploy"));
    let edge = deploy_rule(&main, &deploy);
    let mut h = modern_call("deploy_x");
    h.push(("Connection", "close, MCP-Protocol-Version, Mcp-Method, Mcp-Name"));
    let r = post(&edge, "/mcp", &h, &call("deploy_x"));
    assert_eq!(r.status, 400, "{}", r.text());
    assert_local(&r);
    assert_alive_and_only_probe(&edge, "/mcp", &main);
    deploy.rec.assert_nothing();
}

#[test]
fn duplicated_routing_headers_are_refused() {
    let (main, deploy) = (backend("main"), backend("deploy"));
    let edge = deploy_rule(&main, &deploy);
    let modern = |extra: (&'static str, &'static str)| {
        let mut h = modern_call("deploy_x");
        h.push(extra);
        h
    };
    let cases: [(&str, Vec<(&str, &str)>); 4] = [
        ("Mcp-Name", modern(("Mcp-Name", "safe"))),
        ("Mcp-Method", modern(("Mcp-Method", "tools/list"))),
        ("MCP-Protocol-Version", modern(("MCP-Protocol-Version", "2025-06-18"))),
        ("Mcp-Session-Id", vec![("Mcp-Session-Id", "e1.a"), ("Mcp-Session-Id", "e1.b")]),
    ];
    let answered: Vec<(&str, u16, Option<String>)> = cases
        .iter()
        .map(|(name, h)| {
            let r = post(&edge, "/mcp", h, &call("deploy_x"));
            (*name, r.status, r.header("x-mock-backend").map(str::to_owned))
        })
        .collect();
    assert_eq!(
        answered,
        cases.map(|(name, _)| (name, 400, None)),
        "(duplicated header, status, backend that answered)"
    );
    assert_alive_and_only_probe(&edge, "/mcp", &main);
    deploy.rec.assert_nothing();
}

#[test]
fn a_request_without_host_is_refused() {
    let main = backend("main");
    let edge =
        Edge::start(&format!("{}[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"main\"\n", pool("main", &main)));
    let r = post_lines(&edge, "POST /mcp HTTP/1.1", &[], &call("echo"));
    assert_eq!(r.status, 400, "{}", r.text());
    assert_local(&r);
    assert_alive_and_only_probe(&edge, "/mcp", &main);
}

/// Listens on 0.0.0.0, so the loopback Host rule (below) does not decide these stories.
fn tenant_edge(main: &Backend, tenant: &Backend) -> Edge {
    let routes = "[[route]]\nname = \"tenant\"\nhost = \"*.tenant.example\"\npath = \"/mcp\"\npool = \"tenant\"\n\n[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"main\"\n";
    let body = format!("{}{}{routes}", pool("main", main), pool("tenant", tenant));
    Edge::start_opts(&body, Opts { listen_ip: Some("0.0.0.0"), ..Opts::default() })
}

#[test]
fn an_absolute_form_target_that_disagrees_with_host_is_refused() {
    let (main, tenant) = (backend("main"), backend("tenant"));
    let edge = tenant_edge(&main, &tenant);
    let r = post_lines(&edge, "POST http://a.tenant.example/mcp HTTP/1.1", &["Host: other.example"], &call("echo"));
    assert_eq!(r.status, 400, "{}", r.text());
    assert_local(&r);
    assert_alive_and_only_probe(&edge, "/mcp", &main);
    tenant.rec.assert_nothing();
}

#[test]
fn an_absolute_form_target_is_routed_by_its_authority() {
    let (main, tenant) = (backend("main"), backend("tenant"));
    let edge = tenant_edge(&main, &tenant);
    for (i, host) in [&["Host: a.tenant.example"][..], &[]].into_iter().enumerate() {
        let r = post_lines(&edge, "POST http://a.tenant.example/mcp HTTP/1.1", host, &call("echo"));
        assert_eq!(r.header("x-mock-backend"), Some("tenant"), "Host {host:?}: {} {}", r.status, r.text());
        assert_eq!(tenant.rec.wait_count(i + 1)[i].body, call("echo"));
    }
    main.rec.assert_nothing();
}

fn loopback_edge(main: &Backend) -> Edge {
    Edge::start(&format!("{}[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"main\"\n", pool("main", main)))
}

#[test]
fn dns_rebinding_a_foreign_host_on_a_loopback_listener_is_forbidden() {
    let main = backend("main");
    let edge = loopback_edge(&main);
    let r = post_lines(&edge, "POST /mcp HTTP/1.1", &["Host: evil.example.com"], &call("echo"));
    assert_eq!(r.status, 403, "{}", r.text());
    assert_local(&r);
    main.rec.assert_nothing();
    for (i, host) in [format!("localhost:{}", edge.port), host(&edge)].iter().enumerate() {
        let r = post_lines(&edge, "POST /mcp HTTP/1.1", &[format!("Host: {host}").as_str()], &call("echo"));
        assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("main")), "Host {host}: {}", r.text());
        assert_eq!(main.rec.wait_count(i + 1).len(), i + 1);
    }
}

#[test]
fn dns_rebinding_a_foreign_origin_on_a_loopback_listener_is_forbidden() {
    let main = backend("main");
    let edge = loopback_edge(&main);
    let r = post(&edge, "/mcp", &[("Origin", "http://evil.example.com")], &call("echo"));
    assert_eq!(r.status, 403, "{}", r.text());
    assert_local(&r);
    main.rec.assert_nothing();
    let local = format!("http://localhost:{}", edge.port);
    for (i, origin) in [None, Some(local.as_str())].into_iter().enumerate() {
        let h: Vec<(&str, &str)> = origin.map(|o| ("Origin", o)).into_iter().collect();
        let r = post(&edge, "/mcp", &h, &call("echo"));
        assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("main")), "Origin {origin:?}: {}", r.text());
        assert_eq!(main.rec.wait_count(i + 1).len(), i + 1);
    }
}

#[test]
fn f2_an_upgrade_ends_at_the_proxy_and_the_backend_answers_plain_http() {
    let main = backend("main");
    let edge =
        Edge::start(&format!("{}[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"main\"\n", pool("main", &main)));
    let upgrades: [&[&str]; 2] = [
        &["Upgrade: websocket", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"],
        &["Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQAAP__"],
    ];
    for (n, extra) in upgrades.iter().enumerate() {
        let host = format!("Host: {}", host(&edge));
        let body = call("echo");
        let len = format!("Content-Length: {}", body.len());
        let mut lines =
            vec![host.as_str(), "Content-Type: application/json", "Accept: application/json, text/event-stream"];
        lines.extend_from_slice(&[&len, "Connection: Upgrade, HTTP2-Settings"]);
        lines.extend_from_slice(extra);
        let r = raw::send(edge.port, &raw::lines("POST /mcp HTTP/1.1", &lines, &body));
        assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("main")), "{}", r.text());
        let got = main.rec.wait_count(n + 1);
        let seen = &got[n];
        for name in ["upgrade", "http2-settings"] {
            assert_eq!(seen.header(name), None, "{name} reached the backend: {seen:#?}");
        }
        assert!(
            !seen.header_all("connection").iter().any(|v| v.to_ascii_lowercase().contains("upgrade")),
            "Connection: Upgrade reached the backend: {seen:#?}"
        );
    }
}
