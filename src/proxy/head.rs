//! The HTTP-level reading of a request head, before any route is chosen: the authority and the
//! canonical path routes match on, and the refusals of heads that could make the proxy and the
//! backend disagree about a request (a known method in another case, duplicate MCP headers,
//! `Connection` naming end-to-end headers, HTTP/1.1 without `Host`, an absolute-form target
//! for another host, targets and paths that cannot be canonicalised). Also the route's
//! `Host`/`Origin` guard (DNS rebinding).
//!
//! Owns no JSON-RPC knowledge (`mcp::call`) and no routing (`router`).

use std::borrow::Cow;
use std::net::SocketAddr;

use http::{header, HeaderMap, HeaderName, Version};
use pingora::http::RequestHeader;
use pingora::protocols::http::authority::{raw_target_authority, RawTargetAuthority};

use super::reply::Reject;
use crate::config::model::{Origins, RouteConfig};
use crate::config::origins::normalize_origin;
use crate::mcp::header as mcp;
use crate::router::{normalize_host, path};

/// Headers that must appear at most once: the proxy routes, limits or pins on them, and a
/// backend reading the other copy would see another request.
const SINGLE: [HeaderName; 7] = [
    header::HOST,
    header::ORIGIN,
    mcp::MCP_PROTOCOL_VERSION,
    mcp::MCP_METHOD,
    mcp::MCP_NAME,
    mcp::MCP_SESSION_ID,
    mcp::LAST_EVENT_ID,
];

/// End-to-end headers a client may not declare hop-by-hop: a hop would strip them after the
/// proxy decided on them.
const END_TO_END: [&str; 9] = [
    "host",
    "content-length",
    "transfer-encoding",
    "content-type",
    "origin",
    "authorization",
    "accept",
    "last-event-id",
    "cookie",
];

/// What routing reads from the head.
#[derive(Debug)]
pub struct Head<'a> {
    /// The authority: the absolute-form target's, else `Host`.
    pub host: Option<&'a str>,
    /// The canonical path (borrowed when the client sent it canonical).
    pub path: Cow<'a, str>,
    /// The target was in absolute form: it is forwarded in origin form.
    pub absolute: bool,
}

/// Methods some servers match ignoring case (`post` is POST to ASP.NET Core routing and to
/// servers that upper-case the method): sent in another case they would reach a handler the
/// proxy did not read the request for.
const KNOWN_METHODS: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];

pub fn read(req: &RequestHeader) -> Result<Head<'_>, Reject> {
    let method = req.method.as_str();
    if KNOWN_METHODS.iter().any(|m| m.eq_ignore_ascii_case(method) && *m != method) {
        return Err(Reject::METHOD_CASE);
    }
    let h = &req.headers;
    if SINGLE.iter().any(|name| h.get_all(name).iter().nth(1).is_some()) || aliases_single(h) {
        return Err(Reject::DUPLICATE_HEADER);
    }
    if names_end_to_end(h) {
        return Err(Reject::CONNECTION);
    }
    let host_header = match h.get(header::HOST) {
        Some(v) => Some(v.to_str().map_err(|_| Reject::NO_HOST)?),
        None => None,
    };
    let authority = match raw_target_authority(req.raw_path()) {
        RawTargetAuthority::None => None,
        RawTargetAuthority::Absolute { authority, .. } => {
            Some(std::str::from_utf8(authority).map_err(|_| Reject::HOST_MISMATCH)?)
        }
        RawTargetAuthority::AmbiguousAuthority => return Err(Reject::HOST_MISMATCH),
    };
    // Pingora reads a target that is neither origin- nor absolute-form (`mcp`, `?/mcp`) as the
    // path `/` but forwards its bytes as sent: a backend resolving `mcp` against its base URL
    // would serve `/mcp` from whatever route `/` chose.
    if authority.is_none() && req.raw_path().first() != Some(&b'/') {
        return Err(Reject::BAD_PATH);
    }
    let host = match (authority, host_header) {
        (Some(authority), Some(host)) if !authority.eq_ignore_ascii_case(host) => return Err(Reject::HOST_MISMATCH),
        (Some(authority), _) => Some(authority),
        (None, None) if req.version == Version::HTTP_11 => return Err(Reject::NO_HOST),
        (None, host) => host,
    };
    let path = path::canonicalize(req.uri.path()).map_err(|e| {
        tracing::debug!(error = %e, "path refused");
        Reject::BAD_PATH
    })?;
    Ok(Head { host, path, absolute: authority.is_some() })
}

