//! The Pingora `ProxyHttp` implementation. Each phase is a short delegation:
//! `request` (route, refuse, classify, pick a pool), `upstream_peer` (pick a backend),
//! `body` (replay a pre-read body), `response` (wrap sessions, run the response `transform`),
//! `reply` (every local answer), `finish` (count and log once).

pub mod affinity;
pub mod attempt;
pub mod body;
pub mod call_stream;
pub mod contents;
pub mod ctx;
pub mod failure;
pub mod federated;
pub mod finish;
pub mod first_byte;
pub mod head;
pub mod headers;
pub mod member_json;
mod merged_relay;
mod preamble;
pub mod reject;
mod relay;
pub mod reply;
pub mod request;
pub mod request_id;
pub mod response;
pub mod sse_event;
pub mod stream;
pub mod throttle;
pub mod transform;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorSource, ErrorType};

use crate::config::model::Timeouts;
use crate::state::State;
use ctx::Ctx;
use first_byte::FirstByteTimer;
use reply::Reject;

/// The HTTP/2 cleartext upgrade's settings (RFC 7540 3.2), hop-by-hop like `Upgrade`.
const HTTP2_SETTINGS: http::HeaderName = http::HeaderName::from_static("http2-settings");

/// A sampled request tells the backend its trace: this attempt's CLIENT span as the parent,
/// in `traceparent` and, when the message carried one, in `_meta.traceparent`. Unsampled
/// requests pass the client's context untouched.
/// A federated call's head: the member's own tool name in `Mcp-Name` (when the client sent
/// one; base64-encoded as the spec says when it is not plain ASCII), the protocol version the
/// member agreed to (legacy sessions), and the renamed body's length.
fn federated_request(req: &mut RequestHeader, to: &ctx::Forwarded, len: usize) -> Result<()> {
    if req.headers.contains_key(crate::mcp::header::MCP_NAME) {
        let value = crate::mcp::call::encode_name(&to.name);
        req.insert_header(crate::mcp::header::MCP_NAME, value.as_ref())?;
    }
    if let Some(version) = to.version.as_deref() {
        req.insert_header(crate::mcp::header::MCP_PROTOCOL_VERSION, version)?;
    }
    if req.headers.contains_key(http::header::CONTENT_LENGTH) {
        req.insert_header(http::header::CONTENT_LENGTH, len)?;
    }
    Ok(())
}

fn propagate(req: &mut RequestHeader, ctx: &mut Ctx) -> Result<()> {
    let Some(t) = ctx.trace.as_deref() else { return Ok(()) };
    let Some(parent) = t.upstream_parent() else { return Ok(()) };
    let value = http::HeaderValue::from_bytes(&parent).map_err(|_| Error::new(ErrorType::InternalError))?;
    req.insert_header(crate::trace::TRACEPARENT, value)?;
    match t.state.as_deref() {
        Some(state) => req.insert_header(crate::trace::TRACESTATE, state)?,
        None => {
            req.remove_header(&crate::trace::TRACESTATE);
        }
    }
    if let Some(body) = ctx.body.as_ref().and_then(|b| t.rewrite_meta(b, &parent)) {
        ctx.body = Some(body);
    }
    Ok(())
}

pub struct Edge {
    pub state: Arc<State>,
}

#[async_trait]
impl ProxyHttp for Edge {
    type CTX = Box<Ctx>;

    fn new_ctx(&self) -> Box<Ctx> {
        Box::new(Ctx::new(self.state.snapshot()))
    }

