//! Upstream attempts of one request, for `mcp_client_operation_duration_seconds`,
//! `upstream_attempts_total` (per backend: the status page's backend rates) and the access
//! line's `attempts`. An attempt begins when the request is bound to a backend (before
//! connecting, so connect time counts) and ends at the first of: the connection failing, the
//! exchange failing (the hooks in [`super::failure`]), or the request finishing
//! ([`super::finish`], which ends a successful attempt with the response). Each attempt is
//! observed once, retries separately.
//!
//! Owns the attempt's clock, its outcome and how an outcome maps to `error_type`; not the
//! retry decision (`failure`) nor the request's own outcome (`finish`).

use std::time::Instant;

use pingora::{Error, ErrorSource, ErrorType as Kind};

use super::ctx::Ctx;
use crate::metrics::{AttemptResult, ErrorType, Reason};
use crate::state::series::Attempt;
use crate::state::State;

/// The attempts one request made.
#[derive(Debug, Default)]
pub struct Attempts {
    /// Begun so far (0: the request never reached for a backend).
    pub count: u8,
    open: Option<Open>,
    /// How the latest attempt failed; cleared when another begins.
    pub failed: Option<ErrorType>,
}

#[derive(Debug, Clone, Copy)]
struct Open {
    start: Instant,
    /// The backend's status once its response header came (0 before).
    status: u16,
}

/// The request is bound to a backend: an attempt begins.
pub fn begin(ctx: &mut Ctx) {
    let a = &mut ctx.attempts;
    a.count = a.count.saturating_add(1);
    a.open = Some(Open { start: Instant::now(), status: 0 });
    a.failed = None;
    if let Some(trace) = ctx.trace.as_mut() {
        trace.begin_attempt();
    }
}

/// The backend's response header arrived.
pub fn answered(ctx: &mut Ctx, status: u16) {
    if let Some(open) = ctx.attempts.open.as_mut() {
        open.status = status;
    }
}

/// Connecting to the backend failed.
pub fn connect_failed(state: &State, ctx: &mut Ctx, e: &Error) {
    let kind = match e.etype() {
        Kind::ConnectTimedout | Kind::TLSHandshakeTimedout => ErrorType::Timeout,
        _ => ErrorType::Connect,
    };
    end(state, ctx, kind);
}

/// The exchange failed after the connection was made (`e` as `failure` decided it, a missed
/// first-byte deadline already turned into a timeout).
pub fn failed(state: &State, ctx: &mut Ctx, e: &Error) {
    let kind = match (e.etype(), e.esource()) {
        (_, ErrorSource::Downstream) => ErrorType::ClientGone,
        (Kind::ConnectTimedout | Kind::ReadTimedout | Kind::WriteTimedout, _) => ErrorType::Timeout,
        // One of mcp-edge's own filters stopped the request mid-flight (a streamed body over
        // the size limit).
        (Kind::HTTPStatus(_), _) => ErrorType::Refused,
        _ => ErrorType::UpstreamError,
    };
    end(state, ctx, kind);
}

/// The request finished: an attempt still open ends with it. Read-only, so the detached
/// stream's context, which outlives Pingora's, is recorded the same way. Returns how that
/// attempt ended (backend status, error type), for its span.
pub fn close(state: &State, ctx: &Ctx) -> Option<(u16, ErrorType)> {
    let open = ctx.attempts.open?;
    let kind = match open.status {
        500.. => ErrorType::Upstream5xx,
        // No header ever came and no hook said why (a detached stream's exchange failed):
        // the request's own reply tells.
        0 => match ctx.reason {
            Some(Reason::UpstreamTimeout) => ErrorType::Timeout,
            Some(Reason::UpstreamFailed) => ErrorType::UpstreamError,
            _ => ErrorType::ClientGone,
        },
        _ => ErrorType::None,
    };
    observe(state, ctx, open, kind);
    Some((open.status, kind))
}

/// A detached stream ended other than by completing: its attempt ends with `kind`.
pub fn stream_broke(state: &State, ctx: &mut Ctx, kind: ErrorType) {
    end(state, ctx, kind);
}

fn end(state: &State, ctx: &mut Ctx, kind: ErrorType) {
    let Some(open) = ctx.attempts.open.take() else { return };
    ctx.attempts.failed = Some(kind);
    observe(state, ctx, open, kind);
    let backend = ctx.backend;
    if let Some(trace) = ctx.trace.as_mut() {
        trace.end_attempt(backend, open.status, kind.as_str());
    }
}

fn observe(state: &State, ctx: &Ctx, open: Open, kind: ErrorType) {
    let pool = ctx.pool.and_then(|p| ctx.snap.pools.get(p));
    if let (Some(pool), Some(addr)) = (pool, ctx.backend) {
        pool.count_attempt(addr, AttemptResult::of(open.status, kind));
    }
    let labels =
        Attempt { labels: ctx.labels(open.status, kind), pool: ctx.pool, pool_name: pool.map_or("-", |p| p.name()) };
    ctx.snap.series.attempt(&state.metrics, &labels, open.start.elapsed().as_secs_f64());
}

/// The request's `error_type`: why it failed as its client saw it, `None` when it did not.
pub fn outcome(ctx: &Ctx, status: u16) -> ErrorType {
    match ctx.reason {
        Some(Reason::UpstreamTimeout) => ErrorType::Timeout,
        Some(Reason::UpstreamFailed) => ctx.attempts.failed.unwrap_or(ErrorType::UpstreamError),
        Some(Reason::NoHealthyBackend) => ErrorType::NoBackend,
        Some(_) => ErrorType::Refused,
        None => match ctx.attempts.failed {
            // The last attempt broke after its answer had started (a cut stream).
            Some(kind) => kind,
            None if status == 0 => ErrorType::ClientGone,
            None if status >= 500 => ErrorType::Upstream5xx,
            None => ErrorType::None,
        },
    }
}
