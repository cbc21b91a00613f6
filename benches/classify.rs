//! Cost of what mcp-edge adds per request before proxying: the one reading of a typical
//! tools/call (envelope parse, id and target slices, header agreement; and a 64 KiB one, to
//! show arguments are skipped, not built), path canonicalisation, and choosing route and pool
//! exactly as the request path does.

use std::path::Path;

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use mcp_edge::mcp::call::{classify, Mirrored};
use mcp_edge::mcp::envelope;
use mcp_edge::mcp::method::Era;
use mcp_edge::router::{path, Msg, RouteExt, Router, ASSUMED_VERSION};

const SMALL: &[u8] = br#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"search","arguments":{"query":"pingora proxy mcp","limit":10},"_meta":{"progressToken":"p-42"}}}"#;

const CONF: &str = r#"
[[pool]]
name = "main"
backends = ["127.0.0.1:9001"]
[[pool]]
name = "deploy"
backends = ["127.0.0.1:9002"]
[[route]]
name = "main"
path = "/mcp"
pool = "main"
[[route.rule]]
tool = "deploy_*"
pool = "deploy"
[[route.rule]]
resource = "file:///docs/"
pool = "deploy"
[[route.rule]]
method = "prompts/*"
pool = "deploy"
"#;

fn big_body() -> Vec<u8> {
    let blob = "x".repeat(64 * 1024);
    format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"upload","arguments":{{"data":"{blob}"}}}}}}"#).into_bytes()
}

fn bench(c: &mut Criterion) {
    c.bench_function("envelope/tools_call_200B", |b| b.iter(|| envelope::parse(black_box(SMALL))));
    let big = big_body();
    c.bench_function("envelope/tools_call_64KiB", |b| b.iter(|| envelope::parse(black_box(&big))));

    let small = Bytes::from_static(SMALL);
    let legacy = Mirrored::default();
    c.bench_function("classify/legacy_tools_call_200B", |b| {
        b.iter(|| classify(Era::Legacy, legacy, black_box(&small), false))
    });
    let modern = Mirrored { version: Some(b"2026-07-28"), method: Some(b"tools/call"), name: Some(b"search") };
    c.bench_function("classify/modern_tools_call_200B", |b| {
        b.iter(|| classify(Era::Modern, modern, black_box(&small), false))
    });
    let big = Bytes::from(big);
    c.bench_function("classify/legacy_tools_call_64KiB", |b| {
        b.iter(|| classify(Era::Legacy, legacy, black_box(&big), false))
    });

    c.bench_function("path/canonical", |b| b.iter(|| path::canonicalize(black_box("/mcp"))));
    c.bench_function("path/rewritten", |b| b.iter(|| path::canonicalize(black_box("/x/../%6Dcp"))));

    let config = mcp_edge::config::parse(Path::new("bench.toml"), CONF).expect("bench config is valid");
    let router = Router::new(&config);
    // What `proxy::request` does per POST: find the route, read the body, pick the rule.
    c.bench_function("route/find+classify+rule", |b| {
        b.iter(|| {
            let (_, route) = router.find(None, Some("localhost:8080"), black_box("/mcp")).expect("route");
            let call = classify(Era::Legacy, legacy, &small, false).expect("valid");
            let msg = Msg { era: call.era, version: ASSUMED_VERSION, element: &call.one };
            route.rule_pool(msg).or(route.pool)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
