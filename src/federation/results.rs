//! A federated route's tool-result cache (`[route.result_cache]`): the result of a call to a
//! tool the route names cacheable (or whose member annotates it `readOnlyHint: true`, when the
//! route trusts that hint) is served again, for the route's `ttl`, to the same caller asking
//! the same tool with the same arguments in the same protocol version.
//!
//! The key is a SHA-256 over those parts, each length-prefixed: the arguments exactly as the
//! client wrote them (bytes the member would read the same way; a client spelling them another
//! way only misses). Kept: a complete result (no `isError: true`, no `input_required`, no
//! `inputResponses`/`requestState`), the answer read whole. Bounded by `max_bytes`, oldest
//! first (every entry of a route lives equally long, so the oldest expires first). Lives in
//! the snapshot: a reload starts empty; `POST /cache/invalidate` empties it.
//!
//! Not owned here: which tools are cacheable (`super::decide`), holding the answer
//! (`proxy::contents`, `proxy::transform`), the reply (`proxy::reply`).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use prometheus::{IntCounter, IntGauge};
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::config::model::ResultCache;
use crate::mcp::fold;
use crate::metrics::Metrics;

/// A cached result's key.
pub type Key = [u8; 32];

/// A lookup that found nothing: where the answer is kept, if it still may be.
#[derive(Debug, Clone, Copy)]
pub struct Miss {
    key: Key,
    /// The cache's epoch at the lookup: an answer to a call sent before an invalidation is
    /// not kept after it.
    epoch: u64,
}

pub struct Results {
    ttl: Duration,
    max_bytes: usize,
    held: Mutex<Held>,
    stats: ResultStats,
}

#[derive(Default)]
struct Held {
    entries: HashMap<Key, Entry>,
    /// Keys in the order stored, each with its entry's `seq`: an entry stored again has a newer
    /// one, and its older place is skipped.
    order: VecDeque<(Key, u64)>,
    bytes: usize,
    seq: u64,
    /// Bumped by [`Results::clear`].
    epoch: u64,
}

struct Entry {
    result: Bytes,
    until: Instant,
    seq: u64,
}

/// The route's series, resolved once.
struct ResultStats {
    hits: IntCounter,
    misses: IntCounter,
    expired: IntCounter,
    size: IntCounter,
    invalidated: IntCounter,
    entries: IntGauge,
    bytes: IntGauge,
}

/// A key's parts besides the tool and its arguments.
pub struct Asker<'a> {
    /// The caller's identity and tenant (none: every anonymous caller shares).
    pub identity: Option<(&'a str, Option<&'a str>)>,
    /// The protocol version the member is spoken to in (or the era's, for 2026-07-28).
    pub version: &'a str,
    /// The member that owns the tool now (its place in the route): a tool that changes hands
    /// at a catalog refresh is another member's, with other results (found by an attack).
    pub member: usize,
    /// The member's own name for the tool: under `prefix_mode = "conflicts"` an offered name
    /// can come to mean another of the member's tools when another member starts offering one
    /// (found by an attack).
    pub own: &'a str,
}

/// What an entry costs besides its result's bytes (its key in the map and in the order, its
/// lifetime, the allocations' own overhead), counted against `max_bytes`: an attack measured
/// about 2.4 times the result's bytes for small results when only those were counted.
pub const ENTRY_OVERHEAD: usize = 192;

/// The key of a call to `tool` (as offered) in the client's `body`; none when the call is not
/// one to keep: its arguments cannot be read exactly once, or its `params` carry more than
/// `name`, `arguments` and `_meta` (`inputResponses`, `requestState`, `task`, or what a later
/// version adds: a result that answers more than the arguments is not the arguments' result).
pub fn key(asker: &Asker<'_>, tool: &str, body: &[u8]) -> Option<Key> {
    #[derive(serde::Deserialize)]
    struct Call<'a> {
        #[serde(borrow)]
        params: Params<'a>,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Params<'a> {
        #[serde(default, borrow, deserialize_with = "present")]
        arguments: Option<&'a RawValue>,
        #[allow(dead_code)]
        name: IgnoredAny,
        #[serde(rename = "_meta")]
        #[allow(dead_code)]
        meta: Option<IgnoredAny>,
    }
    /// `arguments` as written, `null` too (absent is `None`: another call).
    fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
        <&RawValue as serde::Deserialize>::deserialize(d).map(Some)
    }
    // Derived structs refuse a key named twice: a body whose arguments two readers could read
    // differently is never a key.
    // UTF-8 throughout, like an answer (`cacheable`).
    let call: Call<'_> = serde_json::from_str(std::str::from_utf8(body).ok()?).ok()?;
    let arguments = call.params.arguments.map_or(&[][..], |a| a.get().as_bytes());
    let (id, tenant) = asker.identity.unwrap_or(("", None));
    let mut h = Sha256::new();
    for part in [
        &[u8::from(asker.identity.is_some()), u8::from(tenant.is_some()), u8::from(call.params.arguments.is_some())][..],
        &(asker.member as u64).to_le_bytes(),
        asker.own.as_bytes(),
        id.as_bytes(),
        tenant.unwrap_or("").as_bytes(),
        asker.version.as_bytes(),
        tool.as_bytes(),
        arguments,
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    Some(h.finalize().into())
}

