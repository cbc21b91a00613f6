//! Cost of one access-log line on the request thread (formatting into the per-thread buffer
//! and appending to the shared batch; the batch's write(2) is amortised over ~200 lines), and
//! of the rest of what finishing a request adds for its metrics and the line: its five series
//! (by label lookup, and through the per-thread cache the request path uses), a session fingerprint, a sampling decision.
//! Run with stderr sent away: `cargo bench --bench access 2>/dev/null`.

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use mcp_edge::config::model::{LogFormat, LogSettings};
use mcp_edge::mcp::method::Method;
use mcp_edge::metrics::{status_class, status_label, ErrorType, Metrics};
use mcp_edge::session::Fingerprint;
use mcp_edge::state::series::{Attempt, Labels, Series};
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
        attempts: 1,
        rpc_code: None,
        limit: "",
        session: "9c2f4e1a0b7d3c55",
        trace_id: "",
    }
}

fn bench(c: &mut Criterion) {
    let settings = LogSettings {
        format: LogFormat::Text,
        level: "warn".into(),
        access: true,
        access_file: None,
        access_slow: Duration::from_secs(1),
    };
    let _guard = telemetry::init(&settings).expect("stderr");
    let a = line();
    c.bench_function("access line (text)", |b| b.iter(|| telemetry::access(black_box(&a))));

    let m = Metrics::new().expect("metrics");
    // What finishing a request and its one attempt wrote before the series cache: five label
    // lookups (each hashes its strings and takes the vector's lock).
    c.bench_function("request series by label lookup (5 series)", |b| {
        b.iter(|| {
            let (route, method, tool, secs) = (black_box("mcp"), "tools/call", "search", black_box(0.0412));
            m.requests.with_label_values(&[route, method, tool, status_label(black_box(200))]).inc();
            m.duration.with_label_values(&[route, method]).observe(secs);
            let labels = [route, method, tool, status_class(black_box(200)), ErrorType::None.as_str()];
            m.server_duration.with_label_values(&labels).observe(secs);
            m.first_byte.with_label_values(&labels).observe(black_box(0.0300));
            let attempt = [labels[0], "main", labels[1], labels[2], labels[3], labels[4]];
            m.client_duration.with_label_values(&attempt).observe(black_box(0.0405));
        })
    });
    // The same five series through the per-thread cache the request path uses.
    let series = Series::default();
    c.bench_function("request series cached (5 series)", |b| {
        b.iter(|| {
            let labels = Labels {
                route: Some(black_box(0)),
                route_name: "mcp",
                method: Method::ToolsCall,
                tool: 2,
                tool_name: "search",
                status: black_box(200),
                error: ErrorType::None,
            };
            series.finish(&m, &labels, black_box(0.0412), Some(black_box(0.0300)));
            let attempt = Attempt { labels, pool: Some(0), pool_name: "main" };
            series.attempt(&m, &attempt, black_box(0.0405));
        })
    });
    let token = "e1.".to_owned() + &"Zm9vYmFyYmF6".repeat(8);
    c.bench_function("session fingerprint", |b| b.iter(|| Fingerprint::of(black_box(&token))));
    c.bench_function("sampling decision", |b| {
        b.iter(|| telemetry::sampled(black_box("5f1c2a0e9b7d4c3a0000010000000001"), black_box(0.1)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
