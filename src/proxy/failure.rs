//! What a failed upstream attempt means: which backend's circuit breaker hears of it, whether
//! the request goes to another backend, and which local reply the client gets when it does
//! not. The retry rules:
//! - a refused connection reached nobody, so any request may go elsewhere;
//! - a request that reached a backend goes elsewhere only when resending it is harmless (a
//!   safe MCP method, or a tool the route declares idempotent), its body can be replayed,
//!   and it is not pinned to its session's backend;
//! - every retry spends the pool's retry budget, so a failing pool cannot double its load.
//!
//! An attempt that claimed a backend's half-open probe and ends without an outcome to report
//! (its client went away, a stale pooled connection) hands the probe back, so the circuit is
//! not left waiting for an answer that will never come.

use pingora::proxy::Session;
use pingora::{Error, ErrorSource, ErrorType};

use super::ctx::Ctx;
use super::reply::Reject;
use crate::downstream::clock::{self, Stage};
use crate::downstream::conn::DeadlineExpired;
use crate::metrics::Phase;
use crate::state::State;
use crate::upstream::breaker::{Breaker, Probe};
use crate::upstream::Pool;

/// A half-open probe the current upstream attempt holds.
#[derive(Debug, Clone, Copy)]
pub struct HeldProbe {
    pool: usize,
    backend: std::net::SocketAddr,
    probe: Probe,
}

/// Most backends one request is sent to after the first.
pub const MAX_RETRIES: usize = 2;

/// `fail_to_connect`: nothing reached the backend.
pub fn connect_failed(state: &State, ctx: &mut Ctx, mut e: Box<Error>) -> Box<Error> {
    record(state, ctx, false);
    super::attempt::connect_failed(state, ctx, &e);
    // Whether to retry is decided here alone (Pingora may mark connect errors retryable).
    e.set_retry(false);
    if ctx.pinned.is_none() && try_again(state, ctx) {
        e.set_retry(true);
    }
    e
}

/// `error_while_proxy`: the request may have reached the backend.
pub fn proxy_failed(state: &State, session: &Session, ctx: &mut Ctx, e: Box<Error>, client_reused: bool) -> Box<Error> {
    if crate::upstream::token::refusal_of(&e).is_some() {
        // Nothing was sent: no backend is blamed, and another one would need the same token.
        let mut e = e;
        e.set_retry(false);
        return e;
    }
    if ctx.first_byte.as_ref().is_some_and(|t| t.client_left()) {
        // The client left while the header was awaited, and the backend's connection was let
        // go for it: the client's abort, not the backend's fault, and nothing to send again.
        let mut e = Error::because(ErrorType::ConnectionClosed, "the client left before the response header", e);
        e.esource = ErrorSource::Downstream;
        e.set_retry(false);
        super::attempt::failed(state, ctx, &e);
        return e;
    }
    let timed_out = ctx.first_byte.as_ref().is_some_and(|t| t.expired());
    let mut e = if timed_out {
        Error::because(ErrorType::ReadTimedout, "no response header within first_byte_timeout", e).into_up()
    } else {
        e
    };
    // A pooled connection the backend had already closed is no fault of the backend; one it
    // answered on (interim heads, too many of them, then a close) is.
    let answered = ctx.interim > 0 || ctx.header_seen;
    if timed_out || (e.esource() == &ErrorSource::Upstream && (!client_reused || answered)) {
        record(state, ctx, false);
    }
    super::attempt::failed(state, ctx, &e);
    let replayable = !session.as_ref().retry_buffer_truncated();
    // The backend's fault (not a client that went away), before any of its answer was used.
    let upstream_fault = timed_out || e.esource() == &ErrorSource::Upstream;
    if ctx.header_seen {
        // Part of a response may be with the client already: a second one cannot follow.
        e.set_retry(false);
    } else if upstream_fault && replayable && ctx.pinned.is_none() && ctx.is_safe_to_resend() {
        e.set_retry(try_again(state, ctx));
    } else if !session.req_header().method.is_idempotent() || !replayable {
        e.set_retry(false);
    } else {
        // Pingora's own rule for the rest: idempotent HTTP methods on reused connections.
        e.retry.decide_reuse(client_reused);
    }
    e
}

/// Spends one retry from the pool's budget and excludes the failed backend; false when the
/// request has had its retries, no other backend is usable, or the budget is spent.
fn try_again(state: &State, ctx: &mut Ctx) -> bool {
    let (Some(pool), Some(failed)) = (ctx.pool.and_then(|i| ctx.snap.pools.get(i)), ctx.backend) else {
        return false;
    };
    if ctx.tried.len() >= MAX_RETRIES {
        return false;
    }
    let untried = |addr: &std::net::SocketAddr| *addr != failed && !ctx.tried.contains(addr);
    if !pool.config.backends.iter().any(|b| untried(&b.addr) && pool.usable(b.addr)) {
        return false;
    }
    if !pool.retry.try_retry() {
        state.metrics.retries_denied.with_label_values(&[pool.name()]).inc();
        return false;
    }
    ctx.tried.push(failed);

    state.metrics.retries.with_label_values(&[pool.name()]).inc();
    true
}

