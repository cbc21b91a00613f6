//! A finished request as spans, by the OpenTelemetry MCP semantic conventions: the SERVER
//! span `{mcp.method.name} {target}` and one CLIENT span per upstream attempt, with the
//! conventions' attributes and the proxy's own (`mcp_edge.*`).
//!
//! What a span never carries: tool arguments or results (the proxy does not read them), a
//! session id (`mcp.session.id` is the session's fingerprint, as in the access log: the token
//! is a bearer credential), or a caller's credential. Values the client chose (method, tool,
//! URI, id) are cut to [`MAX_VALUE`] bytes.

use std::net::{IpAddr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::SpanId;

use super::context::Remote;
use super::wire;
use super::{Attempt, Trace};
use crate::mcp::call::Call;
use crate::mcp::method::{Era, Method, TargetKind};

/// Client-chosen values are cut to this many bytes (at a character boundary).
pub const MAX_VALUE: usize = 256;

/// `ScopeSpans.spans`: each span is written as this field, so the export thread sends a
/// batch by putting a scope in front of the requests' bytes.
const SPANS: u32 = 2;
/// `Span` fields.
const TRACE_ID: u32 = 1;
const SPAN_ID: u32 = 2;
const TRACE_STATE: u32 = 3;
const PARENT_SPAN_ID: u32 = 4;
const NAME: u32 = 5;
const KIND: u32 = 6;
const START: u32 = 7;
const END: u32 = 8;
const ATTRIBUTES: u32 = 9;
const LINKS: u32 = 13;
const STATUS: u32 = 15;
const FLAGS: u32 = 16;
/// `SpanKind` and `Status.StatusCode` values.
const KIND_SERVER: u64 = 2;
const KIND_CLIENT: u64 = 3;
const STATUS_ERROR: u64 = 2;
/// `SpanFlags`: the W3C sampled bit, and whether the parent's remoteness is known / remote.
const SAMPLED: u32 = 0x01;
const HAS_IS_REMOTE: u32 = 0x100;
const IS_REMOTE: u32 = 0x200;

/// What the proxy knows about a request once it is over.
pub struct Finished<'a> {
    pub call: &'a Call,
    pub http_method: &'a str,
    /// The status sent to the client (0: none).
    pub status: u16,
    /// The request's `error_type` (`_none` when it did not fail).
    pub error: &'static str,
    /// The JSON-RPC error code of a reply the proxy made itself.
    pub rpc_code: Option<i32>,
    pub route: &'a str,
    pub pool: &'a str,
    pub limit: &'a str,
    pub request_id: &'a str,
    pub client: Option<SocketAddr>,
    pub protocol_version: Option<&'a str>,
    /// The legacy session's fingerprint.
    pub session: Option<&'a str>,
}

