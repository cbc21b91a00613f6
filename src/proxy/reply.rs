//! The one place that writes local replies. Every proxy-made answer is a JSON-RPC error body
//! that echoes the request id when it is known, with the HTTP status from the error table
//! (`super::reject`).

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;

use super::ctx::Ctx;
use super::throttle::Limited;
use crate::auth::Denied;
use crate::config::model::DenyAs;
use crate::federation::stream::Merged;
use crate::federation::Parts;
use crate::limits::Refusal;
use crate::mcp::call::Element;
use crate::mcp::error::{error_body, unknown_body, unsupported_version_body, RpcCode, UnknownStyle};
use crate::metrics::Reason;
use crate::state::State;

pub use super::reject::Reject;

/// 429 for a request a `[[limit]]` refused: `Retry-After`, and for JSON-RPC requests an error
/// body that echoes the id and names the limit. Notifications (no id) get a bare 429.
/// A limit that fails closed while its shared store is unreachable answers 503 instead.
pub async fn limited(session: &mut Session, ctx: &mut Ctx, limited: &Limited) -> Result<bool> {
    let (status, what, retry_after) = match limited.refusal {
        Refusal::Rate { retry_after } => (429, "rate limit", retry_after),
        Refusal::Concurrency => (429, "concurrency limit", 1),
        Refusal::Unavailable { retry_after } => (503, "limit store unreachable for", retry_after),
    };
    let body = ctx.call.one.id.as_ref().map(|id| {
        let message = match status {
            429 => format!("{what} `{}` exceeded; retry after {retry_after} s", limited.limit),
            _ => format!("{what} `{}`; retry after {retry_after} s", limited.limit),
        };
        error_body(Some(id), RpcCode::ServerError, &message)
    });
    ctx.rpc_code = body.as_ref().map(|_| RpcCode::ServerError as i32);
    ctx.limit = Some(limited.limit.clone());
    tracing::debug!(limit = %limited.limit, status, retry_after, "limited");
    write(session, ctx, status, Some(("Retry-After", &retry_after.to_string())), body).await
}

/// 401 for a request on a route with `auth` that brought no valid credential: the JSON-RPC
/// error (with the id when it is known) and the route's `WWW-Authenticate` challenge.
/// A credential header sent twice is a malformed request (RFC 6750 3.1): 400.
pub async fn unauthorized(session: &mut Session, ctx: &mut Ctx, denied: Denied, challenge: &str) -> Result<bool> {
    ctx.reason = Some(Reason::Unauthenticated);
    let (status, message) = match denied {
        Denied::Duplicate => (400, "a credential header (Authorization or the API key header) appears more than once"),
        Denied::Missing | Denied::Invalid => (401, "Unauthorized: send a valid credential for this route"),
    };
    let body = error_body(ctx.call.one.id.as_deref(), RpcCode::InvalidRequest, message);
    ctx.rpc_code = Some(RpcCode::InvalidRequest as i32);
    tracing::debug!(status, route = ctx.route_name(), "unauthenticated");
    write(session, ctx, status, Some(("WWW-Authenticate", challenge)), Some(body)).await
}

/// A call the route's policy denied (`element`, whose id the answer echoes). `Forbidden`: 403
/// and a JSON-RPC error, with the rule's `insufficient_scope` challenge when scopes would make
/// the call allowed. `Unknown`: answered as [`unknown`], so a caller cannot enumerate what it
/// may not use. Logged and counted as `forbidden` either way.
pub async fn denied(
    session: &mut Session,
    ctx: &mut Ctx,
    element: &Element,
    deny_as: DenyAs,
    style: UnknownStyle,
    challenge: Option<&str>,
) -> Result<bool> {
    ctx.reason = Some(Reason::Forbidden);
    match deny_as {
        DenyAs::Forbidden => {
            let message = match challenge {
                Some(_) => "Forbidden: this call needs scopes the token does not carry (see WWW-Authenticate)",
                None => "Forbidden: the route's policy does not allow this call",
            };
            let body = error_body(element.id.as_deref(), RpcCode::InvalidRequest, message);
            write(session, ctx, 403, challenge.map(|c| ("WWW-Authenticate", c)), Some(body)).await
        }
        DenyAs::Unknown => unknown(session, ctx, element, style).await,
    }
}

