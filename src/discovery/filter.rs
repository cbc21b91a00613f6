//! One JSON-RPC message (or a batch of them) with the entries a caller may not use removed
//! from the answers to its list requests. Everything else is kept as it came: other result
//! fields (`nextCursor`, `_meta`, `ttlMs`), the kept entries byte for byte, error answers,
//! answers to the body's other requests, requests and notifications. A 2026-07-28 answer that was filtered is
//! marked `cacheScope: "private"` (it differs per caller), as is any that carried a scope.
//!
//! Fails closed: an entry whose name (or URI) is missing, not a string, or given twice with one
//! spelling denied is dropped; a result or entry list of the wrong shape, or a body that is not
//! JSON, is [`Filtered::Unreadable`] and the caller refuses the answer, as is a result under an
//! id that none of the body's requests had (nothing tells what it lists). Duplicate keys are
//! all filtered, whichever one a client reads.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{ListKind, Wanted};
use crate::mcp::method::Era;

#[derive(Debug, PartialEq, Eq)]
pub enum Filtered {
    /// Forward the message as it came: not an answer to a wanted list, or an error answer.
    Untouched,
    /// The filtered message.
    Rewritten(Vec<u8>),
    /// Not JSON, or an answer to a wanted list of the wrong shape: refuse it.
    Unreadable,
}

/// Filters `json` for a caller that may use an entry iff `allows(kind, name)`. `answered`
/// gains bit `i` for each wanted list `i` this message answers (a result or an error).
pub fn filter<A: Fn(ListKind, &str) -> bool>(json: &[u8], wanted: &Wanted, allows: &A, answered: &mut u64) -> Filtered {
    // Objects and arrays are validated by their own parse; anything else only needs to be JSON.
    let Ok(text) = std::str::from_utf8(json) else { return Filtered::Unreadable };
    let out = match text.trim_start_matches([' ', '\t', '\n', '\r']).as_bytes().first() {
        Some(b'{') => one(text, wanted, allows, answered),
        Some(b'[') => batch(text, wanted, allows, answered),
        _ => serde_json::from_str::<&RawValue>(text).map(|_| None).map_err(|_| Unreadable),
    };
    match out {
        Ok(Some(bytes)) => Filtered::Rewritten(bytes),
        Ok(None) => Filtered::Untouched,
        Err(Unreadable) => Filtered::Unreadable,
    }
}

struct Unreadable;

type Step<T> = Result<T, Unreadable>;

fn batch<A: Fn(ListKind, &str) -> bool>(
    text: &str,
    w: &Wanted,
    allows: &A,
    answered: &mut u64,
) -> Step<Option<Vec<u8>>> {
    let all: Vec<&RawValue> = serde_json::from_str(text).map_err(|_| Unreadable)?;
    let mut changed = Vec::with_capacity(all.len());
    for m in &all {
        let out = match m.get().as_bytes().first() {
            Some(b'{') => one(m.get(), w, allows, answered)?,
            _ => None,
        };
        changed.push(out);
    }
    if changed.iter().all(Option::is_none) {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(text.len());
    out.push(b'[');
    for (i, (m, new)) in all.iter().zip(&changed).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(new.as_deref().unwrap_or(m.get().as_bytes()));
    }
    out.push(b']');
    Ok(Some(out))
}

