//! Validation of what a `[[route]]` says about authentication: `auth` (the authenticators it
//! accepts), `pass_token`, `public_url` and `[route.oauth]`, whose RFC 9728 document is
//! rendered here, once. Part of the raw → model pipeline (see `routes`, `authn`).

use std::collections::HashMap;
use std::sync::Arc;

use super::auth_model::{AuthKind, AuthenticatorConfig, RouteAuth};
use super::error::Collector;
use super::raw::{RawOAuth, RawRoute, S};

pub fn route_auth(
    raw: &RawRoute,
    name: &str,
    index: &HashMap<String, usize>,
    authenticators: &[AuthenticatorConfig],
    c: &mut Collector<'_>,
) -> RouteAuth {
    let field = |f: &str| format!("route.{name}.{f}");
    let public_url = raw.public_url.as_ref().and_then(|u| {
        let ok = public(u.get_ref());
        if !ok {
            c.push(u.span(), field("public_url"), "is not an https:// URL without query or fragment (http:// only for localhost), e.g. \"https://mcp.example.com/mcp\"");
        }
        ok.then(|| u.get_ref().trim_end_matches('/').to_owned())
    });
    let mut accept = Vec::new();
    if let Some(list) = &raw.auth {
        if list.get_ref().is_empty() {
            c.push(
                list.span(),
                field("auth"),
                "is empty; list authenticators by name, or remove `auth` to admit everyone",
            );
        }
        for n in list.get_ref() {
            let Some(&i) = index.get(n.get_ref()) else {
                let mut known: Vec<_> = index.keys().map(String::as_str).collect();
                known.sort_unstable();
                c.push(
                    n.span(),
                    field("auth"),
                    format!("no authenticator named `{}`; defined: [{}]", n.get_ref(), known.join(", ")),
                );
                continue;
            };
            let needs_url =
                authenticators.get(i).is_some_and(|a| matches!(&a.kind, AuthKind::Jwt(j) if j.audience.is_empty()));
            if needs_url && public_url.is_none() {
                c.push(n.span(), field("auth"), format!("authenticator `{}` has no `audience`, so tokens must name this route's URL: set `public_url` on the route (or `audience` on the authenticator)", n.get_ref()));
            }
            accept.push(i);
        }
    }
    let pass_token = raw.pass_token.as_ref().is_some_and(|p| *p.get_ref());
    let metadata = raw.oauth.as_ref().and_then(|o| match &public_url {
        Some(url) => document(o.get_ref(), url, &field("oauth"), c),
        None => {
            c.push(o.span(), field("oauth"), "needs the route's `public_url` (the `resource` it describes)");
            None
        }
    });
    let scopes = raw.oauth.iter().flat_map(|o| &o.get_ref().scopes_supported).map(|s| s.get_ref().clone()).collect();
    RouteAuth { accept, pass_token, public_url, metadata, scopes }
}

/// `https://host[:port][/path]`, or `http://` to a loopback host (MCP allows it for local
/// servers): what an OAuth resource identifier may be (RFC 8707 2).
pub(super) fn public(url: &str) -> bool {
    let Ok(uri) = url.parse::<http::Uri>() else { return false };
    let loopback = matches!(uri.host(), Some("localhost" | "127.0.0.1" | "[::1]"));
    let scheme_ok = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => loopback,
        _ => false,
    };
    scheme_ok && uri.query().is_none() && !url.contains('#') && uri.authority().is_some()
}

/// The RFC 9728 protected resource metadata document.
fn document(o: &RawOAuth, resource: &str, field: &str, c: &mut Collector<'_>) -> Option<Arc<str>> {
    let servers: Vec<&str> = o.authorization_servers.get_ref().iter().map(|s| s.get_ref().as_str()).collect();
    if servers.is_empty() {
        c.push(
            o.authorization_servers.span(),
            format!("{field}.authorization_servers"),
            "is empty; name at least one authorization server's issuer URL",
        );
    }
    for s in o.authorization_servers.get_ref() {
        if !public(s.get_ref()) {
            c.push(
                s.span(),
                format!("{field}.authorization_servers"),
                "is not an https:// issuer URL (http:// only for localhost)",
            );
        }
    }
    let scopes: Vec<&str> = o.scopes_supported.iter().map(|s: &S<String>| s.get_ref().as_str()).collect();
    let doc = serde_json::json!({
        "resource": resource,
        "authorization_servers": servers,
        "scopes_supported": scopes,
        "bearer_methods_supported": ["header"],
    });
    Some(doc.to_string().into())
}
