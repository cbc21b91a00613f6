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
            Glob::Pattern(p) => wildcard_match(p.as_bytes(), text.as_bytes()),
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

/// Iterative wildcard match with single backtrack point: linear for patterns with one star,
/// O(n*m) worst case, never recursive (patterns come from config, text from clients).
fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
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
}