/// One message: None when it is not a wanted answer with a result.
fn one<A: Fn(ListKind, &str) -> bool>(text: &str, w: &Wanted, allows: &A, answered: &mut u64) -> Step<Option<Vec<u8>>> {
    let Pairs(pairs) = serde_json::from_str(text).map_err(|_| Unreadable)?;
    if pairs.iter().any(|(k, _)| k == "method") {
        return Ok(None);
    }
    let ids = || pairs.iter().filter(|(k, _)| k == "id").map(|(_, v)| *v);
    // An answer two requests could claim is judged by neither: refused (the envelope already
    // refuses batches whose ids repeat; this holds whatever reaches here).
    let claims = w.lists.iter().filter(|(id, _)| ids().any(|v| same_id(id, v))).count()
        + w.others.iter().filter(|id| ids().any(|v| same_id(id, v))).count();
    if claims > 1 {
        return Err(Unreadable);
    }
    let Some(index) = w.lists.iter().position(|(id, _)| ids().any(|v| same_id(id, v))) else {
        let stray_result =
            pairs.iter().any(|(k, _)| k == "result") && !w.others.iter().any(|id| ids().any(|v| same_id(id, v)));
        return if stray_result { Err(Unreadable) } else { Ok(None) };
    };
    *answered |= 1u64.checked_shl(u32::try_from(index).unwrap_or(u32::MAX)).unwrap_or(0);
    let Some(&(_, kind)) = w.lists.get(index) else { return Ok(None) };
    if !pairs.iter().any(|(k, _)| k == "result") {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(text.len());
    let mut results = Vec::new();
    for (k, v) in &pairs {
        if k == "result" {
            results.push(result(v.get(), kind, w.era, allows)?);
        }
    }
    let mut results = results.into_iter();
    write_object(
        &mut out,
        pairs.iter().map(|(k, v)| {
            let value = if k == "result" { results.next() } else { None };
            (k.as_ref(), Value::from(value, v))
        }),
    )?;
    Ok(Some(out))
}

fn result<A: Fn(ListKind, &str) -> bool>(text: &str, kind: ListKind, era: Era, allows: &A) -> Step<Vec<u8>> {
    let Pairs(pairs) = serde_json::from_str(text).map_err(|_| Unreadable)?;
    let mut lists = Vec::new();
    for (k, v) in &pairs {
        if k == kind.key() {
            lists.push(entries(v.get(), kind, allows)?);
        }
    }
    let mut lists = lists.into_iter();
    // A cache must not share a per-caller list: a 2026-07-28 answer is marked private, and so
    // is any answer that already had a scope.
    let private = era == Era::Modern || pairs.iter().any(|(k, _)| k == "cacheScope");
    let kept = pairs.iter().filter(|(k, _)| !(private && k == "cacheScope")).map(|(k, v)| {
        let value = if k == kind.key() { lists.next() } else { None };
        (k.as_ref(), Value::from(value, v))
    });
    let private = private.then_some(("cacheScope", Value::Raw(br#""private""#)));
    let mut out = Vec::with_capacity(text.len());
    write_object(&mut out, kept.chain(private))?;
    Ok(out)
}

fn entries<A: Fn(ListKind, &str) -> bool>(text: &str, kind: ListKind, allows: &A) -> Step<Vec<u8>> {
    let all: Vec<&RawValue> = serde_json::from_str(text).map_err(|_| Unreadable)?;
    let mut out = Vec::with_capacity(text.len());
    out.push(b'[');
    for entry in all.iter().filter(|e| listed(e.get(), kind, allows)) {
        if out.len() > 1 {
            out.push(b',');
        }
        out.extend_from_slice(entry.get().as_bytes());
    }
    out.push(b']');
    Ok(out)
}

/// Whether an entry is shown: every spelling of its name field is a string the caller may use.
fn listed<A: Fn(ListKind, &str) -> bool>(entry: &str, kind: ListKind, allows: &A) -> bool {
    let Ok(Pairs(pairs)) = serde_json::from_str(entry) else { return false };
    let mut names = pairs.iter().filter(|(k, _)| k == kind.field()).peekable();
    names.peek().is_some()
        && names.all(|(_, v)| serde_json::from_str::<Key<'_>>(v.get()).is_ok_and(|Key(name)| allows(kind, &name)))
}

/// Whether a response id is the request's: the same JSON text, or the same value spelled
/// another way (`"\u0061"` for `"a"`). Numbers compare by value as a double: SDK servers
/// answer with the id they parsed, so `1.0` and `1e0` come back as `1` and integers past
/// 2^53 rounded; by spelling, such an answer would pass unfiltered.
fn same_id(request: &[u8], response: &RawValue) -> bool {
    use serde_json::Value;
    request == response.get().as_bytes()
        || match (serde_json::from_slice::<Value>(request), serde_json::from_str::<Value>(response.get())) {
            (Ok(Value::Number(a)), Ok(Value::Number(b))) => a.as_f64() == b.as_f64(),
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
}

/// A field value to write: the original raw JSON, or a rewritten one.
enum Value<'a> {
    Raw(&'a [u8]),
    New(Vec<u8>),
}

impl<'a> Value<'a> {
    fn from(new: Option<Vec<u8>>, raw: &'a RawValue) -> Value<'a> {
        new.map_or(Value::Raw(raw.get().as_bytes()), Value::New)
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Value::Raw(b) => b,
            Value::New(v) => v,
        }
    }
}

fn write_object<'a>(out: &mut Vec<u8>, pairs: impl Iterator<Item = (&'a str, Value<'a>)>) -> Step<()> {
    out.push(b'{');
    for (i, (k, v)) in pairs.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, k).map_err(|_| Unreadable)?;
        out.push(b':');
        out.extend_from_slice(v.bytes());
    }
    out.push(b'}');
    Ok(())
}

/// An object's members in order, duplicates included, values left as raw JSON.
struct Pairs<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Pairs<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pairs<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Pairs<'de>, M::Error> {
                let mut pairs = Vec::new();
                while let Some((Key(k), v)) = map.next_entry::<Key<'de>, &'de RawValue>()? {
                    pairs.push((k, v));
                }
                Ok(Pairs(pairs))
            }
        }
        d.deserialize_map(V)
    }
}

/// A string, borrowed from the input unless it had escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}
