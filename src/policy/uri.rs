//! The spellings of one resource URI a deny rule must see through. A backend may decode
//! percent-escapes, resolve dot segments, merge repeated slashes, read `\` as `/`, drop a
//! default port, or ignore a query, a fragment or what follows a NUL before it looks the
//! resource up; so a deny pattern is matched against the URI as sent and against
//! [`resolved`], and `*/secret` denies `mock://b/%73ecret`, `mock://b/x/../secret`,
//! `mock://b//secret/.`, `mock://b:80/secret` and `mock://b/secret?#x` like `mock://b/secret`.
//! Resolving errs towards the resource a rule names: it may deny a URI that a backend would
//! read as another one, never the reverse. Allow rules do not use it: they refuse such
//! spellings outright (`walks_out`). Not here: the matching (`super`).

/// The URI as a lenient backend may resolve it; None when that is the URI as sent.
pub fn resolved(uri: &str) -> Option<String> {
    // Every `%XX`, whatever byte it names; invalid UTF-8 replaced.
    let decoded = percent_encoding::percent_decode_str(uri).decode_utf8_lossy();
    let text = decoded.split('\0').next().unwrap_or_default();
    let text = text.split(['?', '#']).next().unwrap_or_default().replace('\\', "/");
    let (head, path) = split(&text);
    // The authority's port dropped.
    let head = match head.rsplit_once(':') {
        Some((host, port)) if host.contains("://") && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            host
        }
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
    (out != uri).then_some(out)
}

/// `scheme://authority` or `scheme:` (a scheme being a letter, then letters, digits, `+`, `-`
/// or `.`), and the path after it; no head when the URI has no scheme.
pub fn split(uri: &str) -> (&str, &str) {
    let Some(colon) = uri.find(':') else { return ("", uri) };
    let scheme = uri[..colon].as_bytes();
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
mod tests {
    use super::resolved;

    #[test]
    fn lenient_spellings_resolve_to_the_uri_they_may_name() {
        for spelling in [
            "mock://B/%73ecret",
            "mock://B/secret#x",
            "mock://B/secret?",
            "mock://B/secret%00.txt",
            "mock://B/secret/.",
            "mock://B/./secret",
            "mock://B/x/../secret",
            "mock://B//secret",
            "mock://B:80/secret",
            r"mock://B\secret",
            "mock://B/%2e%2e/x/../secret",
        ] {
            assert_eq!(resolved(spelling).as_deref(), Some("mock://B/secret"), "{spelling}");
        }
        assert_eq!(resolved("mock://B/secret"), None);
        assert_eq!(resolved("urn:x:%79"), Some("urn:x:y".into()));
        assert_eq!(resolved("b+secret://1"), None);
        assert_eq!(resolved("docs/./a"), Some("docs/a".into()));
        assert_eq!(resolved(r"a\b:c/./d"), Some("a/b:c/d".into()), "no scheme: all of it is path");
    }
}