/// The keys of a tool result read to decide whether it is kept.
const RESULT_KEYS: &[&str] = &["isError", "resultType", "inputResponses", "requestState", "ttlMs", "task"];

/// The `result` of a JSON-RPC answer to the call whose id is `call` (as written) when it may
/// be served again, and how long (the route's `ttl`, or less when the result carries a
/// smaller `ttlMs`). An answer under another id, or not JSON-RPC 2.0, is not the call's
/// (the client did not take it for its answer; found by an attack).
fn cacheable<'a>(answer: &'a [u8], call: &[u8], ttl: Duration) -> Option<(&'a RawValue, Duration)> {
    #[derive(serde::Deserialize)]
    struct Answer<'a> {
        #[serde(borrow)]
        result: &'a RawValue,
        error: Option<IgnoredAny>,
        jsonrpc: std::borrow::Cow<'a, str>,
        #[serde(borrow)]
        id: &'a RawValue,
    }
    #[derive(serde::Deserialize)]
    struct Complete<'a> {
        #[serde(rename = "isError")]
        is_error: Option<bool>,
        #[serde(rename = "resultType", borrow)]
        result_type: Option<std::borrow::Cow<'a, str>>,
        #[serde(rename = "inputResponses")]
        input_responses: Option<IgnoredAny>,
        #[serde(rename = "requestState")]
        request_state: Option<IgnoredAny>,
        #[serde(rename = "ttlMs")]
        ttl_ms: Option<f64>,
        /// A task's handle (2025-11-25 tasks), not the call's result.
        task: Option<IgnoredAny>,
    }
    // Objects only (a derived struct would also read an array).
    if !answer.trim_ascii_start().starts_with(b"{") {
        return None;
    }
    // UTF-8 throughout (ignored strings are not checked otherwise: found by fuzzing).
    let text = std::str::from_utf8(answer).ok()?;
    let answer: Answer<'_> = serde_json::from_str(text).ok()?;
    let same = super::relay::same_id(answer.id.get().as_bytes(), call);
    if !answer.result.get().starts_with('{') || answer.jsonrpc != "2.0" || !same {
        return None;
    }
    // A key a case-insensitive reader (Go's) takes for one read here (`"Result"`, `"IsError"`)
    // would have that reader see another answer than the one kept (found by an attack).
    if fold::object_aliases(text, super::relay::RPC_KEYS) || fold::object_aliases(answer.result.get(), RESULT_KEYS) {
        return None;
    }
    let result: Complete<'_> = serde_json::from_str(answer.result.get()).ok()?;
    let complete = answer.error.is_none()
        && result.is_error != Some(true)
        && result.result_type.is_none_or(|t| t == "complete")
        && result.input_responses.is_none()
        && result.request_state.is_none()
        && result.task.is_none();
    let ttl = match result.ttl_ms {
        None => ttl,
        // Under a millisecond is gone before it could be served.
        Some(ms) if ms >= 1.0 => Duration::try_from_secs_f64(ms / 1000.0).map_or(ttl, |d| d.min(ttl)),
        Some(_) => Duration::ZERO,
    };
    (complete && !ttl.is_zero()).then_some((answer.result, ttl))
}

