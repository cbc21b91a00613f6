//! The admin listener: liveness, readiness after the first health pass, status with backend
//! health, the effective config without secrets, Prometheus metrics with bounded labels, and
//! reload (a bad file is refused and the old config keeps serving, and no error quotes its
//! values). The request guard: a DNS-rebinding `Host` and a cross-site `Origin` get 403, and
//! a configured bearer token is required everywhere but the probes.

mod common;

use common::http::{get, post_mcp, raw, request, Resp};
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
    assert_eq!(request(edge.admin, "POST", "/", &[], b"").status, 405, "the status page only reads");
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
    let answer =
        post_mcp(edge.port, "/mcp?debug=e1.zzz", &[("Mcp-Session-Id", &token), ("X-Request-Id", "trace-7")], call);
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("x-request-id"), Some("trace-7"), "the request id comes back");
    edge.wait_log("mcp=tools/call tool=echo");
    let log = edge.log();
    let line = log.lines().find(|l| l.contains("mcp=tools/call")).expect("access line");
    assert!(line.contains(" access id=trace-7 route=main pool="), "{line}");
    assert!(line.contains(r#"method=POST path="/mcp" mcp=tools/call tool=echo era=legacy status=200"#), "{line}");
    assert!(line.contains(&format!(" in={} ", call.len())) && !line.contains(" out=0 "), "body sizes: {line}");
    assert!(!line.contains(" ttfb_us=0 "), "time to first byte: {line}");
    assert_eq!(log.lines().filter(|l| l.contains(" access ")).count(), 2, "one line per request:\n{log}");
    assert!(
        !log.contains(&token) && !log.contains("e1.zzz") && !log.contains("secret-argument"),
        "no tokens or bodies in logs:\n{log}"
    );
}

/// One request written byte for byte (clients such as curl normalise `Host`), then closed.
fn raw_request(port: u16, method: &str, path: &str, host: &str, extra: &[(&str, &str)]) -> Resp {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: 0\r\n");
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    raw(port, req.as_bytes())
}

fn generation(edge: &Edge) -> u64 {
    get(edge.admin, "/status").json()["config"]["generation"].as_u64().expect("generation")
}

#[test]
fn dns_rebinding_hosts_are_refused_and_probes_still_answer() {
    let mock = Mock::start("m", false);
    let edge = Edge::start(&config(&mock, "echo"));
    let evil = format!("evil.example:{}", edge.admin);
    for path in ["/", "/status", "/config", "/metrics"] {
        let r = raw_request(edge.admin, "GET", path, &evil, &[]);
        assert_eq!(r.status, 403, "{path}: {}", r.text());
        assert!(!r.text().contains(&mock.addr()) && !r.text().contains("evil"), "{path} leaks: {}", r.text());
    }
    for probe in ["/livez", "/readyz"] {
        assert_eq!(raw_request(edge.admin, "GET", probe, &evil, &[]).status, 200, "{probe} answers any Host");
    }
    for host in [format!("localhost:{}", edge.admin), "localhost".into(), format!("[::1]:{}", edge.admin)] {
        assert_eq!(raw_request(edge.admin, "GET", "/status", &host, &[]).status, 200, "{host}");
    }
}

#[test]
fn a_cross_site_reload_is_refused_and_changes_nothing() {
    let (a, b) = (Mock::start("first", false), Mock::start("second", false));
    let edge = Edge::start(&config(&a, "echo"));
    edge.rewrite(&config(&b, "echo"), &Opts::default());
    let own = format!("127.0.0.1:{}", edge.admin);
    let r = raw_request(edge.admin, "POST", "/reload", &own, &[("Origin", "http://evil.example")]);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(generation(&edge), 1, "a cross-site POST reloads nothing");
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}}"#;
    assert_eq!(post_mcp(edge.port, "/mcp", &[], ping).header("x-mock-backend"), Some("first"));

    let same_site = format!("http://{own}");
    let r = raw_request(edge.admin, "POST", "/reload", &own, &[("Origin", &same_site)]);
    assert_eq!(r.status, 200, "the admin API's own origin may reload: {}", r.text());
    assert_eq!(generation(&edge), 2);
}

