//! The response phase: pass status, headers and body through untouched, except what must
//! change: a backend session id becomes a proxy token, and the legacy `endpoint` event gets
//! its session id wrapped. SSE is never buffered: chunks are forwarded as they arrive.

use bytes::Bytes;
use http::{header, Method as HttpMethod};
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;

use super::affinity::{self, SESSION_HEADER};
use super::ctx::Ctx;
use crate::state::State;

/// The first event of a legacy stream is a short line; give up sniffing past this.
const MAX_SNIFF: usize = 4096;

pub fn headers(state: &State, session: &Session, resp: &mut ResponseHeader, ctx: &mut Ctx) -> Result<()> {
    if let Some(sid) = resp.headers.get(SESSION_HEADER) {
        let token = sid.to_str().ok().and_then(|sid| affinity::wrap(state, ctx, sid));
        // An id too long to wrap passes through raw: its follow-ups are then forwarded as
        // foreign ids, which is exact for one-backend pools and a backend 404 otherwise.
        if let Some(token) = token {
            resp.insert_header(SESSION_HEADER, token)?;
        } else {
            tracing::debug!("backend session id too long to wrap; passed through");
        }
    }
    let is_sse = resp.headers.get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if is_sse && session.req_header().method == HttpMethod::GET && ctx.pinned.is_none() && resp.status == 200 {
        // A session-less GET stream may be the legacy HTTP+SSE transport: watch its first event.
        ctx.endpoint_sniff = Some(Vec::new());
        resp.remove_header(&header::CONTENT_LENGTH);
    }
    Ok(())
}

pub fn body(state: &State, body: &mut Option<Bytes>, end: bool, ctx: &mut Ctx) {
    let Some(mut held) = ctx.endpoint_sniff.take() else {
        return;
    };
    if let Some(chunk) = body.take() {
        held.extend_from_slice(&chunk);
    }
    let event_end = find(&held, b"\n\n").map(|i| i + 2).or_else(|| find(&held, b"\r\n\r\n").map(|i| i + 4));
    match event_end {
        Some(n) => {
            let first =
                std::str::from_utf8(&held[..n]).ok().and_then(|e| affinity::rewrite_endpoint_event(state, ctx, e));
            *body = Some(match first {
                Some(rewritten) => {
                    let mut out = rewritten.into_bytes();
                    out.extend_from_slice(&held[n..]);
                    Bytes::from(out)
                }
                None => Bytes::from(held),
            });
        }
        None if end || held.len() > MAX_SNIFF => *body = Some(Bytes::from(held)),
        None => ctx.endpoint_sniff = Some(held),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
