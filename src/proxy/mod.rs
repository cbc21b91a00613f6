//! The Pingora `ProxyHttp` implementation. Each phase is a short delegation:
//! `request` (route, refuse, classify, pick a pool), `upstream_peer` (pick a backend),
//! `body` (replay a pre-read body), `response` (wrap sessions, watch legacy endpoints),
//! `reply` (every local answer), `finish` (count and log once).

pub mod affinity;
pub mod body;
pub mod ctx;
pub mod finish;
pub mod reply;
pub mod request;
pub mod response;
pub mod throttle;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorSource, ErrorType};

use crate::state::State;
use ctx::Ctx;
use reply::Reject;

/// How many other backends a refused connection is retried on.
const MAX_CONNECT_RETRIES: usize = 2;

pub struct Edge {
    pub state: Arc<State>,
}

#[async_trait]
impl ProxyHttp for Edge {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx::new(self.state.snapshot())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        request::filter(&self.state, session, ctx).await
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let snap = Arc::clone(&ctx.snap);
        let pool = ctx
            .pool
            .and_then(|i| snap.pools.get(i))
            .ok_or_else(|| Error::explain(ErrorType::HTTPStatus(404), "no pool"))?;
        if let Some(p) = &ctx.pinned {
            ctx.backend = Some(p.member.backend);
            return Ok(Box::new(pool.peer(p.member.backend)));
        }
        if ctx.tried.is_empty() {
            pool.retry.record_request();
        } else {
            tokio::time::sleep(pool.retry.backoff(ctx.tried.len())).await;
        }
        if let Some(addr) = pool.select(&ctx.tried) {
            ctx.backend = Some(addr);
            return Ok(Box::new(pool.peer(addr)));
        }
        if !ctx.tried.is_empty() {
            // Every candidate refused the connection: that is a 502, not "none healthy".
            return Error::e_explain(ErrorType::HTTPStatus(502), "all backends refused the connection");
        }
        // Priority failover: the next pool in the route's (or matching rule's) fallback list
        // that has a usable backend.
        for &next in fallbacks(ctx) {
            let Some(fallback) = snap.pools.get(next) else { continue };
            if let Some(addr) = fallback.select(&[]) {
                self.state.metrics.failovers.with_label_values(&[ctx.route_name(), fallback.name()]).inc();
                ctx.pool = Some(next);
                ctx.backend = Some(addr);
                return Ok(Box::new(fallback.peer(addr)));
            }
        }
        Error::e_explain(ErrorType::HTTPStatus(503), "no healthy backend")
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        ctx.body_sent = false;
        let Some(pool) = ctx.pool.and_then(|i| ctx.snap.pools.get(i)) else {
            return Ok(());
        };
        if let Some(path) = &pool.config.path {
            rewrite_path(req, ctx, path);
        }
        if let Some(host) = &pool.config.host {
            req.insert_header(http::header::HOST, host.as_str())?;
        }
        if let Some(p) = &ctx.pinned {
            affinity::unwrap_for_upstream(req, p)?;
        }
        if ctx.strip_expect {
            req.remove_header(&http::header::EXPECT);
        }
        Ok(())
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        _end: bool,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if ctx.body.is_some() {
            body::replay(body, ctx.body.as_ref(), &mut ctx.body_sent);
            return Ok(());
        }
        ctx.streamed += body.as_ref().map_or(0, Bytes::len);
        if ctx.streamed > ctx.snap.config.proxy.max_body_bytes {
            ctx.reason = Some(Reject::TOO_LARGE.reason);
            return Error::e_explain(ErrorType::HTTPStatus(413), "streamed body over max_body_bytes");
        }
        Ok(())
    }

    async fn response_filter(&self, session: &mut Session, resp: &mut ResponseHeader, ctx: &mut Ctx) -> Result<()> {
        self.record(ctx, resp.status.as_u16() < 500);
        response::headers(&self.state, session, resp, ctx)
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<Duration>> {
        response::body(&self.state, body, end, ctx);
        Ok(None)
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut Ctx,
        client_reused: bool,
    ) -> Box<Error> {
        // A pooled connection the backend had already closed is no fault of the backend.
        if e.esource() == &ErrorSource::Upstream && !client_reused {
            self.record(ctx, false);
        }
        // Pingora's own rule: only idempotent methods on reused connections are retried, so a
        // POST that reached a backend is never sent again.
        let mut e = e.more_context(format!("Peer: {peer}"));
        if !session.req_header().method.is_idempotent() || session.as_ref().retry_buffer_truncated() {
            e.set_retry(false);
        } else {
            e.retry.decide_reuse(client_reused);
        }
        e
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Ctx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        self.record(ctx, false);
        // Nothing reached the backend, so any request may go to another one; a pinned session
        // has nowhere else to go.
        // Whether to retry is decided here alone (Pingora may mark connect errors retryable).
        e.set_retry(false);
        let Some(pool) = ctx.pool.and_then(|i| ctx.snap.pools.get(i)) else { return e };
        if ctx.pinned.is_some() || ctx.tried.len() >= MAX_CONNECT_RETRIES {
            return e;
        }
        if !pool.retry.try_retry() {
            self.state.metrics.retries_denied.with_label_values(&[pool.name()]).inc();
            return e;
        }
        if let Some(b) = ctx.backend {
            ctx.tried.push(b);
            self.state.metrics.retries.with_label_values(&[pool.name()]).inc();
        }
        e.set_retry(true);
        e
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        let reject = match (e.etype(), e.esource()) {
            (ErrorType::HTTPStatus(503), _) => Some(Reject::NO_HEALTHY),
            (ErrorType::HTTPStatus(502), _) => Some(Reject::UPSTREAM),
            (ErrorType::HTTPStatus(413), _) => Some(Reject::TOO_LARGE),
            (ErrorType::HTTPStatus(404), _) => Some(Reject::NO_POOL),
            (_, ErrorSource::Upstream) => Some(Reject::UPSTREAM),
            (ErrorType::ReadError | ErrorType::WriteError | ErrorType::ConnectionClosed, ErrorSource::Downstream) => {
                None
            }
            (_, ErrorSource::Downstream) => Some(Reject::INVALID),
            _ => Some(Reject::UPSTREAM),
        };
        let code = match reject {
            Some(r) if session.response_written().is_none() => {
                if let Err(err) = reply::send(session, ctx, r).await {
                    tracing::debug!(error = %err, "could not send error reply");
                }
                r.status
            }
            // The response was already under way: the client sees a cut stream, not a reply,
            // so nothing counts as a rejection.
            Some(_) | None => 0,
        };
        if matches!(e.esource(), ErrorSource::Upstream | ErrorSource::Internal) {
            tracing::warn!(error = %e, route = ctx.route_name(), backend = ?ctx.backend, "proxying failed");
        } else {
            tracing::debug!(error = %e, route = ctx.route_name(), "client-side failure");
        }
        FailToProxy { error_code: code, can_reuse_downstream: false }
    }

    /// Pingora's summary of a request for its own log lines: method and path only, never the
    /// query (legacy session tokens travel there).
    fn request_summary(&self, session: &Session, _ctx: &Ctx) -> String {
        let req = session.req_header();
        format!("{} {}", req.method, req.uri.path())
    }

    /// `fail_to_proxy` logs server faults once, with route and backend; Pingora's own line
    /// would repeat it.
    fn suppress_error_log(&self, _session: &Session, _ctx: &Ctx, _error: &Error) -> bool {
        true
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut Ctx) {
        finish::record(&self.state, session, ctx);
    }
}