#[test]
fn a_configured_token_is_required_everywhere_but_the_probes_and_rotates_on_reload() {
    let mock = Mock::start("m", false);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("admin-token");
    std::fs::write(&file, "first-admin-token-0123456789\n").expect("token");
    // The harness writes `[admin]` last before the body, so these lines land in it.
    let body = format!("token_file = \"{}\"\n\n{}", file.display(), config(&mock, "echo"));
    let edge = Edge::start(&body);
    let host = format!("127.0.0.1:{}", edge.admin);
    let bearer = |t: &str| format!("Bearer {t}");
    for path in ["/", "/status", "/config", "/metrics"] {
        let r = raw_request(edge.admin, "GET", path, &host, &[]);
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"mcp-edge admin\""));
        let wrong = raw_request(edge.admin, "GET", path, &host, &[("Authorization", &bearer("guess-0123456789"))]);
        assert_eq!(wrong.status, 401, "{path}");
    }
    assert_eq!(raw_request(edge.admin, "POST", "/reload", &host, &[]).status, 401);
    assert_eq!(generation_with(&edge, "first-admin-token-0123456789"), 1, "the right token opens /status");
    let page =
        raw_request(edge.admin, "GET", "/", &host, &[("Authorization", &bearer("first-admin-token-0123456789"))]);
    assert_eq!(page.status, 200, "and the status page");
    assert_eq!(raw_request(edge.admin, "GET", "/livez", &host, &[]).status, 200);
    assert_eq!(raw_request(edge.admin, "GET", "/readyz", &host, &[]).status, 200);
    let config =
        raw_request(edge.admin, "GET", "/config", &host, &[("Authorization", &bearer("first-admin-token-0123456789"))]);
    assert_eq!(config.json()["admin"]["token"], "<from token_file, redacted>");
    assert!(!config.text().contains("first-admin-token"), "{}", config.text());

    // A new token applies on reload; the old one stops working.
    std::fs::write(&file, "second-admin-token-0123456789\n").expect("token");
    let r = raw_request(
        edge.admin,
        "POST",
        "/reload",
        &host,
        &[("Authorization", &bearer("first-admin-token-0123456789"))],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        raw_request(edge.admin, "GET", "/status", &host, &[("Authorization", &bearer("first-admin-token-0123456789"))])
            .status,
        401
    );
    assert_eq!(generation_with(&edge, "second-admin-token-0123456789"), 2);
    assert!(!edge.log().contains("admin-token-0123456789"), "the token is never logged");
}

fn generation_with(edge: &Edge, token: &str) -> u64 {
    let host = format!("127.0.0.1:{}", edge.admin);
    let r = raw_request(edge.admin, "GET", "/status", &host, &[("Authorization", &format!("Bearer {token}"))]);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["config"]["generation"].as_u64().expect("generation")
}

#[test]
fn a_broken_edit_never_shows_its_values_in_the_reload_answer_status_or_log() {
    let mock = Mock::start("m", false);
    let edge = Edge::start(&config(&mock, "echo"));
    let edits = [
        // A TOML type error: a password pasted where a number goes.
        format!("{}[pool.retry]\nmin_per_window = \"sk-live-hunter2\"\n", config(&mock, "echo")),
        // Validation errors: a Redis URL that does not parse, an API key where a duration goes.
        format!(
            "{}[redis]\nurl = \"redis://:sk-live-hunter2@[::1\"\ntimeout = \"sk-live-hunter2\"\n",
            config(&mock, "echo")
        ),
    ];
    for (i, edit) in edits.iter().enumerate() {
        edge.rewrite(edit, &Opts::default());
        let r = request(edge.admin, "POST", "/reload", &[], b"");
        assert_eq!(r.status, 400, "edit {i}: {}", r.text());
        assert!(r.text().contains("mcp-edge.toml:"), "edit {i} names the place: {}", r.text());
        assert!(!r.text().contains("hunter2"), "edit {i} echoed in /reload: {}", r.text());
        let status = get(edge.admin, "/status").json();
        let last = status["config"]["last_error"].as_str().expect("last_error").to_owned();
        assert!(last.contains("redis.url") || last.contains("min_per_window"), "{last}");
        assert!(!last.contains("hunter2"), "edit {i} echoed in /status: {last}");
    }
    edge.wait_log("config reload refused");
    assert!(!edge.log().contains("hunter2"), "echoed in the log:\n{}", edge.log());
}

