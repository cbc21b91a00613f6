//! The one place a finished request is counted and logged, whether Pingora served it to the
//! end or it ended as a detached event stream ([`super::stream`]): its counters and latency
//! histograms, the end of an upstream attempt still open ([`super::attempt`]), and its access
//! line, unless the route samples successful lines and this one is left out.

use std::net::SocketAddr;
use std::time::Duration;

use pingora::proxy::Session;

use super::attempt;
use super::ctx::Ctx;
use crate::metrics::ErrorType;
use crate::session::Fingerprint;
use crate::state::State;
use crate::telemetry::{self, Access};
use crate::trace::{self, span};
use opentelemetry::trace::TraceId;

/// What the client side of a finished exchange looked like.
pub struct Exchange<'a> {
    /// The status sent to the client; 0 when none was.
    pub status: u16,
    pub http_method: &'a str,
    pub path: &'a str,
    pub client: Option<SocketAddr>,
    /// Request and response body bytes.
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The request's headers, for a trace decided only now (a request refused before it was
    /// read); None for a detached stream, decided long before.
    pub headers: Option<&'a http::HeaderMap>,
}

impl<'a> Exchange<'a> {
    /// A request Pingora served to its end.
    pub fn of(session: &'a Session) -> Exchange<'a> {
        let req = session.req_header();
        Exchange {
            status: session.response_written().map_or(0, |r| r.status.as_u16()),
            http_method: req.method.as_str(),
            path: req.uri.path(),
            client: session.client_addr().and_then(|a| a.as_inet()).copied(),
            bytes_in: session.as_downstream().body_bytes_read() as u64,
            bytes_out: session.as_downstream().body_bytes_sent() as u64,
            headers: Some(&req.headers),
        }
    }
}

pub fn record(state: &State, x: &Exchange<'_>, ctx: &Ctx) {
    let elapsed = ctx.start.elapsed();
    let secs = elapsed.as_secs_f64();
    let error = attempt::outcome(ctx, x.status);
    let labels = ctx.labels(x.status, error);
    let (route, method, tool) = (labels.route_name, labels.method.as_str(), labels.tool_name);
    let m = &state.metrics;
    let first_byte = ctx.responded.map(|t| t.saturating_duration_since(ctx.start).as_secs_f64());
    ctx.snap.series.finish(m, &labels, secs, first_byte);
    let last_attempt = attempt::close(state, ctx);
    if let Some([bytes_in, bytes_out]) = ctx.route.and_then(|r| ctx.snap.route_bytes.get(r)) {
        bytes_in.inc_by(x.bytes_in);
        bytes_out.inc_by(x.bytes_out);
    }
    if let Some(reason) = ctx.reason {
        m.rejections.with_label_values(&[reason.as_str()]).inc();
    }
    let trace_id = export_trace(x, ctx, error, last_attempt);
    if !ctx.snap.config.log.access || !logged(ctx, x.status, error, elapsed) {
        return;
    }
    let pool = ctx.pool.and_then(|p| ctx.snap.pools.get(p)).map_or("-", |p| p.name());
    // Hashed only for a line that is written: a fingerprint costs a SHA-256.
    let session = ctx.pinned.as_ref().map(|p| p.fingerprint).or(ctx.new_session);
    telemetry::access(&Access {
        request_id: ctx.request_id.as_str(),
        identity: ctx.identity.as_deref().map_or("", |i| i.id.as_str()),
        pool,
        ttfb_us: ctx.responded.map_or(0, |t| t.saturating_duration_since(ctx.start).as_micros() as u64),
        bytes_in: x.bytes_in,
        bytes_out: x.bytes_out,
        route,
        http_method: x.http_method,
        path: x.path,
        mcp_method: method,
        tool,
        status: x.status,
        upstream: ctx.backend,
        client: x.client,
        duration_us: elapsed.as_micros() as u64,
        reason: ctx.reason.map(|r| r.as_str()),
        era: ctx.call.era.as_str(),
        attempts: ctx.attempts.count,
        rpc_code: ctx.rpc_code,
        limit: ctx.limit.as_deref().unwrap_or(""),
        session: session.as_ref().map_or("", Fingerprint::as_str),
        trace_id: trace_id.map(|id| format!("{id:032x}")).as_deref().unwrap_or(""),
    });
}

/// Room for a request's encoded spans (a SERVER and a CLIENT span are about 700 bytes).
const SPANS_CAPACITY: usize = 1024;

/// Sends a traced request's spans to the exporter; returns its trace id for the access line.
/// A request refused before it was read is decided here, with what is known of it.
fn export_trace(x: &Exchange<'_>, ctx: &Ctx, error: ErrorType, last: Option<(u16, ErrorType)>) -> Option<TraceId> {
    let exporter = ctx.snap.traces.as_ref()?;
    let late;
    let t = match (&ctx.trace, ctx.trace_decided, x.headers) {
        (Some(t), _, _) => t,
        (None, false, Some(headers)) => {
            let ratio = ctx.route.and_then(|r| ctx.snap.router.routes().get(r)).and_then(|r| r.trace_sample);
            late = trace::decide(&exporter.settings, ratio, headers, &ctx.call, ctx.start.elapsed())?;
            &late
        }
        _ => return None,
    };
    let pool = ctx.pool.and_then(|p| ctx.snap.pools.get(p)).map_or("-", |p| p.name());
    let session = ctx.pinned.as_ref().map(|p| p.fingerprint).or(ctx.new_session);
    let version = x.headers.and_then(|h| h.get(crate::mcp::header::MCP_PROTOCOL_VERSION)).and_then(|v| v.to_str().ok());
    let finished = span::Finished {
        call: &ctx.call,
        http_method: x.http_method,
        status: x.status,
        error: error.as_str(),
        rpc_code: ctx.rpc_code,
        route: ctx.route_name(),
        pool,
        limit: ctx.limit.as_deref().unwrap_or(""),
        request_id: ctx.request_id.as_str(),
        client: x.client,
        protocol_version: version,
        session: session.as_ref().map(Fingerprint::as_str),
    };
    let open = last.map(|(status, kind)| (ctx.backend, status, kind.as_str()));
    let mut spans = Vec::with_capacity(SPANS_CAPACITY);
    let count = span::build(t, &finished, open, &mut spans);
    exporter.send(spans, count);
    Some(t.trace_id)
}

/// Whether the request gets an access line: every one that failed, was refused, answered 4xx
/// or 5xx or took `[log] access_slow` or longer; of the rest, the route's `access_sample`.
fn logged(ctx: &Ctx, status: u16, error: ErrorType, elapsed: Duration) -> bool {
    let ratio = ctx.route.and_then(|r| ctx.snap.router.routes().get(r)).map_or(1.0, |r| r.access_sample);
    ratio >= 1.0
        || error != ErrorType::None
        || ctx.reason.is_some()
        || status >= 400
        || elapsed >= ctx.snap.config.log.access_slow
        || telemetry::sampled(ctx.request_id.as_str(), ratio)
}
