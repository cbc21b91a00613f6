//! `envelope` (differential): the proxy's one-pass reading of a body against serde_json's
//! `Value`. When the proxy accepts a body, the reference accepts it too and agrees, message by
//! message, on the kind, `jsonrpc`, `method`, `id`, `params.name`, `params.uri`, `params.cursor` and the
//! `_meta` protocol version and trace context, and every id is a slice of the body; when the reference refuses a
//! body, so does the proxy. (The proxy may refuse more: duplicate keys, null ids, empty batches.)

use mcp_edge::mcp::envelope::{parse, Body, Kind, Message};
use serde_json::Value;

pub const VERSION_KEY: &str = "io.modelcontextprotocol/protocolVersion";

/// Divergences reported but not yet fixed: (what the reference says, why). Empty: the five
/// kinds the first runs found (invalid UTF-8, lone surrogates in skipped strings and in ids,
/// numbers out of range, nesting past 128) are refused since envelope's strict `Skip`, and
/// their inputs are ordinary regressions now.
pub const KNOWN: [(&str, &str); 0] = [];

/// The fuzz run's check: `check`, except for bodies showing a `KNOWN` divergence, so the run
/// keeps looking for new ones.
pub fn check_new_only(data: &[u8]) {
    if known(data).is_none() {
        check(data);
    }
}

/// The `KNOWN` divergence a body shows, if any: the proxy accepts it, the reference says why not.
pub fn known(data: &[u8]) -> Option<&'static str> {
    parse(data).ok()?;
    let said = serde_json::from_slice::<Value>(data).err()?.to_string();
    KNOWN.iter().find(|(reference, _)| said.contains(reference)).map(|(_, why)| *why)
}

pub fn check(data: &[u8]) {
    let ours = parse(data);
    let reference = serde_json::from_slice::<Value>(data);
    let (Ok(body), Ok(value)) = (&ours, &reference) else {
        assert!(ours.is_err() || reference.is_ok(), "accepted a body JSON refuses: {:?}", reference.err());
        return;
    };
    match body {
        Body::One(message) => agrees(data, message, value),
        Body::Batch(messages) => {
            let elements = value.as_array().expect("a batch that is not an array");
            assert!(!messages.is_empty(), "an empty batch");
            assert_eq!(messages.len(), elements.len(), "batch length");
            for (message, element) in messages.iter().zip(elements) {
                agrees(data, message, element);
            }
        }
    }
}

/// One message as the proxy read it against the reference's reading of the same JSON.
pub fn agrees(body: &[u8], m: &Message<'_>, v: &Value) {
    let member = |key: &str| v.get(key).filter(|x| !x.is_null());
    assert_eq!(v.get("jsonrpc").and_then(Value::as_str), Some("2.0"), "jsonrpc");
    assert_eq!(m.method.as_deref(), member("method").and_then(Value::as_str), "method");
    let answered = (member("result").is_some(), member("error").is_some());
    match m.kind {
        Kind::Request | Kind::Notification => assert_eq!(answered, (false, false), "a request with an outcome"),
        Kind::Response => assert!(answered == (true, false) || answered == (false, true), "response outcome"),
    }
    match (m.kind, m.id) {
        (Kind::Notification, None) => assert_eq!(v.get("id"), None, "a notification has no id"),
        (Kind::Request | Kind::Response, Some(raw)) => {
            assert!(is_slice_of(body, raw), "id {raw:?} is not a slice of the body");
            let ours = serde_json::from_str::<Value>(raw).unwrap_or_else(|e| panic!("raw id {raw:?}: {e}"));
            assert!(ours.is_string() || ours.is_number(), "id {raw:?} is neither a string nor a number");
            assert_eq!(v.get("id"), Some(&ours), "id");
        }
        (kind, id) => panic!("{kind:?} with id {id:?}"),
    }
    let params = v.get("params").filter(|p| p.is_object());
    let param = |key: &str| params.and_then(|p| p.get(key)).and_then(Value::as_str);
    assert_eq!(m.name.as_deref(), param("name"), "params.name");
    assert_eq!(m.uri.as_deref(), param("uri"), "params.uri");
    assert_eq!(m.cursor.as_deref(), param("cursor"), "params.cursor");
    let version = params.and_then(|p| p.get("_meta")).and_then(|meta| meta.get(VERSION_KEY)).and_then(Value::as_str);
    assert_eq!(m.version.as_deref(), version, "params._meta protocol version");
    let meta_str =
        |key: &str| params.and_then(|p| p.get("_meta")).and_then(|meta| meta.get(key)).and_then(Value::as_str);
    assert_eq!(m.traceparent.as_deref(), meta_str("traceparent"), "params._meta.traceparent");
    assert_eq!(m.tracestate.as_deref(), meta_str("tracestate"), "params._meta.tracestate");
}

pub fn is_slice_of(body: &[u8], s: &str) -> bool {
    let (start, at) = (body.as_ptr() as usize, s.as_ptr() as usize);
    at >= start && at + s.len() <= start + body.len()
}