/// Writes the request's spans to `out` as OTLP `ScopeSpans.spans` fields: its attempts'
/// CLIENT spans, then its SERVER span; returns how many. `open` is the attempt still in
/// flight when the request ended (backend, status, error type).
pub fn build(
    t: &Trace,
    f: &Finished<'_>,
    open: Option<(Option<SocketAddr>, u16, &'static str)>,
    out: &mut Vec<u8>,
) -> usize {
    let end = SystemTime::now();
    let name = name(f);
    let last = open.and_then(|(backend, status, error)| {
        let (span_id, start) = t.current?;
        Some(Attempt { span_id, start, end, backend, status, error })
    });
    let mut count = 1;
    for (n, a) in t.attempts.iter().chain(last.as_ref()).enumerate() {
        wire::message(out, SPANS, |o| client_span(o, t, f, &name, a, n + 1));
        count += 1;
    }
    wire::message(out, SPANS, |o| server_span(o, t, f, &name, end));
    count
}

fn server_span(out: &mut Vec<u8>, t: &Trace, f: &Finished<'_>, name: &[&str; 3], end: SystemTime) {
    let remote = t.parent.is_some();
    head(out, t, t.span_id, t.parent.map(|p| p.span_id), name, KIND_SERVER, t.start, end);
    mcp_attributes(out, f);
    wire::attr_str(out, ATTRIBUTES, "http.request.method", cut(f.http_method));
    if f.status != 0 {
        wire::attr_int(out, ATTRIBUTES, "http.response.status_code", i64::from(f.status));
    }
    if let Some(code) = f.rpc_code {
        wire::attr_str(out, ATTRIBUTES, "rpc.response.status_code", &code.to_string());
    }
    if let Some(client) = f.client {
        let mut text = [0u8; IP_TEXT];
        wire::attr_str(out, ATTRIBUTES, "client.address", ip_text(client.ip(), &mut text));
        wire::attr_int(out, ATTRIBUTES, "client.port", i64::from(client.port()));
    }
    if f.call.era == Era::Legacy {
        if let Some(session) = f.session {
            wire::attr_str(out, ATTRIBUTES, "mcp.session.id", session);
        }
    }
    for (key, value) in [("mcp_edge.route", f.route), ("mcp_edge.pool", f.pool), ("mcp_edge.limit", f.limit)] {
        if !value.is_empty() && value != "-" {
            wire::attr_str(out, ATTRIBUTES, key, value);
        }
    }
    wire::attr_str(out, ATTRIBUTES, "mcp_edge.request_id", f.request_id);
    let failed = f.error != "_none";
    if failed {
        wire::attr_str(out, ATTRIBUTES, "error.type", f.error);
    }
    if let Some(http) = t.link {
        wire::message(out, LINKS, |o| link(o, http));
    }
    if failed {
        status_error(out, f.error);
    }
    wire::fixed32(out, FLAGS, SAMPLED | HAS_IS_REMOTE | if remote { IS_REMOTE } else { 0 });
}

fn client_span(out: &mut Vec<u8>, t: &Trace, f: &Finished<'_>, name: &[&str; 3], a: &Attempt, n: usize) {
    head(out, t, a.span_id, Some(t.span_id), name, KIND_CLIENT, a.start, a.end);
    mcp_attributes(out, f);
    if let Some(backend) = a.backend {
        let mut text = [0u8; IP_TEXT];
        wire::attr_str(out, ATTRIBUTES, "server.address", ip_text(backend.ip(), &mut text));
        wire::attr_int(out, ATTRIBUTES, "server.port", i64::from(backend.port()));
    }
    if a.status != 0 {
        wire::attr_int(out, ATTRIBUTES, "http.response.status_code", i64::from(a.status));
    }
    if f.pool != "-" {
        wire::attr_str(out, ATTRIBUTES, "mcp_edge.pool", f.pool);
    }
    wire::attr_int(out, ATTRIBUTES, "mcp_edge.attempt", n as i64);
    let failed = a.error != "_none";
    if failed {
        wire::attr_str(out, ATTRIBUTES, "error.type", a.error);
        status_error(out, a.error);
    }
    wire::fixed32(out, FLAGS, SAMPLED | HAS_IS_REMOTE);
}

/// The fields every span has: ids, the trace state, name, kind and times.
#[allow(clippy::too_many_arguments)]
fn head(
    out: &mut Vec<u8>,
    t: &Trace,
    span_id: SpanId,
    parent: Option<SpanId>,
    name: &[&str; 3],
    kind: u64,
    start: SystemTime,
    end: SystemTime,
) {
    wire::bytes(out, TRACE_ID, &t.trace_id.to_bytes());
    wire::bytes(out, SPAN_ID, &span_id.to_bytes());
    wire::string(out, TRACE_STATE, t.state.as_deref().unwrap_or_default());
    if let Some(parent) = parent {
        wire::bytes(out, PARENT_SPAN_ID, &parent.to_bytes());
    }
    wire::string_of(out, NAME, name);
    wire::varint(out, KIND, kind);
    wire::fixed64(out, START, unix_nanos(start));
    wire::fixed64(out, END, unix_nanos(end));
}

/// The HTTP header's context, linked when `_meta`'s became the parent.
fn link(out: &mut Vec<u8>, r: Remote) {
    wire::bytes(out, 1, &r.trace_id.to_bytes());
    wire::bytes(out, 2, &r.span_id.to_bytes());
    let sampled = if r.sampled { SAMPLED } else { 0 };
    wire::fixed32(out, 6, sampled | HAS_IS_REMOTE | IS_REMOTE);
}

fn status_error(out: &mut Vec<u8>, message: &str) {
    wire::message(out, STATUS, |o| {
        wire::string(o, 2, message);
        wire::varint(o, 3, STATUS_ERROR);
    });
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Room for any IP address as text (an IPv6 address with an embedded IPv4 one: 45 bytes).
const IP_TEXT: usize = 48;

/// An address as text, written on the stack.
fn ip_text(ip: IpAddr, buf: &mut [u8; IP_TEXT]) -> &str {
    use std::io::Write;
    let free = {
        let mut w = &mut buf[..];
        let _ = write!(w, "{ip}");
        w.len()
    };
    std::str::from_utf8(&buf[..IP_TEXT - free]).unwrap_or_default()
}

/// `{mcp.method.name} {target}` for tool and prompt calls, the method alone otherwise (a URI
/// is too varied for a span name), the HTTP method for requests with no MCP method; in parts
/// written one after another.
fn name<'a>(f: &Finished<'a>) -> [&'a str; 3] {
    let one = &f.call.one;
    if one.method == Method::None {
        return [cut(f.http_method), "", ""];
    }
    match (one.method.target_kind(), one.target_str()) {
        (Some(TargetKind::Tool | TargetKind::Prompt), Some(target)) => [cut(one.method_str()), " ", cut(target)],
        _ => [method_name(f.call), "", ""],
    }
}

/// The method as sent: static for the methods the proxy knows, cut otherwise.
fn method_name(call: &Call) -> &str {
    match call.one.method {
        Method::Notification | Method::Response | Method::Batch | Method::Other | Method::None => {
            cut(call.one.method_str())
        }
        known => known.as_str(),
    }
}

/// The conventions' MCP attributes, on both kinds of span.
fn mcp_attributes(out: &mut Vec<u8>, f: &Finished<'_>) {
    let one = &f.call.one;
    if one.method != Method::None {
        wire::attr_str(out, ATTRIBUTES, "mcp.method.name", method_name(f.call));
    }
    if let Some(target) = one.target_str() {
        let key = match one.method.target_kind() {
            Some(TargetKind::Tool) => "gen_ai.tool.name",
            Some(TargetKind::Prompt) => "gen_ai.prompt.name",
            _ => "mcp.resource.uri",
        };
        wire::attr_str(out, ATTRIBUTES, key, cut(target));
    }
    if let Some(id) = one.id.as_deref().and_then(|i| std::str::from_utf8(i).ok()) {
        // A string id without its JSON quotes (escapes kept), a number as written.
        let id = id.strip_prefix('"').and_then(|i| i.strip_suffix('"')).unwrap_or(id);
        wire::attr_str(out, ATTRIBUTES, "jsonrpc.request.id", cut(id));
    }
    if let Some(v) = f.protocol_version {
        wire::attr_str(out, ATTRIBUTES, "mcp.protocol.version", cut(v));
    }
}

/// `text` within [`MAX_VALUE`] bytes, cut at a character boundary.
fn cut(text: &str) -> &str {
    if text.len() <= MAX_VALUE {
        return text;
    }
    let mut end = MAX_VALUE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
