//! Cost of a route's policy per request, as the request path pays it (`policy::check` on the
//! caller's identity and the one reading of the call), with a 20-rule policy: the call allowed
//! by the last rule (every rule tried), by the first, and denied by default. Before measuring,
//! a counting allocator proves the allow path allocates nothing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use mcp_edge::auth::identity::Identity;
use mcp_edge::config::model::PolicyConfig;
use mcp_edge::mcp::call::{classify, Call, Mirrored};
use mcp_edge::mcp::method::Era;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const HEAD: &str = "[[pool]]\nname = \"p\"\nbackends = [\"127.0.0.1:9001\"]\n[[authenticator]]\nname = \"keys\"\nkind = \"api_key\"\n[[authenticator.key]]\nid = \"k\"\nsha256 = \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"\n[[route]]\nname = \"r\"\npath = \"/mcp\"\npool = \"p\"\nauth = [\"keys\"]\n";

/// 20 rules: 6 denies by tool pattern, 13 allows for roles, tenants or scopes the caller does
/// not have, then the rule that allows `search_*` with a required scope.
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

fn tool(name: &str) -> Call {
    let body =
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{name}","arguments":{{}}}}}}"#);
    classify(Era::Legacy, Mirrored::default(), &Bytes::from(body), false).expect("classified")
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
    let (last, first, none) = (tool("search_docs"), tool("deploy_app"), tool("unlisted"));
    let check = |call: &Call| mcp_edge::policy::check(&policy, Some(&alice), call);
    assert!(check(&last).is_ok() && check(&first).is_err() && check(&none).is_err());
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..1000 {
        black_box(check(black_box(&last))).ok();
    }
    assert_eq!(ALLOCATIONS.load(Ordering::Relaxed) - before, 0, "the allow path allocates");
    c.bench_function("policy_20_rules_allowed_by_the_last", |b| b.iter(|| check(black_box(&last))));
    c.bench_function("policy_20_rules_denied_by_the_first", |b| b.iter(|| check(black_box(&first))));
    c.bench_function("policy_20_rules_denied_by_default", |b| b.iter(|| check(black_box(&none))));
}

criterion_group!(benches, bench);
criterion_main!(benches);
