//! The key set of a `kind = "jwt"` authenticator, read at load from `jwks_file` (a JWKS
//! document) or `hs256_secret_file` (an HMAC secret), compiled to verification keys. Each
//! key names the only algorithms it verifies, from the key itself (its `alg`, else its type
//! and curve): a token's `alg` only picks among them, so `none` and HS/RS confusion cannot
//! verify. Part of the raw → model pipeline (see `authn`).

use std::ops::Range;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use sha2::{Digest, Sha256};

use std::time::Duration;

use super::auth_model::{JwtKeys, RemoteJwks, VerifyKey};
use super::error::Collector;
use super::raw::{RawAuthenticator, S};

/// Shorter HMAC secrets are refused: RFC 7518 3.2 asks for at least the hash size.
const MIN_SECRET: usize = 32;

pub fn keys(a: &RawAuthenticator, name: &str, c: &mut Collector<'_>) -> JwtKeys {
    let field = |f: &str| format!("authenticator.{name}.{f}");
    let empty = JwtKeys { source_digest: [0; 32], keys: Vec::new().into() };
    let sources = [a.jwks_file.as_ref(), a.hs256_secret_file.as_ref(), a.jwks_url.as_ref()];
    if let Some(second) = sources.iter().flatten().nth(1) {
        c.push(second.span(), field("jwks_file"), "set one of `jwks_file`, `hs256_secret_file` or `jwks_url`");
        return empty;
    }
    match sources {
        [Some(f), _, _] => {
            read(f, &field("jwks_file"), c).map_or(empty, |b| jwks(&b, f.span(), &field("jwks_file"), c))
        }
        [_, Some(f), _] => read(f, &field("hs256_secret_file"), c)
            .map_or(empty, |b| secret(&b, f.span(), &field("hs256_secret_file"), c)),
        // Fetched at run time (`auth::remote_keys`).
        [_, _, Some(_)] => empty,
        [None, None, None] => {
            c.push(
                a.name.span(),
                field("jwks_file"),
                "has no keys; set `jwks_file` (a JWKS document), `jwks_url` or `hs256_secret_file`",
            );
            empty
        }
    }
}

/// `jwks_url`: where the key set is fetched from, and how often it is refreshed.
pub fn remote(a: &RawAuthenticator, name: &str, c: &mut Collector<'_>) -> Option<RemoteJwks> {
    let field = |f: &str| format!("authenticator.{name}.{f}");
    let Some(url) = &a.jwks_url else {
        if let Some(r) = &a.jwks_refresh {
            c.push(r.span(), field("jwks_refresh"), "applies only with `jwks_url`; remove it");
        }
        return None;
    };
    if !super::route_auth::public(url.get_ref()) {
        c.push(url.span(), field("jwks_url"), "is not an https:// URL (http:// only for localhost), e.g. \"https://auth.example.com/.well-known/jwks.json\"");
    }
    let refresh = super::duration::or(
        c,
        a.jwks_refresh.as_ref(),
        &field("jwks_refresh"),
        Duration::from_secs(300),
        super::duration::Zero::Refused,
    );
    Some(RemoteJwks { url: url.get_ref().clone(), refresh })
}

fn read(f: &S<String>, field: &str, c: &mut Collector<'_>) -> Option<Vec<u8>> {
    std::fs::read(f.get_ref()).map_err(|e| c.push(f.span(), field, format!("cannot read the file: {e}"))).ok()
}

fn secret(bytes: &[u8], span: Range<usize>, field: &str, c: &mut Collector<'_>) -> JwtKeys {
    let secret = bytes.trim_ascii();
    let source_digest = Sha256::digest(secret).into();
    if secret.len() < MIN_SECRET {
        c.push(span, field, format!("holds a secret shorter than {MIN_SECRET} bytes; generate one with `head -c 32 /dev/urandom | base64 > FILE`"));
        return JwtKeys { source_digest, keys: Vec::new().into() };
    }
    let key = VerifyKey {
        kid: None,
        algorithms: vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512],
        key: DecodingKey::from_secret(secret),
    };
    JwtKeys { source_digest, keys: vec![key].into() }
}

