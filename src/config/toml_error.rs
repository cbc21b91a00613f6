//! TOML syntax and serde shape errors, rewritten so they never echo a value. `toml` and serde
//! put the offending value in their messages (`invalid type: string "hunter2", expected i64`),
//! and a secret in the wrong place would then reach `check`, `POST /reload`, `/status` and the
//! logs. What is kept: the place (from the span), the dotted key path of that place, what was
//! expected and what kind of value was found. Owns only this translation; the place becomes
//! `file:line:col` in [`super::error::Collector`].

/// The value-free message for one `toml::de::Error` message.
pub fn message(raw: &str) -> String {
    let raw = raw.trim_end();
    if let Some(rest) = raw.strip_prefix("invalid type: ") {
        let (found, expected) = rest.rsplit_once(", expected ").unwrap_or((rest, "another type"));
        return format!("expected {}; got {}", expected_kind(expected), found_kind(found));
    }
    if let Some(rest) = raw.strip_prefix("invalid value: ") {
        let expected = rest.rsplit_once(", expected ").map_or("another value", |(_, e)| e);
        return format!("{} is out of range; expected {}", found_kind(rest), expected_kind(expected));
    }
    if let Some(rest) = raw.strip_prefix("unknown field ") {
        return format!("unknown key here; {}", after_expected(rest, "this table takes no keys"));
    }
    if let Some(rest) = raw.strip_prefix("unknown variant ") {
        return format!("unknown value; {}", after_expected(rest, "see the reference config"));
    }
    if raw.starts_with("duplicate key ") {
        return "this key is set twice in the same table; keep one".to_owned();
    }
    if raw.contains("untagged enum RawBackend") {
        return "expected \"host:port\" or { addr = \"host:port\", weight = 1 }".to_owned();
    }
    // `missing field`, `duplicate field`, `invalid length` and `number too large` name only
    // schema fields and counts; syntax errors list grammar tokens. Anything else is scrubbed.
    let safe = ["missing field `", "duplicate field `", "invalid length ", "number too large"];
    if safe.iter().any(|p| raw.starts_with(p)) {
        return raw.to_owned();
    }
    scrub(&raw.replace('\n', "; "))
}

/// serde's "expected ..." names a Rust type; say it in TOML terms.
fn expected_kind(expected: &str) -> &str {
    match expected {
        "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" | "usize" => "an integer",
        "f32" | "f64" => "a number",
        "a sequence" => "an array",
        "a map" => "a table",
        e if e.starts_with("struct ") => "a table",
        e if e.starts_with("a ") || e.starts_with("an ") => e,
        _ => "another type",
    }
}

/// serde's unexpected value (`string "hunter2"`, ``integer `5` ``) reduced to its kind.
fn found_kind(found: &str) -> &'static str {
    let kind = found.split(['`', '"']).next().unwrap_or("").trim();
    match kind {
        "string" => "a string",
        "integer" => "an integer",
        "floating point" => "a decimal number",
        "boolean" => "a boolean",
        "sequence" => "an array",
        // A TOML date-time arrives as a map with one private key.
        "map" => "a table or a date",
        _ => "a value of another type",
    }
}

/// The `expected ...` tail of serde's message (schema names only), or `fallback`.
fn after_expected<'a>(rest: &'a str, fallback: &'a str) -> &'a str {
    rest.rsplit_once(", expected ").map_or(fallback, |(_, tail)| tail).trim_start_matches("expected ")
}

