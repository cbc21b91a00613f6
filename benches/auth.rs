//! Cost of authentication per request, as the request path pays it (`Gate::admit` on the
//! request's headers): an API key among 10 and among 1,000 (every digest is compared, in
//! constant time), a cached ES256 JWT (SHA-256 of the token and a map lookup), and an
//! uncached ES256 JWT (header, signature, claims).

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use http::{HeaderMap, HeaderValue};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcp_edge::auth::Gate;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
use sha2::{Digest, Sha256};

const ROUTE: &str = "[[pool]]\nname = \"p\"\nbackends = [\"127.0.0.1:9001\"]\n[[route]]\nname = \"r\"\npath = \"/mcp\"\npool = \"p\"\npublic_url = \"https://mcp.example.com/mcp\"\n";

fn gate(text: &str) -> Gate {
    let config = mcp_edge::config::parse(Path::new("bench.toml"), text).expect("bench config");
    Gate::compile(&config, &config.routes[0], &[])
}

fn headers(credential: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(http::header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {credential}")).expect("value"));
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h
}

fn api_key_gate(n: usize) -> Gate {
    let mut text = format!("{ROUTE}auth = [\"keys\"]\n[[authenticator]]\nname = \"keys\"\nkind = \"api_key\"\n");
    for i in 0..n {
        let digest: String =
            Sha256::digest(format!("ak_live_{i:06}").as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        text.push_str(&format!("[[authenticator.key]]\nid = \"k{i}\"\ntenant = \"t\"\nsha256 = \"{digest}\"\n"));
    }
    gate(&text)
}

fn jwt_setup(dir: &Path) -> (Gate, String) {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).expect("pair");
    let (x, y) = pair.public_key().as_ref()[1..].split_at(32);
    let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "x": B64.encode(x), "y": B64.encode(y)}]});
    let file = dir.join("jwks.json");
    std::fs::write(&file, jwks.to_string()).expect("jwks");
    let text = format!(
        "{ROUTE}auth = [\"tokens\"]\n[[authenticator]]\nname = \"tokens\"\nkind = \"jwt\"\nissuer = \"https://auth.example.com\"\njwks_file = \"{}\"\n",
        file.display()
    );
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let claims = serde_json::json!({"iss": "https://auth.example.com", "aud": "https://mcp.example.com/mcp", "sub": "alice", "tenant": "acme", "scope": "tools:read tools:call", "exp": now + 3600, "iat": now});
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("k1".into());
    let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_der(pkcs8.as_ref())).expect("sign");
    (gate(&text), token)
}

fn bench(c: &mut Criterion) {
    // `admit` is async (a fetched key set may be awaited); these paths never wait.
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    for n in [10, 1000] {
        let g = api_key_gate(n);
        let h = headers(&format!("ak_live_{:06}", n / 2));
        assert!(rt.block_on(g.admit(&h)).is_ok());
        c.bench_function(&format!("auth_api_key_among_{n}"), |b| b.iter(|| rt.block_on(g.admit(black_box(&h)))));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (g, token) = jwt_setup(dir.path());
    let h = headers(&token);
    assert!(rt.block_on(g.admit(&h)).is_ok());
    c.bench_function("auth_jwt_es256_cached", |b| b.iter(|| rt.block_on(g.admit(black_box(&h)))));
    let text_gate = || jwt_setup(dir.path());
    c.bench_function("auth_jwt_es256_uncached", |b| {
        b.iter_batched(text_gate, |(g, token)| rt.block_on(g.admit(&headers(&token))).is_ok(), BatchSize::PerIteration)
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
