//! The one reading of a request: what the proxy believes a POST is (era, method, target, id,
//! batch elements), computed once from the body and the MCP headers, and the only input to
//! routing, limits, costs, retries, metrics and logs.
//!
//! Owns the rules that make that belief hard to steer: the body decides, mirrored headers
//! (`Mcp-Method`, `Mcp-Name`, `MCP-Protocol-Version`) must agree with it (in any era when
//! present, and must be present in the 2026-07-28 era), target-bearing methods must carry their
//! target, and ids are always slices of the body. Pure: no I/O, no Pingora, so it is unit-tested
//! and fuzzed as is. HTTP-level checks (duplicate headers, `Connection`, paths) live in
//! `proxy::head`.

use bytes::Bytes;

use super::envelope::{self, Body, EnvelopeError, Kind, Message};
use super::method::{Era, Method, TargetKind};

/// One JSON-RPC message as the proxy reads it. Byte fields are slices of the body.
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    pub method: Method,
    /// The method as sent, for rules that match unknown methods by pattern.
    pub method_name: Bytes,
    /// Tool or prompt name, or resource URI, for methods that have one.
    pub target: Option<Bytes>,
    /// Raw JSON of the id; None for notifications.
    pub id: Option<Bytes>,
}

impl Element {
    /// Nothing known: a GET or DELETE, or a body the route passes through unread.
    pub const UNREAD: Element = Element { method: Method::None, method_name: Bytes::new(), target: None, id: None };

    pub fn method_str(&self) -> &str {
        std::str::from_utf8(&self.method_name).unwrap_or("")
    }

    pub fn target_str(&self) -> Option<&str> {
        self.target.as_deref().and_then(|t| std::str::from_utf8(t).ok())
    }
}

/// The reading of a whole request.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub era: Era,
    /// The message; for a batch, a summary (`Method::Batch`, no target, no id).
    pub one: Element,
    /// A batch's elements, in order; empty otherwise.
    pub batch: Vec<Element>,
    /// The message's `params._meta.traceparent`/`.tracestate` (one message only), unparsed:
    /// read by `trace` only when tracing is on.
    pub traceparent: Option<Bytes>,
    pub tracestate: Option<Bytes>,
    /// The message's `params.cursor` (one message only): the page a list request asks for.
    pub cursor: Option<Bytes>,
    /// What the message's `params._meta` carries of what 2026-07-28 requests must (one
    /// message only).
    pub meta: MetaKeys,
}

/// Which of the `params._meta` keys every 2026-07-28 request must carry are there. Read by a
/// route that answers in that era itself (a federated route); a plain route's server judges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetaKeys {
    pub present: bool,
    pub version: bool,
    pub capabilities: bool,
}

impl MetaKeys {
    pub fn complete(self) -> bool {
        self.present && self.version && self.capabilities
    }
}

impl Call {
    pub fn unread(era: Era) -> Call {
        Call {
            era,
            one: Element::UNREAD,
            batch: Vec::new(),
            traceparent: None,
            tracestate: None,
            cursor: None,
            meta: MetaKeys::default(),
        }
    }

    /// Every message the request carries: the batch's elements, or the one message.
    pub fn elements(&self) -> &[Element] {
        if self.batch.is_empty() {
            std::slice::from_ref(&self.one)
        } else {
            &self.batch
        }
    }
}

/// The MCP headers of a request, as raw bytes (duplicates were refused before this).
#[derive(Debug, Clone, Copy, Default)]
pub struct Mirrored<'h> {
    pub version: Option<&'h [u8]>,
    pub method: Option<&'h [u8]>,
    pub name: Option<&'h [u8]>,
}

