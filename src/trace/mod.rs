//! Traces by the OpenTelemetry MCP conventions: one SERVER span per request and one CLIENT
//! span per upstream attempt, encoded as OTLP protobuf on the request's thread ([`span`],
//! [`wire`]) and exported ([`export`], [`transport`]).
//!
//! Owns the head-sampling decision (made once per request, after the one reading, so a
//! route's ratio and the message's `_meta` context are known), the per-request record of
//! span ids and attempt times ([`Trace`]), and the context sent upstream. Building the spans
//! from a finished request is [`span`]'s; when a request is finished is `proxy::finish`'s.
//!
//! Cost: with `[traces]` absent, one branch per request. An unsampled request costs one
//! random draw and leaves the client's headers and body untouched; only a sampled one gets
//! ids, timestamps, a rewritten `traceparent` and, at its end, spans.

pub mod context;
pub mod export;
pub mod span;
mod transport;
mod wire;

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use opentelemetry::trace::{SpanId, TraceId};
use rand::Rng;

use crate::config::model::TraceSettings;
use crate::mcp::call::Call;
use context::Remote;

pub const TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");
pub const TRACESTATE: http::HeaderName = http::HeaderName::from_static("tracestate");

/// A sampled request's trace: its SERVER span, where it came from, and its attempts.
#[derive(Debug)]
pub struct Trace {
    pub trace_id: TraceId,
    /// The SERVER span.
    pub span_id: SpanId,
    /// The span's parent: the message's `_meta` context, else the HTTP header's.
    pub parent: Option<Remote>,
    /// The HTTP header's context when `_meta`'s won and differs: linked, not parent.
    pub link: Option<Remote>,
    /// The parent's `tracestate`, carried upstream unchanged.
    pub state: Option<Box<str>>,
    /// When the request began (wall clock, for the exported timestamps).
    pub start: SystemTime,
    /// Attempts that ended, in order.
    pub attempts: Vec<Attempt>,
    /// The attempt in flight: its CLIENT span id (sent upstream) and start.
    pub current: Option<(SpanId, SystemTime)>,
    /// Where the message's `_meta.traceparent` value sits in the body, when it can be
    /// rewritten in place (a version-00 value, unescaped, in a body of at most
    /// [`MAX_REWRITE`] bytes).
    pub meta_at: Option<usize>,
}

/// Bodies up to this size get their `_meta.traceparent` rewritten (a copy per attempt).
pub const MAX_REWRITE: usize = 64 * 1024;

/// One upstream attempt's CLIENT span.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub span_id: SpanId,
    pub start: SystemTime,
    pub end: SystemTime,
    pub backend: Option<std::net::SocketAddr>,
    /// The backend's status (0: no answer).
    pub status: u16,
    pub error: &'static str,
}

/// Whether this request is traced. `elapsed` is the time since the request began.
pub fn decide(
    settings: &TraceSettings,
    route_ratio: Option<f64>,
    headers: &HeaderMap,
    call: &Call,
    elapsed: Duration,
) -> Option<Box<Trace>> {
    let from_http = one(headers, &TRACEPARENT).and_then(context::parse);
    // In the body only the exact form counts: the one the proxy can replace in place.
    let from_meta = call.traceparent.as_deref().filter(|v| v.len() == context::LEN).and_then(context::parse);
    let parent = from_meta.or(from_http);
    let ratio = route_ratio.unwrap_or(settings.sample);
    let trace_id = parent.map_or_else(|| TraceId::from(rand::thread_rng().gen::<u128>()), |p| p.trace_id);
    let sampled = match parent {
        Some(p) if settings.follow_parent => p.sampled,
        _ => by_ratio(trace_id, ratio),
    };
    if !sampled {
        return None;
    }
    let state = match (from_meta, &call.tracestate) {
        (Some(_), Some(s)) => context::state(s),
        (Some(_), None) => None,
        (None, _) => one(headers, &TRACESTATE).and_then(context::state),
    };
    Some(Box::new(Trace {
        trace_id,
        span_id: new_span_id(),
        parent,
        link: from_meta.and(from_http).filter(|h| Some(*h) != from_meta),
        state: state.map(Into::into),
        start: SystemTime::now().checked_sub(elapsed).unwrap_or_else(SystemTime::now),
        attempts: Vec::new(),
        current: None,
        meta_at: None,
    }))
}

