//! One-pass, borrowed parse of a JSON-RPC body: `jsonrpc`, `id`, `method`, `result`/`error`
//! presence, and from `params` only `name`, `uri`, `cursor` and `_meta`'s protocol version. Tool
//! arguments and everything else are skipped without being built ([`Skip`]), and strings borrow
//! from the body unless escaped.
//!
//! Skipped values are still read as strictly as a full parse would read them (UTF-8, escapes
//! and surrogate pairs, number range, nesting depth 128), so the proxy accepts exactly the
//! bodies a reference parser (`serde_json::Value`) accepts, and reads them the same way: a
//! body that a strict backend would refuse is refused here, not forwarded (`fuzz/` checks this
//! property).
//!
//! A key another JSON reader may take for one read here (`"Method"`, `"paramſ"`: Go matches
//! keys ignoring case) is refused like a repeated one ([`super::fold`]).
//!
//! Owns the JSON-RPC shape rules (what is a request, a notification, a response, a batch; which
//! ids are valid). It does not know MCP methods or HTTP headers: `classify` does.
//!
//! Ids are three-valued on the wire: absent (a notification), `null` (refused: MCP forbids it,
//! and JSON-RPC would treat it as a request, so a proxy that read it as a notification could be
//! walked around), or a string or number, which is kept as its raw JSON text, always a slice of
//! the body that was parsed.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::fold;

/// What one JSON-RPC message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Notification,
    /// A client's answer to a server request (`result` or `error`).
    Response,
}

/// One message, borrowed from the body.
#[derive(Debug, PartialEq)]
pub struct Message<'a> {
    pub kind: Kind,
    /// Raw JSON of the id (a string with its quotes, or a number): a slice of the body.
    /// None exactly for notifications.
    pub id: Option<&'a str>,
    /// None exactly for responses.
    pub method: Option<Cow<'a, str>>,
    /// `params.name`, when it is a string.
    pub name: Option<Cow<'a, str>>,
    /// `params.uri`, when it is a string.
    pub uri: Option<Cow<'a, str>>,
    /// `params.cursor`, when it is a string (a list's next page).
    pub cursor: Option<Cow<'a, str>>,
    /// `params._meta["io.modelcontextprotocol/protocolVersion"]` (2026-07-28 requests).
    pub version: Option<Cow<'a, str>>,
    /// `params._meta.traceparent` and `.tracestate` (W3C Trace Context carried in the
    /// message), when they are strings (a key sent twice is refused).
    pub traceparent: Option<Cow<'a, str>>,
    pub tracestate: Option<Cow<'a, str>>,
    /// Whether `params._meta` is there, and whether it names the client's capabilities
    /// (`io.modelcontextprotocol/clientCapabilities`): 2026-07-28 requests must carry both.
    pub meta: bool,
    pub capabilities: bool,
}

/// A whole body: one message, or a JSON array of them (2025-03-26 batching).
#[derive(Debug, PartialEq)]
pub enum Body<'a> {
    One(Message<'a>),
    Batch(Vec<Message<'a>>),
}

#[derive(Debug, PartialEq, Eq)]
pub enum EnvelopeError<'a> {
    /// Not JSON at all (-32700).
    Parse,
    /// JSON, but not a valid JSON-RPC 2.0 message (-32600). `id` is the raw id when one was
    /// valid and readable (never `null`), so the error can echo it; `why` is for debug logs.
    Invalid { id: Option<&'a str>, why: &'static str },
}

const VERSION_KEY: &str = "io.modelcontextprotocol/protocolVersion";
const CAPABILITIES_KEY: &str = "io.modelcontextprotocol/clientCapabilities";

/// The keys read at each level; a key another reader may take for one of them is refused
/// ([`fold`]). `ref` is read by the completion readers, from the same `params`.
const TOP_KEYS: [&str; 6] = ["jsonrpc", "id", "method", "params", "result", "error"];
const PARAMS_KEYS: [&str; 5] = ["name", "uri", "cursor", "_meta", "ref"];
const META_KEYS: [&str; 3] = [VERSION_KEY, "traceparent", "tracestate"];
const ALIAS: &str = "a key spelled so a case-insensitive reader takes it for one the proxy reads";

pub fn parse(body: &[u8]) -> Result<Body<'_>, EnvelopeError<'_>> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        let all: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| classify_err(&e, body))?;
        if all.is_empty() {
            return Err(invalid(None, "empty batch"));
        }
        // One bad element refuses the whole batch: the proxy never forwards part of one.
        let messages = all
            .into_iter()
            .map(|raw| {
                let env: Envelope<'_> = serde_json::from_str(raw.get()).map_err(|e| classify_err(&e, body))?;
                message(env)
            })
            .collect::<Result<Vec<_>, _>>();
        let messages = messages.map_err(|e| match e {
            EnvelopeError::Invalid { why, .. } => invalid(None, why),
            other => other,
        })?;
        if !distinct_ids(&messages) {
            return Err(invalid(None, "two requests of the batch share an id"));
        }
        return Ok(Body::Batch(messages));
    }
    let env: Envelope<'_> = serde_json::from_slice(body).map_err(|e| classify_err(&e, body))?;
    message(env).map(Body::One)
}

