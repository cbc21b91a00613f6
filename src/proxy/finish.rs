//! The one place a finished request is counted and logged.

use pingora::proxy::Session;

use super::ctx::Ctx;
use crate::metrics::status_label;
use crate::state::State;
use crate::telemetry::{self, Access};

pub fn record(state: &State, session: &Session, ctx: &Ctx) {
    let status = session.response_written().map_or(0, |r| r.status.as_u16());
    let elapsed = ctx.start.elapsed();
    let route = ctx.route_name();
    let method = ctx.call.one.method.as_str();
    let tool = ctx.tool_label();
    let m = &state.metrics;
    m.requests.with_label_values(&[route, method, tool, status_label(status)]).inc();
    m.duration.with_label_values(&[route, method]).observe(elapsed.as_secs_f64());
    if let Some(reason) = ctx.reason {
        m.rejections.with_label_values(&[reason.as_str()]).inc();
    }
    let req = session.req_header();
    let pool = ctx.pool.and_then(|p| ctx.snap.pools.get(p)).map_or("-", |p| p.name());
    telemetry::access(&Access {
        request_id: &ctx.request_id,
        identity: ctx.identity.as_deref().map_or("", |i| i.id.as_str()),
        pool,
        ttfb_us: ctx.responded.map_or(0, |t| t.saturating_duration_since(ctx.start).as_micros() as u64),
        bytes_in: session.as_downstream().body_bytes_read() as u64,
        bytes_out: session.as_downstream().body_bytes_sent() as u64,
        route,
        http_method: req.method.as_str(),
        path: req.uri.path(),
        mcp_method: method,
        tool,
        status,
        upstream: ctx.backend,
        client: session.client_addr().and_then(|a| a.as_inet()).copied(),
        duration_us: elapsed.as_micros() as u64,
        reason: ctx.reason.map(|r| r.as_str()),
        era: ctx.call.era.as_str(),
    });
}
