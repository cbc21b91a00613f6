//! Detached event streams: the long-lived streams of both protocol eras, served outside
//! Pingora's request future. Legacy sessions listen on a `GET` stream; 2026-07-28 clients on
//! the answer to `subscriptions/listen`, a `POST` that stays open.
//!
//! Why: a stream can stay open for hours while it carries nothing, and inside Pingora each one
//! holds a whole request future, a 64 KiB upstream body buffer and two header buffers (about
//! 50 KiB, so 10,000 open streams cost 500 MiB). Here the request phase does the exchange
//! with the backend itself: it binds the request to a backend (its session's, or one the pool
//! selects, with connect failures retried elsewhere as on Pingora's path), sends the head
//! Pingora would have sent (the same `upstream_request_filter`) and the pre-read body, reads
//! the response head under the first-byte timeout and runs the same `response_filter` on it.
//! Failures up to this point are Pingora's usual errors, so the client gets the usual reply
//! and the breaker hears of them. Then the request ends as "answered" without writing
//! anything, Pingora hands the connection back to [`crate::downstream`], and [`relay`] copies
//! bytes between the two sockets with no buffer held while the stream is quiet.
//!
//! Only plain cases are detached (anything else takes Pingora's path, as before): HTTP/1.1,
//! a `Connection` header that says no more than `keep-alive` (Pingora does not hand back a
//! connection its client asked to `close`), no `Upgrade`, and either a bodiless `GET` asking for `text/event-stream` pinned to its session, or a single
//! `subscriptions/listen` call whose body was read and classified. Both connections close
//! when the stream ends, so the response's own framing is relayed untouched. Not owned here:
//! routing, limits, session pinning (the request phase) and the access line (`finish`).

use std::cell::RefCell;
use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{header, Method, Version};
use pingora::connectors::TransportConnector;
use pingora::http::ResponseHeader;
use pingora::protocols::http::v1::client::http_req_header_to_wire;
use pingora::protocols::Stream;
use pingora::proxy::{ProxyHttp, Session};
use pingora::{Error, ErrorType, OrErr, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::ctx::Ctx;
use super::{failure, Edge};
use crate::mcp::method::Method as McpMethod;
use crate::state::State;

pub use super::relay::{dropped, relay};

/// Most bytes of a response head from a backend.
const MAX_HEAD: usize = 64 * 1024;
/// Most interim (`1xx`) answers before the final head: a backend looping `100 Continue`
/// would otherwise keep a core busy until the first-byte timeout.
pub const MAX_INTERIM: usize = 8;
/// Most header fields in a response head from a backend.
const MAX_FIELDS: usize = 128;

/// Request-side fields that belong to one connection (RFC 9110 7.6.1), never forwarded.
const HOP_BY_HOP: [&str; 8] =
    ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "http2-settings"];

tokio::task_local! {
    /// Where the request phase leaves a detached stream for the connection's task.
    /// Boxed: the slot lives in every request's future, the stream in few.
    static HANDOFF: RefCell<Option<Box<Detached>>>;
}

/// Connections to backends for detached streams (never pooled: a stream ends its connection).
static CONNECTOR: LazyLock<TransportConnector> = LazyLock::new(|| TransportConnector::new(None));

/// A stream whose response head is ready, waiting for the client connection.
pub struct Detached {
    pub(super) state: Arc<State>,
    /// The request's context, moved out of Pingora's request (limits' slots, identity, the
    /// `streams_open` count): the stream now holds them until it ends.
    pub(super) ctx: Box<Ctx>,
    pub(super) feed: Feed,
    /// The response head for the client, serialised.
    pub(super) head: Vec<u8>,
    pub(super) status: u16,
    pub(super) http_method: &'static str,
    pub(super) path: String,
    /// The request body's length (the pre-read body sent upstream).
    pub(super) bytes_in: u64,
    pub(super) client: Option<std::net::SocketAddr>,
}

/// Where a detached stream's bytes come from.
pub enum Feed {
    /// A backend's response, relayed as it is.
    Backend(Backend),
    /// A federated route's merged stream (`super::merged_relay`).
    Merged(Box<super::merged_relay::Merged>),
}

