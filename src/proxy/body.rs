//! Reading a request body before an upstream is chosen, and replaying it byte-exact.
//!
//! Pingora only forwards a body it did not read itself from its private 64 KiB retry buffer,
//! and then passes it through `request_body_filter`. So we keep the whole body in the
//! context, switch the retry buffer on only once at most 64 KiB of the body remain (known
//! from `Content-Length`; reads after the headers return at most 64 KiB each, so normally at
//! least one byte lands in it; if the first chunk read along with very large headers breaks
//! that, the body cannot be replayed and the client gets 411), and swap that tail for the full
//! body in `request_body_filter`, once per upstream attempt. A chunked body can only be
//! replayed up to 64 KiB: beyond that, 411.

use bytes::{Bytes, BytesMut};
use http::header;
use pingora::proxy::Session;
use pingora::Result;

use super::reply::Reject;

/// Pingora's retry buffer size (`BODY_BUF_LIMIT` in pingora-core).
pub const REPLAY_LIMIT: usize = 64 * 1024;

/// What the request headers say about its body.
pub struct Framing {
    pub content_length: Option<usize>,
    pub expect_continue: bool,
}

impl Framing {
    pub fn of(session: &Session) -> Framing {
        let h = &session.req_header().headers;
        Framing {
            content_length: h
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok()),
            expect_continue: h.get(header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue")),
        }
    }
}

/// Reads the whole body (at most `max` bytes). `Ok(Err(reject))` when the client must be told
/// no; `Err` for I/O failures.
pub async fn pre_read(
    session: &mut Session,
    framing: &Framing,
    max: usize,
) -> Result<std::result::Result<Bytes, Reject>> {
    if framing.content_length.is_some_and(|n| n > max) {
        return Ok(Err(Reject::TOO_LARGE));
    }
    if framing.expect_continue {
        // We read the body before any upstream exists, so nobody else will say "continue".
        let keepalive = session.get_keepalive();
        session.write_continue_response().await?;
        session.set_keepalive(keepalive);
    }
    let expected = framing.content_length;
    // Small bodies arrive in one read: keep that Bytes as is and copy only when a second
    // chunk shows up.
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut total = 0usize;
    loop {
        if expected.is_none_or(|n| n - total.min(n) <= REPLAY_LIMIT) {
            session.enable_retry_buffering();
        }
        let Some(chunk) = session.read_request_body().await? else {
            break;
        };
        total += chunk.len();
        if total > max {
            return Ok(Err(Reject::TOO_LARGE));
        }
        if expected.is_none() && total > REPLAY_LIMIT {
            return Ok(Err(Reject::LENGTH_REQUIRED));
        }
        match (&mut first, &mut joined) {
            (None, _) => first = Some(chunk),
            (Some(head), None) => {
                let mut all = BytesMut::with_capacity(expected.unwrap_or(total).max(total));
                all.extend_from_slice(head);
                all.extend_from_slice(&chunk);
                joined = Some(all);
            }
            (Some(_), Some(all)) => all.extend_from_slice(&chunk),
        }
    }
    if total > 0 && (session.retry_buffer_truncated() || session.get_retry_buffer().is_none()) {
        // The replay invariant did not hold (should not happen with Content-Length).
        return Ok(Err(Reject::LENGTH_REQUIRED));
    }
    Ok(Ok(match joined {
        Some(all) => all.freeze(),
        None => first.unwrap_or_default(),
    }))
}

/// `request_body_filter` for a pre-read body: the first call of an attempt carries the whole
/// body, later calls carry nothing. Streaming bodies are only counted against the limit.
pub fn replay(body: &mut Option<Bytes>, full: Option<&Bytes>, sent: &mut bool) {
    let Some(full) = full else { return };
    if !*sent {
        *body = Some(full.clone());
        *sent = true;
    } else if body.is_some() {
        *body = Some(Bytes::new());
    }
}
