//! The one place a finished request is counted and logged, whether Pingora served it to the
//! end or it ended as a detached event stream ([`super::stream`]).

use std::net::SocketAddr;

use pingora::proxy::Session;

use super::ctx::Ctx;
use crate::metrics::status_label;
use crate::state::State;
use crate::telemetry::{self, Access};

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
        }
    }
}

pub fn record(state: &State, x: &Exchange<'_>, ctx: &Ctx) {
    let elapsed = ctx.start.elapsed();
    let route = ctx.route_name();
    let method = ctx.call.one.method.as_str();
    let tool = ctx.tool_label();
    let m = &state.metrics;
    m.requests.with_label_values(&[route, method, tool, status_label(x.status)]).inc();
    m.duration.with_label_values(&[route, method]).observe(elapsed.as_secs_f64());
    if let Some(reason) = ctx.reason {
        m.rejections.with_label_values(&[reason.as_str()]).inc();
    }
    let pool = ctx.pool.and_then(|p| ctx.snap.pools.get(p)).map_or("-", |p| p.name());
    telemetry::access(&Access {
        request_id: &ctx.request_id,
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
    });
}
