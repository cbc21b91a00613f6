//! Authentication at the edge: who the caller is, proven once per request before any limit
//! runs. A [`Gate`] is compiled per route from its config (the authenticators it accepts, in
//! order) and kept in the snapshot; `admit` reads the credential headers and yields the
//! caller's [`identity::Identity`] or why not. Also owns which credential headers are removed
//! before forwarding (no token passthrough). Not owned here: the 401 reply (`proxy::reply`),
//! policy over identities, and limits keyed on them (`proxy::throttle`).

pub mod api_key;
pub mod challenge;
pub mod client_cert;
pub mod identity;
pub mod issuer;
pub mod jwt;
pub mod remote_keys;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName};

use crate::config::model::{AuthKind, ClientCertSettings, Config, CredentialHeader, RouteConfig};
use challenge::Challenge;
use identity::Identity;
use jwt::{JwtVerifier, KeySource, Verdict};
use remote_keys::RemoteKeys;

/// One way a route admits callers.
enum Method {
    ApiKey { header: CredentialHeader, keys: api_key::KeyIndex },
    Jwt(JwtVerifier),
    ClientCert(ClientCertSettings),
}

/// Why a request on an authenticated route was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No credential was sent.
    Missing,
    /// A credential was sent and no authenticator accepted it.
    Invalid,
    /// A credential header appears twice: which one counts is ambiguous, so neither does.
    Duplicate,
}

/// Which kind of authenticator decided: `auth_total`'s `method` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    ApiKey,
    Jwt,
    ClientCert,
    /// No credential of any accepted kind was presented.
    None,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 4] = [AuthMethod::ApiKey, AuthMethod::Jwt, AuthMethod::ClientCert, AuthMethod::None];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ApiKey => "api_key",
            AuthMethod::Jwt => "jwt",
            AuthMethod::ClientCert => "client_cert",
            AuthMethod::None => "none",
        }
    }
}

impl Method {
    fn kind(&self) -> AuthMethod {
        match self {
            Method::ApiKey { .. } => AuthMethod::ApiKey,
            Method::Jwt(_) => AuthMethod::Jwt,
            Method::ClientCert(_) => AuthMethod::ClientCert,
        }
    }
}

impl Denied {
    pub const ALL: [Denied; 3] = [Denied::Missing, Denied::Invalid, Denied::Duplicate];

    /// For audit lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Denied::Missing => "missing",
            Denied::Invalid => "invalid",
            Denied::Duplicate => "duplicate",
        }
    }
}

/// A route's authentication, compiled.
pub struct Gate {
    methods: Vec<Method>,
    /// Headers removed before forwarding (empty with `pass_token = true`).
    pub strip: Vec<HeaderName>,
    pub challenge: Challenge,
}

impl Gate {
    /// `remotes`: the fetched key sets of the snapshot (see `remote_keys`).
    pub fn compile(config: &Config, route: &RouteConfig, remotes: &[Arc<RemoteKeys>]) -> Gate {
        let audience: Vec<String> = route.auth.public_url.iter().cloned().collect();
        let keep = route.policy.as_ref().map_or(&[][..], |p| &p.claims[..]);
        let methods: Vec<Method> = route
            .auth
            .accept
            .iter()
            .filter_map(|&i| config.authenticators.get(i))
            .map(|a| match &a.kind {
                AuthKind::ApiKey(k) => {
                    Method::ApiKey { header: k.header.clone(), keys: api_key::KeyIndex::new(&k.keys) }
                }
                AuthKind::Jwt(j) => {
                    let aud = if j.audience.is_empty() { &audience } else { &j.audience };
                    let remote = j.remote.as_ref().and_then(|r| remotes.iter().find(|k| k.config == *r));
                    let source = match remote {
                        Some(r) => KeySource::Remote(Arc::clone(r)),
                        None => KeySource::Static(Arc::clone(&j.keys.keys)),
                    };
                    Method::Jwt(JwtVerifier::new(j, aud, source, keep))
                }
                AuthKind::ClientCert(k) => Method::ClientCert(k.clone()),
            })
            .collect();
        let mut strip = Vec::new();
        if !route.auth.pass_token {
            strip.push(http::header::AUTHORIZATION);
            for m in &methods {
                if let Method::ApiKey { header: CredentialHeader::Named(n), .. } = m {
                    if !strip.contains(n) {
                        strip.push(n.clone());
                    }
                }
            }
        }
        Gate { methods, strip, challenge: Challenge::new(route.auth.public_url.as_deref(), &route.auth.scopes) }
    }

