//! `sse_endpoint`: the legacy endpoint-event sniff fed a stream in arbitrary chunks. It never
//! panics; what it forwards is the stream byte for byte except that at most one session id
//! is replaced by its token (nothing lost, duplicated or reordered); the result does not
//! depend on the chunking; the stream is released once the first event is decided, and
//! never held past the sniffing cap.
//!
//! Input: a flags byte (bit 0: the wrap declines; bit 1: end the stream with an extra empty
//! chunk), a count byte (up to 15 cuts), that many chunk lengths, then the stream itself
//! (the last chunk is whatever the cuts leave).

use std::cell::RefCell;

use mcp_edge::proxy::sse_event::{EndpointSniff, MAX_SNIFF};

use crate::input::Reader;

pub fn check(data: &[u8]) {
    let mut input = Reader(data);
    let flags = input.u8();
    let cuts = input.u8() % 16;
    let sizes: Vec<usize> = (0..cuts).map(|_| usize::from(input.u8())).collect();
    let stream = input.rest();
    let declines = flags & 1 != 0;
    let mut chunks = Vec::new();
    let mut rest = stream;
    for size in sizes {
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        chunks.push(chunk);
        rest = tail;
    }
    chunks.push(rest);
    if flags & 2 != 0 {
        chunks.push(&[]);
    }

    let (chunked, sid) = forward(&chunks, declines);
    let (whole, whole_sid) = forward(&[stream], declines);
    assert_eq!(chunked, whole, "the chunking changed what was forwarded");
    assert_eq!(sid, whole_sid, "the chunking changed the session id read");
    match sid.filter(|_| !declines) {
        None => assert_eq!(chunked, stream, "changed a stream it did not rewrite"),
        Some(sid) => assert!(replaced_once(stream, &chunked, &sid, &token(&sid)), "not a one-id replacement"),
    }
}

/// What the client would receive, and the id the sniff asked to wrap (if any).
fn forward(chunks: &[&[u8]], declines: bool) -> (Vec<u8>, Option<String>) {
    let mut sniff = EndpointSniff::default();
    let seen = RefCell::new(None);
    let mut out = Vec::new();
    let mut sniffing = true;
    let mut held = 0;
    for (i, chunk) in chunks.iter().enumerate() {
        if !sniffing {
            out.extend_from_slice(chunk);
            continue;
        }
        held += chunk.len();
        let end = i + 1 == chunks.len();
        let wrap = |sid: &str| {
            assert!(seen.replace(Some(sid.to_owned())).is_none(), "asked to wrap twice");
            (!declines).then(|| token(sid))
        };
        match sniff.push(chunk, end, wrap) {
            Some(released) => {
                out.extend_from_slice(&released);
                sniffing = false;
            }
            None => {
                assert!(!end, "held the end of the stream");
                assert!(held < MAX_SNIFF, "held {held} bytes, past the sniffing cap");
            }
        }
    }
    (out, seen.into_inner())
}

/// Tokens carry the id so a lost or duplicated byte of it shows.
fn token(sid: &str) -> String {
    format!("e1.[{sid}]")
}

/// Whether `out` is `input` with one occurrence of `sid` replaced by `token`.
fn replaced_once(input: &[u8], out: &[u8], sid: &str, token: &str) -> bool {
    let (sid, token) = (sid.as_bytes(), token.as_bytes());
    if out.len() + sid.len() != input.len() + token.len() {
        return false;
    }
    let common_prefix = input.iter().zip(out).take_while(|(a, b)| a == b).count();
    (0..=common_prefix.min(input.len())).any(|at| {
        input[at..].starts_with(sid)
            && out[at..].starts_with(token)
            && input[at + sid.len()..] == out[at + token.len()..]
    })
}
