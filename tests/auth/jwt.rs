//! JWT bearer tokens against a JWKS file: a valid ES256 token admits and is never forwarded;
//! every forgery and every token for someone else is 401 `invalid_token`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::common::Edge;
use crate::story::*;

const INVALID: &str = "Bearer error=\"invalid_token\", resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\"";

/// A 2048-bit RSA public key (only its public half is needed: that is all an attacker has).
const RSA_N: &str = "0T7BcShKQbB3TrEHKckuUkCtvw0WoXtEgeqh4SV2sMpe-rngGFFuiPsoRPQuB5XRuWQ-B7UGWCNjVP7ZLgli0qL2EeVZG-_7avLTY7BVbnVD8_ZK_8vckm5pwFDhN-KZuamy2JSuf1Yp7BvUcJ4dFtmXTiDvhaWfXiyrPMcyGBHjQASIDQfv_5ERRXj960Vy_9yA8qDv4n2YQdrBdg_hQ5eebQDUuPbu5u-TeDfj1McxX3h8Pu3i7mYgfRbKJ_fS6ZeoOhOg2qtVm_aaeqYgj6L8xl3oU5aylaOcPJElFy03bEME-iodRuiGj08rqMO8qWiDGArGHy2dz8WziEhZbQ";

struct Setup {
    b: Backend,
    edge: Edge,
    issuer: Issuer,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let b = backend("main");
    let dir = tempfile::tempdir().expect("tempdir");
    let issuer = Issuer::new("k1");
    let rsa = json!({"kty": "RSA", "kid": "r1", "use": "sig", "n": RSA_N, "e": "AQAB"});
    let jwks = jwks_file(dir.path(), &[issuer.jwk(), rsa]);
    let edge = Edge::start(&format!(
        "{}{}{}",
        pool(&b),
        jwt_authenticator(&jwks, ""),
        route(&format!("auth = [\"tokens\"]\npublic_url = \"{PUBLIC_URL}\""))
    ));
    Setup { b, edge, issuer, _dir: dir }
}

fn refused(s: &Setup, token: &str) {
    assert_challenged(&post(&s.edge, &[("Authorization", &bearer(token))]), 401, INVALID);
}

#[test]
fn a_valid_es256_token_is_admitted_and_never_forwarded() {
    let s = setup();
    let token = s.issuer.sign(&s.issuer.claims("alice", "acme"));
    assert_forwarded_without_credentials(&post(&s.edge, &[("Authorization", &bearer(&token))]), &s.b, 1);
    // Again: from the verified-token cache.
    assert_forwarded_without_credentials(&post(&s.edge, &[("Authorization", &bearer(&token))]), &s.b, 2);
}

#[test]
fn bypass_alg_none_is_refused() {
    let s = setup();
    let claims = B64.encode(s.issuer.claims("mallory", "acme").to_string());
    for header in [r#"{"alg":"none","typ":"JWT"}"#, r#"{"alg":"none","kid":"k1"}"#, r#"{"alg":"None"}"#] {
        refused(&s, &format!("{}.{claims}.", B64.encode(header)));
        refused(&s, &format!("{}.{claims}", B64.encode(header)));
    }
    s.b.rec.assert_nothing();
}

#[test]
fn bypass_hmac_signed_with_a_public_key_is_refused() {
    let s = setup();
    let claims = s.issuer.claims("mallory", "acme");
    let rsa_n = B64.decode(RSA_N).expect("n");
    let attempts: [(&str, &[u8]); 3] = [("r1", &rsa_n), ("k1", &s.issuer.public), ("r1", RSA_N.as_bytes())];
    for (kid, secret) in attempts {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let mut header = Header::new(alg);
            header.kid = Some(kid.to_owned());
            let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret)).expect("sign");
            refused(&s, &token);
        }
    }
    s.b.rec.assert_nothing();
}

#[test]
fn bypass_tokens_for_another_audience_or_issuer_are_refused() {
    let s = setup();
    let mut claims = s.issuer.claims("alice", "acme");
    for (key, value) in [
        ("aud", json!("https://other.example.com/mcp")),
        ("aud", json!("https://mcp.example.com/mcp/")),
        ("aud", json!(["https://other.example.com"])),
        ("iss", json!("https://evil.example.com")),
    ] {
        let original = claims[key].clone();
        claims[key] = value;
        refused(&s, &s.issuer.sign(&claims));
        claims[key] = original;
    }
    for missing in ["aud", "iss", "exp", "sub"] {
        let mut c = s.issuer.claims("alice", "acme");
        c.as_object_mut().expect("object").remove(missing);
        refused(&s, &s.issuer.sign(&c));
    }
    s.b.rec.assert_nothing();
}

#[test]
fn bypass_expired_and_not_yet_valid_tokens_are_refused() {
    let s = setup();
    let mut expired = s.issuer.claims("alice", "acme");
    expired["exp"] = json!(now() - 120);
    refused(&s, &s.issuer.sign(&expired));
    let mut early = s.issuer.claims("alice", "acme");
    early["nbf"] = json!(now() + 600);
    refused(&s, &s.issuer.sign(&early));
    // Within the default 30 s leeway: still valid.
    let mut just = s.issuer.claims("alice", "acme");
    just["exp"] = json!(now() - 5);
    assert_forwarded_without_credentials(&post(&s.edge, &[("Authorization", &bearer(&s.issuer.sign(&just)))]), &s.b, 1);
}

#[test]
fn bypass_tampered_payload_signature_and_unknown_kid_are_refused() {
    let s = setup();
    let token = s.issuer.sign(&s.issuer.claims("alice", "acme"));
    let parts: Vec<&str> = token.split('.').collect();
    let forged = B64.encode(s.issuer.claims("admin", "root").to_string());
    refused(&s, &format!("{}.{forged}.{}", parts[0], parts[2]));
    let mut sig = B64.decode(parts[2]).expect("sig");
    sig[10] ^= 1;
    refused(&s, &format!("{}.{}.{}", parts[0], parts[1], B64.encode(&sig)));
    let other = Issuer::new("k1");
    refused(&s, &other.sign(&other.claims("alice", "acme")));
    let stranger = Issuer::new("k9");
    refused(&s, &stranger.sign(&stranger.claims("alice", "acme")));
    refused(&s, "not.a.jwt");
    s.b.rec.assert_nothing();
}

#[test]
fn a_configured_audience_list_replaces_the_public_url() {
    let b = backend("main");
    let dir = tempfile::tempdir().expect("tempdir");
    let issuer = Issuer::new("k1");
    let jwks = jwks_file(dir.path(), &[issuer.jwk()]);
    let edge = Edge::start(&format!(
        "{}{}{}",
        pool(&b),
        jwt_authenticator(&jwks, "audience = [\"api://mcp\"]\nleeway = \"0s\""),
        route("auth = [\"tokens\"]")
    ));
    let mut claims = issuer.claims("alice", "acme");
    assert_challenged(
        &post(&edge, &[("Authorization", &bearer(&issuer.sign(&claims)))]),
        401,
        "Bearer error=\"invalid_token\"",
    );
    claims["aud"] = json!("api://mcp");
    assert_forwarded_without_credentials(&post(&edge, &[("Authorization", &bearer(&issuer.sign(&claims)))]), &b, 1);
}
