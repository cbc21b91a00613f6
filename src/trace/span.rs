//! A finished request as spans, by the OpenTelemetry MCP semantic conventions: the SERVER
//! span `{mcp.method.name} {target}` and one CLIENT span per upstream attempt, with the
//! conventions' attributes and the proxy's own (`mcp_edge.*`).
//!
//! What a span never carries: tool arguments or results (the proxy does not read them), a
//! session id (`mcp.session.id` is the session's fingerprint, as in the access log: the token
//! is a bearer credential), or a caller's credential. Values the client chose (method, tool,
//! URI, id) are cut to [`MAX_VALUE`] bytes.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::SystemTime;

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

use super::context::Remote;
use super::{Attempt, Trace};
use crate::mcp::call::Call;
use crate::mcp::method::{Era, Method, TargetKind};

/// Client-chosen values are cut to this many bytes (at a character boundary).
pub const MAX_VALUE: usize = 256;

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

/// The request's spans: its attempts' CLIENT spans, then its SERVER span. `open` is the
/// attempt still in flight when the request ended (backend, status, error type).
pub fn build(t: &Trace, f: &Finished<'_>, open: Option<(Option<SocketAddr>, u16, &'static str)>) -> Vec<SpanData> {
    // Strings every span of the request shares are made once (names of known methods are
    // static: no copy at all).
    let end = SystemTime::now();
    let name = name(f);
    let mut out = Vec::with_capacity(t.attempts.len() + 2);
    let last = open.and_then(|(backend, status, error)| {
        let (span_id, start) = t.current?;
        Some(Attempt { span_id, start, end, backend, status, error })
    });
    for (n, a) in t.attempts.iter().chain(last.as_ref()).enumerate() {
        out.push(client_span(t, f, &name, a, n + 1));
    }
    out.push(server_span(t, f, name, end));
    out
}

fn server_span(t: &Trace, f: &Finished<'_>, name: Cow<'static, str>, end: SystemTime) -> SpanData {
    let mut attrs = mcp_attributes(f);
    attrs.push(KeyValue::new("http.request.method", http_method(f.http_method)));
    if f.status != 0 {
        attrs.push(KeyValue::new("http.response.status_code", i64::from(f.status)));
    }
    if let Some(code) = f.rpc_code {
        attrs.push(KeyValue::new("rpc.response.status_code", code.to_string()));
    }
    if let Some(client) = f.client {
        attrs.push(KeyValue::new("client.address", client.ip().to_string()));
        attrs.push(KeyValue::new("client.port", i64::from(client.port())));
    }
    if f.call.era == Era::Legacy {
        if let Some(session) = f.session {
            attrs.push(KeyValue::new("mcp.session.id", session.to_owned()));
        }
    }
    for (key, value) in [("mcp_edge.route", f.route), ("mcp_edge.pool", f.pool), ("mcp_edge.limit", f.limit)] {
        if !value.is_empty() && value != "-" {
            attrs.push(KeyValue::new(key, value.to_owned()));
        }
    }
    attrs.push(KeyValue::new("mcp_edge.request_id", f.request_id.to_owned()));
    let failed = f.error != "_none";
    if failed {
        attrs.push(KeyValue::new("error.type", f.error));
    }
    let mut links = SpanLinks::default();
    if let Some(http) = t.link {
        links.links.push(opentelemetry::trace::Link::with_context(remote(http, None)));
    }
    SpanData {
        span_context: own(t, t.span_id),
        parent_span_id: t.parent.map_or(SpanId::INVALID, |p| p.span_id),
        parent_span_is_remote: t.parent.is_some(),
        span_kind: SpanKind::Server,
        name,
        start_time: t.start,
        end_time: end,
        attributes: attrs,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links,
        status: if failed { Status::error(f.error) } else { Status::Unset },
        instrumentation_scope: scope(),
    }
}