    async fn early_request_filter(&self, session: &mut Session, _ctx: &mut Box<Ctx>) -> Result<()> {
        body::head_read(session);
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Box<Ctx>) -> Result<bool> {
        if request::filter(&self.state, session, ctx).await? {
            return Ok(true);
        }
        if stream::detachable(session, ctx) {
            // Boxed: opening a stream holds a connect future of about 9 KiB, which inline
            // would be copied into every request's `request_filter` future.
            return Box::pin(stream::open(self, session, ctx)).await;
        }
        Ok(false)
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Box<Ctx>) -> Result<Box<HttpPeer>> {
        let snap = Arc::clone(&ctx.snap);
        let pool = ctx
            .pool
            .and_then(|i| snap.pools.get(i))
            .ok_or_else(|| Error::explain(ErrorType::HTTPStatus(404), "no pool"))?;
        if let Some(p) = &ctx.pinned {
            let backend = p.member.backend;
            return Ok(Box::new(bind(ctx, pool, backend)));
        }
        if ctx.tried.is_empty() {
            pool.retry.record_request();
        } else {
            tokio::time::sleep(pool.retry.backoff(ctx.tried.len())).await;
        }
        if let Some(addr) = pool.select(&ctx.tried) {
            return Ok(Box::new(bind(ctx, pool, addr)));
        }
        if !ctx.tried.is_empty() {
            // Every candidate failed this request: a 502 (504 if the last one timed out),
            // not "none healthy".
            let status = if ctx.first_byte.as_ref().is_some_and(|t| t.expired()) { 504 } else { 502 };
            return Error::e_explain(ErrorType::HTTPStatus(status), "every backend tried failed");
        }

        // Priority failover: the next pool in the route's (or matching rule's) fallback list
        // that has a usable backend.
        for &next in fallbacks(ctx) {
            let Some(fallback) = snap.pools.get(next) else { continue };
            if let Some(addr) = fallback.select(&[]) {
                self.state.metrics.failovers.with_label_values(&[ctx.route_name(), fallback.name()]).inc();
                ctx.pool = Some(next);
                return Ok(Box::new(bind(ctx, fallback, addr)));
            }
        }
        Error::e_explain(ErrorType::HTTPStatus(503), "no healthy backend")
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut Box<Ctx>,
    ) -> Result<()> {
        ctx.body_sent = false;
        // Skipped only when the request already carries exactly this id (a client's sane one);
        // a replaced one, or one the client named in `Connection` (Pingora has removed
        // hop-by-hop headers by now), is set.
        if let Some(id) = ctx.request_id.header().filter(|id| req.headers.get(&request_id::HEADER) != Some(id)) {
            req.insert_header(request_id::HEADER, id)?;
        }
        let Some(pool) = ctx.pool.and_then(|i| ctx.snap.pools.get(i)) else {
            return Ok(());
        };
        let token = pool.token.clone();
        // The backend sees the path the route matched, never another spelling of it.
        if let Some(path) = ctx.path.as_deref() {
            keep_authority(req)?;
            set_path(req, path);
        }
        if let Some(path) = &pool.config.path {
            rewrite_path(req, ctx, path);
        }
        if let Some(host) = &pool.config.host {
            req.insert_header(http::header::HOST, host.as_str())?;
        }
        if let Some(p) = &ctx.pinned {
            affinity::unwrap_for_upstream(req, p)?;
        }
        // No token passthrough: the caller's credentials are for the proxy, never the backend.
        if let Some(gate) = ctx.route.and_then(|r| ctx.snap.gates.get(r)) {
            for name in &gate.strip {
                req.remove_header(name);
            }
        }
        // MCP has no upgraded transport, and a tunnel would carry the pool's credentials past
        // every check: a client's `Upgrade` (WebSocket, h2c) is hop-by-hop and ends here, so
        // the backend answers plain HTTP (a 101 anyway is refused by Pingora).
        if req.headers.contains_key(http::header::UPGRADE) {
            for name in [http::header::UPGRADE, http::header::CONNECTION, HTTP2_SETTINGS] {
                req.remove_header(&name);
            }
        }
        if let Some(to) = ctx.member.as_ref() {
            federated_request(req, to, ctx.body.as_ref().map_or(0, Bytes::len))?;
            // A member without a session of its own never sees the client's (the proxy's) id.
            if ctx.pinned.is_none() {
                req.remove_header(&affinity::SESSION_HEADER);
            }
        }
        transform::upstream_request(req, ctx)?;
        propagate(req, ctx)?;
        headers::upstream(req, ctx)?;
        // The proxy's token for the pool's backends (its own, or the caller's exchanged one),
        // in place of anything else.
        if let Some(token) = token {
            let subject = crate::auth::bearer_token(&session.req_header().headers);
            match token.header_for(ctx.identity.as_deref(), subject).await {
                Ok(value) => req.insert_header(http::header::AUTHORIZATION, value)?,
                Err(refusal) => {
                    ctx.reason = Some(reject::for_token(refusal).reason);
                    return Err(refusal.error());
                }
            }
        }
        // A pre-read body goes up at once; a streamed one starts the clock when it ends.
        if ctx.body.is_some() || !has_body(req) {
            ctx.first_byte.as_ref().inspect(|t| t.start());
        }
        Ok(())
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end: bool,
        ctx: &mut Box<Ctx>,
    ) -> Result<()> {
        if ctx.body.is_some() {
            body::replay(body, ctx.body.as_ref(), &mut ctx.body_sent);
            return Ok(());
        }
        if end {
            crate::downstream::clock::with(|c| c.body_done());
            ctx.first_byte.as_ref().inspect(|t| t.start());
        }
        ctx.streamed += body.as_ref().map_or(0, Bytes::len);
        if ctx.streamed > ctx.snap.config.proxy.max_body_bytes {
            ctx.reason = Some(Reject::TOO_LARGE.reason);
            return Error::e_explain(ErrorType::HTTPStatus(413), "streamed body over max_body_bytes");
        }
        Ok(())
    }

