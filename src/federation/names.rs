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
    let fits = prefix.len() + 1 + tool.len() <= MAX_NAME;
    if fits && !tool.is_empty() && tool.chars().all(allowed) {
        return format!("{prefix}{SEPARATOR}{tool}");
    }
    let digest = Sha256::digest(tool.as_bytes());
    let hash: String = digest.iter().take(HASH_DIGITS / 2).map(|b| format!("{b:02x}")).collect();
    let room = MAX_NAME.saturating_sub(prefix.len() + 1 + 1 + HASH_DIGITS);
    let head: String = tool.chars().filter(|c| allowed(*c)).take(room).collect();
    format!("{prefix}{SEPARATOR}{head}-{hash}")
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
