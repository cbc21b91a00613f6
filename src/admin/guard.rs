//! Request-level protection of the admin API (D25), checked before any endpoint runs except
//! `/livez` and `/readyz` (one bit each, and probes reach them by pod address):
//!
//! - `Host` must name the admin API: `localhost`, `127.0.0.1` or `[::1]` (bare or with the
//!   admin port), the exact listen address, or an `admin.allowed_hosts` entry. A DNS-rebinding
//!   page reaches the loopback listener under its own name, so this stops it reading
//!   `/status` and `/config`.
//! - `Origin`, when a browser sends it, must be the admin API's own origin: the same host and
//!   port as `Host` (scheme http or https). A cross-site `POST /reload` fails here.
//! - With `admin.token_file`, `Authorization: Bearer <token>` is required, compared by
//!   SHA-256 digest in constant time ([`AdminToken::matches`]).
//!
//! Owns the decision only; the responses (403, 401 with `WWW-Authenticate`) are `admin`'s.
//! Nothing here logs or returns a header value.

use std::net::IpAddr;

use http::header::{AUTHORIZATION, HOST, ORIGIN};
use pingora::http::RequestHeader;

use crate::config::admin::split_authority;
use crate::config::model::{AdminSettings, AdminToken, HostRule};

/// Names a local client uses for the admin API, with or without its port.
const LOOPBACK: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Host`, several, or one that does not name the admin API: 403.
    Host,
    /// A browser request from another origin: 403.
    Origin,
    /// A token is configured and the request did not present it: 401.
    Token,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Host => "host not allowed",
            Refusal::Origin => "cross-origin request",
            Refusal::Token => "missing or wrong bearer token",
        }
    }
}

/// Whether the admin API may answer `req`.
pub fn check(settings: &AdminSettings, req: &RequestHeader) -> Result<(), Refusal> {
    let host = host_of(req).ok_or(Refusal::Host)?;
    let (name, port) = split_authority(host).ok_or(Refusal::Host)?;
    if !host_allowed(settings, name, port) {
        return Err(Refusal::Host);
    }
    if let Some(origin) = req.headers.get(ORIGIN) {
        let same = origin.to_str().ok().and_then(origin_authority).is_some_and(|a| a.eq_ignore_ascii_case(host));
        if !same {
            return Err(Refusal::Origin);
        }
    }
    match &settings.token {
        Some(token) if !bearer_matches(req, token) => Err(Refusal::Token),
        _ => Ok(()),
    }
}

/// The one `Host` header (the URI's authority for an absolute-form request line).
fn host_of(req: &RequestHeader) -> Option<&str> {
    let mut hosts = req.headers.get_all(HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(h), None) => h.to_str().ok(),
        (None, _) => req.uri.authority().map(|a| a.as_str()),
        (Some(_), Some(_)) => None,
    }
}

fn host_allowed(settings: &AdminSettings, name: &str, port: Option<u16>) -> bool {
    let admin_port = settings.listen.port();
    let bare_or_admin_port = port.is_none() || port == Some(admin_port);
    if bare_or_admin_port && LOOPBACK.iter().any(|l| name.eq_ignore_ascii_case(l)) {
        return true;
    }
    let ip = name.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok();
    if port == Some(admin_port) && ip == Some(settings.listen.ip()) {
        return true;
    }
    settings.allowed_hosts.iter().any(|rule| match rule {
        HostRule::Any => true,
        HostRule::Name { host, port: Some(p) } => port == Some(*p) && name.eq_ignore_ascii_case(host),
        HostRule::Name { host, port: None } => bare_or_admin_port && name.eq_ignore_ascii_case(host),
    })
}

/// `http://host[:port]` or `https://...` → `host[:port]`; None for `null` or anything else.
fn origin_authority(origin: &str) -> Option<&str> {
    let (scheme, authority) = origin.split_once("://")?;
    let web = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
    (web && split_authority(authority).is_some()).then_some(authority)
}

