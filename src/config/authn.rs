//! Validation of `[[authenticator]]` blocks: API keys (inline and from a keys file, stored as
//! SHA-256 digests) and JWT verifiers (issuer, audience, leeway, a key set from a JWKS file
//! or an HMAC secret file, claim names). Files are read here, so `check` reports them with
//! their place and every reload re-reads them. No message echoes a value. Part of the
//! raw → model pipeline; the route side is `route_auth`, the JWT keys `jwt_keys`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::auth_model::*;
use super::duration::{self, Zero};
use super::error::Collector;
use super::raw::{RawApiKey, RawAuthenticator, RawClaims, RawKeysFile, S};
use crate::auth::identity::{Identity, Secret};
use crate::glob::Glob;

const DIGEST_FIX: &str = "write the key's SHA-256 as 64 hex digits: `printf %s \"$KEY\" | sha256sum`";

pub fn authenticators(
    raw: &[S<RawAuthenticator>],
    c: &mut Collector<'_>,
) -> (Vec<AuthenticatorConfig>, HashMap<String, usize>) {
    let mut out = Vec::with_capacity(raw.len());
    let mut index = HashMap::new();
    for a in raw {
        let a = a.get_ref();
        let name = a.name.get_ref().clone();
        if index.insert(name.clone(), out.len()).is_some() {
            c.push(
                a.name.span(),
                "authenticator.name",
                format!("authenticator `{name}` is defined twice; names must be unique"),
            );
        }
        let field = |f: &str| format!("authenticator.{name}.{f}");
        let (api_keys, jwts, certs) = (api_key_keys(a), jwt_keys(a), cert_keys(a));
        let kind = match a.kind.get_ref().as_str() {
            "api_key" => {
                only_for(c, "jwt", &field, &jwts);
                only_for(c, "client_cert", &field, &certs);
                AuthKind::ApiKey(api_key(a, &name, c))
            }
            "jwt" => {
                only_for(c, "api_key", &field, &api_keys);
                only_for(c, "client_cert", &field, &certs);
                AuthKind::Jwt(jwt(a, &name, c))
            }
            "client_cert" => {
                only_for(c, "api_key", &field, &api_keys);
                only_for(c, "jwt", &field, &jwts);
                AuthKind::ClientCert(client_cert(a, &field, c))
            }
            _ => {
                c.push(a.kind.span(), field("kind"), "unknown kind; use \"api_key\", \"jwt\" or \"client_cert\"");
                continue;
            }
        };
        out.push(AuthenticatorConfig { name, kind });
    }
    (out, index)
}

