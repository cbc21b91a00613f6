//! Name patterns used by rules and host matching: `*` matches any run of characters, `?` one
//! character; everything else is literal. Compiled once at config load so the request path
//! does a plain comparison for the common exact and prefix shapes.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Glob {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Any,
    Pattern(String),
}

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        let stars = pattern.matches('*').count();
        let has_q = pattern.contains('?');
        if pattern == "*" {
            Glob::Any
        } else if stars == 0 && !has_q {
            Glob::Exact(pattern.to_owned())
        } else if stars == 1 && !has_q && pattern.ends_with('*') {
            Glob::Prefix(pattern[..pattern.len() - 1].to_owned())
        } else if stars == 1 && !has_q && pattern.starts_with('*') {
            Glob::Suffix(pattern[1..].to_owned())
        } else {
            Glob::Pattern(pattern.to_owned())
        }
    }

    /// A pattern without wildcards is a URI prefix (resource rules).
    pub fn new_prefix(pattern: &str) -> Glob {
        match Glob::new(pattern) {
            Glob::Exact(p) => Glob::Prefix(p),
            other => other,
        }
    }

    pub fn is_match(&self, text: &str) -> bool {
        match self {
            Glob::Exact(p) => p == text,
            Glob::Prefix(p) => text.starts_with(p.as_str()),
            Glob::Suffix(p) => text.ends_with(p.as_str()),
            Glob::Any => true,
            Glob::Pattern(p) => wildcard_match(p.as_bytes(), text.as_bytes(), false),
        }
    }

    /// Like [`Glob::is_match`], ignoring ASCII case: what a deny rule uses, so that `DEPLOY`
    /// cannot walk around a deny of `deploy` on a backend that folds case.
    pub fn is_match_ignore_ascii_case(&self, text: &str) -> bool {
        let t = text.as_bytes();
        match self {
            Glob::Exact(p) => p.as_bytes().eq_ignore_ascii_case(t),
            Glob::Prefix(p) => t.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p.as_bytes())),
            Glob::Suffix(p) => t
                .len()
                .checked_sub(p.len())
                .and_then(|at| t.get(at..))
                .is_some_and(|h| h.eq_ignore_ascii_case(p.as_bytes())),
            Glob::Any => true,
            Glob::Pattern(p) => wildcard_match(p.as_bytes(), t, true),
        }
    }

    /// The pattern as written in the config (for `/config` and logs).
    pub fn as_pattern(&self) -> String {
        match self {
            Glob::Exact(p) | Glob::Pattern(p) => p.clone(),
            Glob::Prefix(p) => format!("{p}*"),
            Glob::Suffix(p) => format!("*{p}"),
            Glob::Any => "*".to_owned(),
        }
    }
}

/// Iterative wildcard match with a single backtrack point: linear for patterns with one star,
/// O(n*m) worst case, never recursive (patterns come from config, text from clients). A `*` in
/// the pattern is always a wildcard, also where the text holds a literal `*`; `?` consumes one
/// UTF-8 character. `fold`: literal bytes compare ignoring ASCII case.
fn wildcard_match(pattern: &[u8], text: &[u8], fold: bool) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(b'?') => {
                p += 1;
                t += char_len(text[t]);
            }
            Some(&c) if c == text[t] || (fold && c.eq_ignore_ascii_case(&text[t])) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    let next = st + char_len(text[st]);
                    p = sp + 1;
                    t = next;
                    star = Some((sp, next));
                }
                None => return false,
            },
        }
    }
    pattern.get(p..).is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

/// Length of the UTF-8 character that starts with `lead` (1 for stray continuation bytes).
fn char_len(lead: u8) -> usize {
    match lead {
        0xF0..=0xF7 => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;

    #[test]
    fn shapes_compile_to_cheap_forms() {
        assert_eq!(Glob::new("echo"), Glob::Exact("echo".into()));
        assert_eq!(Glob::new("deploy_*"), Glob::Prefix("deploy_".into()));
        assert_eq!(Glob::new("*.example.com"), Glob::Suffix(".example.com".into()));
        assert_eq!(Glob::new("*"), Glob::Any);
        assert_eq!(Glob::new_prefix("file:///docs/"), Glob::Prefix("file:///docs/".into()));
    }

    #[test]
    fn matches_as_documented() {
        assert!(Glob::new("deploy_*").is_match("deploy_app"));
        assert!(!Glob::new("deploy_*").is_match("undeploy_app"));
        assert!(Glob::new("a*b*c").is_match("aXXbYYc"));
        assert!(!Glob::new("a*b*c").is_match("aXXbYY"));
        assert!(Glob::new("t?ol").is_match("tool"));
        assert!(!Glob::new("t?ol").is_match("tol"));
        assert!(Glob::new("*-admin-*").is_match("x-admin-y"));
        assert!(Glob::new("**").is_match(""));
        assert!(!Glob::new("echo").is_match("echo2"));
    }

    #[test]
    fn stars_in_the_subject_are_plain_characters() {
        assert!(Glob::new("*b*").is_match("*ab"));
        assert!(Glob::new("*secret*").is_match("**/secret"));
        assert!(Glob::new("a*c").is_match("a*c"));
        assert!(Glob::new("a*c").is_match("a**c"));
        assert!(!Glob::new("a*c").is_match("a*b"));
        assert!(Glob::new("*?").is_match("*"));
    }

    #[test]
    fn folding_ignores_ascii_case_in_every_shape() {
        for (pattern, text) in
            [("deploy", "DePlOy"), ("deploy_*", "DEPLOY_app"), ("*.example", "x.EXAMPLE"), ("a*b?c", "AxxBzC")]
        {
            assert!(Glob::new(pattern).is_match_ignore_ascii_case(text), "{pattern} {text}");
            assert!(!Glob::new(pattern).is_match(text), "{pattern} {text}");
        }
        assert!(!Glob::new("deploy").is_match_ignore_ascii_case("deploy2"));
        assert!(!Glob::new("*ab").is_match_ignore_ascii_case("b"));
        assert!(!Glob::new("abc*").is_match_ignore_ascii_case("ab"));
    }

    #[test]
    fn a_question_mark_is_one_character_not_one_byte() {
        assert!(Glob::new("t?ol*").is_match("tüol"));
        assert!(Glob::new("??x").is_match("äöx"));
        assert!(!Glob::new("?x").is_match("äöx"));
        // Truncated UTF-8 never reads past the end.
        assert!(!Glob::new("a?b").is_match("a"));
    }
}
