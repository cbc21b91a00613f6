//! The validated shape of authentication: named `[[authenticator]]`s (API keys, JWT) and what
//! a route says about them. Built only by `config::authn`; compiled into per-route gates by
//! `crate::auth`. Every credential here is a [`Secret`] or a digest inside one.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use jsonwebtoken::{Algorithm, DecodingKey};

use crate::auth::identity::{Identity, Secret};

#[derive(Debug, Clone, PartialEq)]
pub struct AuthenticatorConfig {
    pub name: String,
    pub kind: AuthKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AuthKind {
    ApiKey(ApiKeySettings),
    Jwt(JwtSettings),
    ClientCert(ClientCertSettings),
}

/// `kind = "client_cert"`: the client certificate a TLS listener verified (`client_ca_file`)
/// names the caller. Which field is the id, which ids are admitted (none listed: any), and the
/// tenant, roles and scopes every admitted certificate gets.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientCertSettings {
    pub field: CertField,
    pub allow: Vec<crate::glob::Glob>,
    pub tenant: Option<String>,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
}

/// The certificate field that is the caller's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertField {
    /// The subject's common name.
    Cn,
    /// The first `URI:` subject alternative name (a SPIFFE id).
    Uri,
    Dns,
    Email,
}

impl CertField {
    pub fn as_str(self) -> &'static str {
        match self {
            CertField::Cn => "cn",
            CertField::Uri => "uri",
            CertField::Dns => "dns",
            CertField::Email => "email",
        }
    }
}

/// Where a credential travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialHeader {
    /// `Authorization: Bearer <credential>`.
    Authorization,
    /// A header of its own (lowercased name) holding the bare key.
    Named(http::HeaderName),
}

impl CredentialHeader {
    pub fn name(&self) -> &http::HeaderName {
        match self {
            CredentialHeader::Authorization => &http::header::AUTHORIZATION,
            CredentialHeader::Named(n) => n,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeySettings {
    pub header: CredentialHeader,
    /// Re-read on every load, so a rotated key file applies on reload.
    pub keys_file: Option<PathBuf>,
    /// Inline keys and the keys file's, in that order.
    pub keys: Arc<[ApiKey]>,
}

/// One key: only its SHA-256 digest is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub identity: Arc<Identity>,
    pub digest: Secret<[u8; 32]>,
    /// After this instant the key no longer admits (rotation: old and new overlap until then).
    pub not_after: Option<SystemTime>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JwtSettings {
    pub issuer: String,
    /// Accepted `aud` values; empty: the public URL of the route using it.
    pub audience: Vec<String>,
    pub leeway: Duration,
    /// The configured key set (empty with `remote`).
    pub keys: JwtKeys,
    /// `jwks_url`: keys fetched and refreshed at run time instead.
    pub remote: Option<RemoteJwks>,
    pub claims: ClaimNames,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteJwks {
    pub url: String,
    /// Refetched when older than this (and on an unknown `kid`, at most every 10 s).
    pub refresh: Duration,
}

/// Which claims fill the identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    pub id: String,
    pub tenant: String,
    pub roles: String,
    pub scopes: String,
}

/// A verification key and the only algorithms it may verify (from the key, never the token).
#[derive(Clone)]
pub struct VerifyKey {
    pub kid: Option<String>,
    pub algorithms: Vec<Algorithm>,
    pub key: DecodingKey,
}

/// The key set of a JWT authenticator, compiled at load. Compared by the digest of its
/// source, so an unchanged file is an unchanged config.
#[derive(Clone)]
pub struct JwtKeys {
    pub source_digest: [u8; 32],
    pub keys: Arc<[VerifyKey]>,
}

impl PartialEq for JwtKeys {
    fn eq(&self, other: &JwtKeys) -> bool {
        self.source_digest == other.source_digest
    }
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JwtKeys({} keys, <redacted>)", self.keys.len())
    }
}

/// What a route says about authentication.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RouteAuth {
    /// Indexes into `Config::authenticators`; empty: no authentication.
    pub accept: Vec<usize>,
    /// Forward the caller's credential headers upstream (off: they are always removed).
    pub pass_token: bool,
    /// The route's public base URL (`https://host/path`): the OAuth `resource` and default
    /// JWT audience. Configured, never derived from `Host`.
    pub public_url: Option<String>,
    /// RFC 9728 metadata served for this route, pre-rendered at load.
    pub metadata: Option<Arc<str>>,
    /// `[route.oauth] scopes_supported`, also named in 401 challenges.
    pub scopes: Vec<String>,
}
