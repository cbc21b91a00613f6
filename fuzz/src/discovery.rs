//! `discovery`: a list answer (JSON body or SSE stream) driven through filtered discovery in
//! arbitrary chunks. It never panics; the result does not depend on the chunking; an SSE event
//! that is not the wanted answer comes out byte for byte, the answer event comes out as the
//! filtered JSON (valid when the input was) holding no entry the caller may not use, and a
//! refusal ends the stream; a JSON body
//! that was JSON comes out as JSON (filtered, untouched or the -32603 error).
//!
//! Input: a flags byte (bit 0: SSE, else JSON; bit 1: the 2026-07-28 era; bits 2-3: the list
//! kind), a count byte (up to 15 cuts), that many chunk lengths, then the body. The wanted id
//! is `1`; the caller may use every name without an `x`.

use bytes::Bytes;
use mcp_edge::discovery::answer::{Answer, Head, Out};
use mcp_edge::discovery::filter::{filter, Filtered};
use mcp_edge::discovery::{ListKind, Wanted};
use mcp_edge::mcp::method::Era;
use mcp_edge::proxy::sse_event;

use crate::input::Reader;

fn allows(_: ListKind, name: &str) -> bool {
    !name.contains('x')
}

pub fn check(data: &[u8]) {
    let mut input = Reader(data);
    let flags = input.u8();
    let cuts = input.u8() % 16;
    let sizes: Vec<usize> = (0..cuts).map(|_| usize::from(input.u8())).collect();
    let body = input.rest();
    let sse = flags & 1 != 0;
    let era = if flags & 2 != 0 { Era::Modern } else { Era::Legacy };
    let kind =
        [ListKind::Tools, ListKind::Prompts, ListKind::Resources, ListKind::Templates][usize::from(flags >> 2) & 3];
    // Id 1 asked for the list, id 2 for something else (its results pass).
    let wanted = Wanted { era, lists: vec![(Bytes::from_static(b"1"), kind)], others: vec![Bytes::from_static(b"2")] };

    let mut chunks = Vec::new();
    let mut rest = body;
    for size in sizes {
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        chunks.push(chunk);
        rest = tail;
    }
    chunks.push(rest);

    let chunked = drive(&wanted, sse, &chunks);
    let whole = drive(&wanted, sse, &[body]);
    assert_eq!(chunked, whole, "the chunking changed the answer");
    if sse {
        events_kept_or_filtered(&wanted, body, &whole);
    } else if serde_json::from_slice::<serde_json::Value>(body).is_ok() {
        let out: serde_json::Value = serde_json::from_slice(&whole).expect("JSON in, JSON out");
        assert_no_denied(&out, kind);
    }
}

/// What the client receives.
fn drive(wanted: &Wanted, sse: bool, chunks: &[&[u8]]) -> Vec<u8> {
    let mut answer = Answer::new(wanted.clone());
    let content_type: &[u8] = if sse { b"text/event-stream" } else { b"application/json" };
    assert_eq!(answer.head(200, Some(content_type), None), Head::Reframe);
    let mut out = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        match answer.push(chunk, i + 1 == chunks.len(), &allows).0 {
            Out::Same => out.extend_from_slice(chunk),
            Out::Bytes(b) => out.extend_from_slice(&b),
        }
    }
    out
}

/// Event by event (cut by the SSE rules on the whole stream, independently of the reader under
/// test): untouched events are the same bytes; the answer's data is the filtered JSON; after a
/// refusal the only event left is the error.
fn events_kept_or_filtered(wanted: &Wanted, input: &[u8], output: &[u8]) {
    let (ins, outs) = (events(input), events(output));
    let mut answered = 0u64;
    for (i, event) in ins.iter().enumerate() {
        let got = outs.get(i).copied().unwrap_or_default();
        if answered & 1 != 0 {
            assert_eq!(got, *event, "an event after the answer changed");
            continue;
        }
        let data = sse_event::data(event).map(|(d, _)| d).filter(|d| !d.trim_ascii().is_empty());
        let Some(data) = data else {
            assert_eq!(got, *event, "an event without data changed");
            continue;
        };
        match filter(&data, wanted, &allows, &mut answered) {
            Filtered::Untouched => assert_eq!(got, *event, "an event that is not the answer changed"),
            Filtered::Rewritten(json) => {
                let (out_data, _) = sse_event::data(got).expect("the answer keeps a data line");
                let flat: Vec<u8> = json.iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }).collect();
                assert_eq!(out_data, flat, "the answer event carries the filtered JSON on one line");
                // Kept values are raw input: JSON out when JSON in (a lone surrogate escape is
                // passed as it came, as JSON parsers differ on it).
                if serde_json::from_slice::<serde_json::Value>(&data).is_ok() {
                    let out: serde_json::Value = serde_json::from_slice(&out_data).expect("JSON in, JSON out");
                    assert_no_denied(&out, wanted.lists[0].1);
                }
            }
            Filtered::Unreadable => {
                let error = String::from_utf8_lossy(got);
                assert!(error.contains("-32603"), "a refusal is the error event: {error}");
                assert_eq!(outs.len(), i + 1, "nothing follows a refusal");
                return;
            }
        }
    }
    assert_eq!(outs.len(), ins.len(), "events were added or lost");
}

/// The stream cut into events by the SSE rules (a trailing unfinished event counts as one).
fn events(s: &[u8]) -> Vec<&[u8]> {
    let (mut all, mut start, mut i, mut line_empty) = (Vec::new(), 0, 0, true);
    while let Some(&b) = s.get(i) {
        if b == b'\r' || b == b'\n' {
            let next = if b == b'\r' && s.get(i + 1) == Some(&b'\n') { i + 2 } else { i + 1 };
            if line_empty {
                all.push(&s[start..next]);
                start = next;
            }
            line_empty = true;
            i = next;
        } else {
            line_empty = false;
            i += 1;
        }
    }
    if start < s.len() {
        all.push(&s[start..]);
    }
    all
}

/// No answer to id 1 lists an entry the caller may not use.
fn assert_no_denied(message: &serde_json::Value, kind: ListKind) {
    let answers: Vec<&serde_json::Value> = match message {
        serde_json::Value::Array(all) => all.iter().collect(),
        one => vec![one],
    };
    for m in answers.into_iter().filter(|m| m.get("method").is_none() && m.get("id") == Some(&1.into())) {
        let Some(entries) = m.get("result").and_then(|r| r.get(kind.key())).and_then(|l| l.as_array()) else {
            continue;
        };
        for e in entries {
            let name = e.get(kind.field()).and_then(|n| n.as_str());
            assert!(name.is_some_and(|n| allows(kind, n)), "a denied entry was listed: {e}");
        }
    }
}