/// Whether no two requests of a batch have ids equal by value (`1`, `1.0` and `1e0`; `"a"`
/// and `"\u0061"`): their answers could not be told apart, by a client or by the filter that
/// judges each list answer by the request it answers.
fn distinct_ids(messages: &[Message<'_>]) -> bool {
    let mut seen = std::collections::HashSet::with_capacity(messages.len());
    messages.iter().filter_map(|m| m.id).all(|raw| {
        let key = match serde_json::from_str::<serde_json::Value>(raw) {
            Ok(serde_json::Value::String(s)) => format!("s{s}"),
            // -0 and 0 are one id; numbers compare as a JSON reader would read them.
            Ok(serde_json::Value::Number(n)) => format!("n{}", n.as_f64().map_or(0, |f| (f + 0.0).to_bits())),
            _ => format!("r{raw}"),
        };
        seen.insert(key)
    })
}

fn invalid<'a>(id: Option<&'a str>, why: &'static str) -> EnvelopeError<'a> {
    EnvelopeError::Invalid { id, why }
}

fn message(env: Envelope<'_>) -> Result<Message<'_>, EnvelopeError<'_>> {
    let id = match env.id.map(RawValue::get) {
        None => None,
        // The raw text is echoed in errors: it must be what a strict parser would accept too
        // (no lone surrogate escape, no out-of-range number).
        Some(raw) => match raw.as_bytes().first() {
            Some(b'"' | b'-' | b'0'..=b'9') if serde_json::from_str::<Skip>(raw).is_ok() => Some(raw),
            Some(b'n') => return Err(invalid(None, "null id")),
            _ => return Err(invalid(None, "id is not a string or a number")),
        },
    };
    if env.jsonrpc.as_deref() != Some("2.0") {
        return Err(invalid(id, "jsonrpc is not \"2.0\""));
    }
    let answered = env.result.is_some() || env.error.is_some();
    let kind = match (&env.method, id, answered) {
        (Some(_), Some(_), false) => Kind::Request,
        (Some(_), None, false) => Kind::Notification,
        (None, Some(_), true) if !(env.result.is_some() && env.error.is_some()) => Kind::Response,
        (Some(_), _, true) => return Err(invalid(id, "method together with result or error")),
        _ => return Err(invalid(id, "neither a request, a notification nor a response")),
    };
    let method = env.method.as_ref().map(|m| &*m.0);
    if method.is_some_and(super::fold::method_alias) {
        return Err(invalid(id, "a method spelled so a lenient reader takes it for a known one"));
    }
    let params = env.params.unwrap_or_default();
    // A list's cursor is a string; any other cursor would be ignored here and read by someone.
    let lists = matches!(method, Some("tools/list" | "prompts/list" | "resources/list" | "resources/templates/list"));
    if lists && params.cursor.is_some_and(|c| as_str(c).is_none()) {
        return Err(invalid(id, "a list cursor that is not a string"));
    }
    Ok(Message {
        kind,
        id,
        method: env.method.map(|m| m.0),
        name: params.name.and_then(as_str),
        uri: params.uri.and_then(as_str),
        cursor: params.cursor.and_then(as_str),
        version: params.meta.version.map(|v| v.0),
        traceparent: params.meta.traceparent.and_then(as_str),
        tracestate: params.meta.tracestate.and_then(as_str),
        meta: params.meta_seen,
        capabilities: params.meta.capabilities,
    })
}

/// A `params` member kept raw, read as a string when it is one (for methods that route on it;
/// others may carry any JSON there).
fn as_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    serde_json::from_str::<CowStr<'_>>(raw.get()).ok().map(|s| s.0)
}

/// A shape error is -32600 only when the whole body is valid JSON: serde stops at the first
/// error, which may be a shape error before a syntax error further on (only on refusals, so
/// the second pass costs valid requests nothing).
fn classify_err(e: &serde_json::Error, body: &[u8]) -> EnvelopeError<'static> {
    match e.classify() {
        serde_json::error::Category::Data if serde_json::from_slice::<Skip>(body).is_ok() => {
            invalid(None, "not a JSON-RPC object")
        }
        _ => EnvelopeError::Parse,
    }
}