/// A backend's response after its head.
pub struct Backend {
    pub(super) upstream: Stream,
    /// Body bytes that arrived with the head.
    pub(super) early: Bytes,
    /// The body's length when the backend gave one, else the stream runs until a side closes.
    pub(super) length: Option<u64>,
    /// How long the backend may stay silent (the pool's `idle_timeout`).
    pub(super) idle: Duration,
}

/// Runs one request with a place for a detached stream; returns the request's own result
/// and the stream, if it detached one.
pub async fn scope<F: Future>(request: F) -> (F::Output, Option<Box<Detached>>) {
    let mut scoped = std::pin::pin!(HANDOFF.scope(RefCell::new(None), request));
    let out = scoped.as_mut().await;
    let detached = scoped.as_mut().take_value().and_then(RefCell::into_inner);
    (out, detached)
}

/// Whether this request is served as a detached stream (see the module doc).
pub fn detachable(session: &Session, ctx: &Ctx) -> bool {
    let req = session.req_header();
    // The cheap tests first: this runs for every request.
    let listen = req.method == Method::POST
        && ctx.call.one.method == McpMethod::SubscriptionsListen
        && ctx.call.batch.is_empty()
        && ctx.body.is_some();
    let get_stream = req.method == Method::GET && ctx.pinned.as_ref().is_some_and(|p| !p.via_query);
    if !(listen || get_stream) || ctx.pool.is_none() {
        return false;
    }
    let asks_for_events = || {
        req.headers.get_all(header::ACCEPT).iter().any(|v| v.as_bytes().windows(17).any(|w| w == b"text/event-stream"))
    };
    (listen || (!super::has_body(req) && asks_for_events())) && plain(session)
}

/// Whether the request's connection can be handed back for a detached stream: HTTP/1.1,
/// a `Connection` header that says no more than `keep-alive` (Pingora does not hand back a
/// connection its client asked to `close`, so a detached stream on it would be dropped
/// unanswered), no `Upgrade`, and a connection task with a place for one.
pub fn plain(session: &Session) -> bool {
    let req = session.req_header();
    let plain_connection =
        req.headers.get_all(header::CONNECTION).iter().all(|v| {
            v.to_str().is_ok_and(|v| v.split(',').map(str::trim).all(|t| t.eq_ignore_ascii_case("keep-alive")))
        });
    req.version == Version::HTTP_11
        && plain_connection
        && !req.headers.contains_key(header::UPGRADE)
        && HANDOFF.try_with(|_| ()).is_ok()
}

/// Leaves `detached` for the connection's task, which relays it once Pingora hands the
/// connection back (it does only when it would keep the connection alive).
pub fn hand_off(session: &mut Session, detached: Detached) {
    session.set_keepalive(Some(1));
    // A connection whose client sent more (a pipelined request) is not handed back: nothing
    // may follow an endless stream on its connection, and those bytes would go unanswered.
    session.as_downstream_mut().set_pipelining_enabled(false);
    HANDOFF.with(|slot| slot.replace(Some(Box::new(detached))));
}

