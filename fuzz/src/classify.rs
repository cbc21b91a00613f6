//! `classify`: the one reading of a request (`mcp::call::classify`) from a body and its mirrored
//! headers. It never panics; what it accepts is what the reference JSON reading says (method,
//! target, id, element by element), ids are slices of the body, mirrored headers agree with the
//! body, and the era's rules hold (no batches unless the route takes them, none at all in the
//! 2026-07-28 era, no client responses there, targets present where the method needs one).
//! A refusal's id, when there is one, is a slice of the body and a string or a number.
//!
//! Input: a flags byte (bit 0: 2026-07-28 era; bit 1: the route takes batches; bits 2-4:
//! `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` sent; bit 5: instead, mirror the headers
//! from the reference reading of the body, so the fuzzer reaches what agreeing headers lead
//! to), those three headers (each a length byte and its bytes), then the body.

use bytes::Bytes;
use mcp_edge::mcp::call::{classify, decode_name, Call, Element, Mirrored};
use mcp_edge::mcp::method::{Era, Method, TargetKind};
use serde_json::Value;

use crate::envelope::{self, is_slice_of, VERSION_KEY};
use crate::input::Reader;

pub fn check(data: &[u8]) {
    read(data, true);
}

/// The fuzz run's check: `check`, except for bodies showing a known envelope divergence
/// (`envelope::KNOWN`), so the run keeps looking for new ones.
pub fn check_new_only(data: &[u8]) {
    read(data, false);
}

fn read(data: &[u8], strict: bool) {
    let mut input = Reader(data);
    let flags = input.u8();
    let era = if flags & 1 != 0 { Era::Modern } else { Era::Legacy };
    let batches = flags & 2 != 0;
    let mut header = |bit: u8| {
        let len = usize::from(input.u8());
        let value = input.take(len).to_vec();
        (flags & bit != 0).then_some(value)
    };
    let (mut version, mut method, mut name) = (header(4), header(8), header(16));
    let body = Bytes::copy_from_slice(input.rest());
    if !strict && envelope::known(&body).is_some() {
        return;
    }
    let reference = serde_json::from_slice::<Value>(&body).ok();
    if flags & 32 != 0 {
        let value = reference.as_ref();
        let params = value.and_then(|v| v.get("params"));
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(|s| s.as_bytes().to_vec());
        method = text(value.and_then(|v| v.get("method")));
        name = text(params.and_then(|p| p.get("name")).or_else(|| params.and_then(|p| p.get("uri"))));
        version = text(params.and_then(|p| p.get("_meta")).and_then(|m| m.get(VERSION_KEY)));
    }
    let headers = Mirrored { version: version.as_deref(), method: method.as_deref(), name: name.as_deref() };

    let call = match classify(era, headers, &body, batches) {
        Ok(call) => call,
        Err(refusal) => {
            if let Some(id) = &refusal.id {
                assert!(is_slice_of(&body, std::str::from_utf8(id).unwrap_or("")), "refusal id not from the body");
                let id = serde_json::from_slice::<Value>(id).expect("a refusal id that is not JSON");
                assert!(id.is_string() || id.is_number(), "a refusal id that is neither string nor number");
            }
            return;
        }
    };
    let value = reference.expect("accepted a body JSON refuses");
    assert_eq!(call.era, era);
    if call.batch.is_empty() {
        assert!(call.one.method != Method::Batch, "a batch summary without elements");
        agrees(&body, &call.one, &value);
        agrees_with_headers(era, headers, &call, &value);
    } else {
        assert!(batches && era == Era::Legacy, "a batch the route or era does not take");
        assert_eq!(call.one.method, Method::Batch);
        assert!(headers.method.is_none() && headers.name.is_none(), "mirrored headers on a batch");
        let elements = value.as_array().expect("a batch that is not an array");
        assert_eq!(call.batch.len(), elements.len(), "batch length");
        for (element, v) in call.batch.iter().zip(elements) {
            agrees(&body, element, v);
        }
    }
}

/// One element against the reference reading of its JSON.
fn agrees(body: &Bytes, e: &Element, v: &Value) {
    let method = v.get("method").and_then(Value::as_str);
    if e.method == Method::Response {
        assert_eq!(method, None, "a response with a method");
    } else {
        assert_eq!(Some(e.method_str()), method, "method name");
        assert_eq!(e.method, Method::parse(e.method_str()), "method");
    }
    match &e.id {
        Some(id) => {
            assert!(is_slice_of(body, std::str::from_utf8(id).unwrap_or("")), "an id that is not a body slice");
            assert_eq!(serde_json::from_slice::<Value>(id).ok().as_ref(), v.get("id"), "id");
        }
        None => assert_eq!(v.get("id"), None, "an id-less element whose JSON has an id"),
    }
    let param = |key: &str| v.get("params").and_then(|p| p.get(key)).and_then(Value::as_str);
    let expected = match e.method.target_kind() {
        Some(TargetKind::Tool | TargetKind::Prompt) => param("name"),
        Some(TargetKind::Resource) => param("uri"),
        None => None,
    };
    assert_eq!(e.target_str(), expected, "target");
    assert_eq!(e.target.is_some(), e.method.target_kind().is_some(), "target presence");
}

/// Mirrored headers, when present, say what the body says; the 2026-07-28 era requires them
/// on requests and takes no client responses.
fn agrees_with_headers(era: Era, h: Mirrored<'_>, call: &Call, v: &Value) {
    let e = &call.one;
    let is_request = e.method != Method::Response && v.get("id").is_some();
    if let Some(m) = h.method {
        assert_eq!(m, &e.method_name[..], "Mcp-Method disagrees with the body");
    }
    if let Some(n) = h.name {
        assert_eq!(decode_name(n).as_deref(), e.target.as_deref(), "Mcp-Name disagrees with the body");
    }
    if era == Era::Modern {
        assert!(e.method != Method::Response, "a client response in the 2026-07-28 era");
        if is_request {
            assert!(h.method.is_some(), "a 2026-07-28 request without Mcp-Method");
            assert_eq!(h.name.is_some(), e.target.is_some(), "a 2026-07-28 request without Mcp-Name");
        }
        let meta = v.get("params").and_then(|p| p.get("_meta")).and_then(|m| m.get(VERSION_KEY));
        if let Some(version) = meta.and_then(Value::as_str) {
            assert_eq!(h.version, Some(version.as_bytes()), "MCP-Protocol-Version disagrees with _meta");
        }
    }
}