/// Why a body is refused, with the id to echo when one was valid.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub why: Why,
    pub id: Option<Bytes>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Not JSON (-32700).
    Parse,
    /// Not a valid JSON-RPC message, or a kind this era does not allow (-32600).
    Invalid(&'static str),
    /// A batch on a route that does not accept them (-32600).
    Batch,
    /// A target-bearing method without its target (-32602).
    MissingTarget,
    /// Mirrored headers missing, malformed or disagreeing with the body (-32020).
    Mismatch(&'static str),
}

/// Reads `body` (the whole request body) with the request's mirrored headers.
pub fn classify(era: Era, headers: Mirrored<'_>, body: &Bytes, batches: bool) -> Result<Call, Refusal> {
    let refuse = |why, id: Option<&str>| Refusal { why, id: id.map(|i| slice_of(body, i)) };
    let parsed = envelope::parse(body).map_err(|e| match e {
        EnvelopeError::Parse => refuse(Why::Parse, None),
        EnvelopeError::Invalid { id, why } => refuse(Why::Invalid(why), id),
    })?;
    match parsed {
        Body::One(m) => {
            let one = element(era, body, &m).map_err(|why| refuse(why, m.id))?;
            agree(era, headers, &m, &one).map_err(|why| refuse(why, m.id))?;
            if era == Era::Modern && m.kind == Kind::Response {
                return Err(refuse(Why::Invalid("2026-07-28 clients send no responses"), m.id));
            }
            let traceparent = m.traceparent.as_deref().map(|t| slice_of(body, t));
            let tracestate = m.tracestate.as_deref().map(|t| slice_of(body, t));
            let cursor = m.cursor.as_deref().map(|c| slice_of(body, c));
            let meta = MetaKeys { present: m.meta, version: m.version.is_some(), capabilities: m.capabilities };
            Ok(Call { era, one, batch: Vec::new(), traceparent, tracestate, cursor, meta })
        }
        Body::Batch(all) => {
            if !batches {
                return Err(refuse(Why::Batch, None));
            }
            if era == Era::Modern {
                return Err(refuse(Why::Invalid("2026-07-28 has no batches"), None));
            }
            if headers.method.is_some() || headers.name.is_some() {
                return Err(refuse(Why::Mismatch("Mcp-Method/Mcp-Name on a batch"), None));
            }
            let batch = all.iter().map(|m| element(era, body, m)).collect::<Result<Vec<_>, _>>();
            let batch = batch.map_err(|why| refuse(why, None))?;
            let one = Element { method: Method::Batch, ..Element::UNREAD };
            Ok(Call { era, one, batch, ..Call::unread(era) })
        }
    }
}

fn element(era: Era, body: &Bytes, m: &Message<'_>) -> Result<Element, Why> {
    let name = m.method.as_deref().unwrap_or("");
    let method = match m.kind {
        Kind::Response => Method::Response,
        _ => Method::parse(name),
    };
    let target = match method.target_kind() {
        Some(TargetKind::Tool | TargetKind::Prompt) => m.name.as_deref(),
        Some(TargetKind::Resource) => m.uri.as_deref(),
        None => None,
    };
    // A method its era removed has no params to check: its server answers "not found".
    let removed = era == Era::Modern && method.removed_in_modern();
    if method.target_kind().is_some() && target.is_none() && !removed {
        return Err(Why::MissingTarget);
    }
    Ok(Element {
        method,
        method_name: slice_of(body, name),
        target: target.map(|t| slice_of(body, t)),
        id: m.id.map(|i| slice_of(body, i)),
    })
}

/// Mirrored headers must match the body whenever present, and in the 2026-07-28 era requests
/// must carry them (`Mcp-Name` for target-bearing methods).
fn agree(era: Era, h: Mirrored<'_>, m: &Message<'_>, e: &Element) -> Result<(), Why> {
    let must = era == Era::Modern && m.kind == Kind::Request;
    match h.method {
        Some(v) if Some(v) != m.method.as_deref().map(str::as_bytes) => return Err(Why::Mismatch("Mcp-Method")),
        None if must => return Err(Why::Mismatch("Mcp-Method missing")),
        _ => {}
    }
    match (h.name, &e.target) {
        (Some(v), Some(t)) if decode_name(v).as_deref() != Some(&t[..]) => return Err(Why::Mismatch("Mcp-Name")),
        (Some(_), None) => return Err(Why::Mismatch("Mcp-Name on a method without a target")),
        (None, Some(_)) if must => return Err(Why::Mismatch("Mcp-Name missing")),
        _ => {}
    }
    if era == Era::Modern {
        if let Some(v) = &m.version {
            if h.version != Some(v.as_bytes()) {
                return Err(Why::Mismatch("MCP-Protocol-Version"));
            }
        }
    }
    Ok(())
}

/// `Mcp-Name` as bytes: plain, or the spec's `=?base64?<base64 of UTF-8>?=` (case-sensitive
/// sentinel). None when the encoding is malformed.
pub fn decode_name(raw: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
    use base64::Engine;
    match raw.strip_prefix(b"=?base64?").and_then(|r| r.strip_suffix(b"?=")) {
        None => Some(std::borrow::Cow::Borrowed(raw)),
        Some(inner) => {
            let bytes = base64::engine::general_purpose::STANDARD.decode(inner).ok()?;
            std::str::from_utf8(&bytes).ok()?;
            Some(std::borrow::Cow::Owned(bytes))
        }
    }
}

/// A name as `Mcp-Name` carries it: plain when it is printable ASCII without surrounding
/// spaces and cannot be read as the encoded form, else `=?base64?<base64 of UTF-8>?=`
/// ([`decode_name`] reads both back to `name`).
pub fn encode_name(name: &str) -> std::borrow::Cow<'_, str> {
    use base64::Engine;
    let plain = name.bytes().all(|b| (0x20..0x7f).contains(&b))
        && !name.starts_with([' ', '\t'])
        && !name.ends_with([' ', '\t'])
        && !name.starts_with("=?base64?");
    if plain && !name.is_empty() {
        return std::borrow::Cow::Borrowed(name);
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(name.as_bytes());
    std::borrow::Cow::Owned(format!("=?base64?{encoded}?="))
}

/// `s` as a slice of `body` when it points into it (borrowed strings), else a copy (strings
/// that were unescaped). Never panics, whatever `s` is.
pub fn slice_of(body: &Bytes, s: &str) -> Bytes {
    let (base, ptr) = (body.as_ptr() as usize, s.as_ptr() as usize);
    match ptr.checked_sub(base) {
        Some(start) if start.checked_add(s.len()).is_some_and(|end| end <= body.len()) => {
            body.slice(start..start + s.len())
        }
        _ => Bytes::copy_from_slice(s.as_bytes()),
    }
}

#[cfg(test)]
#[path = "call_tests.rs"]
mod tests;