/// Does the exchange with the backend and leaves the stream for the connection's task.
/// `Ok(true)`: the request is answered as far as Pingora is concerned.
pub async fn open(edge: &Edge, session: &mut Session, ctx: &mut Box<Ctx>) -> Result<bool> {
    let state = &edge.state;
    let snap = Arc::clone(&ctx.snap);
    let Some(pool) = ctx.pool.and_then(|i| snap.pools.get(i)) else { return Ok(false) };
    let first = match &ctx.pinned {
        Some(p) => Some(p.member.backend),
        None => pool.select(&ctx.tried),
    };
    // No usable backend: Pingora's path answers it (fallback pools, 503).
    let Some(mut backend) = first else { return Ok(false) };
    if ctx.pinned.is_none() {
        pool.retry.record_request();
    }

    let mut req = session.req_header().clone();
    for name in HOP_BY_HOP {
        req.remove_header(name);
    }
    let body = ctx.body.clone().unwrap_or_default();
    let (upstream, timeouts) = loop {
        let peer = super::bind(ctx, pool, backend);
        let timeouts = ctx.timeouts.unwrap_or(pool.config.timeouts);
        match CONNECTOR.new_stream(&peer).await {
            Ok(s) => break (s, timeouts),
            Err(e) => {
                let e = failure::connect_failed(state, ctx, e);
                match pool.select(&ctx.tried).filter(|_| e.retry()) {
                    Some(next) => {
                        tokio::time::sleep(pool.retry.backoff(ctx.tried.len())).await;
                        backend = next;
                    }
                    None => return Err(e),
                }
            }
        }
    };
    edge.upstream_request_filter(session, &mut req, ctx).await?;
    if !body.is_empty() {
        req.insert_header(header::CONTENT_LENGTH, body.len())?;
    }
    req.insert_header(header::CONNECTION, "close")?;
    let wire = http_req_header_to_wire(&req)
        .ok_or_else(|| Error::explain(ErrorType::InvalidHTTPHeader, "request target not sendable"))?;

    let mut upstream = upstream;
    let exchange = async {
        upstream.write_all(&wire).await.or_err(ErrorType::WriteError, "sending the stream request")?;
        upstream.write_all(&body).await.or_err(ErrorType::WriteError, "sending the stream request")?;
        upstream.flush().await.or_err(ErrorType::WriteError, "sending the stream request")?;
        read_head(&mut upstream).await
    };
    let exchange = tokio::time::timeout(timeouts.first_byte.min(timeouts.idle), exchange);
    // A backend can take long to open a stream: a client that leaves meanwhile gives back its
    // connection and the backend's at once, not when the head comes (found by an attack: 50
    // streams stayed open 19 s after their clients left). Bytes the client sends meanwhile end
    // the wait too: nothing may follow an endless stream on its connection, and kept as a next
    // request they would hide the client's close until the head came (found by an attack).
    session.as_downstream_mut().set_pipelining_enabled(false);
    let exchanged = tokio::select! {
        exchanged = exchange => exchanged,
        _ = session.read_body_or_idle(true) => return Ok(super::reply::left(state, session, ctx.route_name())),
    };
    let (mut resp, early) = match exchanged {
        Ok(Ok(head)) => head,
        Ok(Err(e)) => {
            failure::record(state, ctx, false);
            return Err(e.into_up());
        }
        Err(_) => {
            failure::record(state, ctx, false);
            return Error::e_explain(ErrorType::ReadTimedout, "no response header within first_byte_timeout")
                .map_err(|e| e.into_up());
        }
    };
    ctx.header_seen = true;
    // Before the response filter: a backend's `Connection` must not name away the headers the
    // proxy adds (`X-Request-Id`, the route's `response_set`).
    strip_response_hop_by_hop(&mut resp);
    edge.response_filter(session, &mut resp, ctx).await?;
    let length = framing(&mut resp)?;
    resp.insert_header(header::CONNECTION, "close")?;

    let head = head_wire(&resp);

    let ctx = std::mem::replace(ctx, Box::new(stand_in(&snap)));
    let feed = Feed::Backend(Backend { upstream, early, length, idle: timeouts.idle });
    let detached = detached(state, session, ctx, feed, head, resp.status.as_u16(), body.len() as u64);
    hand_off(session, detached);
    Ok(true)
}