    async fn connected_to_upstream(
        &self,
        _session: &mut Session,
        reused: bool,
        _peer: &HttpPeer,
        fd: std::os::unix::io::RawFd,
        _digest: Option<&pingora::protocols::Digest>,
        ctx: &mut Box<Ctx>,
    ) -> Result<()> {
        if let Some(pool) = ctx.pool.and_then(|p| ctx.snap.pools.get(p)) {
            pool.count_connection(reused);
        }
        if !reused {
            first_byte::connected(fd);
        }
        // Each backend's interim heads are its own: a retry starts counting again.
        ctx.interim = 0;
        // An HTTP/1 client is watched too while the header is awaited (`first_byte`): so the
        // watch is armed even when the idle timeout is the first to run out.
        let client = crate::downstream::clock::client();
        ctx.first_byte = match ctx.timeouts {
            Some(t) if t.first_byte < t.idle || client.is_some() => {
                FirstByteTimer::arm(fd, t.first_byte.min(t.idle), client)
            }
            _ => None,
        };
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Box<Ctx>,
    ) -> Result<()> {
        if resp.status == http::StatusCode::SWITCHING_PROTOCOLS {
            // Nothing asks to switch (a client's `Upgrade` ends here): a backend's `101` would
            // make the rest of the connection its raw bytes, past every check (found by an
            // attack: a member's forged answers reached the client of a federated route).
            return Error::e_explain(ErrorType::InvalidHTTPHeader, "a protocol switch no one asked for")
                .map_err(|e| e.into_up());
        }
        if resp.status.is_informational() {
            // Interim heads pass unseen (`body::head_read`): a backend sending them without end
            // would keep a core busy until the first-byte timeout (as on detached streams).
            ctx.interim = ctx.interim.saturating_add(1);
            if usize::from(ctx.interim) > stream::MAX_INTERIM {
                return Error::e_explain(ErrorType::InvalidHTTPHeader, "too many interim answers")
                    .map_err(|e| e.into_up());
            }
            return Ok(());
        }
        ctx.header_seen = true;
        if let Some(timer) = ctx.first_byte.take() {
            if !timer.arrived() {
                // Fired first: the socket is shut down. Failing here keeps it out of the pool.
                ctx.first_byte = Some(timer);
                return Error::e_explain(ErrorType::ReadTimedout, "no response header within first_byte_timeout")
                    .map_err(|e| e.into_up());
            }
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Box<Ctx>,
    ) -> Result<()> {
        if resp.status.is_informational() {
            // An interim head (a `100` the client asked for; others are not passed, see
            // `body::head_read`) has no body and is not the answer: nothing is counted, armed or
            // rewritten for it (a `103` typed as JSON armed the hold, and the final answer kept
            // a `Content-Length` its rewritten body no longer had), and none of the backend's
            // fields go with it (its raw session id would).
            *resp = ResponseHeader::build(resp.status, Some(0))?;
            return Ok(());
        }
        failure::record(&self.state, ctx, resp.status.as_u16() < 500);
        attempt::answered(ctx, resp.status.as_u16());
        ctx.responded = Some(std::time::Instant::now());
        if let Some(id) = ctx.request_id.header() {
            resp.insert_header(request_id::HEADER, id)?;
        }
        headers::downstream(resp, ctx)?;
        response::headers(&self.state, session, resp, ctx)?;
        if session.req_header().version == http::Version::HTTP_10
            && resp.remove_header(&http::header::TRANSFER_ENCODING).is_some()
        {
            // No transfer coding in an answer to HTTP/1.0 (RFC 9112 §6.1): a body of unknown
            // length (a held answer, an event stream) ends with the connection.
            session.set_keepalive(None);
        }
        Ok(())
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end: bool,
        ctx: &mut Box<Ctx>,
    ) -> Result<Option<Duration>> {
        response::body(&self.state, body, end, ctx)?;
        Ok(None)
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut Box<Ctx>,
        client_reused: bool,
    ) -> Box<Error> {
        failure::proxy_failed(&self.state, session, ctx, e.more_context(format!("Peer: {peer}")), client_reused)
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Box<Ctx>,
        e: Box<Error>,
    ) -> Box<Error> {
        failure::connect_failed(&self.state, ctx, e)
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Box<Ctx>) -> FailToProxy {
        let reject = failure::reply_for(e);
        // The connection is not used again (below): after a client-side failure the
        // request's framing cannot be trusted, after an upstream one what the proxy read of
        // the request may not be all of it. The reply says so (`Connection: close`), or a
        // client would send its next request on a connection about to close (found by an
        // attack: a pipelined request was lost).
        session.set_keepalive(None);
        let code = match reject {
            // After an interim head (`100`) the answer is still to come.
            Some(r) if session.response_written().is_none_or(|w| w.status.is_informational()) => {
                if let Err(err) = reply::send(session, ctx, r).await {
                    tracing::debug!(error = %err, "could not send error reply");
                }
                r.status
            }
            // The response was already under way: the client sees a cut stream, not a reply,
            // so nothing counts as a rejection.
            Some(_) | None => 0,
        };
        if failure::client_aborted(&self.state, session, e) {
            // Counted and logged at debug.
        } else if matches!(e.esource(), ErrorSource::Upstream | ErrorSource::Internal) {
            tracing::warn!(error = %e, route = ctx.route_name(), backend = ?ctx.backend, "proxying failed");
        } else {
            tracing::debug!(error = %e, route = ctx.route_name(), "client-side failure");
        }
        FailToProxy { error_code: code, can_reuse_downstream: false }
    }

    /// Pingora's summary of a request for its own log lines: method and path only, never the
    /// query (legacy session tokens travel there).
    fn request_summary(&self, session: &Session, _ctx: &Box<Ctx>) -> String {
        let req = session.req_header();
        format!("{} {}", req.method, req.uri.path())
    }

    /// `fail_to_proxy` logs server faults once, with route and backend; Pingora's own line
    /// would repeat it.
    fn suppress_error_log(&self, _session: &Session, _ctx: &Box<Ctx>, _error: &Error) -> bool {
        true
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut Box<Ctx>) {
        if ctx.detached {
            // A stand-in: the detached stream counts and logs the request when it ends.
            return;
        }
        failure::abandon(ctx);
        finish::record(&self.state, &finish::Exchange::of(session), ctx);
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

/// Binds the request to `addr` of `pool`: the peer carries the pool's timeouts with the
/// route's and the matching rule's overrides.
fn bind(ctx: &mut Ctx, pool: &crate::upstream::Pool, addr: std::net::SocketAddr) -> HttpPeer {
    let mut timeouts: Timeouts = pool.config.timeouts;
    if let Some(route) = ctx.route.and_then(|r| ctx.snap.router.routes().get(r)) {
        timeouts = timeouts.with(&route.timeouts);
        if let Some(rule) = ctx.rule.and_then(|r| route.rules.get(r)) {
            timeouts = timeouts.with(&rule.timeouts);
        }
    }
    failure::bound(ctx, pool, addr);
    ctx.backend = Some(addr);
    ctx.timeouts = Some(timeouts);
    ctx.first_byte = None;
    attempt::begin(ctx);
    pool.peer(addr, &timeouts)
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
    set_path(req, pool_path);
}

/// An absolute-form target without `Host` names its host only in the target, which the
/// origin form sent upstream drops: the authority becomes `Host` (RFC 9112 3.2.2), so the
/// backend sees the host the request was routed by, not an HTTP/1.1 request without one.
fn keep_authority(req: &mut RequestHeader) -> Result<()> {
    use pingora::protocols::http::authority::{raw_target_authority, RawTargetAuthority};
    if req.headers.contains_key(http::header::HOST) {
        return Ok(());
    }
    let RawTargetAuthority::Absolute { authority, .. } = raw_target_authority(req.raw_path()) else {
        return Ok(());
    };
    let host = http::HeaderValue::from_bytes(authority)
        .map_err(|_| Error::explain(ErrorType::InvalidHTTPHeader, "absolute-form authority is not a header value"))?;
    req.insert_header(http::header::HOST, host)
}

/// Replaces the request target by `path` plus the original query, in origin form (an
/// absolute-form target's authority was checked against `Host` and is not forwarded).
fn set_path(req: &mut RequestHeader, path: &str) {
    let uri = match req.uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    match uri.parse::<http::Uri>() {
        Ok(uri) => req.set_uri(uri),
        Err(_) => tracing::debug!("canonical path does not form a URI; forwarding as sent"),
    }
}

/// Whether the request carries a body (`Content-Length` above zero, or chunked). A length
/// that does not parse counts as a body: Pingora refuses it before this is asked.
fn has_body(req: &RequestHeader) -> bool {
    body::content_length(&req.headers).map_or(true, |n| n.is_some_and(|n| n > 0))
        || req.headers.contains_key(http::header::TRANSFER_ENCODING)
}
