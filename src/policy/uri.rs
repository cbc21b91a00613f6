//! The spellings of one resource URI a deny rule must see through. A backend may decode
//! percent-escapes, resolve dot segments, merge repeated slashes, read `\` as `/`, drop a
//! port, ignore a query, a fragment or what follows a NUL, strip tabs, newlines and other
//! control characters, or parse the URI as a WHATWG URL parser does (the TypeScript SDK's
//! `new URL()`, pydantic's `AnyUrl`: `http:host/x` → `http://host/x`, `file://localhost/x` →
//! `file:///x`, user info and empty ports dropped, hosts mapped by IDNA) before it looks the
//! resource up. So a deny pattern is matched against the URI as sent and against every one of
//! its [`spellings`], and `*/secret` denies `mock://b/%73ecret`, `mock://b/x/../secret`,
//! `mock://b//secret/.`, `mock://b:80/secret`, `mock://b/sec\tret` and `mock://b/secret?#x` like
//! `mock://b/secret`. A federated URI (`<prefix>+<uri>`) is spelled as its member will parse
//! the part after the prefix. Resolving errs towards the resource a rule names: it may deny a
//! URI that a backend would read as another one, never the reverse. Allow rules do not use it:
//! they refuse such spellings outright (`policy::walks_out`). Not here: the matching (`super`).

use crate::mcp::fold::{invisible, narrowed};

/// Every spelling of `uri` a lenient backend may resolve it to, other than `uri` itself.
pub fn spellings(uri: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: String| {
        if s != uri && !out.contains(&s) {
            out.push(s);
        }
    };
    for text in controls_gone(uri) {
        push(resolved(&text));
    }
    for parsed in whatwg(uri) {
        for text in controls_gone(&parsed) {
            push(resolved(&text));
        }
    }
    out
}

/// Whether a name or URI holds a control character, a space of any kind or an invisible
/// format character: nothing a client has a reason to send, and something parsers strip, cut
/// at or trim (Python's `strip()` and JavaScript's `trim()` take NBSP, U+2028, U+3000, U+FEFF).
/// Fullwidth forms of ASCII count too: a normalising (NFKC) reader takes them for ASCII.
pub fn has_controls(text: &str) -> bool {
    // ASCII text (the usual case) needs no character decoding.
    text.bytes().any(|b| b <= b' ' || b == 0x7f)
        || (!text.is_ascii() && text.chars().any(|c| invisible(c) || narrowed(c).is_some()))
}

/// `text` as read by a backend that stops at a NUL, and by one that strips control characters,
/// invisible characters and spaces and narrows fullwidth forms (WHATWG parsers strip tabs and newlines anywhere, controls and spaces at the
/// ends); one text when they agree.
pub fn controls_gone(text: &str) -> Vec<String> {
    let strip = |t: &str| {
        t.chars()
            .filter(|&c| c > ' ' && c != '\x7f' && !invisible(c))
            .map(|c| narrowed(c).unwrap_or(c))
            .collect::<String>()
    };
    let cut = strip(text.split('\0').next().unwrap_or_default());
    let whole = strip(text);
    if cut == whole {
        vec![cut]
    } else {
        vec![cut, whole]
    }
}

/// What a WHATWG URL parser serialises `uri` as, user info and port dropped; and for a
/// federated `<prefix>+<uri>`, the prefix before what the member's parser makes of the rest.
fn whatwg(uri: &str) -> Vec<String> {
    let serialised = |text: &str| {
        let mut url = url::Url::parse(text).ok()?;
        // Each fails only for URLs that cannot have them (no host): nothing to drop then.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let _ = url.set_port(None);
        Some(String::from(url))
    };
    let mut out: Vec<String> = serialised(uri).into_iter().collect();
    let (head, _) = split(uri);
    if let Some((prefix, rest)) = head.split_once('+').map(|(p, _)| (p, &uri[p.len() + 1..])) {
        out.extend(serialised(rest).map(|s| format!("{prefix}+{s}")));
    }
    out
}

/// The URI with percent-escapes decoded, dot segments, repeated slashes and `\` resolved, and
/// query, fragment and port dropped (the caller has removed controls).
fn resolved(uri: &str) -> String {
    // Every `%XX`, whatever byte it names; invalid UTF-8 replaced.
    let decoded = percent_encoding::percent_decode_str(uri).decode_utf8_lossy();
    let text = decoded.split('\0').next().unwrap_or_default();
    let text = text.split(['?', '#']).next().unwrap_or_default().replace('\\', "/");
    let (head, path) = split(&text);
    // The authority's port dropped, an empty one too.
    let head = match head.rsplit_once(':') {
        Some((host, port)) if host.contains("://") && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => head,
    };
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let rooted = path.starts_with('/');
    let mut out = head.to_owned();
    for (i, s) in segments.iter().enumerate() {
        if rooted || i > 0 {
            out.push('/');
        }
        out.push_str(s);
    }
    out
}

/// `scheme://authority` or `scheme:` (a scheme being a letter, then letters, digits, `+`, `-`
/// or `.`), and the path after it; no head when the URI has no scheme.
pub fn split(uri: &str) -> (&str, &str) {
    let Some(colon) = uri.find(':') else { return ("", uri) };
    let scheme = &uri.as_bytes()[..colon];
    let valid = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !valid {
        return ("", uri);
    }
    match uri[colon..].strip_prefix("://") {
        Some(rest) => {
            let end = colon + 3 + rest.find('/').unwrap_or(rest.len());
            uri.split_at(end)
        }
        None => uri.split_at(colon + 1),
    }
}

#[cfg(test)]
#[path = "uri_tests.rs"]
mod tests;