/// `resp` as an HTTP/1.1 response head.
pub fn head_wire(resp: &ResponseHeader) -> Vec<u8> {
    let mut head = Vec::with_capacity(512);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(resp.status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(resp.status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    resp.header_to_h1_wire(&mut head);
    head.extend_from_slice(b"\r\n");
    head
}

/// What Pingora's request keeps of a context whose stream was detached: it counts and logs
/// nothing (the stream does, when it ends).
pub fn stand_in(snap: &Arc<crate::state::Snapshot>) -> Ctx {
    let mut stand_in = Ctx::new(Arc::clone(snap));
    stand_in.detached = true;
    stand_in
}

/// A detached stream of `session`'s request.
pub fn detached(
    state: &Arc<State>,
    session: &Session,
    ctx: Box<Ctx>,
    feed: Feed,
    head: Vec<u8>,
    status: u16,
    bytes_in: u64,
) -> Detached {
    let req = session.req_header();
    Detached {
        state: Arc::clone(state),
        ctx,
        feed,
        head,
        status,
        http_method: if req.method == Method::POST { "POST" } else { "GET" },
        path: req.uri.path().to_owned(),
        client: session.client_addr().and_then(|a| a.as_inet()).copied(),
        bytes_in,
    }
}

/// Reads a response head (skipping `1xx` interim answers); returns it and the body bytes
/// that came with it.
async fn read_head(upstream: &mut Stream) -> Result<(ResponseHeader, Bytes)> {
    let mut buf = BytesMut::with_capacity(4096);
    // Whether `buf` may already hold a whole head: the final head can arrive in the same read
    // as an interim one, and the backend may then send nothing more until its first event.
    let mut parse_first = false;
    let mut interim = 0;
    loop {
        if !std::mem::take(&mut parse_first) {
            if buf.len() >= MAX_HEAD {
                return Error::e_explain(ErrorType::InvalidHTTPHeader, "response head too large");
            }
            buf.reserve(4096);
            let n = upstream.read_buf(&mut buf).await.or_err(ErrorType::ReadError, "reading the stream response")?;
            if n == 0 {
                return Error::e_explain(ErrorType::ConnectionClosed, "backend closed before its response head");
            }
        }
        let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
        let mut parsed = httparse::Response::new(&mut fields);
        let len = match parsed.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => continue,
            Err(e) => return Error::e_because(ErrorType::InvalidHTTPHeader, "malformed response head", e),
        };
        let code = parsed.code.unwrap_or(0);
        if (100..200).contains(&code) && code != 101 {
            interim += 1;
            if interim > MAX_INTERIM {
                return Error::e_explain(ErrorType::InvalidHTTPHeader, "too many interim answers");
            }
            let _ = buf.split_to(len);
            parse_first = !buf.is_empty();
            continue;
        }
        if code == 101 {
            return Error::e_explain(ErrorType::InvalidHTTPHeader, "protocol switch on an event stream");
        }
        let mut resp = ResponseHeader::build(code, Some(parsed.headers.len()))?;
        for field in parsed.headers.iter() {
            resp.append_header(field.name.to_owned(), field.value)?;
        }
        let early = buf.split_off(len).freeze();
        return Ok((resp, early));
    }
}

/// How the body ends: after `Content-Length` bytes, or when the backend closes (chunked
/// and close-delimited bodies are relayed as they are and end with the connection).
/// A `Content-Length` beside `Transfer-Encoding` is removed (RFC 9112 6.3): a client that
/// trusted it would read the rest of the body as another response.
fn framing(resp: &mut ResponseHeader) -> Result<Option<u64>> {
    if resp.headers.contains_key(header::TRANSFER_ENCODING) {
        resp.remove_header(&header::CONTENT_LENGTH);
        return Ok(None);
    }
    let mut lengths = resp.headers.get_all(header::CONTENT_LENGTH).iter();
    let Some(first) = lengths.next() else { return Ok(None) };
    // Digits only: `parse` would take a `+5` that clients read differently, and forward it.
    let n = first
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse::<u64>().ok());
    match n {
        Some(n) if lengths.all(|v| v == first) => Ok(Some(n)),
        _ => Error::e_explain(ErrorType::InvalidHTTPHeader, "bad Content-Length in the stream response")
            .map_err(|e| e.into_up()),
    }
}

/// Removes the backend's connection-scoped fields, the ones its `Connection` names included.
fn strip_response_hop_by_hop(resp: &mut ResponseHeader) {
    let named: Vec<String> = resp
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty() && !matches!(t.as_str(), "content-length" | "transfer-encoding"))
        .collect();
    for name in named.iter().map(String::as_str).chain(["connection", "keep-alive", "proxy-connection", "upgrade"]) {
        resp.remove_header(name);
    }
}
