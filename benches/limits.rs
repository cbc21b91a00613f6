//! Cost of the limits on the request path, with the shape of `loadtest/bench-limits.toml`
//! (never hit): a per-client rate with burst and in-flight cap, and a per-tool rate. One
//! iteration is what one request pays: hash its keys, check and charge both limits, hold and
//! release the in-flight slot. Keys vary over 1,000 clients so the sketches are not all cache-hot.

use std::path::Path;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use mcp_edge::limits::{KeyHasher, Limiter};

const CONF: &str = r#"
[[pool]]
name = "main"
backends = ["127.0.0.1:9001"]
[[limit]]
name = "per-client"
key = ["client_ip"]
rate = "10000000/s"
burst = 1000
concurrency = 100000
[[limit]]
name = "per-tool"
key = ["tool"]
rate = "10000000/s"
[[route]]
name = "main"
path = "/mcp"
pool = "main"
limits = ["per-client", "per-tool"]
"#;

fn bench(c: &mut Criterion) {
    let config = mcp_edge::config::parse(Path::new("bench.toml"), CONF).expect("bench config");
    let (client, tool) = (Limiter::new(&config.limits[0]), Limiter::new(&config.limits[1]));
    let label = String::new;
    let mut n: u32 = 0;
    c.bench_function("limits: per-client rate+burst+inflight and per-tool rate", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + n % 1000).to_ipv6_mapped().octets();
            let mut h = KeyHasher::new();
            h.part(&ip);
            let guard = client.admit(h.finish(), None, 1, &label);
            let mut h = KeyHasher::new();
            h.part(b"get_weather");
            let charged = tool.admit(h.finish(), None, 1, &label);
            black_box((guard.is_ok(), charged.is_ok()))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
