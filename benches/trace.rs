//! What a trace costs, in its parts: the sampling decision for an unsampled request (the 1 %
//! case's common path) and for one continuing a `_meta` context, and encoding a traced
//! request's two spans (SERVER and one CLIENT) as OTLP protobuf into a fresh buffer, as the
//! request path does (the export thread then only concatenates). `loadtest/trace_overhead.sh`
//! measures the whole under load.

use std::time::Duration;

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use mcp_edge::config::model::{OtlpProtocol, TraceSettings};
use mcp_edge::mcp::call::{classify, Mirrored};
use mcp_edge::mcp::method::Era;
use mcp_edge::trace::{self, span};

const BODY: &str = r#"{"jsonrpc":"2.0","id":"c-17","method":"tools/call","params":{"name":"search","arguments":{"q":"weather in Paris"},"_meta":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}}"#;

fn settings(sample: f64) -> TraceSettings {
    TraceSettings {
        endpoint: "http://127.0.0.1:4317".into(),
        protocol: OtlpProtocol::Grpc,
        sample,
        follow_parent: false,
        queue: 4096,
        batch: 512,
        timeout: Duration::from_secs(10),
        interval: Duration::from_secs(1),
        service_name: "mcp-edge".into(),
    }
}

fn bench(c: &mut Criterion) {
    let call = classify(Era::Legacy, Mirrored::default(), &Bytes::from_static(BODY.as_bytes()), false).expect("valid");
    let headers = http::HeaderMap::new();
    let (off, all) = (settings(0.0), settings(1.0));
    let mut g = c.benchmark_group("trace");
    g.bench_function("decide, not sampled", |b| {
        b.iter(|| black_box(trace::decide(&off, None, &headers, black_box(&call), Duration::ZERO)))
    });
    g.bench_function("decide, sampled (continues _meta)", |b| {
        b.iter(|| black_box(trace::decide(&all, None, &headers, black_box(&call), Duration::ZERO)))
    });
    let mut t = trace::decide(&all, None, &headers, &call, Duration::ZERO).expect("sampled");
    t.begin_attempt();
    let finished = span::Finished {
        call: &call,
        http_method: "POST",
        status: 200,
        error: "_none",
        rpc_code: None,
        route: "mcp",
        pool: "main",
        limit: "",
        request_id: "5f1c2a0e9b7d4c3a0000010000000001",
        client: Some("127.0.0.1:53124".parse().expect("addr")),
        protocol_version: Some("2025-11-25"),
        session: None,
    };
    let backend = Some("127.0.0.1:9101".parse().expect("addr"));
    g.bench_function("encode SERVER + CLIENT spans", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(1024);
            let n = span::build(&t, &finished, Some((backend, 200, "_none")), &mut out);
            black_box((out, n))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
