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
use super::remote_keys::RemoteKeys;
use crate::config::model::{ClaimNames, JwtSettings, VerifyKey};

const ALL: [Algorithm; 12] = [
    Algorithm::HS256,
    Algorithm::HS384,
    Algorithm::HS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::EdDSA,
];

/// Verified tokens kept at most; past it, expired entries go, then everything.
const CACHE_CAP: usize = 10_000;

/// Verified tokens by the SHA-256 of the token: the identity and `exp`.
type Verified = HashMap<[u8; 32], (Arc<Identity>, u64)>;

/// Where the verification keys come from.
pub enum KeySource {
    Static(Arc<[VerifyKey]>),
    Remote(Arc<RemoteKeys>),
}

/// What a token turned out to be.
pub enum Verdict {
    Valid(Arc<Identity>),
    /// It names a key the set does not hold (or there is no set yet): a refetch may help.
    UnknownKey,
    Invalid,
}

pub struct JwtVerifier {
    pub source: KeySource,
    /// One validation per algorithm the key set allows, built once.
    validations: Vec<(Algorithm, Validation)>,
    claims: ClaimNames,
    /// Claims the route's policy tests, kept on the identity.
    keep: Vec<String>,
    cache: Mutex<Verified>,
}

impl JwtVerifier {
    /// `audience`: the configured one, or the route's public URL. `keep`: the claims the
    /// route's policy tests.
    pub fn new(s: &JwtSettings, audience: &[String], source: KeySource, keep: &[String]) -> JwtVerifier {
        let mut algs: Vec<Algorithm> = Vec::new();
        let from_keys = s.keys.keys.iter().flat_map(|k| k.algorithms.iter().copied());
        // A fetched set may hold any key type; each key still limits its own algorithms.
        let any = matches!(source, KeySource::Remote(_)).then_some(ALL).into_iter().flatten();
        for alg in from_keys.chain(any) {
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
        JwtVerifier { source, validations, claims: s.claims.clone(), keep: keep.to_vec(), cache: Mutex::default() }
    }

    /// What the token is: valid (with the identity it names), signed by a key the set does
    /// not hold, or invalid.
    pub fn verify(&self, token: &str, now: u64) -> Verdict {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(hit) = self.cached(&digest, now) {
            return Verdict::Valid(hit);
        }
        let Ok(header) = decode_header(token) else { return Verdict::Invalid };
        let Some((_, validation)) = self.validations.iter().find(|(a, _)| *a == header.alg) else {
            return Verdict::Invalid;
        };
        let fetched;
        let set: &[VerifyKey] = match &self.source {
            KeySource::Static(keys) => keys,
            KeySource::Remote(remote) => {
                fetched = remote.current();
                fetched.as_deref().map_or(&[], Vec::as_slice)
            }
        };
        let named = |k: &&VerifyKey| header.kid.as_deref().is_none_or(|kid| k.kid.as_deref() == Some(kid));
        if set.is_empty() || !set.iter().any(|k| named(&k)) {
            return Verdict::UnknownKey;
        }
        for key in set.iter().filter(named).filter(|k| k.algorithms.contains(&header.alg)) {
            let Ok(data) = decode::<Map<String, Value>>(token, &key.key, validation) else { continue };
            let Some(exp) = data.claims.get("exp").and_then(Value::as_u64) else { return Verdict::Invalid };
            let Some(mut identity) = identity(&data.claims, &self.claims, &self.keep) else { return Verdict::Invalid };
            identity.token_exp = Some(exp);
            let identity = Arc::new(identity);
            self.remember(digest, &identity, exp, now);
            return Verdict::Valid(identity);
        }
        Verdict::Invalid
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
/// array of strings or one space-separated string (OAuth's `scope`, RFC 8693 4.2). Of the
/// other claims, the string ones named in `keep` are kept (arrays: their string elements).
fn identity(claims: &Map<String, Value>, names: &ClaimNames, keep: &[String]) -> Option<Identity> {
    let id = claims.get(&names.id)?.as_str().filter(|s| !s.is_empty())?.to_owned();
    let tenant = claims.get(&names.tenant).and_then(Value::as_str).map(str::to_owned);
    let list = |name: &str| match claims.get(name) {
        Some(Value::String(s)) => s.split_ascii_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    let mut kept = Vec::new();
    for name in keep {
        match claims.get(name) {
            Some(Value::String(v)) => kept.push((name.clone(), v.clone())),
            Some(Value::Array(a)) => {
                kept.extend(a.iter().filter_map(Value::as_str).map(|v| (name.clone(), v.to_owned())));
            }
            _ => {}
        }
    }
    Some(Identity { id, tenant, roles: list(&names.roles), scopes: list(&names.scopes), claims: kept, token_exp: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_map_to_the_identity_by_the_configured_names() {
        let names =
            ClaimNames { id: "email".into(), tenant: "org".into(), roles: "groups".into(), scopes: "scope".into() };
        let claims = serde_json::json!({"email": "a@x", "org": "acme", "groups": ["dev", 7, "ops"], "scope": "tools:read  tools:call", "dept": ["eng", 3, "ops"], "level": "5", "secret": "not kept"});
        let Value::Object(claims) = claims else { return };
        let keep = ["dept".to_owned(), "level".to_owned(), "absent".to_owned()];
        let id = identity(&claims, &names, &keep);
        assert_eq!(
            id,
            Some(Identity {
                id: "a@x".into(),
                tenant: Some("acme".into()),
                roles: vec!["dev".into(), "ops".into()],
                scopes: vec!["tools:read".into(), "tools:call".into()],
                claims: vec![
                    ("dept".into(), "eng".into()),
                    ("dept".into(), "ops".into()),
                    ("level".into(), "5".into())
                ],
                token_exp: None,
            })
        );
        let mut no_id = claims.clone();
        no_id.insert("email".into(), Value::String(String::new()));
        assert_eq!(identity(&no_id, &names, &keep), None, "an empty id admits no one");
    }
}
