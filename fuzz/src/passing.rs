//! `passing`: a member's message read as it passes (`federation::scanner`,
//! `federation::passing`), checked against an independent reading of the whole (serde_json).
//! For any bytes, split anywhere: the reading never panics and gives the same outcome whole
//! or split; a message it accepts is one JSON object whose top-level `jsonrpc` and `id` are
//! what it noted, byte for byte; one JSON object without a JSON-RPC key twice or spelled as
//! another is accepted. As an event of a call's stream (id "c1"): it ends where the proxy's
//! event reader ends it, and it passes only when its data is empty or a message that may pass
//! (JSON-RPC 2.0; a request or notification with a string method, or the call's answer), and
//! always when it is one.
//!
//! Input: the first byte picks the split point (scaled to the rest's length); the rest is the
//! message, and, with a `data: ` line before it and a blank line after, the event.

use mcp_edge::federation::passing::{judge, PassingEvent};
use mcp_edge::federation::scanner::{Refusal, Scanner, MAX_DEPTH};
use mcp_edge::proxy::sse_event::{self, EventEnd};

use crate::message::Reading;

const RPC_KEYS: [&str; 6] = ["jsonrpc", "id", "method", "params", "result", "error"];

const CALL: &[u8] = b"\"c1\"";

pub fn check(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else { return };
    let at = rest.len() * usize::from(first) / 255;
    message(rest, at);
    event(rest, at);
}

fn scan(pieces: &[&[u8]]) -> (Result<(), Refusal>, Scanner) {
    let mut s = Scanner::default();
    let out = pieces.iter().try_for_each(|p| s.push(p));
    (out, s)
}

fn message(data: &[u8], at: usize) {
    let (whole, s) = scan(&[data]);
    let (a, b) = data.split_at(at.min(data.len()));
    let (split, t) = scan(&[a, b]);
    assert_eq!(whole, split, "split at {at}");
    assert_eq!((s.closed(), s.top().id.clone()), (t.closed(), t.top().id.clone()), "split at {at}");
    let reading = Reading::of(data);
    let depth = nesting(data);
    if whole.is_ok() && s.closed() && std::str::from_utf8(data).is_ok() && depth < 128 && !surrogates(data) {
        let msg = reading.msg.as_ref().expect("what the scanner accepts is one JSON object");
        let raw = |k: &str| msg.get(k).map(|v| v.get().as_bytes().to_vec());
        let id = raw("id").filter(|v| v.len() <= 1024);
        assert_eq!(s.top().id, id, "the id as written");
        let version = raw("jsonrpc").filter(|v| v.len() <= 64);
        assert_eq!(s.top().version, version, "jsonrpc as written");
    }
    // One JSON object, its JSON-RPC keys once and none spelled as another: accepted.
    if reading.msg.is_some() && !reading.alias && !rpc_twice(data) && reading.plain && depth < MAX_DEPTH {
        assert_eq!(whole, Ok(()), "JSON refused");
        assert!(s.closed(), "a whole object not closed");
    }
}

/// Whether a `\u` escape names a surrogate: JSON text a client's `JSON.parse` reads (a lone
/// one included), which serde_json refuses alone; the oracle says nothing of such input.
fn surrogates(data: &[u8]) -> bool {
    data.windows(4).any(|w| {
        w[0] == b'\\'
            && w[1] == b'u'
            && w[2].eq_ignore_ascii_case(&b'd')
            && matches!(w[3].to_ascii_lowercase(), b'8'..=b'9' | b'a'..=b'f')
    })
}

/// Deepest nesting, read apart (strings skipped).
fn nesting(data: &[u8]) -> usize {
    let (mut depth, mut deepest, mut string, mut escaped) = (0usize, 0, false, false);
    for &b in data {
        match (string, escaped, b) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') => string = false,
            (true, ..) => {}
            (false, _, b'"') => string = true,
            (false, _, b'{' | b'[') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, _, b'}' | b']') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Whether a JSON-RPC key comes twice (serde's map keeps the last: read every pair).
fn rpc_twice(data: &[u8]) -> bool {
    let Some(keys) = crate::message::keys(data) else { return false };
    RPC_KEYS.iter().any(|k| keys.iter().filter(|key| key == k).count() > 1)
}

fn event(data: &[u8], at: usize) {
    let mut event = b"data: ".to_vec();
    event.extend_from_slice(data);
    event.extend_from_slice(b"\n\n");
    let cut = (at + 6).min(event.len());
    let (a, b) = event.split_at(cut);
    let mut passing = PassingEvent::default();
    let mut end = EventEnd::default();
    let mut answered = false;
    let mut outcome = None;
    let mut offset = 0;
    for piece in [a, b] {
        let ended = end.find(piece);
        match passing.feed(piece, Some(CALL), &mut answered) {
            Ok(Some(n)) => {
                assert_eq!(ended, Some(n), "the event ends where the reader ends it");
                outcome = Some(Ok(offset + n));
                break;
            }
            Ok(None) => assert_eq!(ended, None, "the reader ended an event the reading goes on with"),
            Err(refusal) => {
                outcome = Some(Err(refusal));
                break;
            }
        }
        offset += piece.len();
    }
    let Some(outcome) = outcome else { panic!("the event's blank line came and nothing ended it") };
    // The event as the reader cuts it (the blank line after the input always ends one).
    let ends = EventEnd::default().find(&event).unwrap_or(event.len());
    let data = sse_event::data(event.get(..ends).unwrap_or_default()).map(|(d, _)| d).unwrap_or_default();
    // As a client decodes it (invalid UTF-8 becomes U+FFFD).
    let data = String::from_utf8_lossy(&data).into_owned().into_bytes();
    let empty = data.trim_ascii().is_empty();
    let reading = Reading::of(&data);
    let may_pass = reading.msg.as_ref().is_some_and(|m| {
        let method = m.get("method").map(|v| v.get());
        let id = m.get("id").map(|v| v.get());
        match method {
            // A request or notification that carries an answer's keys too is neither: a
            // lenient client reads an answer.
            Some(method) => {
                method.starts_with('"') && id != Some("null") && !m.contains_key("result") && !m.contains_key("error")
            }
            None => id.is_some_and(|id| mcp_edge::federation::relay::same_id(id.as_bytes(), CALL)),
        }
    });
    if outcome.is_ok() && !surrogates(&data) {
        assert!(
            empty || (may_pass && (reading.rpc || reading.escaped_rpc)),
            "passed: {:?}",
            String::from_utf8_lossy(&data)
        );
    }
    let depth = nesting(&data);
    if reading.well_formed() && may_pass && !rpc_twice(&data) && depth < MAX_DEPTH {
        assert!(outcome.is_ok(), "refused {outcome:?}: {:?}", String::from_utf8_lossy(&data));
    }
    // The same verdict, judged whole.
    if let (Ok(_), false) = (outcome, empty) {
        let (scanned, s) = scan(&[&data]);
        assert!(scanned.is_ok() && s.closed());
        assert_eq!(judge(s.top(), Some(CALL), &mut false), Ok(()));
    }
}