/// The offset of the message's `_meta.traceparent` in `body`, when it is a slice of it (not
/// unescaped) of a version-00 value's length and the body is small enough to copy.
pub fn meta_offset(body: &bytes::Bytes, call: &Call) -> Option<usize> {
    let value = call.traceparent.as_ref()?;
    let at = (value.as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
    let window = body.get(at..at.checked_add(context::LEN)?)?;
    (value.len() == context::LEN && body.len() <= MAX_REWRITE && window == &value[..]).then_some(at)
}

impl Trace {
    /// An upstream attempt begins: its CLIENT span id, to send upstream.
    pub fn begin_attempt(&mut self) -> SpanId {
        let id = new_span_id();
        self.current = Some((id, SystemTime::now()));
        id
    }

    /// The attempt in flight ended.
    pub fn end_attempt(&mut self, backend: Option<std::net::SocketAddr>, status: u16, error: &'static str) {
        if let Some((span_id, start)) = self.current.take() {
            self.attempts.push(Attempt { span_id, start, end: SystemTime::now(), backend, status, error });
        }
    }

    /// The `traceparent` for the backend: this trace, the attempt's CLIENT span as parent.
    pub fn upstream_parent(&self) -> Option<[u8; context::LEN]> {
        self.current.map(|(id, _)| context::format(self.trace_id, id, true))
    }

    /// `body` with its `_meta.traceparent` replaced by `parent` (same length, so framing
    /// holds), when [`meta_offset`] found one.
    pub fn rewrite_meta(&self, body: &bytes::Bytes, parent: &[u8; context::LEN]) -> Option<bytes::Bytes> {
        let at = self.meta_at?;
        let mut copy = bytes::BytesMut::from(&body[..]);
        copy.get_mut(at..at + context::LEN)?.copy_from_slice(parent);
        Some(copy.freeze())
    }
}

/// A header's value, only when sent exactly once (W3C: several `traceparent`s are invalid).
fn one<'h>(headers: &'h HeaderMap, name: &http::HeaderName) -> Option<&'h [u8]> {
    let mut all = headers.get_all(name).iter();
    let first = all.next()?;
    all.next().is_none().then(|| first.as_bytes())
}

/// The TraceIdRatioBased rule: the id's low 64 bits against the ratio, so every process that
/// sees the same trace decides alike.
fn by_ratio(trace_id: TraceId, ratio: f64) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    let low = u128::from_be_bytes(trace_id.to_bytes()) as u64;
    (low as f64) < ratio * (u64::MAX as f64)
}

fn new_span_id() -> SpanId {
    // Never zero: an all-zero id is invalid.
    SpanId::from(rand::thread_rng().gen_range(1..=u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_slice_of_the_body_is_rewritten_in_place() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let body = bytes::Bytes::from(format!(r#"{{"params":{{"_meta":{{"traceparent":"{tp}"}}}}}}"#));
        let at = body.windows(tp.len()).position(|w| w == tp.as_bytes()).expect("in the body");
        let mut call = Call::unread(crate::mcp::method::Era::Legacy);
        call.traceparent = Some(body.slice(at..at + tp.len()));
        assert_eq!(meta_offset(&body, &call), Some(at));
        // A copy (an unescaped value) lives elsewhere: never taken for the body's bytes.
        call.traceparent = Some(bytes::Bytes::copy_from_slice(tp.as_bytes()));
        assert_eq!(meta_offset(&body, &call), None);
    }

    #[test]
    fn the_ratio_decides_by_the_trace_id() {
        let low = |n: u64| TraceId::from(u128::from(n));
        assert!(by_ratio(low(u64::MAX), 1.0));
        assert!(!by_ratio(low(0), 0.0));
        assert!(by_ratio(low(u64::MAX / 100 - 1000), 0.01));
        assert!(!by_ratio(low(u64::MAX / 100 + 1000), 0.01));
    }
}
