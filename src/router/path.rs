//! Path canonicalisation: the one form of a request path that routes match against and that
//! is forwarded upstream, so a client cannot reach a backend's `/mcp` through a spelling that
//! skips the `/mcp` route (`/%6Dcp`, `//mcp`, `/./mcp`, `/x/../mcp`).
//!
//! Rules, in order:
//! - the path must start with `/`;
//! - `%XX` escapes of unreserved characters (letters, digits, `-`, `_`, `~`) are decoded; other
//!   escapes are kept with upper-case hex;
//! - escapes that would change the path's structure are refused: `%2F` (`/`), `%5C` (`\`),
//!   `%2E` (`.`, which could hide a dot segment), `%00`; so are raw `\` and malformed escapes;
//! - a raw `;` is refused: servlet containers and Spring strip `;params` from every segment
//!   before routing (`/mcp;x` is their `/mcp`, `/a/..;/mcp` their `/mcp`), so a path with one
//!   would name another resource there than here;
//! - empty segments (`//`) and `.` segments are removed, `..` removes the segment before it
//!   (never going above `/`);
//! - a trailing `/` is kept (`/mcp/` stays `/mcp/`; routes decide whether it matches).
//!
//! Case is kept: route matching compares paths ASCII-case-insensitively (see `router`), the
//! forwarded path keeps the client's case. Owns nothing else: the query string is untouched.

use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path does not start with /")]
    NotAbsolute,
    #[error("the path encodes a /, \\, . or NUL (%2F, %5C, %2E, %00)")]
    EncodedSeparator,
    #[error("the path contains a backslash")]
    Backslash,
    #[error("the path has a malformed % escape")]
    BadEscape,
    #[error("the path contains a ; (path parameters)")]
    Semicolon,
}

/// The canonical form of `raw`; borrowed when `raw` is already canonical (the common case).
pub fn canonicalize(raw: &str) -> Result<Cow<'_, str>, PathError> {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    if bytes.contains(&b'\\') {
        return Err(PathError::Backslash);
    }
    if bytes.contains(&b';') {
        return Err(PathError::Semicolon);
    }
    if is_canonical(bytes) {
        return Ok(Cow::Borrowed(raw));
    }
    let decoded = decode(bytes)?;
    let mut out = String::with_capacity(decoded.len());
    let mut segments: Vec<&str> = Vec::new();
    let trailing = decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() || (trailing && !segments.is_empty()) {
        out.push('/');
    }
    Ok(Cow::Owned(out))
}

/// No `%`, no empty segment, no `.`/`..` segment: nothing to do.
fn is_canonical(b: &[u8]) -> bool {
    if b.contains(&b'%') {
        return false;
    }
    // Every segment starts after a `/`; check each one's start.
    b.iter().enumerate().filter(|(_, &c)| c == b'/').all(|(i, _)| {
        let rest = &b[i + 1..];
        let seg_end = rest.iter().position(|&c| c == b'/').unwrap_or(rest.len());
        let seg = &rest[..seg_end];
        match seg {
            b"." | b".." => false,
            b"" => seg_end == rest.len(), // only a trailing `/` may be empty
            _ => true,
        }
    })
}

fn decode(b: &[u8]) -> Result<String, PathError> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c != b'%' {
            out.push(c);
            i += 1;
            continue;
        }
        let (hi, lo) = match (b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (Some(hi), Some(lo)) => (hi, lo),
            _ => return Err(PathError::BadEscape),
        };
        let byte = hi << 4 | lo;
        match byte {
            b'/' | b'\\' | b'.' | 0 => return Err(PathError::EncodedSeparator),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'~' => out.push(byte),
            _ => {
                out.push(b'%');
                out.push(HEX[usize::from(hi)]);
                out.push(HEX[usize::from(lo)]);
            }
        }
        i += 3;
    }
    // Only ASCII was pushed for escapes; the rest came from a &str.
    String::from_utf8(out).map_err(|_| PathError::BadEscape)
}

const HEX: [u8; 16] = *b"0123456789ABCDEF";

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(p: &str) -> String {
        canonicalize(p).unwrap_or_else(|e| panic!("{p}: {e}")).into_owned()
    }

    #[test]
    fn canonical_paths_are_borrowed() {
        for p in ["/", "/mcp", "/mcp/", "/messages/", "/a/b.c/d", "/MCP", "/a..b/.c"] {
            assert!(matches!(canonicalize(p), Ok(Cow::Borrowed(_))), "{p}");
        }
    }

    #[test]
    fn spellings_of_mcp_become_mcp() {
        for p in ["/%6Dcp", "/%6dcp", "//mcp", "/./mcp", "/x/../mcp", "/../mcp", "///mcp", "/mc%70"] {
            assert_eq!(canon(p), "/mcp", "{p}");
        }
        assert_eq!(canon("/mcp/."), "/mcp/");
        assert_eq!(canon("/mcp//"), "/mcp/");
        assert_eq!(canon("/a/b/.."), "/a/");
        assert_eq!(canon("/.."), "/");
        assert_eq!(canon("//"), "/");
    }

    #[test]
    fn reserved_escapes_are_kept_upper_case() {
        assert_eq!(canon("/a%3fb"), "/a%3Fb");
        assert_eq!(canon("/caf%C3%A9"), "/caf%C3%A9");
    }

    #[test]
    fn structure_changing_escapes_are_refused() {
        for p in ["/%2Fmcp", "/%2fmcp", "/%2e/mcp", "/%2E%2E/mcp", "/mcp%2F..", "/a%5Cb", "/a%00"] {
            assert_eq!(canonicalize(p), Err(PathError::EncodedSeparator), "{p}");
        }
        assert_eq!(canonicalize("/a\\b"), Err(PathError::Backslash));
        for p in ["/mcp;x", "/mcp;", "/a/..;/mcp", "/;/mcp"] {
            assert_eq!(canonicalize(p), Err(PathError::Semicolon), "{p}");
        }
        assert_eq!(canon("/mcp%3bx"), "/mcp%3Bx", "an escaped ; is data, not a parameter");
        assert_eq!(canonicalize("/a%2"), Err(PathError::BadEscape));
        assert_eq!(canonicalize("/a%zz"), Err(PathError::BadEscape));
        assert_eq!(canonicalize("mcp"), Err(PathError::NotAbsolute));
        assert_eq!(canonicalize("*"), Err(PathError::NotAbsolute));
    }

    #[test]
    fn output_is_a_fixed_point() {
        for p in ["/%6Dcp/./x/../y//z/", "/a/%41/..", "/%7e/%2d"] {
            let once = canon(p);
            assert_eq!(canon(&once), once, "{p}");
        }
    }
}
