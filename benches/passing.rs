//! Cost of reading a member's answer as it passes (`federation::passing`): a small tool
//! result as a JSON answer (what every federated JSON call now pays), and a 1 MiB resource
//! read (a base64 blob) as a JSON answer and as one event of a call's stream, in 64 KiB
//! chunks as Pingora hands them over. Compared with `serde_json` reading the same bytes whole
//! into raw values (what holding the answer would cost on top of the hold). And offering the
//! URIs of a held answer (`federation::contents`): a tool result with two links and a text
//! block, and the 1 MiB read.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use mcp_edge::federation::contents::{self, Places};
use mcp_edge::federation::passing::{JsonAnswer, PassingEvent};

const CALL: Option<&[u8]> = Some(b"\"c1\"");

fn small() -> Vec<u8> {
    br#"{"jsonrpc":"2.0","id":"c1","result":{"content":[{"type":"text","text":"hello from a"}],"isError":false}}"#
        .to_vec()
}

fn large() -> Vec<u8> {
    let blob: String = (0..1 << 20).map(|i| char::from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef"[i % 32])).collect();
    format!(
        r#"{{"jsonrpc":"2.0","id":"c1","result":{{"contents":[{{"uri":"file:///big.bin","mimeType":"application/octet-stream","blob":"{blob}"}}]}}}}"#
    )
    .into_bytes()
}

fn json(body: &[u8]) {
    let mut answer = JsonAnswer::default();
    let mut chunks = body.chunks(64 << 10).peekable();
    while let Some(chunk) = chunks.next() {
        let end = chunks.peek().is_none();
        answer.push(chunk, end, CALL).expect("passes");
    }
}

fn event(event: &[u8]) {
    let mut passing = PassingEvent::default();
    let mut answered = false;
    for chunk in event.chunks(64 << 10) {
        if passing.feed(chunk, CALL, &mut answered).expect("passes").is_some() {
            return;
        }
    }
    panic!("the event did not end");
}

fn bench(c: &mut Criterion) {
    let (small, large) = (small(), large());
    let mut sse = b"id: 1\nevent: message\ndata: ".to_vec();
    sse.extend_from_slice(&large);
    sse.extend_from_slice(b"\n\n");
    let mut g = c.benchmark_group("passing");
    g.throughput(Throughput::Bytes(small.len() as u64));
    g.bench_function("json_small", |b| b.iter(|| json(black_box(&small))));
    g.throughput(Throughput::Bytes(large.len() as u64));
    g.bench_function("json_1mib", |b| b.iter(|| json(black_box(&large))));
    g.bench_function("event_1mib", |b| b.iter(|| event(black_box(&sse))));
    type Raw<'a> = std::collections::BTreeMap<&'a str, &'a serde_json::value::RawValue>;
    g.bench_function("serde_raw_1mib", |b| {
        b.iter(|| serde_json::from_slice::<Raw<'_>>(black_box(&large)).map(|m| m.len()))
    });
    g.finish();
    let links = br#"{"jsonrpc":"2.0","id":"c1","result":{"content":[{"type":"text","text":"see"},{"type":"resource_link","name":"r","uri":"mock://a/readme"},{"type":"resource","resource":{"uri":"mock://a/secret","text":"s"}}],"structuredContent":{"uri":"x"},"isError":false}}"#;
    let offer = |uri: &str| format!("a+{uri}");
    let mut g = c.benchmark_group("offering");
    g.throughput(Throughput::Bytes(links.len() as u64));
    g.bench_function("tool_links", |b| b.iter(|| contents::offered(black_box(links), Places::Tool, offer)));
    g.throughput(Throughput::Bytes(large.len() as u64));
    g.bench_function("read_1mib", |b| b.iter(|| contents::offered(black_box(&large), Places::Read, offer)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
