//! `envelope` (differential): the proxy's one-pass reading of a body against serde_json's
//! `Value`. When the proxy accepts a body, the reference accepts it too and agrees on
//! `jsonrpc`, `method`, `id`, `params.name` and `params.uri`; when the reference refuses a
//! body, so does the proxy. (The proxy may refuse more: duplicate keys, a non-string `name`.)

use mcp_edge::mcp::envelope::{parse, Message};
use serde_json::Value;

/// Divergences already reported, each with an input under `fuzz/regressions/envelope/known/`
/// (replayed by an ignored test until fixed): (what the reference says, why).
pub const KNOWN: [(&str, &str); 6] = [
    ("invalid unicode code point", "skipped values are not checked for UTF-8"),
    ("lone leading surrogate", "skipped strings and raw ids are not checked for surrogate pairs"),
    ("unexpected end of hex escape", "skipped strings and raw ids are not checked for surrogate pairs"),
    ("number out of range", "skipped numbers are not range-checked"),
    ("recursion limit exceeded", "batches and skipped values have no depth limit"),
    ("null id read as a notification", "D5: a present null id is read as absent"),
];

/// The fuzz run's check: `check`, except for bodies showing a `KNOWN` divergence, so the run
/// keeps looking for new ones.
pub fn check_new_only(data: &[u8]) {
    if known(data).is_none() {
        check(data);
    }
}

/// The `KNOWN` divergence a body shows, if any.
pub fn known(data: &[u8]) -> Option<&'static str> {
    let ours = parse(data).ok()?;
    let said = match serde_json::from_slice::<Value>(data) {
        Err(e) => e.to_string(),
        Ok(value) if matches!(ours, Message::Notification { .. }) && value.get("id") == Some(&Value::Null) => {
            "null id read as a notification".to_owned()
        }
        Ok(_) => return None,
    };
    KNOWN.iter().find(|(reference, _)| said.contains(reference)).map(|(_, why)| *why)
}

pub fn check(data: &[u8]) {
    let ours = parse(data);
    let reference = serde_json::from_slice::<Value>(data);
    let (Ok(message), Ok(value)) = (&ours, &reference) else {
        assert!(ours.is_err() || reference.is_ok(), "accepted a body JSON refuses: {:?}", reference.err());
        return;
    };
    match message {
        Message::Batch => assert!(value.is_array(), "a batch that is not an array"),
        Message::Request { id, method, name, uri } => {
            assert_version(value);
            assert_eq!(value.get("method").and_then(Value::as_str), Some(&**method), "method");
            assert_id(value, id);
            let param = |key: &str| value.get("params").and_then(|p| p.get(key)).and_then(Value::as_str);
            assert_eq!(param("name"), name.as_deref(), "params.name");
            assert_eq!(param("uri"), uri.as_deref(), "params.uri");
        }
        Message::Notification { method } => {
            assert_version(value);
            assert_eq!(value.get("method").and_then(Value::as_str), Some(&**method), "method");
            assert_eq!(value.get("id"), None, "a notification has no id");
        }
        Message::Response { id } => {
            assert_version(value);
            assert_eq!(value.get("method"), None, "a response has no method");
            assert!(value.get("result").is_some() || value.get("error").is_some(), "a response without outcome");
            assert_id(value, id);
        }
    }
}

fn assert_version(value: &Value) {
    assert_eq!(value.get("jsonrpc").and_then(Value::as_str), Some("2.0"), "jsonrpc");
}

/// The proxy keeps ids as raw JSON text: it must read as the reference's id (a missing id
/// reads as `null`, the JSON-RPC id of an error about an unreadable request).
fn assert_id(value: &Value, raw: &str) {
    let ours = serde_json::from_str::<Value>(raw).unwrap_or_else(|e| panic!("raw id {raw:?} is not JSON: {e}"));
    assert_eq!(value.get("id").unwrap_or(&Value::Null), &ours, "id");
}
