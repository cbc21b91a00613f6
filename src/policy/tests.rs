//! The evaluator on policies compiled from real config text and calls read by the real
//! classifier: first match wins, deny by default, scopes and their hierarchy, case and path
//! tricks, batches.

use std::path::Path;

use bytes::Bytes;

use super::*;
use crate::mcp::call::{classify, Mirrored};
use crate::mcp::method::Era;

const HEAD: &str = "[[pool]]\nname = \"p\"\nbackends = [\"127.0.0.1:9001\"]\n[[authenticator]]\nname = \"keys\"\nkind = \"api_key\"\n[[authenticator.key]]\nid = \"k\"\nsha256 = \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"\n[[route]]\nname = \"r\"\npath = \"/mcp\"\npool = \"p\"\nbatches = true\nauth = [\"keys\"]\npublic_url = \"https://mcp.example.com/mcp\"\n";

fn policy(text: &str) -> PolicyConfig {
    let config = crate::config::parse(Path::new("t.toml"), &format!("{HEAD}{text}")).expect("valid policy");
    config.routes.into_iter().next().and_then(|r| r.policy).expect("a policy")
}

fn who(id: &str, roles: &[&str], scopes: &[&str]) -> Identity {
    let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
    Identity {
        id: id.into(),
        tenant: Some("acme".into()),
        roles: strings(roles),
        scopes: strings(scopes),
        claims: vec![],
        token_exp: None,
    }
}

fn call(body: &str) -> Call {
    classify(Era::Legacy, Mirrored::default(), &Bytes::copy_from_slice(body.as_bytes()), true).expect("classified")
}

