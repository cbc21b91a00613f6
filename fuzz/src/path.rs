//! `path`: request-path canonicalisation (`router::path::canonicalize`) on arbitrary UTF-8.
//! It never panics; its output starts with `/`, has no `//`, no `.` or `..` segment, no
//! backslash, no escaped unreserved character, no escape of `/`, `\`, `.` or NUL, and only
//! upper-case hex; and it is a fixed point (canonicalising it gives it back).

use mcp_edge::router::path::canonicalize;

pub fn check(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(canonical) = canonicalize(raw) else {
        return;
    };
    let c: &str = &canonical;
    assert!(c.starts_with('/'), "{c:?} does not start with /");
    assert!(!c.contains("//"), "{c:?} has an empty segment");
    assert!(!c.contains('\\'), "{c:?} has a backslash");
    for segment in c.split('/') {
        assert!(segment != "." && segment != "..", "{c:?} has a dot segment");
    }
    let bytes = c.as_bytes();
    for (i, _) in c.match_indices('%') {
        let escape = bytes.get(i + 1..i + 3).expect("a truncated escape");
        assert!(escape.iter().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b)), "{c:?}: escape not upper hex");
        let byte = u8::from_str_radix(std::str::from_utf8(escape).unwrap_or("zz"), 16).expect("hex");
        assert!(!(byte.is_ascii_alphanumeric() || b"-_~".contains(&byte)), "{c:?}: escaped unreserved byte");
        assert!(!b"/\\.\0".contains(&byte), "{c:?}: escaped separator");
    }
    // Equal, not necessarily borrowed: a path with escapes is always rebuilt.
    assert_eq!(canonicalize(c).as_deref(), Ok(c), "not a fixed point");
}