/// Drops every quoted span longer than one character: grammar tokens in syntax errors are
/// single characters (`` `]` ``, `` `"` ``), anything longer could be the input.
fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(['`', '"']) {
        let quote = rest[start..].chars().next().unwrap_or('`');
        let Some(len) = rest[start + 1..].find(quote) else { break };
        let inner = &rest[start + 1..start + 1 + len];
        out.push_str(&rest[..start]);
        if inner.chars().count() <= 1 {
            out.push_str(&rest[start..start + len + 2]);
        } else {
            out.push_str("(value hidden)");
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

/// The dotted key path at `offset` in `text`: the last `[table]` or `[[array]]` header above
/// it, plus the key of the `key = value` line it sits on. Keys under an `assign` table are
/// the operator's secrets (API keys), so the path stops at `assign`.
pub fn key_path(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |p| p + 1);
    let line = &text[line_start..];
    let line = &line[..line.find('\n').unwrap_or(line.len())];
    let trimmed = line.trim_start();
    if trimmed.starts_with('[') {
        return header_path(trimmed);
    }
    let table = text[..line_start].lines().rev().map(str::trim_start).find(|l| l.starts_with('[')).map(header_path);
    let before = &text[line_start..offset];
    // Only a bare (dotted) key: a quoted one may be a secret, and an `=` inside a string
    // of a multi-line array would otherwise cut a value into a "key".
    let bare = |k: &&str| !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-. ".contains(&b));
    let key = before.split_once('=').map(|(k, _)| k.trim()).filter(bare);
    let path = match (table, key) {
        (Some(t), Some(k)) if !t.ends_with(".assign") => format!("{t}.{}", unquote_path(k)),
        (Some(t), _) => t,
        (None, Some(k)) => unquote_path(k),
        (None, None) => "(document)".to_owned(),
    };
    cut_at_assign(path)
}

fn header_path(line: &str) -> String {
    let inner = line.trim_start_matches('[');
    let inner = &inner[..inner.find(']').unwrap_or(inner.len())];
    cut_at_assign(unquote_path(inner))
}

fn unquote_path(key: &str) -> String {
    key.split('.').map(|p| p.trim().trim_matches(['"', '\''])).collect::<Vec<_>>().join(".")
}

fn cut_at_assign(path: String) -> String {
    match path.split('.').position(|p| p == "assign") {
        Some(i) => path.split('.').take(i + 1).collect::<Vec<_>>().join("."),
        None => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_errors_say_what_was_expected_and_what_kind_was_found() {
        assert_eq!(message("invalid type: string \"hunter2\", expected i64"), "expected an integer; got a string");
        assert_eq!(message("invalid type: integer `5`, expected a string"), "expected a string; got an integer");
        assert_eq!(message("invalid type: map, expected struct RawHealth"), "expected a table; got a table or a date");
        assert_eq!(
            message("invalid value: integer `-7`, expected u64"),
            "an integer is out of range; expected an integer"
        );
    }

    #[test]
    fn names_from_the_file_are_dropped_and_names_from_the_schema_kept() {
        let unknown = message("unknown field `sk-live-1`, expected one of `listen`, `threads`");
        assert_eq!(unknown, "unknown key here; one of `listen`, `threads`");
        assert_eq!(
            message("duplicate key `sk-live-1` in table `limit`"),
            "this key is set twice in the same table; keep one"
        );
        assert_eq!(message("missing field `name`"), "missing field `name`");
        assert_eq!(message("invalid string\nexpected `\"`, `'`"), "invalid string; expected `\"`, `'`");
        assert_eq!(
            message("dotted key `sk-live-1` attempted to extend"),
            "dotted key (value hidden) attempted to extend"
        );
    }

    #[test]
    fn key_paths_come_from_the_headers_and_stop_at_assign() {
        let text = "[proxy]\nthreads = \"x\"\n[[limit]]\nname = \"l\"\n[limit.assign]\n\"sk-live-1\" = 5\n";
        assert_eq!(key_path(text, text.find("\"x\"").unwrap_or(0)), "proxy.threads");
        assert_eq!(key_path(text, text.find("[[limit]]").unwrap_or(0)), "limit");
        assert_eq!(key_path(text, text.find("5\n").unwrap_or(0)), "limit.assign");
        assert_eq!(key_path("threads = 1", 10), "threads");
        let array = "[proxy]\nlisten = [\n  \"a=b\", \"hunter2\",\n]\n";
        assert_eq!(key_path(array, array.find("hunter2").unwrap_or(0)), "proxy");
    }
}
