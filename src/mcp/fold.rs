//! Keys that a case-insensitive JSON reader takes for keys the proxy reads. Go's
//! `encoding/json` matches object keys to struct fields ignoring case, and folds `ſ` (U+017F)
//! to `s` and the Kelvin sign (U+212A) to `k` (CVE-2026-27896 in the Go MCP SDK before 1.3.1):
//! given `"method":"ping","Method":"tools/call"`, the proxy judges a ping and such a backend
//! runs the call. So a message holding a key spelled that way is refused, before any decision
//! reads it. Not here: which keys are read (`envelope`, and the completion reference readers).

/// Whether `key` is none of `known` but folds to one of them.
pub fn aliases(key: &str, known: &[&str]) -> bool {
    !known.contains(&key) && known.iter().any(|k| folded_eq(key, k))
}

/// Whether the JSON object `json` holds a key that [`aliases`] one of `known` (false for
/// anything that is not an object: its reader refuses that itself).
pub fn object_aliases(json: &str, known: &[&str]) -> bool {
    use std::borrow::Cow;
    type Keys<'a> = std::collections::HashMap<Cow<'a, str>, serde::de::IgnoredAny>;
    serde_json::from_str::<Keys<'_>>(json).is_ok_and(|keys| keys.keys().any(|k| aliases(k, known)))
}

/// Whether `method` is no method the proxy knows, but a reader that cuts at a NUL, trims or
/// strips invisible characters, or ignores case takes it for one (`Tools/Call`,
/// `"tools/call\u0000"`, `" tools/call"`): the proxy would judge an unknown method, the
/// backend run a known one.
pub fn method_alias(method: &str) -> bool {
    use super::method::{Method, KNOWN_METHODS};
    if Method::parse(method) != Method::Other {
        return false;
    }
    // Read lazily, allocating nothing: this runs for every method the proxy does not know.
    let cut = method.split('\0').next().unwrap_or_default();
    let seen = || cut.chars().filter(|&c| !invisible(c)).map(fold);
    KNOWN_METHODS.iter().any(|k| seen().eq(k.chars().map(fold))) || {
        let mut s = seen();
        NOTIFICATIONS.chars().map(fold).all(|n| s.next() == Some(n))
    }
}

const NOTIFICATIONS: &str = "notifications/";

/// Characters a lenient reader strips or trims, and a reader of names never sees: controls,
/// every Unicode space (NBSP, U+2028, U+3000, …), every default-ignorable code point (soft
/// hyphen, zero-width spaces and joiners, bidirectional marks and isolates, variation
/// selectors, tags, Hangul fillers, the byte-order mark), the other format characters, and
/// the blank Braille pattern.
pub fn invisible(c: char) -> bool {
    c.is_control()
        || c.is_whitespace()
        || matches!(
            c,
            '\u{AD}'
                | '\u{34F}'
                | '\u{600}'..='\u{605}'
                | '\u{61C}'
                | '\u{6DD}'
                | '\u{70F}'
                | '\u{8E2}'
                | '\u{115F}'..='\u{1160}'
                | '\u{17B4}'..='\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFFB}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1345F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

/// The ASCII character a fullwidth form (U+FF01 to U+FF5E) is to a reader that normalises
/// compatibility forms (NFKC): `ｅｃｈｏ` is `echo` to it.
pub fn narrowed(c: char) -> Option<char> {
    ('\u{FF01}'..='\u{FF5E}').contains(&c).then(|| char::from_u32(c as u32 - 0xFEE0)).flatten()
}

fn folded_eq(a: &str, b: &str) -> bool {
    a.chars().map(fold).eq(b.chars().map(fold))
}

/// A character as Go's key matching sees it, for the keys the proxy reads (ASCII): ASCII
/// letters in one case, and the two non-ASCII characters that fold to ASCII letters.
fn fold(c: char) -> char {
    match c {
        '\u{17F}' => 's',
        '\u{212A}' => 'k',
        // Not Go's, but Java's `equalsIgnoreCase` reads a dotless i as `I`, and a dotted
        // capital I lowercases to `i`.
        '\u{131}' | '\u{130}' => 'i',
        c => c.to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::aliases;

    #[test]
    fn case_variants_and_go_folds_alias_a_known_key_and_the_key_itself_does_not() {
        let known = ["method", "params", "name", "_meta"];
        for alias in ["Method", "METHOD", "paramſ", "PARAMS", "Name", "_META", "\u{212A}ey"] {
            let expected = alias != "\u{212A}ey";
            assert_eq!(aliases(alias, &known), expected, "{alias}");
        }
        for other in ["method", "params", "arguments", "methods", "nam", "méthod", ""] {
            assert!(!aliases(other, &known), "{other}");
        }
        assert!(aliases("\u{212A}ind", &["kind"]), "the Kelvin sign folds to k");
        assert!(aliases("ur\u{131}", &["uri"]), "a dotless i folds to i");
        assert!(aliases("ur\u{130}", &["uri"]), "a dotted capital I folds to i");
    }

    #[test]
    fn a_method_spelled_so_a_lenient_reader_takes_it_for_a_known_one_is_an_alias() {
        use super::method_alias;
        for alias in [
            "Tools/Call",
            "TOOLS/CALL",
            "tools/call\0",
            " tools/call",
            "tools/call\t",
            "tools/call\u{A0}",
            "\u{FEFF}prompts/get",
            "Notifications/cancelled",
        ] {
            assert!(method_alias(alias), "{alias:?}");
        }
        for fine in ["tools/call", "logging/setLevel", "notifications/anything", "x/y", "tools/calls", ""] {
            assert!(!method_alias(fine), "{fine:?}");
        }
    }
}
