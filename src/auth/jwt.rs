//! JWT bearer verification with `jsonwebtoken`: the key comes from the configured set (by
//! `kid` when the token names one), the algorithm must be one that key allows (so `none` and
//! HS/RS confusion fail), then signature, `iss`, `aud`, `exp` and `nbf` (with leeway) are
//! checked and the claims mapped to an [`Identity`]. Verified tokens are cached by their
//! SHA-256 until `exp`, in a bounded map. Owns verification only; not where tokens come from.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jsonwebtoken::{decode, decode_header, Algorithm, Validation};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::identity::Identity;
use crate::config::model::{ClaimNames, JwtSettings, VerifyKey};

/// Verified tokens kept at most; past it, expired entries go, then everything.
const CACHE_CAP: usize = 10_000;

/// Verified tokens by the SHA-256 of the token: the identity and `exp`.
type Verified = HashMap<[u8; 32], (Arc<Identity>, u64)>;

pub struct JwtVerifier {
    keys: Arc<[VerifyKey]>,
    /// One validation per algorithm the key set allows, built once.
    validations: Vec<(Algorithm, Validation)>,
    claims: ClaimNames,
    cache: Mutex<Verified>,
}

impl JwtVerifier {
    /// `audience`: the configured one, or the route's public URL.
    pub fn new(s: &JwtSettings, audience: &[String]) -> JwtVerifier {
        let mut algs: Vec<Algorithm> = Vec::new();
        for alg in s.keys.keys.iter().flat_map(|k| k.algorithms.iter().copied()) {
            if !algs.contains(&alg) {
                algs.push(alg);
            }
        }
        let validations = algs
            .into_iter()
            .map(|alg| {
                let mut v = Validation::new(alg);
                v.set_issuer(&[&s.issuer]);
                v.set_audience(audience);
                v.set_required_spec_claims(&["exp", "iss", "aud"]);
                v.leeway = s.leeway.as_secs();
                v.validate_nbf = true;
                (alg, v)
            })
            .collect();
        JwtVerifier { keys: Arc::clone(&s.keys.keys), validations, claims: s.claims.clone(), cache: Mutex::default() }
    }

    /// The identity a valid token names; `None` for anything else.
    pub fn verify(&self, token: &str, now: u64) -> Option<Arc<Identity>> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(hit) = self.cached(&digest, now) {
            return Some(hit);
        }
        let header = decode_header(token).ok()?;
        let (_, validation) = self.validations.iter().find(|(a, _)| *a == header.alg)?;
        let keys = self.keys.iter().filter(|k| {
            k.algorithms.contains(&header.alg) && header.kid.as_deref().is_none_or(|kid| k.kid.as_deref() == Some(kid))
        });
        for key in keys {
            let Ok(data) = decode::<Map<String, Value>>(token, &key.key, validation) else { continue };
            let exp = data.claims.get("exp").and_then(Value::as_u64)?;
            let identity = Arc::new(identity(&data.claims, &self.claims)?);
            self.remember(digest, &identity, exp, now);
            return Some(identity);
        }
        None
    }

    fn cached(&self, digest: &[u8; 32], now: u64) -> Option<Arc<Identity>> {
        let cache = self.cache.lock().ok()?;
        cache.get(digest).filter(|(_, exp)| now < *exp).map(|(id, _)| Arc::clone(id))
    }

    fn remember(&self, digest: [u8; 32], identity: &Arc<Identity>, exp: u64, now: u64) {
        let Ok(mut cache) = self.cache.lock() else { return };
        if cache.len() >= CACHE_CAP {
            cache.retain(|_, (_, e)| now < *e);
            if cache.len() >= CACHE_CAP {
                cache.clear();
            }
        }
        cache.insert(digest, (Arc::clone(identity), exp));
    }
}

/// The identity the claims name: `id` must be a non-empty string; roles and scopes may be an
/// array of strings or one space-separated string (OAuth's `scope`, RFC 8693 4.2).
fn identity(claims: &Map<String, Value>, names: &ClaimNames) -> Option<Identity> {
    let id = claims.get(&names.id)?.as_str().filter(|s| !s.is_empty())?.to_owned();
    let tenant = claims.get(&names.tenant).and_then(Value::as_str).map(str::to_owned);
    let list = |name: &str| match claims.get(name) {
        Some(Value::String(s)) => s.split_ascii_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    Some(Identity { id, tenant, roles: list(&names.roles), scopes: list(&names.scopes) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_map_to_the_identity_by_the_configured_names() {
        let names =
            ClaimNames { id: "email".into(), tenant: "org".into(), roles: "groups".into(), scopes: "scope".into() };
        let claims = serde_json::json!({"email": "a@x", "org": "acme", "groups": ["dev", 7, "ops"], "scope": "tools:read  tools:call"});
        let Value::Object(claims) = claims else { return };
        let id = identity(&claims, &names);
        assert_eq!(
            id,
            Some(Identity {
                id: "a@x".into(),
                tenant: Some("acme".into()),
                roles: vec!["dev".into(), "ops".into()],
                scopes: vec!["tools:read".into(), "tools:call".into()],
            })
        );
        let mut no_id = claims.clone();
        no_id.insert("email".into(), Value::String(String::new()));
        assert_eq!(identity(&no_id, &names), None, "an empty id admits no one");
    }
}
