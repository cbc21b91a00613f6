//! What a client is told to find out how to authenticate: the `WWW-Authenticate` challenge
//! of a 401 (RFC 6750 3, with RFC 9728's `resource_metadata`) and the protected resource
//! metadata document the proxy serves itself at `/.well-known/oauth-protected-resource`
//! (bare, or with the route's path inserted). Owns the wording, not the reply.

use std::net::SocketAddr;
use std::sync::Arc;

use super::Denied;
use crate::router::Router;

pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// A route's challenges, rendered at load.
pub struct Challenge {
    missing: String,
    invalid: String,
    duplicate: String,
}

impl Challenge {
    /// `scopes`: the route's `scopes_supported`, named in the challenge (MCP's scope selection
    /// falls back to them when a 401 names none).
    pub fn new(public_url: Option<&str>, scopes: &[String]) -> Challenge {
        let mut params: Vec<String> = Vec::new();
        if let Some(url) = public_url {
            params.push(format!("resource_metadata=\"{}\"", metadata_url(url)));
        }
        if !scopes.is_empty() {
            params.push(format!("scope=\"{}\"", scopes.join(" ")));
        }
        let meta = (!params.is_empty()).then(|| params.join(", "));
        let with = |error: &str| match &meta {
            Some(m) if error.is_empty() => format!("Bearer {m}"),
            Some(m) => format!("Bearer error=\"{error}\", {m}"),
            None if error.is_empty() => "Bearer".to_owned(),
            None => format!("Bearer error=\"{error}\""),
        };
        Challenge { missing: with(""), invalid: with("invalid_token"), duplicate: with("invalid_request") }
    }

    pub fn header(&self, denied: Denied) -> &str {
        match denied {
            Denied::Missing => &self.missing,
            Denied::Invalid => &self.invalid,
            Denied::Duplicate => &self.duplicate,
        }
    }
}

/// The 403 challenge of a call that needs scopes the token does not carry (RFC 6750 3.1):
/// every scope the call needs, in one challenge, and the metadata URL when the route has a
/// public URL (MCP's step-up authorization reads both). Rendered at load.
pub fn insufficient_scope(public_url: Option<&str>, scopes: &[String]) -> String {
    let mut value = format!("Bearer error=\"insufficient_scope\", scope=\"{}\"", scopes.join(" "));
    if let Some(url) = public_url {
        value.push_str(&format!(", resource_metadata=\"{}\"", metadata_url(url)));
    }
    value
}

/// RFC 9728 3.1: the well-known path goes between the host and the resource's path.
fn metadata_url(public_url: &str) -> String {
    let after_scheme = public_url.find("://").map_or(0, |i| i + 3);
    let rest = public_url.get(after_scheme..).unwrap_or_default();
    let path_at = rest.find('/').map_or(public_url.len(), |i| after_scheme + i);
    let (origin, path) = public_url.split_at_checked(path_at).unwrap_or((public_url, ""));
    format!("{origin}{WELL_KNOWN}{path}")
}

/// The metadata document a well-known request names, if `path` is one: the path-inserted
/// form finds the route serving the rest of the path (or whose public URL has that path);
/// the bare form, the route whose public URL has no path, else the only route with metadata.
pub fn metadata(router: &Router, local: Option<SocketAddr>, host: Option<&str>, path: &str) -> Option<Arc<str>> {
    let rest = path.strip_prefix(WELL_KNOWN)?;
    if !rest.is_empty() && !rest.starts_with('/') {
        return None;
    }
    let routes = router.routes();
    let with_doc = || routes.iter().filter(|r| r.auth.metadata.is_some());
    let found = if rest.is_empty() {
        with_doc().find(|r| url_path(r).is_empty()).or_else(|| {
            let mut it = with_doc();
            it.next().filter(|_| it.next().is_none())
        })
    } else {
        router
            .find(local, host, rest)
            .map(|(_, r)| r)
            .filter(|r| r.auth.metadata.is_some())
            .or_else(|| with_doc().find(|r| url_path(r) == rest))
    };
    found.and_then(|r| r.auth.metadata.clone())
}

/// The path of a route's public URL ("" when it has none).
fn url_path(r: &crate::config::model::RouteConfig) -> &str {
    let url = r.auth.public_url.as_deref().unwrap_or_default();
    let after = url.find("://").map_or(0, |i| i + 3);
    url.get(after..).and_then(|rest| rest.find('/').and_then(|i| url.get(after + i..))).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_url_inserts_the_well_known_path() {
        assert_eq!(metadata_url("https://a.example/mcp"), "https://a.example/.well-known/oauth-protected-resource/mcp");
        assert_eq!(metadata_url("https://a.example"), "https://a.example/.well-known/oauth-protected-resource");
        let c = Challenge::new(Some("https://a.example/mcp"), &[]);
        assert_eq!(
            c.header(Denied::Invalid),
            "Bearer error=\"invalid_token\", resource_metadata=\"https://a.example/.well-known/oauth-protected-resource/mcp\""
        );
        assert_eq!(Challenge::new(None, &[]).header(Denied::Missing), "Bearer");
        assert_eq!(
            insufficient_scope(Some("https://a.example/mcp"), &["mcp:write".into(), "deploy".into()]),
            "Bearer error=\"insufficient_scope\", scope=\"mcp:write deploy\", resource_metadata=\"https://a.example/.well-known/oauth-protected-resource/mcp\""
        );
        assert_eq!(insufficient_scope(None, &["a".into()]), "Bearer error=\"insufficient_scope\", scope=\"a\"");
        let scoped = Challenge::new(Some("https://a.example"), &["tools:read".into(), "tools:call".into()]);
        assert_eq!(
            scoped.header(Denied::Missing),
            "Bearer resource_metadata=\"https://a.example/.well-known/oauth-protected-resource\", scope=\"tools:read tools:call\""
        );
    }
}
