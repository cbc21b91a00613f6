//! A list answer driven through the filter a chunk at a time, in the two shapes an MCP server
//! answers with. JSON: the body is collected (at most [`MAX_ANSWER`]), filtered once whole.
//! SSE: events are cut as they arrive ([`EventReader`]); only an event whose `data` is the
//! answer is rewritten, every other event (progress, logging, a priming event) is forwarded
//! byte for byte as soon as its blank line arrives; once every wanted list is answered the
//! rest of the stream passes without being read.
//!
//! An answer that cannot be filtered (too large, not JSON, compressed, of an unexpected type)
//! is refused: the client gets a JSON-RPC error -32603 with the request's id in place of the
//! answer, and nothing of the backend's answer. Pure: the caller decides who may see what.

use super::filter::{filter, Filtered};
use super::{ListKind, Wanted, MAX_ANSWER};
use crate::mcp::error::{error_body, RpcCode};
use crate::proxy::sse_event::{self, EventReader};

/// Why an answer was refused (for the one log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    TooLarge,
    Unreadable,
    Compressed,
    UnexpectedType,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::TooLarge => "answer over 8 MiB",
            Refusal::Unreadable => "answer not readable as a list result",
            Refusal::Compressed => "answer compressed despite Accept-Encoding: identity",
            Refusal::UnexpectedType => "answer neither application/json nor text/event-stream",
        }
    }

    /// The `reason` label of `list_answers_refused_total`.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::TooLarge => "too_large",
            Refusal::Unreadable => "unreadable",
            Refusal::Compressed => "compressed",
            Refusal::UnexpectedType => "unexpected_type",
        }
    }
}

/// How the response head must change, decided once from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// Not an answer to filter (an HTTP error, no body): forward untouched, disarm.
    Untouched,
    /// The body will change length: drop `Content-Length` (the body goes out chunked).
    Reframe,
    /// Refused: also answer as `application/json` without `Content-Encoding`.
    Refuse(Refusal),
}

#[derive(Debug)]
enum Mode {
    /// Until the response head is seen.
    Armed,
    Json(Vec<u8>),
    Sse {
        events: EventReader,
        answered: u64,
    },
    /// Every wanted list was answered: the rest passes as it comes.
    Through,
    /// The error answer is sent (or goes with the next chunk); the backend's bytes are dropped.
    Refused {
        sent: bool,
    },
}

/// One request's list answers on their way to the client.
#[derive(Debug)]
pub struct Answer {
    wanted: Wanted,
    mode: Mode,
}

/// What to send the client for one chunk.
#[derive(Debug, PartialEq, Eq)]
pub enum Out {
    /// The chunk as it came.
    Same,
    /// These bytes instead (possibly none).
    Bytes(Vec<u8>),
}

impl Answer {
    pub fn new(wanted: Wanted) -> Answer {
        Answer { wanted, mode: Mode::Armed }
    }

    /// Reads the response head: `status`, and the raw `Content-Type` and `Content-Encoding`.
    pub fn head(&mut self, status: u16, content_type: Option<&[u8]>, encoding: Option<&[u8]>) -> Head {
        if !(200..300).contains(&status) || status == 204 {
            self.mode = Mode::Through;
            return Head::Untouched;
        }
        let is = |prefix: &[u8]| {
            content_type.is_some_and(|t| t.get(..prefix.len()).is_some_and(|p| p.eq_ignore_ascii_case(prefix)))
        };
        let refuse = if encoding.is_some_and(|e| !e.trim_ascii().eq_ignore_ascii_case(b"identity")) {
            Some(Refusal::Compressed)
        } else if is(b"application/json") {
            self.mode = Mode::Json(Vec::new());
            None
        } else if is(b"text/event-stream") {
            self.mode = Mode::Sse { events: EventReader::new(MAX_ANSWER), answered: 0 };
            None
        } else {
            Some(Refusal::UnexpectedType)
        };
        match refuse {
            Some(why) => {
                self.mode = Mode::Refused { sent: false };
                Head::Refuse(why)
            }
            None => Head::Reframe,
        }
    }