impl Results {
    pub fn new(route: &str, config: &ResultCache, metrics: &Metrics) -> Results {
        let m = &metrics.results;
        let (entries, bytes) = (m.entries.with_label_values(&[route]), m.bytes.with_label_values(&[route]));
        entries.set(0);
        bytes.set(0);
        Results {
            ttl: config.ttl,
            max_bytes: config.max_bytes,
            held: Mutex::new(Held::default()),
            stats: ResultStats {
                hits: m.lookups.with_label_values(&[route, "hit"]),
                misses: m.lookups.with_label_values(&[route, "miss"]),
                expired: m.evictions.with_label_values(&[route, "expired"]),
                size: m.evictions.with_label_values(&[route, "size"]),
                invalidated: m.evictions.with_label_values(&[route, "invalidated"]),
                entries,
                bytes,
            },
        }
    }

    /// The result kept under `key`, if fresh; else where to keep the answer. Counted as a
    /// hit or a miss.
    pub fn get(&self, key: Key) -> Result<Bytes, Miss> {
        let Ok(mut held) = self.held.lock() else { return Err(Miss { key, epoch: u64::MAX }) };
        let found = match held.entries.get(&key) {
            Some(entry) if entry.until > Instant::now() => Ok(entry.result.clone()),
            Some(_) => {
                held.remove(&key);
                self.stats.expired.inc();
                self.publish(&held);
                Err(Miss { key, epoch: held.epoch })
            }
            None => Err(Miss { key, epoch: held.epoch }),
        };
        drop(held);
        if found.is_ok() { &self.stats.hits } else { &self.stats.misses }.inc();
        found
    }

    /// Keeps the result of `answer` (a whole JSON-RPC answer, as the client gets it, to the
    /// call whose id is `call`, as written) where `miss` says, when it may be served again;
    /// whether it was kept.
    pub fn put(&self, miss: Miss, call: &[u8], answer: &[u8]) -> bool {
        let key = miss.key;
        let Some((result, ttl)) = cacheable(answer, call, self.ttl) else {
            tracing::debug!("a cacheable tool's answer is not the call's complete result: not kept");
            return false;
        };
        let size = result.get().len() + ENTRY_OVERHEAD;
        if size > self.max_bytes {
            return false;
        }
        let Ok(mut held) = self.held.lock() else { return false };
        if held.epoch != miss.epoch {
            return false;
        }
        let now = Instant::now();
        held.remove(&key);
        // Oldest first: expired ones, then as many as the new one needs room for.
        while let Some((oldest, seq)) = held.order.front().copied() {
            let Some(entry) = held.entries.get(&oldest).filter(|e| e.seq == seq) else {
                held.order.pop_front();
                continue;
            };
            let expired = entry.until <= now;
            if !expired && held.bytes + size <= self.max_bytes {
                break;
            }
            held.remove(&oldest);
            held.order.pop_front();
            if expired { &self.stats.expired } else { &self.stats.size }.inc();
        }
        held.seq += 1;
        let seq = held.seq;
        held.order.push_back((key, seq));
        held.bytes += size;
        held.entries
            .insert(key, Entry { result: Bytes::copy_from_slice(result.get().as_bytes()), until: now + ttl, seq });
        self.publish(&held);
        true
    }

    /// Forgets every result (`POST /cache/invalidate`).
    pub fn clear(&self) {
        if let Ok(mut held) = self.held.lock() {
            self.stats.invalidated.inc_by(held.entries.len() as u64);
            *held = Held { epoch: held.epoch + 1, ..Held::default() };
            self.publish(&held);
        }
    }

    /// Hits and misses since start (the series outlive a reload), entries and bytes held.
    pub fn counts(&self) -> [u64; 4] {
        let gauge = |g: &IntGauge| u64::try_from(g.get()).unwrap_or(0);
        [self.stats.hits.get(), self.stats.misses.get(), gauge(&self.stats.entries), gauge(&self.stats.bytes)]
    }

    fn publish(&self, held: &Held) {
        self.stats.entries.set(i64::try_from(held.entries.len()).unwrap_or(i64::MAX));
        self.stats.bytes.set(i64::try_from(held.bytes).unwrap_or(i64::MAX));
    }
}

impl Held {
    /// Forgets `key`'s entry (its place in `order` is skipped when reached).
    fn remove(&mut self, key: &Key) {
        if let Some(entry) = self.entries.remove(key) {
            self.bytes = self.bytes.saturating_sub(entry.result.len() + ENTRY_OVERHEAD);
        }
        // Many stale places (one key stored again and again) are dropped at once.
        if self.order.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.order.retain(|(k, seq)| entries.get(k).is_some_and(|e| e.seq == *seq));
        }
    }
}

#[cfg(test)]
#[path = "results_tests.rs"]
mod tests;
