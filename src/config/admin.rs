//! Validation of `[admin]`: the listen address, the extra `allowed_hosts`, and the bearer
//! token file, read here so that `check` reports a missing or weak token with its place and
//! every reload re-reads it (a rotated token applies on reload, like the session key).
//! Also owns [`split_authority`], the one parser of `host[:port]` for config and requests.
//! Part of the raw → model pipeline (see `validate`); the guard itself is `crate::admin`.

use std::path::PathBuf;

use super::error::Collector;
use super::model::{AdminSettings, AdminToken, HostRule};
use super::raw::{RawAdmin, S};
use super::validate::addr_or;

/// Shorter tokens are refused: they could be guessed.
pub const MIN_TOKEN_LEN: usize = 16;
const TOKEN_FIX: &str = "generate one with `head -c 32 /dev/urandom | base64 > FILE`";

pub fn settings(raw: &RawAdmin, c: &mut Collector<'_>) -> AdminSettings {
    let listen = addr_or(c, raw.listen.as_ref(), "admin.listen", "127.0.0.1:9090");
    let allowed_hosts = raw.allowed_hosts.iter().flatten().filter_map(|h| host_rule(h, c)).collect();
    let token_file = raw.token_file.as_ref().map(|f| PathBuf::from(f.get_ref()));
    let token = raw.token_file.as_ref().and_then(|f| token(f, c));
    AdminSettings { listen, allowed_hosts, token_file, token }
}

fn host_rule(entry: &S<String>, c: &mut Collector<'_>) -> Option<HostRule> {
    let text = entry.get_ref();
    if text == "*" {
        return Some(HostRule::Any);
    }
    let parsed = split_authority(text);
    if parsed.is_none() {
        c.push(
            entry.span(),
            "admin.allowed_hosts",
            "is not a host name or host:port (no scheme, no path), e.g. \"admin.internal\" or \"10.0.0.5:9090\"",
        );
    }
    parsed.map(|(host, port)| HostRule::Name { host: host.to_ascii_lowercase(), port })
}

fn token(file: &S<String>, c: &mut Collector<'_>) -> Option<AdminToken> {
    let field = "admin.token_file";
    let bytes = match std::fs::read(file.get_ref()) {
        Ok(bytes) => bytes,
        Err(e) => {
            // The io error names the failure (not found, permission), never the contents.
            c.push(file.span(), field, format!("cannot read the token file: {e}"));
            return None;
        }
    };
    let token = bytes.trim_ascii();
    if token.len() < MIN_TOKEN_LEN {
        c.push(file.span(), field, format!("holds a token shorter than {MIN_TOKEN_LEN} characters; {TOKEN_FIX}"));
        return None;
    }
    if !token.iter().all(|b| (0x21..=0x7e).contains(b)) {
        c.push(file.span(), field, format!("the token must be visible ASCII (it travels in a header); {TOKEN_FIX}"));
        return None;
    }
    Some(AdminToken::new(token))
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` → (host as written, port). None for anything
/// else: a scheme, a path, spaces, an empty host or a bare IPv6 address.
pub fn split_authority(text: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if text.starts_with('[') {
        let end = text.find(']')?;
        let (host, rest) = text.split_at(end + 1);
        let v6 = host.trim_start_matches('[').trim_end_matches(']');
        if !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
            return None;
        }
        match rest.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if rest.is_empty() => (host, None),
            None => return None,
        }
    } else {
        let (host, port) = match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        };
        if !host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_') {
            return None;
        }
        (host, port)
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse().ok()?),
        Some(_) => return None,
        None => None,
    };
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::split_authority;

    #[test]
    fn authorities_split_into_host_and_port() {
        assert_eq!(split_authority("localhost"), Some(("localhost", None)));
        assert_eq!(split_authority("127.0.0.1:9090"), Some(("127.0.0.1", Some(9090))));
        assert_eq!(split_authority("[::1]:9090"), Some(("[::1]", Some(9090))));
        assert_eq!(split_authority("[::1]"), Some(("[::1]", None)));
        for bad in ["", ":9090", "::1", "http://x", "x/y", "a b", "x:", "x:99999", "[::1]x", "[zz]"] {
            assert_eq!(split_authority(bad), None, "{bad:?}");
        }
    }
}