/// The value of the series `line` names exactly (labels in Prometheus' sorted order).
fn value_of(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_count_bytes_connection_reuse_probes_authentication_and_the_build() {
    use sha2::Digest;
    let mock = Mock::start("m", false);
    let key: String = sha2::Sha256::digest(b"ak_metrics_0123456789").iter().map(|b| format!("{b:02x}")).collect();
    let body = format!(
        "[[authenticator]]\nname = \"keys\"\nkind = \"api_key\"\n[[authenticator.key]]\nid = \"alice\"\nsha256 = \"{key}\"\n\n{}[[route]]\nname = \"main\"\npath = \"/mcp\"\npool = \"p\"\nauth = [\"keys\"]\n",
        pool("p", &[&mock], "")
    );
    let edge = Edge::start(&body);
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#;
    for _ in 0..3 {
        let r = post_mcp(edge.port, "/mcp", &[("Authorization", "Bearer ak_metrics_0123456789")], call);
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(post_mcp(edge.port, "/mcp", &[], call).status, 401);
    assert_eq!(post_mcp(edge.port, "/mcp", &[("Authorization", "Bearer wrong")], call).status, 401);
    edge.wait_metric(r#"mcp_edge_auth_total{method="api_key",result="invalid",route="main"} 1"#);
    // Bytes are counted when a request is logged, after its answer is sent: waited for too.
    edge.wait_metric(&format!(r#"mcp_edge_request_body_bytes_total{{route="main"}} {}"#, 5 * call.len()));
    let m = edge.metrics();
    // By the authenticator kind that decided; `none` when no credential came.
    for (method, result, n) in [("api_key", "ok", 3.0), ("none", "missing", 1.0), ("api_key", "invalid", 1.0)] {
        let series = format!(r#"mcp_edge_auth_total{{method="{method}",result="{result}",route="main"}}"#);
        assert_eq!(value_of(&m, &series), Some(n), "{series}: {m}");
    }
    assert!(!m.contains(r#"method="jwt""#), "no series for kinds the route does not accept: {m}");
    assert_eq!(
        value_of(&m, r#"mcp_edge_request_body_bytes_total{route="main"}"#),
        Some((5 * call.len()) as f64),
        "{m}"
    );
    assert!(value_of(&m, r#"mcp_edge_response_body_bytes_total{route="main"}"#).is_some_and(|n| n > 0.0), "{m}");
    // Three requests over one client connection each: the first opens an upstream connection,
    // later ones may reuse it; every attempt is counted once.
    let new = value_of(&m, r#"mcp_edge_upstream_connections_total{pool="p",reused="false"}"#).unwrap_or(0.0);
    let reused = value_of(&m, r#"mcp_edge_upstream_connections_total{pool="p",reused="true"}"#).unwrap_or(0.0);
    assert_eq!((new >= 1.0, new + reused), (true, 3.0), "{m}");
    // The first health pass ran before /readyz said yes.
    assert!(value_of(&m, r#"mcp_edge_health_checks_total{pool="p",result="ok"}"#).is_some_and(|n| n >= 1.0), "{m}");
    assert!(value_of(&m, r#"mcp_edge_health_check_duration_seconds_count{pool="p"}"#).is_some_and(|n| n >= 1.0), "{m}");
    let build = format!(r#"mcp_edge_build_info{{version="{}"}}"#, env!("CARGO_PKG_VERSION"));
    assert_eq!(value_of(&m, &build), Some(1.0), "{m}");
    assert_eq!(value_of(&m, "mcp_edge_sessions_seen"), Some(0.0), "{m}");
    assert!(!m.contains("ak_metrics") && !m.contains("wrong"), "no credential in a label");
}
