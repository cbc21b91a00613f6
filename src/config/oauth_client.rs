//! Validation of `[pool.oauth]`: the OAuth client whose token the proxy sends to a pool's
//! backends. The secret is read here, from the environment or a file, at every load, and no
//! message echoes it, the variable's name or the file's content. The typed result is
//! `header_model::OAuthClient`; fetching and renewing the token is `upstream::token`.

use std::net::IpAddr;
use std::path::PathBuf;

use super::error::Collector;
use super::header_model::{ClientAuth, CredentialSource, Grant, OAuthClient};
use super::raw::{RawCredential, RawPoolOAuth, S};
use super::upstream_headers::{from_env, from_file};
use crate::auth::identity::Secret;

pub fn oauth(
    raw: &S<RawPoolOAuth>,
    credentials: &[S<RawCredential>],
    pool: &str,
    c: &mut Collector<'_>,
) -> Option<OAuthClient> {
    let field = |f: &str| format!("pool.{pool}.oauth.{f}");
    let r = raw.get_ref();
    let before = c.errors.len();
    let subject_token_type = match r.subject_token_type.as_ref().map(|t| t.get_ref().as_str()) {
        None | Some("access_token") => "urn:ietf:params:oauth:token-type:access_token",
        Some("jwt") => "urn:ietf:params:oauth:token-type:jwt",
        Some(_) => {
            let span = r.subject_token_type.as_ref().map_or(0..0, S::span);
            c.push(span, field("subject_token_type"), "is not a subject token type; use \"access_token\" or \"jwt\"");
            ""
        }
    };
    let grant = match r.grant.as_ref().map(|g| g.get_ref().as_str()) {
        None | Some("client_credentials") => Grant::ClientCredentials,
        Some("token_exchange") => Grant::TokenExchange { subject_token_type },
        Some(_) => {
            let span = r.grant.as_ref().map_or(0..0, S::span);
            c.push(
                span,
                field("grant"),
                "is not a grant mcp-edge requests; use \"client_credentials\" or \"token_exchange\"",
            );
            Grant::ClientCredentials
        }
    };
    if let (Grant::ClientCredentials, Some(t)) = (grant, &r.subject_token_type) {
        c.push(t.span(), field("subject_token_type"), "applies to grant = \"token_exchange\" only; remove it");
    }
    token_url(&r.token_url, &field("token_url"), c);
    if r.client_id.get_ref().is_empty() || r.client_id.get_ref().chars().any(char::is_control) {
        c.push(
            r.client_id.span(),
            field("client_id"),
            "must be the client id the authorization server issued, on one line",
        );
    }
    let client_auth = match r.client_auth.as_ref().map(|a| a.get_ref().as_str()) {
        None | Some("basic") => ClientAuth::Basic,
        Some("post") => ClientAuth::Post,
        Some(_) => {
            let span = r.client_auth.as_ref().map_or(0..0, S::span);
            c.push(span, field("client_auth"), "is not a client authentication method; use \"basic\" or \"post\"");
            ClientAuth::Basic
        }
    };
    if let Some(s) = r.scope.as_ref().filter(|s| !is_scope(s.get_ref())) {
        c.push(
            s.span(),
            field("scope"),
            "is not a scope list; use space-separated scope names without quotes or backslashes",
        );
    }
    for (value, name) in [(&r.resource, "resource"), (&r.audience, "audience")] {
        if let Some(v) = value.as_ref().filter(|v| v.get_ref().is_empty() || v.get_ref().chars().any(char::is_control))
        {
            c.push(v.span(), field(name), "must be a URI or name on one line");
        }
    }
    if let Some(v) = r.resource.as_ref().filter(|v| !is_resource(v.get_ref())) {
        c.push(v.span(), field("resource"), "is not a resource indicator; use an absolute URI without a fragment (RFC 8707), like \"https://tools.example/mcp\"");
    }
    if let Some(cred) =
        credentials.iter().find(|cr| cr.get_ref().header.get_ref().eq_ignore_ascii_case("authorization"))
    {
        c.push(
            cred.get_ref().header.span(),
            format!("pool.{pool}.credential.header"),
            "sets Authorization, which [pool.oauth] sets too; keep one",
        );
    }
    let secret = match (&r.client_secret_env, &r.client_secret_file) {
        (Some(var), None) => {
            from_env(var, &field("client_secret_env"), c).map(|v| (CredentialSource::Env(var.get_ref().clone()), v))
        }
        (None, Some(file)) => from_file(file, &field("client_secret_file"), c)
            .map(|v| (CredentialSource::File(PathBuf::from(file.get_ref())), v)),
        (Some(var), Some(_)) => {
            c.push(
                var.span(),
                field("client_secret_env"),
                "set either `client_secret_env` or `client_secret_file`, not both",
            );
            None
        }
        (None, None) => {
            c.push(raw.span(), field("client_secret_env"), "needs the client secret's source: `client_secret_env = \"VAR\"` or `client_secret_file = \"/path\"` (secrets are never written inline)");
            None
        }
    };
    let (secret_source, secret) = secret?;
    let Ok(secret) = String::from_utf8(secret) else {
        let f = if r.client_secret_env.is_some() { "client_secret_env" } else { "client_secret_file" };
        let span = r.client_secret_env.as_ref().or(r.client_secret_file.as_ref()).map_or(0..0, S::span);
        c.push(span, field(f), "the secret is not UTF-8 text; write it as the authorization server issued it");
        return None;
    };
    if c.errors.len() > before {
        return None;
    }
    Some(OAuthClient {
        grant,
        token_url: r.token_url.get_ref().clone(),
        client_id: r.client_id.get_ref().clone(),
        secret: Secret::new(secret),
        secret_source,
        client_auth,
        scope: r.scope.as_ref().map(|s| s.get_ref().clone()),
        resource: r.resource.as_ref().map(|s| s.get_ref().clone()),
        audience: r.audience.as_ref().map(|s| s.get_ref().clone()),
    })
}

/// `https://host[:port]/path`, or `http://` to a loopback address (the client secret and the
/// token travel in it).
fn token_url(url: &S<String>, field: &str, c: &mut Collector<'_>) {
    let Ok(uri) = url.get_ref().parse::<http::Uri>() else {
        c.push(url.span(), field, "is not a URL; use the token endpoint, like \"https://auth.example/oauth/token\"");
        return;
    };
    let host = uri.host().map(|h| h.trim_start_matches('[').trim_end_matches(']'));
    let loopback = host.is_some_and(|h| h == "localhost" || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()));
    match (uri.scheme_str(), host) {
        (Some("https"), Some(_)) => {}
        (Some("http"), Some(_)) if loopback => {}
        (Some("http"), Some(_)) => c.push(
            url.span(),
            field,
            "uses plain http to another host, which would send the client secret in the clear; use https://",
        ),
        _ => c.push(
            url.span(),
            field,
            "is not an absolute https:// URL; use the token endpoint, like \"https://auth.example/oauth/token\"",
        ),
    }
}

/// RFC 6749 3.3: `scope-token *( SP scope-token )`, `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn is_scope(s: &str) -> bool {
    !s.is_empty()
        && s.split(' ').all(|t| !t.is_empty() && t.bytes().all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)))
}

/// RFC 8707 2: an absolute URI, no fragment.
fn is_resource(s: &str) -> bool {
    s.parse::<http::Uri>().is_ok_and(|u| u.scheme().is_some() && u.host().is_some()) && !s.contains('#')
}