/// The fallback pools for this request: the matching rule's when the rule chose the pool,
/// else the route's.
fn fallbacks(ctx: &Ctx) -> &[usize] {
    let Some(route) = ctx.route.and_then(|r| ctx.snap.router.routes().get(r)) else { return &[] };
    match ctx.rule.and_then(|r| route.rules.get(r)).filter(|r| r.pool.is_some()) {
        Some(rule) => &rule.fallback,
        None => &route.fallback,
    }
}

impl Edge {
    /// Feeds the outcome of an upstream exchange to the backend's circuit breaker.
    fn record(&self, ctx: &Ctx, ok: bool) {
        let (Some(pool), Some(addr)) = (ctx.pool.and_then(|i| ctx.snap.pools.get(i)), ctx.backend) else { return };
        let Some(breaker) = pool.breaker(addr) else { return };
        if ok {
            breaker.success();
        } else if breaker.failure() {
            let backend = addr.to_string();
            self.state.metrics.ejections.with_label_values(&[pool.name(), &backend]).inc();
            tracing::warn!(pool = pool.name(), backend, cooldown = ?breaker.remaining(), "backend ejected: circuit open");
        }
    }
}

/// Client path → upstream path: an exact route (an MCP endpoint) sends the pool's endpoint
/// path; a prefix route forwards the client's path unchanged (its paths are the backend's own,
/// as the legacy HTTP+SSE `endpoint` URLs are). The query string is kept.
fn rewrite_path(req: &mut RequestHeader, ctx: &Ctx, pool_path: &str) {
    use crate::config::model::PathMatch;
    let Some(route) = ctx.route.and_then(|r| ctx.snap.router.routes().get(r)) else {
        return;
    };
    if !matches!(route.path, PathMatch::Exact(_)) || req.uri.path() == pool_path {
        return;
    }
    let uri = match req.uri.query() {
        Some(q) => format!("{pool_path}?{q}"),
        None => pool_path.to_owned(),
    };
    if let Ok(uri) = uri.parse::<http::Uri>() {
        req.set_uri(uri);
    }
}
