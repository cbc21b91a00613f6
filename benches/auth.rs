//! Cost of authentication per request, as the request path pays it (`Gate::admit` on the
//! request's headers): an API key among 10 and among 1,000 (every digest is compared, in
//! constant time), a cached ES256 JWT (SHA-256 of the token and a map lookup), and an
//! uncached JWT of each algorithm the proxy verifies (header, signature, claims).

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use http::{HeaderMap, HeaderValue};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcp_edge::auth::Gate;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING,
    ECDSA_P384_SHA384_FIXED_SIGNING,
};
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

/// A signing key of `alg` and its public JWK (or secret, for HS*).
fn key_of(alg: Algorithm) -> (EncodingKey, serde_json::Value) {
    let rng = SystemRandom::new();
    let ec = |signing: &'static EcdsaSigningAlgorithm, crv: &str, half: usize| {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(signing, &rng).expect("key");
        let pair = EcdsaKeyPair::from_pkcs8(signing, pkcs8.as_ref(), &rng).expect("pair");
        let (x, y) = pair.public_key().as_ref()[1..].split_at(half);
        (
            EncodingKey::from_ec_der(pkcs8.as_ref()),
            serde_json::json!({"kty": "EC", "crv": crv, "x": B64.encode(x), "y": B64.encode(y)}),
        )
    };
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            let secret = b"bench-secret-bench-secret-bench-secret-0123456789";
            (EncodingKey::from_secret(secret), serde_json::json!({"kty": "oct", "k": B64.encode(secret)}))
        }
        Algorithm::RS256 | Algorithm::PS256 => {
            let der = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/keys/rsa2048.der")).expect("RSA key");
            let pair = ring::rsa::KeyPair::from_der(&der).expect("RSA pair");
            let public: ring::rsa::PublicKeyComponents<Vec<u8>> = pair.public().into();
            (
                EncodingKey::from_rsa_der(&der),
                serde_json::json!({"kty": "RSA", "n": B64.encode(&public.n), "e": B64.encode(&public.e)}),
            )
        }
        Algorithm::ES384 => ec(&ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", 48),
        Algorithm::EdDSA => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("pair");
            (
                EncodingKey::from_ed_der(pkcs8.as_ref()),
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(pair.public_key().as_ref())}),
            )
        }
        _ => ec(&ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32),
    }
}

/// A gate accepting tokens of `alg` from a JWKS file, and one such token.
fn jwt_setup(dir: &Path, alg: Algorithm) -> (Gate, String) {
    let (key, mut jwk) = key_of(alg);
    jwk["kid"] = "k1".into();
    jwk["alg"] = format!("{alg:?}").into();
    let file = dir.join("jwks.json");
    std::fs::write(&file, serde_json::json!({"keys": [jwk]}).to_string()).expect("jwks");
    let text = format!(
        "{ROUTE}auth = [\"tokens\"]\n[[authenticator]]\nname = \"tokens\"\nkind = \"jwt\"\nissuer = \"https://auth.example.com\"\njwks_file = \"{}\"\n",
        file.display()
    );
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let claims = serde_json::json!({"iss": "https://auth.example.com", "aud": "https://mcp.example.com/mcp", "sub": "alice", "tenant": "acme", "scope": "tools:read tools:call", "exp": now + 3600, "iat": now});
    let mut header = Header::new(alg);
    header.kid = Some("k1".into());
    let token = jsonwebtoken::encode(&header, &claims, &key).expect("sign");
    (gate(&text), token)
}

fn bench(c: &mut Criterion) {
    // `admit` is async (a fetched key set may be awaited); these paths never wait.
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    for n in [10, 1000] {
        let g = api_key_gate(n);
        let h = headers(&format!("ak_live_{:06}", n / 2));
        assert!(rt.block_on(g.admit(&h)).0.is_ok());
        c.bench_function(&format!("auth_api_key_among_{n}"), |b| b.iter(|| rt.block_on(g.admit(black_box(&h)))));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (g, token) = jwt_setup(dir.path(), Algorithm::ES256);
    let h = headers(&token);
    assert!(rt.block_on(g.admit(&h)).0.is_ok());
    c.bench_function("auth_jwt_es256_cached", |b| b.iter(|| rt.block_on(g.admit(black_box(&h)))));
    use Algorithm::*;
    for alg in [ES256, ES384, EdDSA, RS256, PS256, HS256, HS384, HS512] {
        let (g, token) = jwt_setup(dir.path(), alg);
        assert!(rt.block_on(g.admit(&headers(&token))).0.is_ok(), "{alg:?} verifies");
        drop(g);
        // A new gate per iteration: its cache is empty, so each admit verifies.
        let fresh = || (gate_again(dir.path()), headers(&token));
        c.bench_function(&format!("auth_jwt_{}_uncached", format!("{alg:?}").to_lowercase()), |b| {
            b.iter_batched(fresh, |(g, h)| rt.block_on(g.admit(&h)).0.is_ok(), BatchSize::PerIteration)
        });
    }
}

/// A gate over the key file in `dir`, with an empty token cache.
fn gate_again(dir: &Path) -> Gate {
    let file = dir.join("jwks.json");
    gate(&format!(
        "{ROUTE}auth = [\"tokens\"]\n[[authenticator]]\nname = \"tokens\"\nkind = \"jwt\"\nissuer = \"https://auth.example.com\"\njwks_file = \"{}\"\n",
        file.display()
    ))
}

criterion_group!(benches, bench);
criterion_main!(benches);
