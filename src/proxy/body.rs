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
//!
//! Also the one reading of `Content-Length` ([`content_length`], as Pingora frames bodies) and
//! the body half of the request clock: `proxy.body_timeout` runs from the end of the head
//! (see `crate::downstream`) until [`pre_read`] or the last `request_body_filter` call sees
//! the end of the body; a read that would wait past it fails and the client gets 408.

use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap};
use pingora::proxy::Session;
use pingora::Result;

use super::reply::Reject;
use crate::downstream::clock;

/// Pingora's retry buffer size (`BODY_BUF_LIMIT` in pingora-core).
pub const REPLAY_LIMIT: usize = 64 * 1024;

/// What the request headers say about its body.
pub struct Framing {
    pub content_length: Option<usize>,
    pub expect_continue: bool,
    /// `Content-Length` present but not one number (Pingora refuses such heads before any
    /// hook runs; kept so this module never guesses).
    pub bad_length: bool,
}

impl Framing {
    pub fn of(session: &Session) -> Framing {
        let h = &session.req_header().headers;
        let length = content_length(h);
        Framing {
            content_length: length.ok().flatten(),
            bad_length: length.is_err(),
            expect_continue: h.get(header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue")),
        }
    }
}

/// `Content-Length` is present but is not one decimal number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadLength;

/// The body length `Content-Length` declares, read the way Pingora frames the body
/// (pingora-core `content_length_parse_all`): repeated fields and comma-joined lists are one
/// length when every item is the same number (`10, 10` is 10), and an error when items differ
/// or one is not digits. `Transfer-Encoding` is not looked at (Pingora drops `Content-Length`
/// when both are sent).
pub fn content_length(headers: &HeaderMap) -> std::result::Result<Option<usize>, BadLength> {
    let mut length = None;
    for field in headers.get_all(header::CONTENT_LENGTH) {
        for item in field.as_bytes().split(|&b| b == b',') {
            let n = digits(item.trim_ascii()).ok_or(BadLength)?;
            if length.is_some_and(|seen| seen != n) {
                return Err(BadLength);
            }
            length = Some(n);
        }
    }
    Ok(length)
}

/// A non-empty run of ASCII digits that fits in `usize`.
fn digits(s: &[u8]) -> Option<usize> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0usize, |n, &b| {
        let d = b.is_ascii_digit().then(|| usize::from(b - b'0'))?;
        n.checked_mul(10)?.checked_add(d)
    })
}

/// Reads the whole body (at most `max` bytes). `Ok(Err(reject))` when the client must be told
/// no; `Err` for I/O failures.
pub async fn pre_read(
    session: &mut Session,
    framing: &Framing,
    max: usize,
) -> Result<std::result::Result<Bytes, Reject>> {
    if framing.bad_length {
        return Ok(Err(Reject::MALFORMED_BODY));
    }
    if framing.content_length.is_some_and(|n| n > max) {
        return Ok(Err(Reject::TOO_LARGE));
    }
    if framing.expect_continue {
        // We read the body before any upstream exists, so nobody else will say "continue".
        let keepalive = session.get_keepalive();
        session.write_continue_response().await?;
        session.set_keepalive(keepalive);
        // Answered here: gone from the head, so no backend is asked, and a backend's own `100`
        // is not passed on as a second one.
        session.req_header_mut().remove_header(&header::EXPECT);
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
        // Read errors are the client's (a bad chunk, a reset, a missed body deadline).
        let Some(chunk) = session.read_request_body().await.map_err(|e| e.into_down())? else {
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
    clock::with(|c| c.body_done());
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

/// The head is parsed (`early_request_filter`): let pipelined requests follow, and start the
/// body deadline, or stop the clock when no body follows.
pub fn head_read(session: &mut Session) {
    let downstream = session.as_downstream_mut();
    // Pingora drops a request pipelined behind another unless told it may keep reading.
    downstream.set_pipelining_enabled(true);
    // Interim heads (`103` and the like) are of no use to an MCP client, and they would carry
    // a backend's fields past every rewrite (its raw session id, cookies): only a `100` the
    // client asked for passes (a `101` is refused: `upstream_response_filter`).
    downstream.set_ignore_info_resp(true);
    if session.req_header().version == http::Version::HTTP_10 {
        // An HTTP/1.0 client's expectation is ignored (RFC 9110 10.1.1): it may take a `100`
        // for the answer. Gone from the head, it is neither answered nor forwarded.
        session.req_header_mut().remove_header(&header::EXPECT);
    }
    collapse_length(session);
    let has_body = super::has_body(session.req_header());
    clock::with(|c| c.head_done(has_body));
}

/// `Content-Length: 10, 10` (or the field twice) becomes `Content-Length: 10`, so the backend
/// gets the one length the proxy framed the body with (many servers refuse a list).
fn collapse_length(session: &mut Session) {
    let headers = &session.req_header().headers;
    let mut fields = headers.get_all(header::CONTENT_LENGTH).iter();
    let listed = match (fields.next(), fields.next()) {
        (Some(first), None) => first.as_bytes().contains(&b','),
        (Some(_), Some(_)) => true,
        (None, _) => false,
    };
    if let (true, Ok(Some(n))) = (listed, content_length(headers)) {
        // Only fails on a header name or value that cannot be one; neither can here.
        let _ = session.req_header_mut().insert_header(header::CONTENT_LENGTH, n);
    }
}

#[cfg(test)]
mod tests {
    use super::{content_length, BadLength};
    use http::{header::CONTENT_LENGTH, HeaderMap, HeaderValue};

    fn length(values: &[&'static str]) -> Result<Option<usize>, BadLength> {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(CONTENT_LENGTH, HeaderValue::from_static(v));
        }
        content_length(&h)
    }

    #[test]
    fn repeated_identical_lengths_are_one_length() {
        assert_eq!(length(&[]), Ok(None));
        assert_eq!(length(&["10"]), Ok(Some(10)));
        assert_eq!(length(&[" 10 "]), Ok(Some(10)));
        assert_eq!(length(&["10, 10"]), Ok(Some(10)));
        assert_eq!(length(&["10", "10,10"]), Ok(Some(10)));
    }

    #[test]
    fn differing_or_malformed_lengths_are_refused() {
        assert_eq!(length(&["10, 11"]), Err(BadLength));
        assert_eq!(length(&["10", "11"]), Err(BadLength));
        for bad in ["", "+10", "-1", "1e3", "0x10", "10,", "99999999999999999999999"] {
            assert_eq!(length(&[bad]), Err(BadLength), "{bad:?}");
        }
    }
}
