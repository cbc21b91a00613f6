//! Cost of filtered discovery per list answer, as the response phase pays it: a 100-tool
//! `tools/list` answer (each tool with a description and an input schema, about 25 KiB) filtered
//! for one caller by a 20-rule policy, as a JSON body and as the answer event of an SSE stream
//! after a progress event. Also what a request that lists nothing pays on a policy route to
//! learn that (`discovery::arm`).

use std::path::Path;

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use mcp_edge::auth::identity::Identity;
use mcp_edge::config::model::PolicyConfig;
use mcp_edge::discovery::answer::{Answer, Head, Out};
use mcp_edge::discovery::{self, ListKind, Wanted};
use mcp_edge::mcp::call::{classify, Mirrored};
use mcp_edge::mcp::method::Era;
use mcp_edge::policy::Viewer;

const HEAD: &str = "[[pool]]\nname = \"p\"\nbackends = [\"127.0.0.1:9001\"]\n[[authenticator]]\nname = \"keys\"\nkind = \"api_key\"\n[[authenticator.key]]\nid = \"k\"\nsha256 = \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"\n[[route]]\nname = \"r\"\npath = \"/mcp\"\npool = \"p\"\nauth = [\"keys\"]\n";

/// The 20 rules of `benches/policy.rs`: 6 denies by tool pattern, 13 allows for roles, tenants
/// or scopes the caller does not have, then the rule that allows `search_*` with a scope.
fn policy() -> PolicyConfig {
    let mut text = format!(
        "{HEAD}[route.policy]\nscope_implies = {{ \"mcp:admin\" = [\"mcp:write\"], \"mcp:write\" = [\"mcp:read\"] }}\n"
    );
    for pattern in ["deploy_*", "*_admin", "drop_*", "secret?", "rm_*_all", "shutdown"] {
        text.push_str(&format!("[[route.policy.rule]]\neffect = \"deny\"\ntools = [\"{pattern}\"]\n"));
    }
    for i in 0..13 {
        let who = match i % 3 {
            0 => format!("roles = [\"role{i}\"]"),
            1 => format!("tenants = [\"tenant{i}\"]"),
            _ => format!("scopes = [\"scope{i}\"]"),
        };
        text.push_str(&format!("[[route.policy.rule]]\neffect = \"allow\"\n{who}\ntools = [\"tool{i}_*\"]\n"));
    }
    text.push_str("[[route.policy.rule]]\neffect = \"allow\"\nroles = [\"dev\"]\nmethods = [\"tools/list\"]\ntools = [\"search_*\"]\nrequire_scopes = [\"mcp:read\"]\n");
    let config = mcp_edge::config::parse(Path::new("bench.toml"), &text).expect("bench config");
    let policy = config.routes.into_iter().next().and_then(|r| r.policy).expect("policy");
    assert_eq!(policy.rules.len(), 20);
    policy
}

/// 100 tools: 60 `search_*` (allowed), 10 `deploy_*` (denied by the first rule), 30 `tool3_*`
/// (allowed only to a role the caller lacks: every rule tried).
fn tools_list() -> Vec<u8> {
    let names = (0..60).map(|i| format!("search_{i}")).chain((0..10).map(|i| format!("deploy_{i}")));
    let names = names.chain((0..30).map(|i| format!("tool3_{i}")));
    let tools: Vec<String> = names
        .map(|n| format!(r#"{{"name":"{n}","description":"Searches the {n} index for documents matching a query","inputSchema":{{"type":"object","properties":{{"query":{{"type":"string"}},"limit":{{"type":"integer"}}}},"required":["query"]}},"annotations":{{"readOnlyHint":true}}}}"#))
        .collect();
    format!(r#"{{"jsonrpc":"2.0","id":1,"result":{{"tools":[{}],"nextCursor":"100"}}}}"#, tools.join(",")).into_bytes()
}

fn filter(body: &[u8], sse: bool, policy: &PolicyConfig, alice: &Identity) -> usize {
    let wanted =
        Wanted { era: Era::Legacy, lists: vec![(Bytes::from_static(b"1"), ListKind::Tools)], others: Vec::new() };
    let mut answer = Answer::new(wanted);
    let content_type: &[u8] = if sse { b"text/event-stream" } else { b"application/json" };
    assert_eq!(answer.head(200, Some(content_type), None), Head::Reframe);
    let viewer = Viewer::new(policy, Some(alice));
    let allows = |kind: ListKind, name: &str| viewer.allows(kind.call(), name);
    match answer.push(body, true, &allows) {
        (Out::Bytes(out), None) => out.len(),
        other => panic!("not filtered: {other:?}"),
    }
}

fn bench(c: &mut Criterion) {
    let policy = policy();
    let alice = Identity {
        id: "alice".into(),
        tenant: Some("acme".into()),
        roles: vec!["dev".into(), "reader".into()],
        scopes: vec!["mcp:write".into(), "openid".into()],
        claims: vec![],
        token_exp: None,
    };
    let json = tools_list();
    let mut sse = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":1,\"progress\":1}}\n\nevent: message\ndata: ".to_vec();
    sse.extend_from_slice(&json);
    sse.extend_from_slice(b"\n\n");
    let kept = filter(&json, false, &policy, &alice);
    let listed: serde_json::Value = serde_json::from_slice(&json).expect("json");
    eprintln!(
        "100-tool list: {} bytes in, {kept} bytes out ({} tools listed before)",
        json.len(),
        listed["result"]["tools"].as_array().map_or(0, Vec::len)
    );
    c.bench_function("discovery_filter_100_tools_json_20_rules", |b| {
        b.iter(|| filter(black_box(&json), false, &policy, &alice))
    });
    c.bench_function("discovery_filter_100_tools_sse_20_rules", |b| {
        b.iter(|| filter(black_box(&sse), true, &policy, &alice))
    });
    let call = Bytes::from_static(
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_1","arguments":{}}}"#,
    );
    let call = classify(Era::Legacy, Mirrored::default(), &call, false).expect("classified");
    c.bench_function("discovery_arm_on_a_call_that_lists_nothing", |b| b.iter(|| discovery::arm(black_box(&call))));
}

criterion_group!(benches, bench);
criterion_main!(benches);
