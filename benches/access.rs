//! Cost of one access-log line on the request thread (formatting into the per-thread buffer
//! and appending to the shared batch; the batch's write(2) is amortised over ~200 lines).
//! Run with stderr sent away: `cargo bench --bench access 2>/dev/null`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use mcp_edge::config::model::{LogFormat, LogSettings};
use mcp_edge::telemetry::{self, Access};

fn line() -> Access<'static> {
    Access {
        request_id: "5f1c2a0e9b7d4c3a0000010000000001",
        identity: "ci-bot",
        route: "mcp",
        pool: "main",
        http_method: "POST",
        path: "/mcp",
        mcp_method: "tools/call",
        tool: "search",
        status: 200,
        upstream: Some("127.0.0.1:9101".parse().expect("addr")),
        client: Some("127.0.0.1:53124".parse().expect("addr")),
        duration_us: 412,
        ttfb_us: 300,
        bytes_in: 210,
        bytes_out: 318,
        reason: None,
        era: "legacy",
    }
}

fn bench(c: &mut Criterion) {
    let _guard = telemetry::init(&LogSettings { format: LogFormat::Text, level: "warn".into(), access: true });
    let a = line();
    c.bench_function("access line (text)", |b| b.iter(|| telemetry::access(black_box(&a))));
}

criterion_group!(benches, bench);
criterion_main!(benches);
