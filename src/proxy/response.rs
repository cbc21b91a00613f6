//! The response phase: pass status, headers and body through untouched, except what must
//! change: a backend session id becomes a proxy token, and the answers a response transform
//! was armed for (`transform`: the legacy `endpoint` event gets its session id wrapped, list
//! answers are filtered per caller). SSE is never buffered: events are forwarded as they arrive.

use bytes::Bytes;
use http::Method as HttpMethod;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;

use super::affinity::{self, SESSION_HEADER};
use super::ctx::Ctx;
use super::transform;
use crate::metrics::OpenStream;
use crate::session::Fingerprint;
use crate::state::State;

pub fn headers(state: &State, session: &Session, resp: &mut ResponseHeader, ctx: &mut Ctx) -> Result<()> {
    if ctx.member.is_some() {
        // A federated call: the client's session is the proxy's, whatever id the member names.
        match &ctx.pinned {
            Some(p) if resp.headers.contains_key(SESSION_HEADER) => {
                resp.insert_header(SESSION_HEADER, p.token.as_str())?
            }
            _ => drop(resp.remove_header(&SESSION_HEADER)),
        }
    } else if let Some(sid) = resp.headers.get(SESSION_HEADER) {
        let token = sid.to_str().ok().and_then(|sid| affinity::wrap(state, ctx, sid));
        if let Some(token) = token {
            if ctx.pinned.is_none() {
                ctx.new_session = Some(Fingerprint::of(&token));
            }
            resp.insert_header(SESSION_HEADER, token)?;
        } else {
            // Only minted ids are accepted back, so a raw one would be useless to the client:
            // it is dropped, and the backend's fault (an id too long to carry) logged once.
            resp.remove_header(&SESSION_HEADER);
            static LOGGED: std::sync::Once = std::sync::Once::new();
            LOGGED.call_once(|| {
                tracing::warn!(
                    "a backend issued a session id too long to carry in a session token; dropped (logged once)"
                )
            });
        }
    }
    // In any case: the Python SDK lower-cases the type before it looks (a member's
    // `Text/Event-Stream` was read by clients as events, and passed here unread).
    let is_sse = transform::content_type_starts(resp, b"text/event-stream");
    if is_sse {
        ctx.stream = Some(OpenStream::new(&state.metrics.streams_open));
    }
    // A session-less GET stream may be the legacy HTTP+SSE transport: watch its first event.
    let stream = match is_sse {
        false => transform::Stream::No,
        true if session.req_header().method == HttpMethod::GET && ctx.pinned.is_none() && resp.status == 200 => {
            transform::Stream::Legacy
        }
        true => transform::Stream::Events,
    };
    transform::headers(state, resp, ctx, stream)
}

pub fn body(state: &State, body: &mut Option<Bytes>, end: bool, ctx: &mut Ctx) -> Result<()> {
    transform::body(state, body, end, ctx)
}