/// A header a CGI-style backend would read as one of [`SINGLE`]: it maps `-` and `_` both to
/// `_` (`Mcp_Session_Id` is `HTTP_MCP_SESSION_ID` too), so such a name is a second copy the
/// proxy did not read. Names are lower-case here; only names with `_` are compared.
fn aliases_single(h: &HeaderMap) -> bool {
    h.keys().any(|name| {
        let n = name.as_str().as_bytes();
        n.contains(&b'_')
            && SINGLE.iter().any(|s| {
                let s = s.as_str().as_bytes();
                s.len() == n.len() && s.iter().zip(n).all(|(a, b)| a == b || (*a == b'-' && *b == b'_'))
            })
    })
}

fn names_end_to_end(h: &HeaderMap) -> bool {
    h.get_all(header::CONNECTION).iter().any(|v| {
        v.as_bytes().split(|&b| b == b',').any(|token| {
            let token = token.trim_ascii();
            token.len() >= 4 && token[..4].eq_ignore_ascii_case(b"mcp-")
                || END_TO_END.iter().any(|n| token.eq_ignore_ascii_case(n.as_bytes()))
        })
    })
}

/// The MCP DNS-rebinding rule at the edge. On a loopback connection the `Host` must be a
/// loopback name, the route's own `host` pattern (already matched) or one of its
/// `allowed_hosts`; a present `Origin` must be allowed by the route (by default: the request's
/// own authority, or a loopback origin on a loopback connection).
pub fn guard(
    route: &RouteConfig,
    req: &RequestHeader,
    host: Option<&str>,
    local: Option<SocketAddr>,
) -> Result<(), Reject> {
    // `to_canonical`: on a dual-stack listener (`[::]`) a connection to 127.0.0.1 arrives as
    // `::ffff:127.0.0.1`, and a rebinding page resolves its name to 127.0.0.1.
    let loopback = local.is_some_and(|a| a.ip().to_canonical().is_loopback());
    if loopback && route.host.is_none() {
        if let Some(host) = host {
            let bare = normalize_host(host);
            let listed = route.allowed_hosts.iter().any(|a| a.eq_ignore_ascii_case(host) || *a == bare);
            if !is_loopback_name(&bare) && !listed {
                return Err(Reject::HOST);
            }
        }
    }
    let Some(origin) = req.headers.get(header::ORIGIN) else { return Ok(()) };
    let allowed = match &route.origins {
        Origins::Any => true,
        Origins::List(list) => origin_str(origin).is_some_and(|o| list.contains(&o)),
        Origins::SameHost => origin_str(origin).is_some_and(|o| same_host(&o, host, loopback)),
    };
    if allowed {
        Ok(())
    } else {
        Err(Reject::ORIGIN)
    }
}

fn origin_str(v: &http::HeaderValue) -> Option<String> {
    v.to_str().ok().and_then(normalize_origin)
}

/// `origin` (normalised) names the request's own authority, or a loopback origin arrived on a
/// loopback connection.
fn same_host(origin: &str, host: Option<&str>, loopback: bool) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else { return false };
    if loopback && is_loopback_name(&normalize_host(authority)) {
        return true;
    }
    let Some(host) = host else { return false };
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let host = host.strip_suffix(default_port).unwrap_or(host);
    authority.eq_ignore_ascii_case(host)
}

fn is_loopback_name(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1")
        || host.strip_suffix(".localhost").is_some_and(|h| !h.is_empty() && !h.contains(':'))
}

#[cfg(test)]
#[path = "head_tests.rs"]
mod tests;