fn client_span(t: &Trace, f: &Finished<'_>, name: &Cow<'static, str>, a: &Attempt, n: usize) -> SpanData {
    let mut attrs = mcp_attributes(f);
    if let Some(backend) = a.backend {
        attrs.push(KeyValue::new("server.address", backend.ip().to_string()));
        attrs.push(KeyValue::new("server.port", i64::from(backend.port())));
    }
    if a.status != 0 {
        attrs.push(KeyValue::new("http.response.status_code", i64::from(a.status)));
    }
    if f.pool != "-" {
        attrs.push(KeyValue::new("mcp_edge.pool", f.pool.to_owned()));
    }
    attrs.push(KeyValue::new("mcp_edge.attempt", n as i64));
    let failed = a.error != "_none";
    if failed {
        attrs.push(KeyValue::new("error.type", a.error));
    }
    SpanData {
        span_context: own(t, a.span_id),
        parent_span_id: t.span_id,
        parent_span_is_remote: false,
        span_kind: SpanKind::Client,
        name: name.clone(),
        start_time: a.start,
        end_time: a.end,
        attributes: attrs,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: if failed { Status::error(a.error) } else { Status::Unset },
        instrumentation_scope: scope(),
    }
}

/// `{mcp.method.name} {target}` for tool and prompt calls, the method alone otherwise (a URI
/// is too varied for a span name), the HTTP method for requests with no MCP method.
fn name(f: &Finished<'_>) -> Cow<'static, str> {
    let one = &f.call.one;
    if one.method == Method::None {
        return http_method(f.http_method);
    }
    match (one.method.target_kind(), one.target_str()) {
        (Some(TargetKind::Tool | TargetKind::Prompt), Some(target)) => {
            Cow::Owned(format!("{} {}", cut(one.method_str()), cut(target)))
        }
        _ => method_name(f.call),
    }
}

/// The method as sent: static for the methods the proxy knows, a copy otherwise.
fn method_name(call: &Call) -> Cow<'static, str> {
    match call.one.method {
        Method::Notification | Method::Response | Method::Batch | Method::Other | Method::None => {
            Cow::Owned(cut(call.one.method_str()).to_owned())
        }
        known => Cow::Borrowed(known.as_str()),
    }
}

fn http_method(m: &str) -> Cow<'static, str> {
    match m {
        "POST" => Cow::Borrowed("POST"),
        "GET" => Cow::Borrowed("GET"),
        "DELETE" => Cow::Borrowed("DELETE"),
        other => Cow::Owned(cut(other).to_owned()),
    }
}

/// The conventions' MCP attributes, on both kinds of span.
fn mcp_attributes(f: &Finished<'_>) -> Vec<KeyValue> {
    let one = &f.call.one;
    let mut attrs = Vec::with_capacity(16);
    if one.method != Method::None {
        attrs.push(KeyValue::new("mcp.method.name", method_name(f.call)));
    }
    if let Some(target) = one.target_str() {
        let key = match one.method.target_kind() {
            Some(TargetKind::Tool) => "gen_ai.tool.name",
            Some(TargetKind::Prompt) => "gen_ai.prompt.name",
            _ => "mcp.resource.uri",
        };
        attrs.push(KeyValue::new(key, cut(target).to_owned()));
    }
    if let Some(id) = one.id.as_deref().and_then(|i| std::str::from_utf8(i).ok()) {
        // A string id without its JSON quotes (escapes kept), a number as written.
        let id = id.strip_prefix('"').and_then(|i| i.strip_suffix('"')).unwrap_or(id);
        attrs.push(KeyValue::new("jsonrpc.request.id", cut(id).to_owned()));
    }
    if let Some(v) = f.protocol_version {
        attrs.push(KeyValue::new("mcp.protocol.version", cut(v).to_owned()));
    }
    attrs
}

fn own(t: &Trace, span_id: SpanId) -> SpanContext {
    let state = t.state.as_deref().and_then(|s| s.parse::<TraceState>().ok()).unwrap_or_default();
    SpanContext::new(t.trace_id, span_id, TraceFlags::SAMPLED, false, state)
}

fn remote(r: Remote, state: Option<TraceState>) -> SpanContext {
    let flags = if r.sampled { TraceFlags::SAMPLED } else { TraceFlags::NOT_SAMPLED };
    SpanContext::new(r.trace_id, r.span_id, flags, true, state.unwrap_or_default())
}

fn scope() -> InstrumentationScope {
    static SCOPE: std::sync::OnceLock<InstrumentationScope> = std::sync::OnceLock::new();
    SCOPE
        .get_or_init(|| InstrumentationScope::builder("mcp-edge").with_version(env!("CARGO_PKG_VERSION")).build())
        .clone()
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
