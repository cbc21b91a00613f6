//! Cost of what mcp-edge adds per request before proxying: parsing the JSON-RPC envelope of a
//! typical tools/call (and a 64 KiB one, to show arguments are skipped, not built), and
//! choosing route and pool.

use std::path::Path;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use mcp_edge::mcp::envelope::{self, Message};
use mcp_edge::router::{Call, RouteExt, Router};

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

    let config = mcp_edge::config::parse(Path::new("bench.toml"), CONF).expect("bench config is valid");
    let router = Router::new(&config);
    c.bench_function("route/find+rule", |b| {
        b.iter(|| {
            let (_, route) = router.find(None, Some("localhost:8080"), black_box("/mcp")).expect("route");
            let Ok(Message::Request { method, name, .. }) = envelope::parse(SMALL) else { unreachable!() };
            route.rule_pool(Call { method: &method, target: name.as_deref() }).or(route.pool)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