fn jwks(bytes: &[u8], span: Range<usize>, field: &str, c: &mut Collector<'_>) -> JwtKeys {
    let (keys, problems) = parse_jwks(bytes);
    for p in problems {
        c.push(span.clone(), field, p);
    }
    JwtKeys { source_digest: Sha256::digest(bytes).into(), keys: keys.into() }
}

/// The signature keys of a JWKS document, and what is wrong with it (value-free messages).
/// Shared by `jwks_file` (at load) and `jwks_url` (fetched by `auth::remote_keys`).
pub fn parse_jwks(bytes: &[u8]) -> (Vec<VerifyKey>, Vec<String>) {
    let mut problems = Vec::new();
    let set: JwkSet = match serde_json::from_slice(bytes) {
        Ok(set) => set,
        Err(e) => {
            // serde_json's message names the place, not the value.
            let at = format!("line {} column {}", e.line(), e.column());
            problems.push(format!("is not a JWKS document ({at}): write {{\"keys\": [JWK, ...]}} (RFC 7517)"));
            return (Vec::new(), problems);
        }
    };
    let mut keys = Vec::with_capacity(set.keys.len());
    for (n, jwk) in set.keys.iter().enumerate() {
        let which = jwk.common.key_id.as_deref().map_or(format!("key {n}"), |k| format!("key `{k}`"));
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let algorithms = match algorithms(jwk.common.key_algorithm, &jwk.algorithm) {
            Ok(algs) => algs,
            Err(why) => {
                problems.push(format!("{which}: {why}"));
                continue;
            }
        };
        match DecodingKey::from_jwk(jwk) {
            Ok(key) => keys.push(VerifyKey { kid: jwk.common.key_id.clone(), algorithms, key }),
            Err(_) => problems.push(format!("{which} is not a usable public key (bad or missing parameters)")),
        }
    }
    if keys.is_empty() {
        problems.push("holds no signature key; list the issuer's public keys (`use` \"sig\")".to_owned());
    }
    (keys, problems)
}

/// The algorithms a key may verify: its own `alg` when it has one (checked against its type),
/// else every signature algorithm of its type and curve.
fn algorithms(declared: Option<KeyAlgorithm>, params: &AlgorithmParameters) -> Result<Vec<Algorithm>, &'static str> {
    use Algorithm::*;
    let family: Vec<Algorithm> = match params {
        AlgorithmParameters::RSA(_) => vec![RS256, RS384, RS512, PS256, PS384, PS512],
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => vec![ES256],
            EllipticCurve::P384 => vec![ES384],
            _ => return Err("uses a curve that cannot be verified; use P-256 or P-384"),
        },
        AlgorithmParameters::OctetKeyPair(_) => vec![EdDSA],
        AlgorithmParameters::OctetKey(_) => vec![HS256, HS384, HS512],
    };
    let Some(declared) = declared else { return Ok(family) };
    let alg = match declared {
        KeyAlgorithm::HS256 => HS256,
        KeyAlgorithm::HS384 => HS384,
        KeyAlgorithm::HS512 => HS512,
        KeyAlgorithm::ES256 => ES256,
        KeyAlgorithm::ES384 => ES384,
        KeyAlgorithm::RS256 => RS256,
        KeyAlgorithm::RS384 => RS384,
        KeyAlgorithm::RS512 => RS512,
        KeyAlgorithm::PS256 => PS256,
        KeyAlgorithm::PS384 => PS384,
        KeyAlgorithm::PS512 => PS512,
        KeyAlgorithm::EdDSA => EdDSA,
        _ => return Err("names an encryption algorithm; list signature keys only"),
    };
    if family.contains(&alg) {
        Ok(vec![alg])
    } else {
        Err("its `alg` does not fit its key type; fix `alg` or `kty`")
    }
}
