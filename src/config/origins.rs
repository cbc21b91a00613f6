//! Validation of a route's `allowed_origins` and `allowed_hosts`: the browser-facing part of
//! the MCP DNS-rebinding rule. Values are normalised here once (lower case, no trailing `/`,
//! no default port) so the request path compares bytes. Part of the raw → model pipeline.

use super::error::Collector;
use super::model::Origins;
use super::raw::S;

pub fn origins(raw: Option<&[S<String>]>, field: &str, c: &mut Collector<'_>) -> Origins {
    let Some(list) = raw else { return Origins::SameHost };
    if list.len() == 1 && list[0].get_ref() == "*" {
        return Origins::Any;
    }
    let mut out = Vec::with_capacity(list.len());
    for o in list {
        match normalize_origin(o.get_ref()) {
            Some(n) => out.push(n),
            None => c.push(
                o.span(),
                field,
                "not an origin; write scheme://host[:port] with no path (e.g. \"https://app.example.com\"), or [\"*\"] alone to accept any",
            ),
        }
    }
    Origins::List(out)
}

pub fn hosts(raw: Option<&[S<String>]>, field: &str, c: &mut Collector<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for h in raw.into_iter().flatten() {
        let v = h.get_ref();
        let ok = !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
        if ok {
            out.push(v.to_ascii_lowercase());
        } else {
            c.push(
                h.span(),
                field,
                "not a host name; write a name or address, optionally with :port, no scheme or path",
            );
        }
    }
    out
}

/// `scheme://host[:port]` → lower case, default port dropped; None when it is not one.
pub fn normalize_origin(origin: &str) -> Option<String> {
    let lower = origin.trim_end_matches('/').to_ascii_lowercase();
    let (scheme, authority) = lower.split_once("://")?;
    if !matches!(scheme, "http" | "https") || authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return None;
    }
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let authority = authority.strip_suffix(default_port).unwrap_or(authority);
    Some(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::normalize_origin;

    #[test]
    fn origins_normalise_to_one_spelling() {
        assert_eq!(normalize_origin("https://App.Example.com/").as_deref(), Some("https://app.example.com"));
        assert_eq!(normalize_origin("http://localhost:80").as_deref(), Some("http://localhost"));
        assert_eq!(normalize_origin("http://localhost:6274").as_deref(), Some("http://localhost:6274"));
        assert_eq!(normalize_origin("https://a.example/path"), None);
        assert_eq!(normalize_origin("null"), None);
        assert_eq!(normalize_origin("ftp://a"), None);
    }
}