/// The top-level members the proxy reads. Written by hand, not derived, so that members it
/// does not know are skipped with [`Skip`] (strict) rather than serde's `IgnoredAny`, and a
/// repeated member is refused.
struct Envelope<'a> {
    jsonrpc: Option<CowStr<'a>>,
    /// An absent id is None, a present one (even `null`) is Some.
    id: Option<&'a RawValue>,
    method: Option<CowStr<'a>>,
    params: Option<Params<'a>>,
    result: Option<Skip>,
    error: Option<Skip>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Envelope<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Envelope<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON-RPC object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut env =
                    Envelope { jsonrpc: None, id: None, method: None, params: None, result: None, error: None };
                let mut seen = [false; 6];
                while let Some(key) = map.next_key::<CowStr<'a>>()? {
                    let slot = match &*key {
                        "jsonrpc" => 0,
                        "id" => 1,
                        "method" => 2,
                        "params" => 3,
                        "result" => 4,
                        "error" => 5,
                        other if fold::aliases(other, &TOP_KEYS) => return Err(de::Error::custom(ALIAS)),
                        _ => {
                            map.next_value::<Skip>()?;
                            continue;
                        }
                    };
                    if std::mem::replace(&mut seen[slot], true) {
                        return Err(de::Error::custom("duplicate member"));
                    }
                    match slot {
                        0 => env.jsonrpc = map.next_value()?,
                        1 => env.id = Some(map.next_value()?),
                        2 => env.method = map.next_value()?,
                        3 => env.params = map.next_value()?,
                        4 => env.result = map.next_value()?,
                        _ => env.error = map.next_value()?,
                    }
                }
                Ok(env)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// A value skipped without being built, read as strictly as `serde_json::Value` would read
/// it: strings decoded (UTF-8, escapes, surrogate pairs), numbers range-checked, nesting
/// bounded by serde_json's recursion limit. Borrowed strings are not copied.
pub struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(Skip)
    }
}

/// A string that borrows from the input unless it had to be unescaped.
#[derive(Debug)]
struct CowStr<'a>(Cow<'a, str>);

impl std::ops::Deref for CowStr<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = CowStr<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// `params`: `name`, `uri` and `cursor` kept raw, `_meta`'s protocol version and trace
/// context; the rest skipped.
/// Positional (array) params are accepted and ignored, as JSON-RPC allows them.
#[derive(Default)]
struct Params<'a> {
    name: Option<&'a RawValue>,
    uri: Option<&'a RawValue>,
    cursor: Option<&'a RawValue>,
    meta: Meta<'a>,
    meta_seen: bool,
}

impl<'de: 'a, 'a> Deserialize<'de> for Params<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Params<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object or array")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut p = Params::default();
                while let Some(key) = map.next_key::<CowStr<'a>>()? {
                    match &*key {
                        "name" if p.name.is_none() => p.name = Some(strict(map.next_value()?)?),
                        "uri" if p.uri.is_none() => p.uri = Some(strict(map.next_value()?)?),
                        "cursor" if p.cursor.is_none() => p.cursor = Some(strict(map.next_value()?)?),
                        "_meta" if !p.meta_seen => {
                            p.meta_seen = true;
                            p.meta = map.next_value::<Meta<'a>>()?;
                        }
                        "name" | "uri" | "cursor" | "_meta" => return Err(de::Error::custom("duplicate params key")),
                        other if fold::aliases(other, &PARAMS_KEYS) => return Err(de::Error::custom(ALIAS)),
                        _ => {
                            map.next_value::<Skip>()?;
                        }
                    }
                }
                Ok(p)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<Skip>()?.is_some() {}
                Ok(Params::default())
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A raw value kept for later, checked now as strictly as [`Skip`] reads (a raw value's own
/// scan does not decode escapes).
fn strict<E: de::Error>(raw: &RawValue) -> Result<&RawValue, E> {
    match serde_json::from_str::<Skip>(raw.get()) {
        Ok(Skip) => Ok(raw),
        Err(_) => Err(E::custom("invalid value")),
    }
}

/// `_meta`: the protocol version (it must be a string when present) and the W3C trace
/// context (kept raw: any JSON is accepted there, and only strings are read).
#[derive(Default)]
struct Meta<'a> {
    version: Option<CowStr<'a>>,
    traceparent: Option<&'a RawValue>,
    tracestate: Option<&'a RawValue>,
    /// Whether the client's capabilities are named (any value: the member reads them).
    capabilities: bool,
}

impl<'de: 'a, 'a> Deserialize<'de> for Meta<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Meta<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut meta = Meta::default();
                while let Some(key) = map.next_key::<CowStr<'a>>()? {
                    match &*key {
                        VERSION_KEY if meta.version.is_none() => meta.version = Some(map.next_value()?),
                        VERSION_KEY => return Err(de::Error::custom("duplicate protocol version")),
                        // Twice, a backend may read the other one than the proxy continued.
                        "traceparent" if meta.traceparent.is_none() => {
                            meta.traceparent = Some(strict(map.next_value()?)?)
                        }
                        "tracestate" if meta.tracestate.is_none() => meta.tracestate = Some(strict(map.next_value()?)?),
                        "traceparent" | "tracestate" => return Err(de::Error::custom("duplicate trace context")),
                        CAPABILITIES_KEY => {
                            meta.capabilities = true;
                            map.next_value::<Skip>()?;
                        }
                        other if fold::aliases(other, &META_KEYS) => return Err(de::Error::custom(ALIAS)),
                        _ => {
                            map.next_value::<Skip>()?;
                        }
                    }
                }
                Ok(meta)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
#[path = "envelope_tests.rs"]
mod tests;