/// The local reply for a request that could not be proxied; None when the client is gone.
/// Client-side failures are never blamed on a backend: a missed body deadline is 408, a
/// malformed body (bad chunk, bad length) 400, a vanished client gets nothing.
pub fn reply_for(e: &Error) -> Option<Reject> {
    if DeadlineExpired::is_cause_of(e.root_cause()) {
        return Some(Reject::REQUEST_TIMEOUT);
    }
    if let Some(refusal) = crate::upstream::token::refusal_of(e) {
        return Some(super::reject::for_token(refusal));
    }
    Some(match (e.etype(), e.esource()) {
        (ErrorType::HTTPStatus(503), _) => Reject::NO_HEALTHY,
        (ErrorType::HTTPStatus(502), _) => Reject::UPSTREAM,
        (ErrorType::HTTPStatus(504), _) => Reject::TIMEOUT,

        (ErrorType::HTTPStatus(413), _) => Reject::TOO_LARGE,
        (ErrorType::HTTPStatus(404), _) => Reject::NO_POOL,
        (ErrorType::ReadTimedout | ErrorType::ConnectTimedout, ErrorSource::Upstream) => Reject::TIMEOUT,
        (_, ErrorSource::Upstream) => Reject::UPSTREAM,
        (_, ErrorSource::Downstream) if client_gone(e) => return None,
        // Pingora's own per-read timeout on the client (`read_timeout`).
        (ErrorType::ReadTimedout, ErrorSource::Downstream) => Reject::REQUEST_TIMEOUT,
        // What is left from the client's side is framing: a bad chunk, trailer or length.
        (_, ErrorSource::Downstream) => Reject::MALFORMED_BODY,
        _ => Reject::UPSTREAM,
    })
}

/// The client closed or reset its connection, or stopped reading (not a missed deadline).
fn client_gone(e: &Error) -> bool {
    matches!(
        e.etype(),
        ErrorType::ReadError | ErrorType::WriteError | ErrorType::WriteTimedout | ErrorType::ConnectionClosed
    ) && !DeadlineExpired::is_cause_of(e.root_cause())
}

/// Counts a request the client abandoned (its connection closed or reset mid-body or
/// mid-response) and says so at debug: aborts are the client's business and can come in
/// floods. False for every other failure.
pub fn client_aborted(state: &State, session: &mut Session, e: &Error) -> bool {
    if e.esource() != &ErrorSource::Downstream || !client_gone(e) {
        return false;
    }
    // Pingora marks a body done when its read fails, so ask the request clock instead.
    let phase = match clock::stage() {
        Some(Stage::Body) => Phase::Body,
        Some(_) => Phase::Response,
        None if session.as_mut().is_body_done() => Phase::Response,
        None => Phase::Body,
    };
    state.metrics.client_aborts.with_label_values(&[phase.as_str()]).inc();
    tracing::debug!(phase = phase.as_str(), error = %e, "client aborted");
    true
}

/// An upstream attempt is bound to `addr` of `pool` (`ctx.pool`): a probe the previous attempt
/// still holds is handed back, and the probe this one claimed in `select`, if any, is kept.
pub fn bound(ctx: &mut Ctx, pool: &Pool, addr: std::net::SocketAddr) {
    abandon(ctx);
    // A pinned attempt never went through `select`, so it claimed nothing.
    if ctx.pinned.is_some() {
        return;
    }
    let probe = pool.breaker(addr).and_then(Breaker::probe);
    ctx.probe = probe.zip(ctx.pool).map(|(probe, pool)| HeldProbe { pool, backend: addr, probe });
}

/// The attempt ends with no outcome recorded: its probe, if it held one, goes back.
pub fn abandon(ctx: &mut Ctx) {
    let Some(held) = ctx.probe.take() else { return };
    if let Some(breaker) = ctx.snap.pools.get(held.pool).and_then(|p| p.breaker(held.backend)) {
        breaker.release(held.probe);
    }
}

/// Feeds the outcome of an upstream exchange to the backend's circuit breaker (which settles
/// the attempt's probe, if it held one).
pub fn record(state: &State, ctx: &mut Ctx, ok: bool) {
    ctx.probe = None;
    let (Some(pool), Some(addr)) = (ctx.pool.and_then(|i| ctx.snap.pools.get(i)), ctx.backend) else { return };
    let Some(breaker) = pool.breaker(addr) else { return };
    if ok {
        breaker.success();
    } else if breaker.failure() {
        let backend = addr.to_string();
        state.metrics.ejections.with_label_values(&[pool.name(), &backend]).inc();
        tracing::warn!(pool = pool.name(), backend, cooldown = ?breaker.remaining(), "backend ejected: circuit open");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::downstream::conn::DeadlineExpired;
    use crate::metrics::Reason;

    fn down(etype: ErrorType) -> Box<Error> {
        Error::new(etype).into_down()
    }

    fn reason(e: &Error) -> Option<Reason> {
        reply_for(e).map(|r| r.reason)
    }

    #[test]
    fn client_side_failures_are_never_blamed_on_a_backend() {
        let bad_chunk = down(ErrorType::new("InvalidChunk"));
        assert_eq!(reason(&bad_chunk), Some(Reason::MalformedBody));
        assert_eq!(reason(&down(ErrorType::ReadTimedout)), Some(Reason::RequestTimeout));
        for gone in [ErrorType::ReadError, ErrorType::WriteError, ErrorType::ConnectionClosed] {
            assert_eq!(reason(&down(gone)), None, "a vanished client gets no reply");
        }
        assert_eq!(reason(&Error::new(ErrorType::ReadError).into_up()), Some(Reason::UpstreamFailed));
    }

    #[test]
    fn a_missed_body_deadline_is_408_however_pingora_wraps_it() {
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, DeadlineExpired(Phase::Body));
        let e = Error::because(ErrorType::ReadError, "when reading body", io).into_down();
        assert_eq!(reason(&e), Some(Reason::RequestTimeout));
    }
}
