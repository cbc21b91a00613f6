//! The first event of a legacy HTTP+SSE stream, read as it streams past: where it ends (an
//! incremental, bounded scan that knows all three SSE line endings, CRLF, LF and CR) and, when
//! it is the `endpoint` event, the same bytes with the session id in its URL replaced by a
//! token. Pure: the caller supplies the wrapping (sealing) and owns the stream. Nothing here
//! reads past the first event, decides what a session is, or parses events in general.

use std::ops::Range;

use super::affinity::session_param;

/// The first event of a legacy stream is a short line; give up sniffing past this many bytes.
pub const MAX_SNIFF: usize = 4096;

/// The start of a stream being watched: chunks are held back until its first event is decided.
#[derive(Debug, Default)]
pub struct EndpointSniff {
    held: Vec<u8>,
    first: FirstEvent,
}

impl EndpointSniff {
    /// Takes the next chunk (`end`: it is the last). Returns what to forward once the first
    /// event is decided: all bytes held so far, the event rewritten when it is an endpoint event
    /// that `wrap` accepts. None: keep holding (the caller forwards nothing yet).
    pub fn push(&mut self, chunk: &[u8], end: bool, wrap: impl FnOnce(&str) -> Option<String>) -> Option<Vec<u8>> {
        self.held.extend_from_slice(chunk);
        match self.first.scan(&self.held, MAX_SNIFF) {
            Split::Ends(n) => {
                let rewritten = self.held.split_at_checked(n).and_then(|(event, rest)| {
                    let mut out = rewrite_endpoint(event, wrap)?;
                    out.extend_from_slice(rest);
                    Some(out)
                });
                Some(rewritten.unwrap_or_else(|| std::mem::take(&mut self.held)))
            }
            Split::TooLong => Some(std::mem::take(&mut self.held)),
            Split::Pending if end => Some(std::mem::take(&mut self.held)),
            Split::Pending => None,
        }
    }
}

/// Where the first event of a stream ends, found a chunk at a time: each byte is looked at once.
#[derive(Debug, Default)]
pub struct FirstEvent {
    scanned: usize,
    state: Scan,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// Inside a line; `empty` until a byte of it is seen.
    Line { empty: bool },
    /// Just after a CR that ended a non-empty line: an LF here is the rest of a CRLF.
    Cr,
}

impl Default for Scan {
    fn default() -> Scan {
        Scan::Line { empty: true }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Split {
    /// The first event may end in a later chunk.
    Pending,
    /// The first event is the first `n` bytes, its blank line included.
    Ends(usize),
    /// No blank line within the cap: not an event worth holding the stream for.
    TooLong,
}

impl FirstEvent {
    /// `held` is the stream so far; earlier calls saw a prefix of it, which is not rescanned.
    /// The event must end (its blank line seen) within the first `cap` bytes.
    pub fn scan(&mut self, held: &[u8], cap: usize) -> Split {
        let stop = held.len().min(cap);
        let fresh = held.get(self.scanned..stop).unwrap_or_default();
        for (i, &b) in (self.scanned..).zip(fresh) {
            let empty = match (self.state, b) {
                (Scan::Cr, b'\n') => {
                    self.state = Scan::Line { empty: true };
                    continue;
                }
                (Scan::Cr, _) => true,
                (Scan::Line { empty }, _) => empty,
            };
            self.state = match b {
                b'\n' if empty => return Split::Ends(i + 1),
                // A CR ends the event at once: waiting for a possible LF could stall a
                // CR-framed stream until the server next writes. An LF at hand goes with it.
                b'\r' if empty => return Split::Ends(i + 1 + usize::from(held.get(i + 1) == Some(&b'\n'))),
                b'\n' => Scan::Line { empty: true },
                b'\r' => Scan::Cr,
                _ => Scan::Line { empty: false },
            };
        }
        self.scanned = stop;
        if stop >= cap {
            Split::TooLong
        } else {
            Split::Pending
        }
    }
}

/// The event with the session id in its endpoint URL replaced by `wrap(id)`; every other byte
/// (line endings, `id:` lines, comments, the rest of the URL) as it was. None when the event is
/// not UTF-8, not an endpoint event, its first data line has no session parameter, or `wrap`
/// declines.
pub fn rewrite_endpoint(event: &[u8], wrap: impl FnOnce(&str) -> Option<String>) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(event).ok()?;
    let sid = endpoint_session(text)?;
    let token = wrap(text.get(sid.clone())?)?;
    let (head, tail) = (event.get(..sid.start)?, event.get(sid.end..)?);
    let mut out = Vec::with_capacity(head.len() + token.len() + tail.len());
    out.extend_from_slice(head);
    out.extend_from_slice(token.as_bytes());
    out.extend_from_slice(tail);
    Some(out)
}

/// The byte range of the session id in an endpoint event's URL (its first data line).
pub fn endpoint_session(event: &str) -> Option<Range<usize>> {
    if !lines(event).any(|(_, line)| field(line, "event").is_some_and(|(_, v)| v == "endpoint")) {
        return None;
    }
    let (line_at, (value_at, url)) = lines(event).find_map(|(at, line)| Some((at, field(line, "data")?)))?;
    let (path, query) = url.split_once('?')?;
    let ((start, end), _) = session_param(query)?;
    let query_at = line_at + value_at + path.len() + 1;
    Some(query_at + start..query_at + end)
}

/// The lines of an event with their offsets, split at CRLF, LF or CR (terminators dropped).
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let rest = text.get(at..).filter(|r| !r.is_empty())?;
        let len = rest.find(['\r', '\n']).unwrap_or(rest.len());
        let terminator = match rest.as_bytes().get(len..) {
            Some([b'\r', b'\n', ..]) => 2,
            Some([_, ..]) => 1,
            _ => 0,
        };
        let line = (at, rest.get(..len)?);
        at += len + terminator;
        Some(line)
    })
}

/// The value of an SSE field line (`name: value` or `name:value`, surrounding whitespace
/// ignored) and where it starts in the line.
fn field<'a>(line: &'a str, name: &str) -> Option<(usize, &'a str)> {
    let value = line.strip_prefix(name)?.strip_prefix(':')?.trim_start();
    Some((line.len() - value.len(), value.trim_end()))
}

#[cfg(test)]
#[path = "sse_event_tests.rs"]
mod tests;
