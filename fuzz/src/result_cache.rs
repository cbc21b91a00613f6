//! `result_cache`: a federated route's tool-result cache (`federation::results`). Reading a
//! client's call into a key and a member's answer into a kept result never panics; a call
//! naming `params` or `arguments` twice is never a key; what is kept and served again is the
//! answer's `result` byte for byte, only for a complete result answering the call's id (judged
//! here by an independent reading of the answer's keys), and the cache never holds more than `max_bytes`.
//!
//! Input: two bytes of length, the client's call of that length, then a member's answer.

use std::sync::LazyLock;
use std::time::Duration;

use mcp_edge::config::model::ResultCache;
use mcp_edge::federation::results::{self, Asker, Results};
use mcp_edge::metrics::Metrics;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::input::Reader;

const MAX_BYTES: usize = 64 << 10;

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics::new().expect("metrics"));

pub fn check(data: &[u8]) {
    let mut input = Reader(data);
    let n = usize::from(input.u16());
    let call = input.take(n);
    let answer = input.rest();
    let asker = Asker { identity: Some(("caller", None)), version: "2025-11-25", member: 0, own: "t" };
    let key = results::key(&asker, "m_t", call);
    if key.is_some() {
        // JSON by its grammar: a number past a double's range (`1e3100`, which clients read
        // as Infinity) is JSON, which `Value` refuses (found by the CI smoke).
        assert!(serde_json::from_slice::<Box<RawValue>>(call).is_ok(), "a key from a body that is not JSON");
        if let Some(top) = pairs(call.get(..).unwrap_or_default()) {
            assert!(count(&top, "params") <= 1, "a call naming params twice became a key");
            let params = top.iter().find(|(k, _)| k == "params").and_then(|(_, v)| pairs(v.get().as_bytes()));
            assert!(params.as_ref().is_none_or(|p| count(p, "arguments") <= 1), "arguments named twice became a key");
            // Only a call whose result answers its arguments alone.
            let known = |k: &str| matches!(k, "name" | "arguments" | "_meta");
            assert!(
                params.is_none_or(|p| p.iter().all(|(k, _)| known(k))),
                "a call with more than its arguments became a key"
            );
        }
    }
    let config =
        ResultCache { tools: Vec::new(), read_only_hint: true, ttl: Duration::from_secs(60), max_bytes: MAX_BYTES };
    let cache = Results::new("fuzz", &config, &METRICS);
    let k = key.unwrap_or([7; 32]);
    let Err(miss) = cache.get(k) else { panic!("a new cache holds nothing") };
    // The call's id as written (a call without one: `null`, which no answer answers).
    let id = pairs(call).and_then(|top| top.into_iter().find(|(k, _)| k == "id")).map(|(_, v)| v.get().to_owned());
    let id = id.unwrap_or_else(|| "null".to_owned());
    let kept = cache.put(miss, id.as_bytes(), answer);
    let fits = complete(answer, &id).is_some_and(|r| r.len() + results::ENTRY_OVERHEAD <= MAX_BYTES);
    // Keys beyond ASCII may fold to one read here (`ſ`, the Kelvin sign): the cache may refuse
    // more than this oracle knows of, never keep more.
    let wide = answer.iter().any(|b| !b.is_ascii()) || answer.windows(2).any(|w| w == b"\\u");
    assert!(kept == fits || (wide && !kept), "kept exactly the complete results that fit");
    let served = cache.get(k).ok();
    // A result whose own ttlMs is short may be gone already.
    let short = serde_json::from_slice::<Value>(answer)
        .ok()
        .and_then(|v| v.pointer("/result/ttlMs").and_then(Value::as_f64))
        .is_some_and(|ms| ms < 1000.0);
    assert!(served.is_some() == kept || (kept && short), "a kept result is served");
    if let Some(served) = served {
        assert_eq!(Some(&served[..]), complete(answer, &id), "the answer's result is served as written");
    }
    assert!(cache.counts()[3] <= MAX_BYTES as u64);
}