fn tool(name: &str) -> Call {
    call(&format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{name}"}}}}"#))
}

fn method(m: &str) -> Call {
    call(&format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{m}"}}"#))
}

fn resource(uri: &str) -> Call {
    call(&format!(r#"{{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{{"uri":"{uri}"}}}}"#))
}

const TOOLS: &str = r#"[route.policy]
[[route.policy.rule]]
effect = "deny"
tools = ["deploy_*"]
deny_as = "unknown"
[[route.policy.rule]]
effect = "allow"
methods = ["initialize", "notifications/*", "tools/list"]
tools = ["search", "echo"]
"#;

#[test]
fn the_first_matching_rule_decides_and_nothing_matched_is_denied() {
    let p = policy(TOOLS);
    let alice = who("alice", &[], &[]);
    for allowed in [tool("search"), tool("echo"), method("initialize"), method("notifications/initialized")] {
        assert_eq!(check(&p, Some(&alice), &allowed), Ok(()), "{allowed:?}");
    }
    let denied = check(&p, Some(&alice), &tool("deploy_app")).expect_err("deny rule");
    assert_eq!((denied.rule, denied.deny_as, denied.insufficient_scope), (Some(0), DenyAs::Unknown, false));
    let by_default = check(&p, Some(&alice), &tool("other")).expect_err("deny by default");
    assert_eq!((by_default.rule, by_default.deny_as), (None, DenyAs::Forbidden));
    assert!(check(&p, Some(&alice), &method("prompts/list")).is_err(), "methods not listed are denied");
    assert!(check(&p, None, &tool("search")).is_err(), "no identity, no call");
}

#[test]
fn a_deny_ignores_case_and_escapes_while_an_allow_matches_exactly() {
    let p = policy(TOOLS);
    let alice = who("alice", &[], &[]);
    for sneaky in ["DEPLOY_app", "Deploy_App", r"\u0064eploy_app", r"deploy\u005fapp"] {
        let d = check(&p, Some(&alice), &tool(sneaky)).expect_err(sneaky);
        assert_eq!(d.rule, Some(0), "{sneaky} must hit the deny rule, not slip to the default");
    }
    assert_eq!(check(&p, Some(&alice), &tool(r"\u0073earch")), Ok(()), "an escape is the same name");
    assert!(check(&p, Some(&alice), &tool("SEARCH")).is_err(), "allow matches only the exact spelling");
}

#[test]
fn require_scopes_deny_as_insufficient_scope_and_the_hierarchy_satisfies_them() {
    let p = policy(
        r#"[route.policy]
scope_implies = { "mcp:admin" = ["mcp:write"], "mcp:write" = ["mcp:read"] }
[[route.policy.rule]]
effect = "allow"
tools = ["deploy_*"]
require_scopes = ["mcp:write", "deploy"]
[[route.policy.rule]]
effect = "allow"
tools = ["search"]
require_scopes = ["mcp:read"]
"#,
    );
    let d = check(&p, Some(&who("a", &[], &["mcp:read"])), &tool("deploy_x")).expect_err("lacks scopes");
    assert_eq!((d.rule, d.insufficient_scope), (Some(0), true));
    let challenge = p.rules[0].challenge.as_deref();
    assert_eq!(challenge, Some("Bearer error=\"insufficient_scope\", scope=\"mcp:write deploy\", resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\""));
    assert!(check(&p, Some(&who("a", &[], &["mcp:write"])), &tool("deploy_x")).is_err(), "deploy still missing");
    assert_eq!(check(&p, Some(&who("a", &[], &["mcp:admin", "deploy"])), &tool("deploy_x")), Ok(()));
    assert_eq!(check(&p, Some(&who("a", &[], &["mcp:admin"])), &tool("search")), Ok(()), "admin ⇒ write ⇒ read");
    assert!(check(&p, Some(&who("a", &[], &["mcp:read"])), &tool("search")).is_ok());
    assert!(check(&p, Some(&who("a", &[], &["MCP:READ"])), &tool("search")).is_err(), "scopes are exact");
}

#[test]
fn caller_conditions_select_the_rule() {
    let p = policy(
        r#"[route.policy]
[[route.policy.rule]]
effect = "allow"
roles = ["admin"]
[[route.policy.rule]]
effect = "allow"
ids = ["svc-*"]
tenants = ["acme"]
claims = { dept = ["eng", "ops"] }
tools = ["search"]
[[route.policy.rule]]
effect = "allow"
scopes = ["tools:read"]
methods = ["tools/list"]
"#,
    );
    assert!(check(&p, Some(&who("x", &["admin"], &[])), &tool("anything")).is_ok(), "an admin may do anything");
    let mut svc = who("svc-1", &[], &[]);
    assert!(check(&p, Some(&svc), &tool("search")).is_err(), "the claim is missing");
    svc.claims.push(("dept".into(), "ops".into()));
    assert!(check(&p, Some(&svc), &tool("search")).is_ok());
    svc.tenant = Some("other".into());
    assert!(check(&p, Some(&svc), &tool("search")).is_err(), "another tenant");
    assert!(check(&p, Some(&who("y", &[], &["tools:read"])), &method("tools/list")).is_ok());
    assert!(check(&p, Some(&who("y", &[], &[])), &method("tools/list")).is_err());
}

#[test]
fn resource_allows_never_admit_a_uri_that_walks_out_of_the_pattern() {
    let p = policy("[route.policy]\n[[route.policy.rule]]\neffect = \"allow\"\nresources = [\"file:///docs/*\"]\n");
    let alice = who("a", &[], &[]);
    assert!(check(&p, Some(&alice), &resource("file:///docs/a.md")).is_ok());
    for walk in [
        "file:///docs/../etc/passwd",
        "file:///docs/%2e%2e/x",
        "file:///docs/a%2Fb",
        r"file:///docs/..\\x",
        "file:///docs/.",
        "file:///docs/..\\t/etc/passwd",
        "file:///docs/.\\n./etc/passwd",
        "file:///docs/a b",
    ] {
        assert!(check(&p, Some(&alice), &resource(walk)).is_err(), "{walk}");
    }
}

#[test]
fn a_denied_name_cut_at_a_nul_or_stripped_of_controls_is_denied_and_never_allowed() {
    let p = policy("[route.policy]\n[[route.policy.rule]]\neffect = \"deny\"\ntools = [\"deploy_db\"]\n[[route.policy.rule]]\neffect = \"allow\"\ntools = [\"*\"]\n");
    let alice = who("alice", &[], &[]);
    for spelling in [
        "deploy_db\\u0000",
        "deploy_db\\u0000x",
        "dep\\tloy_db",
        " deploy_db",
        "deploy_db\\r\\n",
        "deploy_db\\u00a0",
        "\\u2028deploy_db",
        "deploy_db\\ufeff",
    ] {
        assert!(check(&p, Some(&alice), &tool(spelling)).is_err(), "{spelling}");
    }
    assert!(check(&p, Some(&alice), &tool("deploy_dbx")).is_ok(), "another tool");
    let p = policy("[route.policy]\n[[route.policy.rule]]\neffect = \"allow\"\ntools = [\"*_ro\"]\n");
    assert!(check(&p, Some(&alice), &tool("list_ro")).is_ok());
    for spelling in ["drop_all\\u0000_ro", "drop_all\\t_ro", "drop_all _ro", "drop_all\\u3000_ro"] {
        assert!(check(&p, Some(&alice), &tool(spelling)).is_err(), "not an allowed *_ro tool: {spelling}");
    }
}

#[test]
fn every_batch_element_is_checked_and_client_responses_pass() {
    let p = policy(TOOLS);
    let alice = who("alice", &[], &[]);
    let batch = call(
        r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search"}},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"deploy_db"}}]"#,
    );
    let d = check(&p, Some(&alice), &batch).expect_err("the second element is denied");
    assert_eq!((d.element, d.rule), (1, Some(0)));
    let response = call(r#"{"jsonrpc":"2.0","id":5,"result":{}}"#);
    assert_eq!(check(&p, Some(&alice), &response), Ok(()));
}

#[test]
fn a_viewer_allows_exactly_the_calls_check_allows() {
    let p = policy(&format!(
        "{TOOLS}[[route.policy.rule]]\neffect = \"allow\"\ntools = [\"admin_*\"]\nrequire_scopes = [\"mcp:admin\"]\n[[route.policy.rule]]\neffect = \"allow\"\nresources = [\"docs://*\"]\n"
    ));
    let (reader, admin) = (who("r", &[], &[]), who("a", &[], &["mcp:admin"]));
    let names = ["search", "echo", "deploy_x", "DEPLOY_x", "admin_reset", "other"];
    for identity in [&reader, &admin] {
        let viewer = Viewer::new(&p, Some(identity));
        for name in names {
            let allowed = check(&p, Some(identity), &tool(name)).is_ok();
            assert_eq!(viewer.allows(Method::ToolsCall, name), allowed, "{} {name}", identity.id);
            assert_eq!(check_target(&p, Some(identity), Method::ToolsCall, name).is_ok(), allowed);
        }
        for uri in ["docs://a", "docs://a/../secret", "file:///etc"] {
            let allowed = check(&p, Some(identity), &resource(uri)).is_ok();
            assert_eq!(viewer.allows(Method::ResourcesRead, uri), allowed, "{uri}");
        }
    }
    assert!(!Viewer::new(&p, None).allows(Method::ToolsCall, "search"), "no identity, nothing listed");
}