/// What a server answers for a tool, prompt, resource or method it does not have (200 and the
/// answer of `style`, or 202 for a notification), with no header a proxied answer would lack
/// and the `Mcp-Session-Id` that SDK servers repeat on every answer in a session. The caller
/// sets `ctx.reason`: a policy's denial, or a name nobody owns (the client's mistake).
pub async fn unknown(session: &mut Session, ctx: &mut Ctx, element: &Element, style: UnknownStyle) -> Result<bool> {
    let id = element.id.as_deref();
    let (status, body) = match id {
        None => (202, None),
        Some(_) => (200, Some(unknown_body(id, element.method, element.target_str(), style))),
    };
    let mut resp = head(ctx, status, body.as_ref().map(Vec::len))?;
    let session_id = session.req_header().headers.get(crate::mcp::header::MCP_SESSION_ID).cloned();
    if let Some(v) = session_id.filter(|_| ctx.call.era == crate::mcp::method::Era::Legacy) {
        resp.insert_header("Mcp-Session-Id", v)?;
    }
    send_head_and_body(session, resp, body).await
}

/// A federated route's own answer: 200 with `{"jsonrpc":"2.0","id":<the request's>,"result":…}`,
/// or 202 with no body for a notification or a response; with `Mcp-Session-Id` when it
/// opened a session.
pub async fn answer(
    state: &State,
    session: &mut Session,
    ctx: &mut Ctx,
    result: Option<Parts>,
    token: Option<&str>,
) -> Result<bool> {
    ctx.reason = None;
    let Some(result) = result else { return write(session, ctx, 202, None, None).await };
    let id = ctx.call.one.id.as_deref().unwrap_or(b"null");
    let mut open = Vec::with_capacity(32 + id.len());
    open.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    open.extend_from_slice(id);
    open.extend_from_slice(br#","result":"#);
    let close = Bytes::from_static(b"}");
    let mut pieces: Vec<Bytes> = std::iter::once(Bytes::from(open)).chain(result.0).chain([close]).collect();
    // A merged list on a route with a policy: filtered for the caller, as a backend's would be.
    if let Some(filtered) = super::transform::local(state, ctx, &pieces) {
        pieces = vec![filtered];
    }
    let mut resp = head(ctx, 200, Some(pieces.iter().map(Bytes::len).sum()))?;
    resp.insert_header("Cache-Control", "no-store")?;
    if let Some(token) = token {
        resp.insert_header("Mcp-Session-Id", token)?;
    }
    if !session.is_body_done() {
        session.set_keepalive(None);
    }
    session.write_response_header(Box::new(resp), false).await?;
    let last = pieces.len() - 1;
    for (i, piece) in pieces.into_iter().enumerate() {
        session.write_response_body(Some(piece), i == last).await?;
    }
    Ok(true)
}

use super::merged_relay::{KEEP_ALIVE, WATCH};

/// What a merged stream waits for.
enum Next {
    Message(Option<crate::federation::stream::Message>),
    Tick,
    /// The client closed its connection (or its half), reset it, or sent more on it; over
    /// HTTP/2, closed or reset its stream.
    Left,
}

/// 200 and a federated session's merged GET stream (or a 2026-07-28 listen's), each member's
/// message written as it arrives, until the client leaves, the session ends, or every
/// member's stream ended for good; 405 when no member's stream opened. A member's
/// `list_changed` is written once the route's merged lists of that kind are new (in the
/// running config's catalog: a reload since the stream opened built a new one).
pub async fn stream(
    state: &std::sync::Arc<State>,
    session: &mut Session,
    ctx: &mut Ctx,
    mut merged: Merged,
) -> Result<bool> {
    // Nothing may follow an endless stream on its connection: a byte the client sends is not
    // kept as the start of its next request (which would also blind the watches below for
    // good: found by an attack) but ends the stream.
    session.as_downstream_mut().set_pipelining_enabled(false);
    // Members can take seconds to open theirs: a client that leaves meanwhile stops them at
    // once, not when they answer.
    let opened = tokio::select! {
        any = merged.opened() => Some(any),
        _ = session.read_body_or_idle(true) => None,
    };
    match opened {
        Some(true) => {}
        Some(false) => return send(session, ctx, Reject::FEDERATED_STREAM).await,
        None => return Ok(left(state, session, ctx.route_name())),
    }
    ctx.reason = None;
    // Counted as the SSE responses Pingora streams are (`response::headers`), for as long as
    // the context lives: the request's, or the detached stream's.
    ctx.stream = Some(crate::metrics::OpenStream::new(&state.metrics.streams_open));
    let mut resp = ResponseHeader::build(200, Some(7))?;
    if let Some(id) = ctx.request_id.header() {
        resp.insert_header(super::request_id::HEADER, id)?;
    }
    resp.insert_header("Content-Type", "text/event-stream")?;
    resp.insert_header("Cache-Control", "no-store")?;
    if session.req_header().version == http::Version::HTTP_10 {
        // No transfer coding in an answer to HTTP/1.0 (RFC 9112 6.1): the stream ends with
        // its connection, which the head says (found by an attack: it went out chunked).
        session.set_keepalive(None);
    } else if !session.is_http2() {
        resp.insert_header("Transfer-Encoding", "chunked")?;
    }
    ctx.responded = Some(std::time::Instant::now());
    if super::stream::plain(session) {
        // Served outside Pingora's request (`merged_relay`): a quiet stream holds no request
        // future and its buffers. Its connection closes when it ends.
        resp.insert_header("Connection", "close")?;
        let session_fp = ctx.pinned.as_ref().map(|p| p.fingerprint);
        let route = ctx.route_name().to_owned();
        let snap = std::sync::Arc::clone(&ctx.snap);
        let ctx = Box::new(std::mem::replace(ctx, super::stream::stand_in(&snap)));
        let merged = super::merged_relay::Merged { members: merged, route, session: session_fp };
        let feed = super::stream::Feed::Merged(Box::new(merged));
        let bytes_in = ctx.body.as_ref().map_or(0, |b| b.len() as u64);
        let head = super::stream::head_wire(&resp);
        let detached = super::stream::detached(state, session, ctx, feed, head, 200, bytes_in);
        super::stream::hand_off(session, detached);
        return Ok(true);
    }
    session.write_response_header(Box::new(resp), false).await?;
    let route = ctx.route_name().to_owned();
    let fingerprint = ctx.pinned.as_ref().map(|p| p.fingerprint);
    let ended = || fingerprint.as_ref().is_some_and(|f| state.sessions.is_revoked(f));
    let mut watch = tokio::time::interval_at(tokio::time::Instant::now() + WATCH, WATCH);
    let mut written = std::time::Instant::now();
    loop {
        // The client's socket is watched too: one that left (closed, reset or half-closed) or
        // sent anything more ends the stream at once, and with it every member's stream,
        // however quiet. A write would find out only at the next keep-alive, and often not
        // even then.
        let next = tokio::select! {
            message = merged.messages.recv() => Next::Message(message),
            _ = watch.tick() => Next::Tick,
            _ = session.read_body_or_idle(true) => Next::Left,
        };
        let event = match next {
            Next::Message(Some(m)) => {
                if !m.changed.is_empty() {
                    // Relayed once the lists are new: the client's next list shows the change.
                    let lists = &state.metrics.member_lists;
                    crate::federation::refreshed(&state.snapshot(), lists, &route, m.changed, merged.modern).await;
                }
                m.event
            }
            Next::Message(None) => {
                // Every member's stream ended for good: a listen says so with its result.
                if let Some(closing) = merged.closing.take() {
                    session.write_response_body(Some(closing), false).await?;
                }
                break;
            }
            Next::Tick if ended() => break,
            Next::Tick if written.elapsed() < KEEP_ALIVE => continue,
            Next::Tick => Bytes::from_static(b": keep-alive\n\n"),
            Next::Left => return Ok(left(state, session, &route)),
        };
        if ended() {
            break;
        }
        session.write_response_body(Some(event), false).await?;
        written = std::time::Instant::now();
    }
    session.write_response_body(None, true).await?;
    Ok(true)
}

/// The client left its event stream, merged or detached (closed, reset, half-closed or sent
/// more): counted, and its connection not used again (the body was cut short, or never began).
pub(super) fn left(state: &State, session: &mut Session, route: &str) -> bool {
    let phase = crate::metrics::Phase::Response;
    state.metrics.client_aborts.with_label_values(&[phase.as_str()]).inc();
    tracing::debug!(route = %route, "client closed its event stream");
    session.set_keepalive(None);
    true
}

/// 400 and 2026-07-28's UnsupportedProtocolVersion: the versions a federated route speaks,
/// and the one the request named.
pub async fn unsupported_version(session: &mut Session, ctx: &mut Ctx, asked: &str) -> Result<bool> {
    ctx.reason = Some(Reason::InvalidRequest);
    ctx.rpc_code = Some(RpcCode::UnsupportedProtocolVersion as i32);
    let body = unsupported_version_body(ctx.call.one.id.as_deref(), &crate::federation::VERSIONS, asked);
    tracing::debug!(route = ctx.route_name(), "a protocol version the federated route does not speak");
    write(session, ctx, 400, None, Some(body)).await
}

/// 204: a federated session the client ended.
pub async fn ended(session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
    ctx.reason = None;
    write(session, ctx, 204, None, None).await
}

/// 200 with a JSON document the proxy serves itself (OAuth protected resource metadata).
pub async fn document(session: &mut Session, ctx: &mut Ctx, doc: &str) -> Result<bool> {
    ctx.reason = None;
    write(session, ctx, 200, None, Some(doc.as_bytes().to_vec())).await
}

/// Writes `reject` to the client and records why. Returns `Ok(true)`: "already responded".
pub async fn send(session: &mut Session, ctx: &mut Ctx, reject: Reject) -> Result<bool> {
    ctx.reason = Some(reject.reason);
    ctx.rpc_code = Some(reject.code as i32);
    let body = error_body(ctx.call.one.id.as_deref(), reject.code, reject.message);
    tracing::debug!(status = reject.status, reason = reject.reason.as_str(), "local reply");
    write(session, ctx, reject.status, None, Some(body)).await
}

async fn write(
    session: &mut Session,
    ctx: &mut Ctx,
    status: u16,
    extra: Option<(&'static str, &str)>,
    body: Option<Vec<u8>>,
) -> Result<bool> {
    let mut resp = head(ctx, status, body.as_ref().map(Vec::len))?;
    resp.insert_header("Cache-Control", "no-store")?;
    if let Some((name, value)) = extra {
        resp.insert_header(name, value)?;
    }
    send_head_and_body(session, resp, body).await
}

/// A local reply's head: status, request id, and the body's length (a JSON body) or none.
fn head(ctx: &mut Ctx, status: u16, json_len: Option<usize>) -> Result<ResponseHeader> {
    let mut resp = ResponseHeader::build(status, Some(6))?;
    if let Some(id) = ctx.request_id.header() {
        resp.insert_header(super::request_id::HEADER, id)?;
    }
    ctx.responded = Some(std::time::Instant::now());
    resp.insert_header("Content-Length", json_len.unwrap_or(0).to_string())?;
    if json_len.is_some() {
        resp.insert_header("Content-Type", "application/json")?;
    }
    Ok(resp)
}

async fn send_head_and_body(session: &mut Session, resp: ResponseHeader, body: Option<Vec<u8>>) -> Result<bool> {
    // A body we did not read (or read only in part) is still on the wire: close after replying.
    if !session.is_body_done() {
        session.set_keepalive(None);
    }
    session.write_response_header(Box::new(resp), body.is_none()).await?;
    if let Some(body) = body {
        session.write_response_body(Some(Bytes::from(body)), true).await?;
    }
    Ok(true)
}