/// Each kind's own keys, with where they are set: refused on the other kinds.
type Keys = [(&'static str, Option<std::ops::Range<usize>>)];

fn api_key_keys(a: &RawAuthenticator) -> [(&'static str, Option<std::ops::Range<usize>>); 3] {
    [
        ("header", a.header.as_ref().map(S::span)),
        ("keys_file", a.keys_file.as_ref().map(S::span)),
        ("key", a.key.first().map(S::span)),
    ]
}

fn jwt_keys(a: &RawAuthenticator) -> [(&'static str, Option<std::ops::Range<usize>>); 7] {
    [
        ("issuer", a.issuer.as_ref().map(S::span)),
        ("audience", a.audience.as_ref().map(S::span)),
        ("leeway", a.leeway.as_ref().map(S::span)),
        ("jwks_file", a.jwks_file.as_ref().map(S::span)),
        ("hs256_secret_file", a.hs256_secret_file.as_ref().map(S::span)),
        ("jwks_url", a.jwks_url.as_ref().map(S::span)),
        ("claims", a.claims.as_ref().map(S::span)),
    ]
}

fn cert_keys(a: &RawAuthenticator) -> [(&'static str, Option<std::ops::Range<usize>>); 5] {
    [
        ("identity", a.identity.as_ref().map(S::span)),
        ("allow", a.allow.as_ref().map(S::span)),
        ("tenant", a.tenant.as_ref().map(S::span)),
        ("roles", a.roles.as_ref().map(S::span)),
        ("scopes", a.scopes.as_ref().map(S::span)),
    ]
}

fn client_cert(a: &RawAuthenticator, field: &dyn Fn(&str) -> String, c: &mut Collector<'_>) -> ClientCertSettings {
    let cert_field = match a.identity.as_ref().map(|i| i.get_ref().as_str()) {
        None | Some("cn") => CertField::Cn,
        Some("uri") => CertField::Uri,
        Some("dns") => CertField::Dns,
        Some("email") => CertField::Email,
        Some(_) => {
            let span = a.identity.as_ref().map_or(0..0, S::span);
            c.push(span, field("identity"), "is not a certificate field; use \"cn\", \"uri\", \"dns\" or \"email\"");
            CertField::Cn
        }
    };
    let list = |v: &Option<S<Vec<S<String>>>>, name: &str, c: &mut Collector<'_>| -> Vec<String> {
        let items = v.as_ref().map_or(&[][..], |v| v.get_ref().as_slice());
        for item in items.iter().filter(|i| i.get_ref().is_empty() || i.get_ref().chars().any(char::is_control)) {
            c.push(item.span(), field(name), "holds an empty or multi-line entry; write one name per entry");
        }
        items.iter().map(|i| i.get_ref().clone()).collect()
    };
    let allow = list(&a.allow, "allow", c).iter().map(|p| Glob::new(p)).collect();
    let roles = list(&a.roles, "roles", c);
    let scopes = list(&a.scopes, "scopes", c);
    let tenant = a.tenant.as_ref().map(|t| t.get_ref().clone());
    ClientCertSettings { field: cert_field, allow, tenant, roles, scopes }
}

fn only_for(c: &mut Collector<'_>, kind: &str, field: &dyn Fn(&str) -> String, keys: &Keys) {
    for (key, span) in keys {
        if let Some(span) = span {
            c.push(span.clone(), field(key), format!("applies only to kind = \"{kind}\"; remove it"));
        }
    }
}

fn api_key(a: &RawAuthenticator, name: &str, c: &mut Collector<'_>) -> ApiKeySettings {
    let header = match a.header.as_ref() {
        None => CredentialHeader::Authorization,
        Some(h) if h.get_ref().eq_ignore_ascii_case("authorization") => CredentialHeader::Authorization,
        Some(h) => match http::HeaderName::from_bytes(h.get_ref().as_bytes()) {
            Ok(n) => CredentialHeader::Named(n),
            Err(_) => {
                c.push(
                    h.span(),
                    format!("authenticator.{name}.header"),
                    "is not a header name; use \"authorization\" (Bearer) or a name like \"x-api-key\"",
                );
                CredentialHeader::Authorization
            }
        },
    };
    let mut keys: Vec<ApiKey> = a.key.iter().filter_map(|k| key(k, &format!("authenticator.{name}.key"), c)).collect();
    let keys_file = a.keys_file.as_ref().map(|f| PathBuf::from(f.get_ref()));
    if let (Some(path), Some(span)) = (&keys_file, a.keys_file.as_ref().map(S::span)) {
        keys.extend(keys_from_file(path, span, name, c));
    }
    if keys.is_empty() && c.errors.is_empty() {
        let span = a.name.span();
        c.push(
            span,
            format!("authenticator.{name}.key"),
            "admits no one; add [[authenticator.key]] entries or a `keys_file`",
        );
    }
    ApiKeySettings { header, keys_file, keys: keys.into() }
}

/// The keys of a keys file; its errors name the keys file's own lines.
fn keys_from_file(path: &Path, span: std::ops::Range<usize>, name: &str, c: &mut Collector<'_>) -> Vec<ApiKey> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            c.push(span, format!("authenticator.{name}.keys_file"), format!("cannot read the keys file: {e}"));
            return Vec::new();
        }
    };
    let mut fc = Collector::new(path, &text);
    let keys = match toml::from_str::<RawKeysFile>(&text) {
        Ok(raw) => raw.key.iter().filter_map(|k| key(k, "key", &mut fc)).collect(),
        Err(e) => {
            let at = e.span().unwrap_or(0..0);
            let field = super::toml_error::key_path(&text, at.start);
            fc.push(at, field, super::toml_error::message(e.message()));
            Vec::new()
        }
    };
    c.errors.append(&mut fc.errors);
    keys
}

fn key(k: &S<RawApiKey>, field: &str, c: &mut Collector<'_>) -> Option<ApiKey> {
    let k = k.get_ref();
    let digest = hex32(k.sha256.get_ref());
    if digest.is_none() {
        c.push(k.sha256.span(), format!("{field}.sha256"), format!("is not a SHA-256 digest; {DIGEST_FIX}"));
    }
    if k.id.get_ref().is_empty() {
        c.push(k.id.span(), format!("{field}.id"), "is empty; name the caller this key admits");
    }
    let not_after = k.not_after.as_ref().and_then(|t| {
        let parsed = instant(t.get_ref());
        if parsed.is_none() {
            c.push(
                t.span(),
                format!("{field}.not_after"),
                "is not an RFC 3339 UTC time; write it like \"2027-01-01T00:00:00Z\"",
            );
        }
        parsed
    });
    let strings = |v: &[S<String>]| v.iter().map(|s| s.get_ref().clone()).collect();
    let identity = Identity {
        id: k.id.get_ref().clone(),
        tenant: k.tenant.as_ref().map(|t| t.get_ref().clone()),
        roles: strings(&k.roles),
        scopes: strings(&k.scopes),
        claims: Vec::new(),
        token_exp: None,
    };
    Some(ApiKey { identity: Arc::new(identity), digest: Secret::new(digest?), not_after })
}

fn hex32(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let s = std::str::from_utf8(pair).ok()?;
        *o = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// An RFC 3339 date-time with an offset (`toml`'s parser), as a `SystemTime`.
fn instant(text: &str) -> Option<SystemTime> {
    let dt: toml::value::Datetime = text.parse().ok()?;
    let (date, time, offset) = (dt.date?, dt.time?, dt.offset?);
    let offset_min: i64 = match offset {
        toml::value::Offset::Z => 0,
        toml::value::Offset::Custom { minutes } => i64::from(minutes),
    };
    let days = days_from_civil(i64::from(date.year), i64::from(date.month), i64::from(date.day));
    let secs = days * 86_400 + i64::from(time.hour) * 3600 + i64::from(time.minute) * 60 + i64::from(time.second)
        - offset_min * 60;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn jwt(a: &RawAuthenticator, name: &str, c: &mut Collector<'_>) -> JwtSettings {
    let field = |f: &str| format!("authenticator.{name}.{f}");
    let issuer = match &a.issuer {
        Some(i) if !i.get_ref().is_empty() => i.get_ref().clone(),
        Some(i) => {
            c.push(i.span(), field("issuer"), "is empty; write the `iss` your tokens carry");
            String::new()
        }
        None => {
            c.push(
                a.name.span(),
                field("issuer"),
                "is missing; write the `iss` your tokens carry, e.g. \"https://auth.example.com\"",
            );
            String::new()
        }
    };
    let audience: Vec<String> = a.audience.iter().flat_map(|l| l.get_ref()).map(|s| s.get_ref().clone()).collect();
    if let Some(l) = a.audience.as_ref().filter(|_| audience.iter().any(String::is_empty) || audience.is_empty()) {
        c.push(l.span(), field("audience"), "lists nothing (or an empty value); list the `aud` values this proxy accepts, or remove it to use each route's `public_url`");
    }
    let leeway = duration::or(c, a.leeway.as_ref(), &field("leeway"), Duration::from_secs(30), Zero::Allowed);
    let keys = super::jwt_keys::keys(a, name, c);
    let raw = a.claims.as_ref().map(S::get_ref);
    let claim = |pick: fn(&RawClaims) -> &Option<S<String>>, default: &str| {
        raw.and_then(|r| pick(r).as_ref()).map_or(default.to_owned(), |s| s.get_ref().clone())
    };
    let claims = ClaimNames {
        id: claim(|r| &r.id, "sub"),
        tenant: claim(|r| &r.tenant, "tenant"),
        roles: claim(|r| &r.roles, "roles"),
        scopes: claim(|r| &r.scopes, "scope"),
    };
    let remote = super::jwt_keys::remote(a, name, c);
    JwtSettings { issuer, audience, leeway, keys, remote, claims }
}