    /// Takes the next chunk of the body (`end`: the last). `allows(kind, name)`: whether the
    /// caller may use the entry. A refusal is returned the once it happens.
    pub fn push<A: Fn(ListKind, &str) -> bool>(
        &mut self,
        chunk: &[u8],
        end: bool,
        allows: &A,
    ) -> (Out, Option<Refusal>) {
        match &mut self.mode {
            Mode::Armed | Mode::Through => (Out::Same, None),
            Mode::Refused { sent: true } => (Out::Bytes(Vec::new()), None),
            Mode::Refused { sent: false } => {
                self.mode = Mode::Refused { sent: true };
                (Out::Bytes(self.error()), None)
            }
            Mode::Json(body) => {
                if body.len().saturating_add(chunk.len()) > MAX_ANSWER {
                    return self.refuse(Refusal::TooLarge);
                }
                body.extend_from_slice(chunk);
                if !end {
                    return (Out::Bytes(Vec::new()), None);
                }
                let body = std::mem::take(body);
                let mut answered = 0;
                match filter(&body, &self.wanted, allows, &mut answered) {
                    Filtered::Untouched => (Out::Bytes(body), None),
                    Filtered::Rewritten(out) => (Out::Bytes(out), None),
                    Filtered::Unreadable => self.refuse(Refusal::Unreadable),
                }
            }
            Mode::Sse { events, answered } => {
                let mut out = Vec::with_capacity(chunk.len());
                let mut refused = None;
                let (wanted, mut done) = (&self.wanted, *answered);
                let all = u32::try_from(wanted.lists.len()).ok().and_then(|n| 1u64.checked_shl(n)).map(|a| a - 1);
                let fed = events.feed(chunk, |event| {
                    if refused.is_some() {
                        // Nothing of the backend's answer follows a refusal.
                    } else if Some(done) == all {
                        // Answered: later events in this chunk pass as later chunks will.
                        out.extend_from_slice(event);
                    } else {
                        refused = pass_event(event, wanted, allows, &mut done, &mut out).err();
                    }
                });
                if fed.is_err() {
                    refused = Some(Refusal::TooLarge);
                }
                if end && refused.is_none() {
                    let rest = events.take_rest();
                    if Some(done) == all {
                        out.extend_from_slice(&rest);
                    } else {
                        refused = pass_event(&rest, wanted, allows, &mut done, &mut out).err();
                    }
                }
                *answered = done;
                if let Some(why) = refused {
                    // What went before the refused event (progress) stays sent.
                    let (Out::Bytes(error), why) = self.refuse(why) else { return (Out::Bytes(out), refused) };
                    out.extend_from_slice(&error);
                    return (Out::Bytes(out), why);
                }
                if Some(done) == all {
                    // Every answer is out; bytes already cut into a later event go out as they are.
                    out.extend_from_slice(&events.take_rest());
                    self.mode = Mode::Through;
                }
                (Out::Bytes(out), None)
            }
        }
    }

    /// Switches to refused and returns the error answer to send now: a JSON body, or an SSE
    /// event when the answer was a stream.
    fn refuse(&mut self, why: Refusal) -> (Out, Option<Refusal>) {
        let sse = matches!(self.mode, Mode::Sse { .. });
        self.mode = Mode::Refused { sent: true };
        let error = self.error();
        let out = if sse {
            let mut event = b"event: message\ndata: ".to_vec();
            event.extend_from_slice(&error);
            event.extend_from_slice(b"\n\n");
            event
        } else {
            error
        };
        (Out::Bytes(out), Some(why))
    }

    fn error(&self) -> Vec<u8> {
        let id = self.wanted.lists.first().map(|(id, _)| id.as_ref());
        error_body(id, RpcCode::InternalError, "Internal error: the proxy could not filter this list answer")
    }
}

/// Appends `event` to `out`: as it came, or with its data filtered when it is a wanted answer.
fn pass_event<A: Fn(ListKind, &str) -> bool>(
    event: &[u8],
    wanted: &Wanted,
    allows: &A,
    answered: &mut u64,
    out: &mut Vec<u8>,
) -> Result<(), Refusal> {
    let Some((data, lines)) = sse_event::data(event) else {
        out.extend_from_slice(event);
        return Ok(());
    };
    if data.trim_ascii().is_empty() {
        out.extend_from_slice(event);
        return Ok(());
    }
    let json = match filter(&data, wanted, allows, answered) {
        Filtered::Untouched => {
            out.extend_from_slice(event);
            return Ok(());
        }
        Filtered::Rewritten(json) => json,
        Filtered::Unreadable => return Err(Refusal::Unreadable),
    };
    // The event with its data lines replaced by one, in the place of the last: every other line
    // (id, event, comments) and every line ending kept. The last data line keeps its own ending,
    // so what followed it still follows the same bytes (a CR before a blank LF line stays a
    // line end, not half of a CRLF). JSON whitespace may hold line breaks; they become spaces.
    let last = lines.len().saturating_sub(1);
    let mut at = 0;
    for (i, line) in lines.iter().enumerate() {
        out.extend_from_slice(event.get(at..line.start).unwrap_or_default());
        if i == last {
            let body = event.get(line.clone()).unwrap_or_default();
            let ending = body.iter().rposition(|&b| b != b'\r' && b != b'\n').map_or(0, |p| p + 1);
            out.extend_from_slice(b"data: ");
            out.extend(json.iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
            out.extend_from_slice(body.get(ending..).unwrap_or_default());
        }
        at = line.end;
    }
    out.extend_from_slice(event.get(at..).unwrap_or_default());
    Ok(())
}