fn bearer_matches(req: &RequestHeader, token: &AdminToken) -> bool {
    let Some(value) = req.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return false };
    match value.trim().split_once(' ') {
        Some((scheme, presented)) if scheme.eq_ignore_ascii_case("bearer") => {
            token.matches(presented.trim().as_bytes())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(allowed: Vec<HostRule>, token: Option<&str>) -> AdminSettings {
        AdminSettings {
            listen: "127.0.0.1:9090".parse().expect("addr"),
            allowed_hosts: allowed,
            token_file: None,
            token: token.map(|t| AdminToken::new(t.as_bytes())),
        }
    }

    fn req(headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("POST", b"/reload", None).expect("request");
        for (k, v) in headers {
            r.append_header(k.to_string(), *v).expect("header");
        }
        r
    }

    #[test]
    fn loopback_names_and_the_listen_address_pass_and_other_hosts_do_not() {
        let s = settings(vec![], None);
        for host in ["localhost", "localhost:9090", "127.0.0.1", "127.0.0.1:9090", "[::1]", "[::1]:9090", "LOCALHOST"] {
            assert_eq!(check(&s, &req(&[("Host", host)])), Ok(()), "{host}");
        }
        for host in ["evil.example:9090", "evil.example", "localhost:8080", "localhost.", "127.0.0.2:9090", "x y"] {
            assert_eq!(check(&s, &req(&[("Host", host)])), Err(Refusal::Host), "{host}");
        }
        assert_eq!(check(&s, &req(&[])), Err(Refusal::Host), "no Host");
        assert_eq!(check(&s, &req(&[("Host", "localhost"), ("Host", "evil.example")])), Err(Refusal::Host));
        let public = AdminSettings { listen: "10.0.0.5:9090".parse().expect("addr"), ..s };
        assert_eq!(check(&public, &req(&[("Host", "10.0.0.5:9090")])), Ok(()));
        assert_eq!(check(&public, &req(&[("Host", "10.0.0.5")])), Err(Refusal::Host));
    }

    #[test]
    fn allowed_hosts_add_names_with_or_without_a_port() {
        let s = settings(
            vec![
                HostRule::Name { host: "admin.internal".into(), port: None },
                HostRule::Name { host: "edge.example".into(), port: Some(443) },
            ],
            None,
        );
        for host in ["admin.internal", "ADMIN.internal:9090", "edge.example:443"] {
            assert_eq!(check(&s, &req(&[("Host", host)])), Ok(()), "{host}");
        }
        for host in ["admin.internal:1", "edge.example", "edge.example:9090"] {
            assert_eq!(check(&s, &req(&[("Host", host)])), Err(Refusal::Host), "{host}");
        }
        let any = settings(vec![HostRule::Any], None);
        assert_eq!(check(&any, &req(&[("Host", "10.1.2.3:9090")])), Ok(()));
    }

    #[test]
    fn an_origin_must_be_the_admin_apis_own() {
        let s = settings(vec![], None);
        let host = ("Host", "127.0.0.1:9090");
        assert_eq!(check(&s, &req(&[host, ("Origin", "http://127.0.0.1:9090")])), Ok(()));
        assert_eq!(check(&s, &req(&[host, ("Origin", "https://127.0.0.1:9090")])), Ok(()));
        for origin in ["http://evil.example", "http://127.0.0.1", "http://localhost:9090", "null", "file://", "x"] {
            assert_eq!(check(&s, &req(&[host, ("Origin", origin)])), Err(Refusal::Origin), "{origin}");
        }
    }

    #[test]
    fn a_configured_token_is_required_as_a_bearer() {
        let s = settings(vec![], Some("correct-horse-battery-staple"));
        let host = ("Host", "localhost");
        assert_eq!(check(&s, &req(&[host, ("Authorization", "Bearer correct-horse-battery-staple")])), Ok(()));
        assert_eq!(check(&s, &req(&[host, ("Authorization", "bearer correct-horse-battery-staple")])), Ok(()));
        for auth in ["Bearer wrong", "Bearer correct-horse-battery-stapl", "Basic Y29ycmVjdA==", "correct-horse"] {
            assert_eq!(check(&s, &req(&[host, ("Authorization", auth)])), Err(Refusal::Token), "{auth}");
        }
        assert_eq!(check(&s, &req(&[host])), Err(Refusal::Token));
        assert_eq!(check(&s, &req(&[("Host", "evil.example")])), Err(Refusal::Host), "Host is checked first");
    }
}
