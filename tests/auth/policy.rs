//! Per-route policy (issue 9, section 4): authenticated callers reach only the tools their
//! route's rules allow. Each story asserts what the client got (the backend's answer, a 403
//! JSON-RPC error with the request's id, or an "unknown tool" answer) and what the backend
//! received (the recording mock: a denied call never arrives), then that the proxy still
//! serves. Tricks tried: header/body tool mismatch, base64 `Mcp-Name`, JSON escapes and case
//! variants of a denied name, batches, both protocol eras.

use crate::common::raw::{self, RawResponse};
use crate::common::Edge;
use crate::story::*;

const DEV_KEY: &str = "ak_dev_0123456789";
const OPS_KEY: &str = "ak_ops_0123456789";
const ADMIN_KEY: &str = "ak_adm_0123456789";

/// dev (scope mcp:read), ops (mcp:write, no `deploy`), admin (mcp:admin, deploy).
fn keys() -> String {
    api_keys(
        "",
        &[
            key_entry("dev", "acme", DEV_KEY, "roles = [\"dev\"]\nscopes = [\"mcp:read\"]"),
            key_entry("ops", "acme", OPS_KEY, "roles = [\"ops\"]\nscopes = [\"mcp:write\"]"),
            key_entry("admin", "acme", ADMIN_KEY, "roles = [\"ops\"]\nscopes = [\"mcp:admin\", \"deploy\"]"),
        ],
    )
}

/// The policy most stories run: `secret_*` hidden, deploys need write and deploy, reading
/// tools need read (implied by write, implied by admin), nothing else.
const POLICY: &str = r#"[route.policy]
scope_implies = { "mcp:admin" = ["mcp:write"], "mcp:write" = ["mcp:read"] }
[[route.policy.rule]]
effect = "deny"
tools = ["secret_*"]
deny_as = "unknown"
[[route.policy.rule]]
effect = "allow"
tools = ["deploy_*"]
require_scopes = ["mcp:write", "deploy"]
[[route.policy.rule]]
effect = "allow"
methods = ["initialize", "notifications/*", "tools/list"]
tools = ["echo", "whoami"]
require_scopes = ["mcp:read"]
"#;

fn policy_edge(b: &Backend, route_extra: &str, policy: &str) -> Edge {
    Edge::start(&format!(
        "{}{}{}{policy}",
        pool(b),
        keys(),
        route(&format!("auth = [\"keys\"]\npublic_url = \"{PUBLIC_URL}\"\n{route_extra}"))
    ))
}

fn tool_call(name: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":"c-1","method":"tools/call","params":{{"name":"{name}","arguments":{{}}}}}}"#)
}

/// A legacy-era call (the target read from the body) with `key`.
fn call_as(edge: &Edge, key: &str, body: &str) -> RawResponse {
    raw::send(edge.port, &raw::post(edge.port, "/mcp", &[("Authorization", &bearer(key))], body))
}

/// A 2026-07-28 call: the target in `Mcp-Name` and in the body.
fn modern_call(edge: &Edge, key: &str, header_name: &str, body_name: &str) -> RawResponse {
    let auth = bearer(key);
    let headers = [
        ("Authorization", auth.as_str()),
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", header_name),
    ];
    raw::send(edge.port, &raw::post(edge.port, "/mcp", &headers, &tool_call(body_name)))
}

/// A local 403: the JSON-RPC error echoes the id, no backend answered.
fn assert_forbidden(r: &RawResponse, challenge: Option<&str>) {
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.header("x-mock-backend"), None, "a backend answered");
    assert_eq!(r.header("www-authenticate"), challenge, "challenge");
    let body = r.json();
    assert_eq!(body["id"], "c-1", "the error echoes the id: {body}");
    assert!(body["error"]["code"].is_i64(), "a JSON-RPC error: {body}");
}

