//! The status page, `GET /` on the admin listener: one self-contained HTML document
//! (`page.html` with `page.css` and `page.js` inlined, no other asset) that polls `/status`
//! and draws it, in the spirit of HAProxy's stats page.
//!
//! Its headers forbid everything the page does not do: the `Content-Security-Policy` allows
//! exactly the inline style and script by SHA-256 hash (no `unsafe-inline`), fetches only to
//! its own origin, no framing, no base or form targets, and Trusted Types (so the script can
//! only write text, never markup). The page is assembled and hashed once, on first use.
//!
//! Owns the document and its headers; the data is [`super::status`]'s, and who may read it is
//! [`super::guard`]'s (the page shows topology, so it is guarded like `/status`).

use std::sync::LazyLock;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

const HTML: &str = include_str!("page.html");
const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

pub struct Page {
    pub html: String,
    pub csp: String,
}

static PAGE: LazyLock<Page> = LazyLock::new(|| Page::assemble(HTML, STYLE, SCRIPT));

/// The assembled page and its policy.
pub fn page() -> &'static Page {
    &PAGE
}

/// Headers besides the policy: no MIME sniffing, no caching of topology, no framing for
/// browsers without CSP level 2, no referrer.
pub const HEADERS: [(&str, &str); 4] = [
    ("x-content-type-options", "nosniff"),
    ("cache-control", "no-store"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
];

/// A CSP source for `text`: `'sha256-<base64 of its digest>'`.
fn hash_source(text: &str) -> String {
    format!("'sha256-{}'", STANDARD.encode(Sha256::digest(text.as_bytes())))
}

impl Page {
    fn assemble(html: &str, style: &str, script: &str) -> Page {
        let html = html.replacen("<style></style>", &format!("<style>{style}</style>"), 1).replacen(
            "<script></script>",
            &format!("<script>{script}</script>"),
            1,
        );
        let csp = format!(
            "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; img-src 'self' data:; \
             base-uri 'none'; form-action 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'",
            hash_source(script),
            hash_source(style),
        );
        Page { html, csp }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text between the first `<tag>` and its closing tag.
    fn inline<'a>(html: &'a str, tag: &str) -> &'a str {
        let open = format!("<{tag}>");
        let start = html.find(&open).map(|i| i + open.len()).expect("opening tag");
        let len = html[start..].find(&format!("</{tag}>")).expect("closing tag");
        &html[start..start + len]
    }

    #[test]
    fn the_policy_allows_exactly_the_inline_script_and_style_the_page_carries() {
        let page = page();
        for tag in ["script", "style"] {
            let source = hash_source(inline(&page.html, tag));
            assert!(page.csp.contains(&format!("{tag}-src {source};")), "{tag}: {source} not in {}", page.csp);
        }
        assert_eq!(page.html.matches("<script").count(), 1, "one script element");
        assert_eq!(page.html.matches("<style").count(), 1, "one style element");
        assert!(!page.csp.contains("unsafe"), "{}", page.csp);
        assert!(page.csp.starts_with("default-src 'none';") && page.csp.contains("frame-ancestors 'none'"));
    }

    #[test]
    fn the_page_loads_nothing_but_itself_and_reads_the_status_endpoint() {
        let html = &page().html;
        for external in ["src=", "http://", "https://", "@import", "url("] {
            assert!(!html.contains(external), "external asset marker {external:?} in the page");
        }
        assert!(html.contains("fetch('/status'"), "the page polls /status, the one schema");
        assert!(!html.contains("innerHTML") && !html.contains("insertAdjacentHTML"), "text only, never markup");
    }
}
