//! `federation`: what a federated route does with a client's `tools/call`. The offered name of
//! any tool a member lists is within 64 characters of `[A-Za-z0-9_-]` and names its member;
//! and a body the one reading accepts as a `tools/call` is rewritten (`federation::renamed`)
//! into a body that the one reading accepts again as the same call (method, id) of the
//! member's own name, whose every other member and parameter is what a reference JSON reading
//! of the client's body holds, so the member runs exactly the call the proxy decided on.
//!
//! The member's name goes into `Mcp-Name` as a valid header value that reads back as it.
//!
//! Input: a length byte and a member tool name (UTF-8, lossy), then the client's body.

use bytes::Bytes;
use mcp_edge::federation::names;
use mcp_edge::federation::rewrite::{renamed, Field};
use mcp_edge::mcp::call::{classify, decode_name, encode_name, Mirrored};
use mcp_edge::mcp::method::{Era, Method};
use serde_json::Value;

use crate::input::Reader;

pub fn check(data: &[u8]) {
    let mut input = Reader(data);
    let len = usize::from(input.u8());
    let own = String::from_utf8_lossy(input.take(len)).into_owned();
    let body = Bytes::copy_from_slice(input.rest());

    let offered = names::offered("pre-1", &own);
    assert!(offered.len() <= names::MAX_NAME, "{offered:?}");
    assert!(offered.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'), "{offered:?}");
    assert_eq!(names::prefix_of(&offered), Some("pre-1"));
    // The member's name in `Mcp-Name`: a valid header value that reads back as the name.
    let header = encode_name(&own);
    assert!(
        header.bytes().all(|b| (0x20..0x7f).contains(&b)) && !header.starts_with(' ') && !header.ends_with(' '),
        "{header:?}"
    );
    assert_eq!(decode_name(header.as_bytes()).as_deref(), Some(own.as_bytes()), "{header:?}");

    let none = Mirrored { version: None, method: None, name: None };
    let Ok(call) = classify(Era::Legacy, none, &body, false) else { return };
    if call.one.method != Method::ToolsCall {
        return;
    }
    let out = renamed(&body, call.one.target.as_ref(), Field::Name, &own)
        .expect("an accepted tools/call is an object with params");
    let again = classify(Era::Legacy, Mirrored { version: None, method: None, name: None }, &out, false)
        .unwrap_or_else(|r| panic!("the renamed body is refused ({:?}): {}", r.why, String::from_utf8_lossy(&out)));
    assert_eq!(again.one.method, Method::ToolsCall);
    assert_eq!(again.one.target_str(), Some(own.as_str()));
    let ids = |c: &mcp_edge::mcp::call::Call| c.one.id.as_deref().map(|i| serde_json::from_slice::<Value>(i).ok());
    assert_eq!(ids(&again), ids(&call));
    let (Ok(Value::Object(sent)), Ok(Value::Object(got))) =
        (serde_json::from_slice::<Value>(&body), serde_json::from_slice::<Value>(&out))
    else {
        panic!("both bodies are JSON objects");
    };
    for (key, value) in &sent {
        if key != "params" {
            assert_eq!(got.get(key), Some(value), "{key}");
        }
    }
    assert_eq!(got.len(), sent.len());
    let (Some(Value::Object(p_sent)), Some(Value::Object(p_got))) = (sent.get("params"), got.get("params")) else {
        panic!("params stay an object");
    };
    for (key, value) in p_sent {
        if key != "name" {
            assert_eq!(p_got.get(key), Some(value), "params.{key}");
        }
    }
    assert_eq!(p_got.len(), p_sent.len());
}