/// The backend answered the call, and received it naming `tool`.
fn assert_reached(r: &RawResponse, b: &Backend, n: usize, tool: &str) {
    assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("main")), "{}", r.text());
    let got = b.rec.wait_count(n);
    let body: serde_json::Value = serde_json::from_str(&got[n - 1].body).expect("recorded body is JSON");
    assert_eq!(body["params"]["name"], tool);
}

#[test]
fn an_allowed_tool_reaches_the_backend_and_a_denied_one_never_does() {
    let b = backend("main");
    let edge = policy_edge(&b, "", POLICY);
    assert_reached(&call_as(&edge, DEV_KEY, &tool_call("echo")), &b, 1, "echo");
    assert_forbidden(&call_as(&edge, DEV_KEY, &tool_call("drop_tables")), None);
    b.rec.assert_stays(1);
    edge.wait_metric("mcp_edge_rejections_total{reason=\"forbidden\"} 1");
    // The audit line names who, where and what; never the key.
    edge.wait_log("policy_denied");
    let log = edge.log();
    let audit = log.lines().find(|l| l.contains("policy_denied")).unwrap_or_default();
    for field in ["mcp_edge::audit", "dev", "route=\"mcp\"", "tools/call", "drop_tables", "rule=default"] {
        assert!(audit.contains(field), "{field} missing from the audit line: {audit}");
    }
    assert!(!log.contains(DEV_KEY), "the key is never logged");
    assert_reached(&call_as(&edge, DEV_KEY, &tool_call("whoami")), &b, 2, "whoami");
}

#[test]
fn deny_by_default_covers_methods_prompts_and_resources_no_rule_names() {
    let b = backend("main");
    let edge = policy_edge(&b, "", POLICY);
    for body in [
        r#"{"jsonrpc":"2.0","id":"c-1","method":"prompts/get","params":{"name":"greet"}}"#,
        r#"{"jsonrpc":"2.0","id":"c-1","method":"resources/read","params":{"uri":"mock://main/readme"}}"#,
        r#"{"jsonrpc":"2.0","id":"c-1","method":"prompts/list"}"#,
    ] {
        assert_forbidden(&call_as(&edge, ADMIN_KEY, body), None);
    }
    b.rec.assert_nothing();
    assert_reached(&call_as(&edge, ADMIN_KEY, &tool_call("echo")), &b, 1, "echo");
}

#[test]
fn a_token_lacking_a_required_scope_gets_one_insufficient_scope_challenge_naming_every_scope() {
    let b = backend("main");
    let edge = policy_edge(&b, "", POLICY);
    let challenge = "Bearer error=\"insufficient_scope\", scope=\"mcp:write deploy\", resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\"";
    // dev holds neither scope, ops only mcp:write: both are told every scope the call needs.
    for key in [DEV_KEY, OPS_KEY] {
        let r = call_as(&edge, key, &tool_call("deploy_app"));
        assert_forbidden(&r, Some(challenge));
        let n = r.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("www-authenticate")).count();
        assert_eq!(n, 1, "one challenge");
    }
    b.rec.assert_nothing();
    // admin holds mcp:admin, which implies mcp:write.
    assert_reached(&call_as(&edge, ADMIN_KEY, &tool_call("deploy_app")), &b, 1, "deploy_app");
}

#[test]
fn the_scope_hierarchy_lets_broader_scopes_do_narrower_work() {
    let b = backend("main");
    let edge = policy_edge(&b, "", POLICY);
    // echo needs mcp:read: ops has it through mcp:write, admin through mcp:admin ⇒ mcp:write.
    assert_reached(&call_as(&edge, OPS_KEY, &tool_call("echo")), &b, 1, "echo");
    assert_reached(&call_as(&edge, ADMIN_KEY, &tool_call("echo")), &b, 2, "echo");
}