/// An object's members in order, duplicates kept (none when `raw` is not an object).
fn pairs(raw: &[u8]) -> Option<Vec<(String, Box<RawValue>)>> {
    struct Pairs(Vec<(String, Box<RawValue>)>);
    impl<'de> serde::Deserialize<'de> for Pairs {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Pairs, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Pairs;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Pairs, A::Error> {
                    let mut out = Vec::new();
                    while let Some(kv) = m.next_entry()? {
                        out.push(kv);
                    }
                    Ok(Pairs(out))
                }
            }
            d.deserialize_map(V)
        }
    }
    serde_json::from_slice::<Pairs>(raw).ok().map(|p| p.0)
}

fn count(pairs: &[(String, Box<RawValue>)], key: &str) -> usize {
    pairs.iter().filter(|(k, _)| k == key).count()
}

/// The one value of `key` (none when absent; `Err` when named twice).
fn one(pairs: &[(String, Box<RawValue>)], key: &str) -> Result<Option<Value>, ()> {
    let mut found = pairs.iter().filter(|(k, _)| k == key);
    let first = found.next();
    if found.next().is_some() {
        return Err(());
    }
    first.map(|(_, v)| serde_json::from_str::<Value>(v.get()).map_err(|_| ())).transpose()
}

/// The `result` of a complete answer to the call whose id is `id` (as written), as written: an
/// object answer naming `result` once (an object), `error` at most once and null, `jsonrpc`
/// once and "2.0", `id` once and the same JSON value as the call's (not null), and in the
/// result, each at most once: `isError` null or false, `resultType` null or "complete",
/// `inputResponses`, `requestState` and `task` null, `ttlMs` null or at least one millisecond.
fn complete<'a>(answer: &'a [u8], id: &str) -> Option<&'a [u8]> {
    // UTF-8 throughout (found by this target: bytes that are not, in a string outside the
    // result, were kept), each value well-formed.
    std::str::from_utf8(answer).ok()?;
    let top = pairs(answer)?;
    let result = match top.iter().filter(|(k, _)| k == "result").collect::<Vec<_>>()[..] {
        [(_, r)] => r,
        _ => return None,
    };
    if !matches!(one(&top, "error"), Ok(None | Some(Value::Null))) {
        return None;
    }
    if one(&top, "jsonrpc") != Ok(Some(Value::from("2.0"))) {
        return None;
    }
    let call = serde_json::from_str::<Value>(id).ok().filter(|v| !v.is_null())?;
    let same = match (one(&top, "id"), &call) {
        // Numbers as written (two past a double's precision are not one id).
        (Ok(Some(Value::Number(_))), Value::Number(_)) => {
            top.iter().find(|(k, _)| k == "id").is_some_and(|(_, v)| v.get().trim() == id.trim())
        }
        (found, _) => found == Ok(Some(call.clone())),
    };
    if !same {
        return None;
    }
    let inner = pairs(result.get().as_bytes())?;
    // No key a case-insensitive reader takes for one read here (`"ID"`, `"IsError"`).
    let alias = |pairs: &[(String, Box<RawValue>)], known: &[&str]| {
        pairs.iter().any(|(k, _)| !known.contains(&k.as_str()) && known.iter().any(|n| n.eq_ignore_ascii_case(k)))
    };
    if alias(&top, &["jsonrpc", "id", "method", "params", "result", "error"])
        || alias(&inner, &["isError", "resultType", "inputResponses", "requestState", "ttlMs", "task"])
    {
        return None;
    }
    let null_or = |key: &str, ok: &dyn Fn(&Value) -> bool| {
        matches!(one(&inner, key), Ok(None | Some(Value::Null)))
            || one(&inner, key).is_ok_and(|v| v.as_ref().is_some_and(ok))
    };
    let fine = null_or("isError", &|v| v == &Value::Bool(false))
        && null_or("resultType", &|v| v == "complete")
        && null_or("inputResponses", &|_| false)
        && null_or("requestState", &|_| false)
        && null_or("task", &|_| false)
        && null_or("ttlMs", &|v| v.as_f64().is_some_and(|ms| ms >= 1.0));
    // The answer's bytes of the result: find it by its position in the answer.
    let text = result.get();
    let at = answer.windows(text.len()).position(|w| w == text.as_bytes())?;
    fine.then(|| &answer[at..at + text.len()])
}
