use super::*;
use crate::config::model::{Inspect, PathMatch, TimeoutOverrides};

fn req(target: &str, headers: &[(&str, &str)]) -> RequestHeader {
    let mut r = RequestHeader::build("POST", target.as_bytes(), None).expect("request");
    for (n, v) in headers {
        r.append_header(n.to_string(), *v).expect("header");
    }
    r
}

fn route(origins: Origins) -> RouteConfig {
    RouteConfig {
        access_sample: 1.0,
        trace_sample: None,
        name: "r".into(),
        path: PathMatch::Exact("/mcp".into()),
        host: None,
        listener: None,
        pool: Some(0),
        fallback: vec![],
        inspect: Inspect::Always,
        batches: false,
        origins,
        allowed_hosts: vec!["mcp.internal".into()],
        ips: Default::default(),
        limits: vec![],
        rules: vec![],
        timeouts: TimeoutOverrides::default(),
        idempotent_tools: vec![],
        needs_call: false,
        serves: vec![0],
        auth: Default::default(),
        policy: None,
        headers: Default::default(),
        federation: None,
    }
}

const LOOPBACK: Option<SocketAddr> = Some(SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080));
const PUBLIC: Option<SocketAddr> =
    Some(SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 5)), 8080));

fn refusal(r: &RequestHeader) -> &'static str {
    read(r).expect_err("refused").message
}

#[test]
fn duplicate_mcp_headers_are_refused() {
    for name in ["Mcp-Name", "mcp-method", "MCP-Protocol-Version", "Mcp-Session-Id", "Host", "Origin"] {
        let r = req("/mcp", &[("host", "h"), (name, "a"), (name, "b")]);
        let r = if name == "Host" { req("/mcp", &[("host", "a"), ("host", "b")]) } else { r };
        assert_eq!(refusal(&r), Reject::DUPLICATE_HEADER.message, "{name}");
    }
}

#[test]
fn connection_may_not_strip_what_the_proxy_routed_on() {
    let r = req("/mcp", &[("host", "h"), ("connection", "close, MCP-Protocol-Version, Mcp-Method")]);
    assert_eq!(refusal(&r), Reject::CONNECTION.message);
    let r = req("/mcp", &[("host", "h"), ("connection", "keep-alive, Authorization")]);
    assert_eq!(refusal(&r), Reject::CONNECTION.message);
    assert!(read(&req("/mcp", &[("host", "h"), ("connection", "keep-alive")])).is_ok());
}

#[test]
fn http11_needs_a_host_and_absolute_targets_must_agree_with_it() {
    assert_eq!(refusal(&req("/mcp", &[])), Reject::NO_HOST.message);
    assert_eq!(
        refusal(&req("http://a.tenant.example/mcp", &[("host", "other.example")])),
        Reject::HOST_MISMATCH.message
    );
    let absolute = req("http://a.tenant.example/mcp", &[]);
    assert_eq!(read(&absolute).expect("ok").host, Some("a.tenant.example"));
    let both = req("http://A.tenant.example/mcp", &[("host", "a.tenant.example")]);
    assert_eq!(read(&both).expect("ok").host, Some("A.tenant.example"));
}

#[test]
fn paths_are_canonical() {
    assert_eq!(read(&req("/%6Dcp", &[("host", "h")])).expect("ok").path, "/mcp");
    assert_eq!(refusal(&req("/%2Fmcp", &[("host", "h")])), Reject::BAD_PATH.message);
}

#[test]
fn loopback_listeners_serve_loopback_hosts_only() {
    let r = route(Origins::SameHost);
    let check = |host: &str, local| guard(&r, &req("/mcp", &[("host", host)]), Some(host), local);
    assert!(check("localhost:8080", LOOPBACK).is_ok());
    assert!(check("127.0.0.1:8080", LOOPBACK).is_ok());
    assert!(check("[::1]:8080", LOOPBACK).is_ok());
    assert!(check("mcp.internal", LOOPBACK).is_ok(), "allowed_hosts");
    assert_eq!(check("evil.example.com", LOOPBACK).map_err(|e| e.status), Err(403));
    assert_eq!(check("127.0.0.1.evil.com", LOOPBACK).map_err(|e| e.status), Err(403));
    assert!(check("evil.example.com", PUBLIC).is_ok(), "public listeners serve any Host");
}

#[test]
fn origins_must_be_the_request_authority_by_default() {
    let r = route(Origins::SameHost);
    let check = |origin: &str, host: &str, local| {
        guard(&r, &req("/mcp", &[("host", host), ("origin", origin)]), Some(host), local)
    };
    assert!(check("http://localhost:3000", "127.0.0.1:8080", LOOPBACK).is_ok(), "loopback page on a loopback listener");
    assert!(check("https://mcp.example.com", "mcp.example.com", PUBLIC).is_ok());
    assert!(check("https://mcp.example.com", "mcp.example.com:443", PUBLIC).is_ok());
    assert_eq!(check("http://evil.example.com", "127.0.0.1:8080", LOOPBACK).map_err(|e| e.status), Err(403));
    assert_eq!(check("https://evil.example.com", "mcp.example.com", PUBLIC).map_err(|e| e.status), Err(403));
    assert_eq!(check("null", "mcp.example.com", PUBLIC).map_err(|e| e.status), Err(403));
    assert!(
        guard(&r, &req("/mcp", &[("host", "mcp.example.com")]), Some("mcp.example.com"), PUBLIC).is_ok(),
        "no Origin"
    );
}

#[test]
fn origin_lists_and_the_wildcard() {
    let listed = route(Origins::List(vec!["https://app.example.com".into()]));
    let with = |r: &RouteConfig, o: &str| guard(r, &req("/mcp", &[("host", "h"), ("origin", o)]), Some("h"), PUBLIC);
    assert!(with(&listed, "https://APP.example.com/").is_ok());
    assert!(with(&listed, "https://other.example.com").is_err());
    assert!(with(&route(Origins::Any), "https://other.example.com").is_ok());
}

#[test]
fn a_standard_method_in_another_case_and_targets_not_in_origin_form_are_refused() {
    let mut r = req("/mcp", &[("host", "h")]);
    for method in ["post", "Get", "dELETE"] {
        r.set_method(http::Method::from_bytes(method.as_bytes()).expect("token"));
        assert_eq!(refusal(&r), Reject::METHOD_CASE.message, "{method}");
    }
    r.set_method(http::Method::from_bytes(b"PROPFIND").expect("token"));
    assert!(read(&r).is_ok(), "other methods are the backend's business");
    for target in ["mcp", "?/mcp", "*"] {
        assert_eq!(refusal(&req(target, &[("host", "h")])), Reject::BAD_PATH.message, "{target}");
    }
}
