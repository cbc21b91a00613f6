//! What a session token costs: `seal` runs once per new upstream session (the response that
//! carries a backend's `Mcp-Session-Id`), `open` once per request that presents a token.
//! Both go through the key ring the proxy uses, with a UUID-sized upstream id.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use mcp_edge::session::{KeyRing, Member, SessionKey};

fn member() -> Member {
    Member {
        pool: "tools".into(),
        backend: "10.0.0.7:9001".parse().expect("addr"),
        session: "3f1c2a9e-5b7d-4e21-9c0a-7d4e8f1b2c3d".into(),
        version: None,
    }
}

fn sessions(c: &mut Criterion) {
    let ring = KeyRing::new(SessionKey::random());
    let members = [member()];
    let token = ring.seal(&members, None).expect("fits");
    c.bench_function("session/seal", |b| b.iter(|| ring.seal(black_box(&members), None)));
    c.bench_function("session/open", |b| b.iter(|| ring.open(black_box(&token))));
}

criterion_group!(benches, sessions);
criterion_main!(benches);