    /// Whether the route asks for a credential at all.
    pub fn required(&self) -> bool {
        !self.methods.is_empty()
    }

    /// The caller's identity, from the first authenticator that accepts its credential, and
    /// which kind of authenticator decided: the one that accepted, else the last one given a
    /// credential (`None` when none was). A token signed by a key a fetched set does not hold
    /// waits for one refetch (debounced).
    pub async fn admit(&self, headers: &HeaderMap) -> (Result<Arc<Identity>, Denied>, AuthMethod) {
        let now = SystemTime::now();
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut presented = AuthMethod::None;
        for method in &self.methods {
            let header = match method {
                Method::ApiKey { header, .. } => header,
                Method::Jwt(_) => &CredentialHeader::Authorization,
                Method::ClientCert(settings) => {
                    // The certificate the listener verified; a plain connection has none.
                    let Some(cert) = crate::downstream::tls::peer() else { continue };
                    presented = AuthMethod::ClientCert;
                    match client_cert::identity(settings, &cert) {
                        Some(identity) => return (Ok(identity), presented),
                        None => continue,
                    }
                }
            };
            let credential = match credential(headers, header) {
                Ok(Some(credential)) => credential,
                Ok(None) => continue,
                Err(denied) => return (Err(denied), method.kind()),
            };
            presented = method.kind();
            let found = match (method, credential) {
                (Method::ApiKey { keys, .. }, Some(c)) => keys.check(c, now),
                (Method::Jwt(v), Some(c)) => match std::str::from_utf8(c) {
                    Ok(token) => jwt_identity(v, token, secs).await,
                    Err(_) => None,
                },
                (Method::ClientCert(_), _) | (_, None) => None,
            };
            if let Some(identity) = found {
                return (Ok(identity), presented);
            }
        }
        let denied = if presented == AuthMethod::None { Denied::Missing } else { Denied::Invalid };
        (Err(denied), presented)
    }
}

async fn jwt_identity(v: &JwtVerifier, token: &str, secs: u64) -> Option<Arc<Identity>> {
    match v.verify(token, secs) {
        Verdict::Valid(identity) => Some(identity),
        Verdict::UnknownKey => match &v.source {
            KeySource::Remote(remote) if remote.refetch(true).await => match v.verify(token, secs) {
                Verdict::Valid(identity) => Some(identity),
                Verdict::UnknownKey | Verdict::Invalid => None,
            },
            _ => None,
        },
        Verdict::Invalid => None,
    }
}

/// The credential in `header`: `Ok(None)` when absent, `Ok(Some(None))` when present but not
/// a well-formed credential (another scheme, empty, or with whitespace inside).
fn credential<'h>(headers: &'h HeaderMap, header: &CredentialHeader) -> Result<Option<Option<&'h [u8]>>, Denied> {
    let mut values = headers.get_all(header.name()).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(Denied::Duplicate);
    }
    let raw = value.as_bytes();
    let token = match header {
        CredentialHeader::Authorization => bearer(raw),
        CredentialHeader::Named(_) => Some(raw),
    };
    Ok(Some(token.filter(|t| !t.is_empty() && t.iter().all(|b| (0x21..=0x7e).contains(b)))))
}

/// Seconds since the Unix epoch (0 before it).
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The caller's bearer token: the one `Authorization: Bearer` header's token, when it is a
/// well-formed one. For a caller whose identity has a `token_exp`, this is the token the route
/// verified (a second `Authorization` header is refused before).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    match credential(headers, &CredentialHeader::Authorization) {
        Ok(Some(Some(token))) => std::str::from_utf8(token).ok(),
        _ => None,
    }
}

/// The token of `Bearer <token>` (the scheme is case-insensitive, RFC 9110 11.1).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.strip_prefix(b" ")?;
    Some(token)
}
