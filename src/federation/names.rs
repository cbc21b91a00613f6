//! The names a federated route offers its members' tools under: `<prefix>_<tool>`, within what
//! model APIs accept (`[A-Za-z0-9_-]`, at most [`MAX_NAME`] characters; the MCP spec allows
//! 128). A tool whose prefixed name would not fit, or holds other characters, is offered under
//! a shortened name that ends in a hash of its own name, so it is stable across lists and
//! replicas. Mapping an offered name back is the catalog's (it knows every member's tools);
//! splitting at the first '_' names the member, since prefixes hold no '_'.
//!
//! Resource URIs and URI templates are offered as `<prefix>+<uri>`: `+` cannot occur in a
//! prefix, and a prefix that starts with a letter makes `<prefix>+<scheme>` a valid scheme, so
//! the offered URI is still a URI. Mapping back needs no catalog: a URI a client expanded from
//! an offered template names its member the same way.

use sha2::{Digest, Sha256};

/// Longest offered name.
pub const MAX_NAME: usize = 64;
/// Ends a member's prefix in an offered name.
pub const SEPARATOR: char = '_';
/// Hex digits of the hash that ends a shortened name.
const HASH_DIGITS: usize = 8;

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// The name a member's tool `tool` is offered under.
pub fn offered(prefix: &str, tool: &str) -> String {
    shaped(&format!("{prefix}{SEPARATOR}"), tool)
}

/// The name a member's tool is offered under without its prefix (`prefix_mode`): its own, if
/// model APIs accept it, else shortened the same way.
pub fn bare(tool: &str) -> String {
    shaped("", tool)
}

fn shaped(lead: &str, tool: &str) -> String {
    if lead.len() + tool.len() <= MAX_NAME && !tool.is_empty() && tool.chars().all(allowed) {
        return format!("{lead}{tool}");
    }
    let digest = Sha256::digest(tool.as_bytes());
    let hash: String = digest.iter().take(HASH_DIGITS / 2).map(|b| format!("{b:02x}")).collect();
    let room = MAX_NAME.saturating_sub(lead.len() + 1 + HASH_DIGITS);
    let head: String = tool.chars().filter(|c| allowed(*c)).take(room).collect();
    format!("{lead}{head}-{hash}")
}

/// Whether `uri` could have been expanded from the RFC 6570 `template`: its literal parts, in
/// order, with anything in place of each `{expression}`. Looser than the RFC (an expression
/// may expand to any text), which is enough to name the member a URI belongs to when names
/// are not prefixed; the member judges the URI itself. Linear in the URI for each literal
/// part (`str::find`), so a long URI costs no backtracking.
pub fn expands(template: &str, uri: &str) -> bool {
    let mut literals = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else { break };
        literals.push(&rest[..open]);
        rest = &rest[open + close + 1..];
    }
    if literals.is_empty() {
        return template == uri;
    }
    // The first literal leads, the text after the last expression ends; the others come in
    // between, in order (the leftmost place of each is as good as any for `*`-like parts).
    let Some(text) = uri.strip_suffix(rest) else { return false };
    let mut parts = literals.into_iter();
    let Some(mut text) = parts.next().and_then(|first| text.strip_prefix(first)) else { return false };
    for literal in parts {
        match text.find(literal) {
            Some(at) => text = &text[at + literal.len()..],
            None => return false,
        }
    }
    true
}

/// Ends a member's prefix in an offered URI.
pub const URI_SEPARATOR: char = '+';

/// The URI a member's resource (or template) `uri` is offered under.
pub fn offered_uri(prefix: &str, uri: &str) -> String {
    format!("{prefix}{URI_SEPARATOR}{uri}")
}

/// An offered URI split into the member's prefix and the member's own URI.
pub fn split_uri(offered: &str) -> Option<(&str, &str)> {
    offered.split_once(URI_SEPARATOR).filter(|(prefix, own)| !prefix.is_empty() && !own.is_empty())
}

/// The member prefix of an offered name, if it has one.
pub fn prefix_of(name: &str) -> Option<&str> {
    name.split_once(SEPARATOR).map(|(prefix, _)| prefix).filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_that_fits_is_its_prefixed_name() {
        assert_eq!(offered("weather", "get_forecast"), "weather_get_forecast");
        assert_eq!(prefix_of("weather_get_forecast"), Some("weather"));
        assert_eq!(prefix_of("_x"), None);
        assert_eq!(prefix_of("plain"), None);
    }

    #[test]
    fn an_offered_uri_maps_back_to_its_member_and_its_own_uri() {
        let offered = offered_uri("docs", "file:///a+b?q=1");
        assert_eq!(offered, "docs+file:///a+b?q=1");
        assert_eq!(split_uri(&offered), Some(("docs", "file:///a+b?q=1")));
        // A template expanded by the client keeps the prefix in front.
        assert_eq!(split_uri("docs+note://{id}"), Some(("docs", "note://{id}")));
        assert_eq!(split_uri("file:///plain"), None);
        assert_eq!(split_uri("+file:///x"), None);
        assert_eq!(split_uri("docs+"), None);
    }

    #[test]
    fn a_bare_name_is_its_own_when_it_fits_and_shortened_like_a_prefixed_one_when_not() {
        assert_eq!(bare("get_forecast"), "get_forecast");
        let long = "a".repeat(100);
        let short = bare(&long);
        assert!(short.len() <= MAX_NAME && short.starts_with("aaa"), "{short}");
        assert_ne!(bare("a.b"), bare("a b"));
        assert!(bare("dotted.name").chars().all(allowed));
    }

    #[test]
    fn a_uri_matches_a_template_by_its_literal_parts_in_order() {
        assert!(expands("note://{id}", "note://7"));
        assert!(expands("note://{id}/data", "note://7/data"));
        assert!(expands("{+base}/x/{id}", "https://h/x/1"));
        assert!(expands("file:///{path}", "file:///a/b/c"));
        assert!(expands("plain://x", "plain://x"));
        assert!(!expands("plain://x", "plain://y"));
        assert!(!expands("note://{id}/data", "note://7/other"));
        assert!(!expands("note://{id}", "other://7"));
        assert!(!expands("a{x}b{y}c", "acb"));
        assert!(expands("a{x}b{y}c", "abc"));
        // The suffix and the prefix may not overlap.
        assert!(!expands("ab{x}ba", "aba"));
        // An unclosed brace is a literal.
        assert!(expands("x{y", "x{y"));
        assert!(!expands("x{y", "xzy"));
    }

    #[test]
    fn long_or_foreign_names_are_shortened_stably_within_the_limit() {
        let long = "a".repeat(100);
        let short = offered("docs", &long);
        assert!(short.len() <= MAX_NAME && short.starts_with("docs_aaa"), "{short}");
        assert_eq!(short, offered("docs", &long));
        // Two long names that share their head differ by their hash.
        assert_ne!(offered("docs", &format!("{long}x")), short);
        for odd in ["with space", "dotted.name", "ünï", "", "slash/name"] {
            let name = offered("p", odd);
            assert!(name.len() <= MAX_NAME && name.chars().all(allowed), "{odd:?} -> {name}");
            assert_eq!(prefix_of(&name), Some("p"));
        }
        assert_ne!(offered("p", "a.b"), offered("p", "a b"));
    }
}