#[test]
fn unknown_mode_answers_like_a_server_without_the_tool() {
    let b = backend("main");
    let edge = policy_edge(&b, "", POLICY);
    let r = call_as(&edge, ADMIN_KEY, &tool_call("secret_keys"));
    assert_eq!(r.status, 200, "{}", r.text());
    let want =
        serde_json::json!({"jsonrpc":"2.0","id":"c-1","error":{"code":-32602,"message":"Unknown tool: secret_keys"}});
    assert_eq!(r.json(), want);
    assert_eq!((r.header("www-authenticate"), r.header("cache-control")), (None, None), "no tell-tale header");
    b.rec.assert_nothing();
    assert_reached(&call_as(&edge, ADMIN_KEY, &tool_call("echo")), &b, 1, "echo");
}

#[test]
fn unknown_mode_is_byte_for_byte_the_backends_own_unknown_method_answer() {
    let b = backend("main");
    let policy = "[route.policy]\n[[route.policy.rule]]\neffect = \"deny\"\nmethods = [\"admin/*\"]\ndeny_as = \"unknown\"\n[[route.policy.rule]]\neffect = \"allow\"\n";
    let edge = policy_edge(&b, "", policy);
    let ask = |method: &str| call_as(&edge, DEV_KEY, &format!(r#"{{"jsonrpc":"2.0","id":"c-1","method":"{method}"}}"#));
    let (hidden, absent) = (ask("admin/reset"), ask("other/thing"));
    assert_eq!(absent.header("x-mock-backend"), Some("main"), "the backend answered the absent method");
    assert_eq!(hidden.header("x-mock-backend"), None, "the proxy answered the hidden one");
    assert_eq!((hidden.status, hidden.text()), (absent.status, absent.text()));
    let names = |r: &RawResponse| {
        let mut n: Vec<String> = r.headers.iter().map(|(k, _)| k.to_ascii_lowercase()).collect();
        n.retain(|k| k != "x-mock-backend" && k != "date");
        n.sort();
        n
    };
    assert_eq!(names(&hidden), names(&absent), "the same headers");
    b.rec.assert_stays(1);
}

#[test]
fn the_modern_header_path_is_decided_on_the_same_reading_as_the_body() {
    let b = backend("main");
    let edge = policy_edge(&b, "", POLICY);
    assert_reached(&modern_call(&edge, ADMIN_KEY, "echo", "echo"), &b, 1, "echo");
    let r = modern_call(&edge, DEV_KEY, "drop_tables", "drop_tables");
    assert_forbidden(&r, None);
    // The header naming an allowed tool while the body names a denied one is refused outright.
    let r = modern_call(&edge, ADMIN_KEY, "echo", "secret_keys");
    assert_eq!((r.status, r.rpc_code()), (400, Some(-32020)), "{}", r.text());
    // base64 `Mcp-Name` (secret_keys) is decoded before the rules see it.
    let r = modern_call(&edge, ADMIN_KEY, "=?base64?c2VjcmV0X2tleXM=?=", "secret_keys");
    assert_eq!(r.json()["error"]["message"], "Unknown tool: secret_keys");
    b.rec.assert_stays(1);
    assert_reached(&modern_call(&edge, ADMIN_KEY, "whoami", "whoami"), &b, 2, "whoami");
}

#[test]
fn bypass_case_and_escape_variants_of_a_denied_tool_are_denied() {
    let b = backend("main");
    let edge = policy_edge(&b, "", POLICY);
    // JSON escapes are the same name; case variants hit the (case-blind) deny rule.
    for name in [r"secret\u005fkeys", r"\u0073ecret_keys", "SECRET_KEYS", "Secret_Keys"] {
        let r = call_as(&edge, ADMIN_KEY, &tool_call(name));
        assert_eq!((r.status, r.rpc_code()), (200, Some(-32602)), "{name}: {}", r.text());
        assert_eq!(r.header("x-mock-backend"), None, "{name} reached the backend");
    }
    let r = modern_call(&edge, ADMIN_KEY, "SECRET_KEYS", "SECRET_KEYS");
    assert_eq!(r.header("x-mock-backend"), None, "the modern case variant reached the backend");
    // Two names in one body: which one a backend reads is its own business, so none is read.
    let twice = r#"{"jsonrpc":"2.0","id":"c-1","method":"tools/call","params":{"name":"echo","name":"secret_keys"}}"#;
    assert_eq!(call_as(&edge, ADMIN_KEY, twice).status, 400);
    // An allow matches the exact spelling only: ECHO is no allowed tool.
    assert_forbidden(&call_as(&edge, ADMIN_KEY, &tool_call("ECHO")), None);
    b.rec.assert_nothing();
    assert_reached(&call_as(&edge, ADMIN_KEY, &tool_call("echo")), &b, 1, "echo");
}

#[test]
fn bypass_a_denied_tool_inside_a_batch_denies_the_batch() {
    let b = backend("main");
    let edge = policy_edge(&b, "batches = true", POLICY);
    let batch = format!(
        "[{},{}]",
        r#"{"jsonrpc":"2.0","id":"ok-1","method":"tools/call","params":{"name":"echo"}}"#,
        tool_call("drop_tables")
    );
    assert_forbidden(&call_as(&edge, ADMIN_KEY, &batch), None);
    b.rec.assert_nothing();
    assert_reached(&call_as(&edge, ADMIN_KEY, &tool_call("echo")), &b, 1, "echo");
}

#[test]
fn a_denied_call_spends_no_limit_budget() {
    let b = backend("main");
    let limit = "[[limit]]\nname = \"per\"\nkey = [\"identity\"]\nrate = \"1/min\"\n\n";
    let edge = Edge::start(&format!(
        "{}{limit}{}{}{POLICY}",
        pool(&b),
        keys(),
        route(&format!("auth = [\"keys\"]\npublic_url = \"{PUBLIC_URL}\"\nlimits = [\"per\"]"))
    ));
    for _ in 0..3 {
        assert_forbidden(&call_as(&edge, DEV_KEY, &tool_call("drop_tables")), None);
    }
    assert_reached(&call_as(&edge, DEV_KEY, &tool_call("echo")), &b, 1, "echo");
    assert_eq!(call_as(&edge, DEV_KEY, &tool_call("echo")).status, 429, "the limit still counts allowed calls");
}

#[test]
fn jwt_claims_select_rules() {
    let b = backend("main");
    let dir = tempfile::tempdir().expect("tempdir");
    let issuer = Issuer::new("k1");
    let jwks = jwks_file(dir.path(), &[issuer.jwk()]);
    let policy = "[route.policy]\n[[route.policy.rule]]\neffect = \"allow\"\nclaims = { dept = [\"eng\"] }\ntools = [\"echo\"]\n";
    let edge = Edge::start(&format!(
        "{}{}{}{policy}",
        pool(&b),
        jwt_authenticator(&jwks, ""),
        route(&format!("auth = [\"tokens\"]\npublic_url = \"{PUBLIC_URL}\""))
    ));
    let token = |dept: &str| {
        let mut claims = issuer.claims("alice", "acme");
        claims["dept"] = serde_json::json!([dept]);
        issuer.sign(&claims)
    };
    assert_reached(&call_as(&edge, &token("eng"), &tool_call("echo")), &b, 1, "echo");
    assert_forbidden(&call_as(&edge, &token("sales"), &tool_call("echo")), None);
    b.rec.assert_stays(1);
}

#[test]
fn authentication_failures_are_audited_without_the_credential() {
    let b = backend("main");
    let edge = policy_edge(&b, "", POLICY);
    let r = call_as(&edge, "ak_wrong_secret_value", &tool_call("echo"));
    assert_eq!(r.status, 401);
    edge.wait_log("auth_failed");
    let log = edge.log();
    let audit = log.lines().find(|l| l.contains("auth_failed")).unwrap_or_default();
    for field in ["mcp_edge::audit", "route=\"mcp\"", "why=\"invalid\"", "127.0.0.1"] {
        assert!(audit.contains(field), "{field} missing from the audit line: {audit}");
    }
    assert!(!log.contains("ak_wrong_secret_value"), "the credential is never logged");
    assert_reached(&call_as(&edge, DEV_KEY, &tool_call("echo")), &b, 1, "echo");
}
