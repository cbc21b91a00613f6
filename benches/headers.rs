//! Cost of upstream headers per request, as `proxy::headers::upstream` pays it on a request of
//! ten headers: nothing configured; a pool credential; route transforms (remove, a literal set,
//! an identity template, an add) plus a credential; identity forwarding unsigned and signed
//! (HMAC-SHA256). The request is cloned outside the measured part.

use std::path::Path;

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use mcp_edge::auth::identity::Identity;
use mcp_edge::config::model::{Config, HeaderRules};
use mcp_edge::proxy::headers::{credentials, to_backend};
use pingora::http::RequestHeader;

fn config(dir: &Path, route_extra: &str) -> Config {
    let key = dir.join("backend.key");
    std::fs::write(&key, "a-backend-credential-of-some-length").expect("key");
    let sign = dir.join("identity.key");
    std::fs::write(&sign, "an-identity-signing-key-of-at-least-32-bytes").expect("key");
    let text = format!(
        "[[pool]]\nname = \"p\"\nbackends = [\"127.0.0.1:9001\"]\n[[pool.credential]]\nheader = \"Authorization\"\nfile = \"{}\"\nprefix = \"Bearer \"\n[[route]]\nname = \"r\"\npath = \"/mcp\"\npool = \"p\"\n{}\n",
        key.display(),
        route_extra.replace("SIGN", &sign.display().to_string())
    );
    mcp_edge::config::parse(Path::new("bench.toml"), &text).expect("bench config")
}

fn request() -> RequestHeader {
    let mut req = RequestHeader::build("POST", b"/mcp", None).expect("request");
    for (k, v) in [
        ("Host", "mcp.example.com"),
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("Content-Length", "120"),
        ("User-Agent", "bench/1"),
        ("Mcp-Session-Id", "0123456789abcdef0123456789abcdef"),
        ("MCP-Protocol-Version", "2025-06-18"),
        ("X-Request-Id", "r-1"),
        ("X-Debug", "1"),
        ("X-Trace", "t"),
    ] {
        req.insert_header(k, v).expect("header");
    }
    req
}

fn bench(c: &mut Criterion, name: &str, route_extra: &str, with_credential: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), route_extra);
    let identity = Identity { id: "ci-bot".into(), tenant: Some("acme".into()), ..Identity::default() };
    let (route, pool) = (&cfg.routes[0].headers, &cfg.pools[0]);
    let empty = HeaderRules::default();
    let base = request();
    c.bench_function(name, |b| {
        b.iter_batched(
            || base.clone(),
            |mut req| {
                to_backend(&mut req, route, Some(&identity)).expect("route");
                to_backend(&mut req, &empty, Some(&identity)).expect("pool");
                if with_credential {
                    credentials(&mut req, &pool.credentials).expect("credentials");
                }
                black_box(req)
            },
            BatchSize::SmallInput,
        )
    });
}

fn headers(c: &mut Criterion) {
    bench(c, "headers/none", "", false);
    bench(c, "headers/credential", "", true);
    bench(
        c,
        "headers/transforms+credential",
        "[route.headers]\nremove = [\"X-Debug\"]\nset = { \"X-Env\" = \"prod\", \"X-Caller\" = \"{identity.id}@{identity.tenant}\" }\nadd = { \"X-Via\" = \"mcp-edge\" }\n",
        true,
    );
    bench(c, "headers/identity", "forward_identity = { id = \"X-MCP-Identity\", tenant = \"X-MCP-Tenant\" }\n", true);
    bench(
        c,
        "headers/identity-signed",
        "forward_identity = { id = \"X-MCP-Identity\", tenant = \"X-MCP-Tenant\", sign_with = { key_file = \"SIGN\" } }\n",
        true,
    );
}

criterion_group!(benches, headers);
criterion_main!(benches);
