//! Server-sent events read as they stream past: where each event ends (an incremental, bounded
//! scan that knows all three SSE line endings, CRLF, LF and CR, with events split across
//! chunks at any byte: [`EventEnd`], [`EventReader`]), an event's `data` ([`data`]), and two
//! users of them: the first event of a legacy HTTP+SSE stream, rewritten when it is the
//! `endpoint` event so its session id becomes a token ([`EndpointSniff`]), and filtered
//! discovery's answer events (`crate::discovery`). Pure: callers supply the rewriting (sealing,
//! filtering) and own the stream. Nothing here decides what a session or an answer is.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::affinity::session_param;

/// The first event of a legacy stream is a short line; give up sniffing past this many bytes.
pub const MAX_SNIFF: usize = 4096;

/// The start of a stream being watched: chunks are held back until its first event is decided.
#[derive(Debug, Default)]
pub struct EndpointSniff {
    held: Vec<u8>,
    first: EventEnd,
}

impl EndpointSniff {
    /// Takes the next chunk (`end`: it is the last). Returns what to forward once the first
    /// event is decided: all bytes held so far, the event rewritten when it is an endpoint event
    /// that `wrap` accepts. None: keep holding (the caller forwards nothing yet).
    pub fn push(&mut self, chunk: &[u8], end: bool, wrap: impl FnOnce(&str) -> Option<String>) -> Option<Vec<u8>> {
        let before = self.held.len();
        self.held.extend_from_slice(chunk);
        let stop = self.held.len().min(MAX_SNIFF);
        let fresh = self.held.get(before.min(stop)..stop).unwrap_or_default();
        match self.first.find(fresh) {
            Some(n) => {
                let rewritten = self.held.split_at_checked(before + n).and_then(|(event, rest)| {
                    let mut out = rewrite_endpoint(event, wrap)?;
                    out.extend_from_slice(rest);
                    Some(out)
                });
                Some(rewritten.unwrap_or_else(|| std::mem::take(&mut self.held)))
            }
            // No blank line within the cap: not an event worth holding the stream for.
            None if stop >= MAX_SNIFF || end => Some(std::mem::take(&mut self.held)),
            None => None,
        }
    }
}

/// Where SSE events end, found a chunk at a time: each byte is looked at once, and the state
/// carries over between chunks, so an event (or a CRLF) may be split at any byte.
#[derive(Debug, Default)]
pub struct EventEnd {
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

impl EventEnd {
    /// Reads `fresh`, the bytes after those read before. Some(n): the current event ends after
    /// `fresh[..n]`, its blank line included, and what follows starts a new event.
    pub fn find(&mut self, fresh: &[u8]) -> Option<usize> {
        for (i, &b) in fresh.iter().enumerate() {
            let empty = match (self.state, b) {
                (Scan::Cr, b'\n') => {
                    self.state = Scan::Line { empty: true };
                    continue;
                }
                (Scan::Cr, _) => true,
                (Scan::Line { empty }, _) => empty,
            };
            self.state = match b {
                b'\n' | b'\r' if empty => {
                    self.state = Scan::default();
                    // A CR ends the event at once: waiting for a possible LF could stall a
                    // CR-framed stream until the server next writes. An LF at hand goes with it.
                    let lf = b == b'\r' && fresh.get(i + 1) == Some(&b'\n');
                    return Some(i + 1 + usize::from(lf));
                }
                b'\n' => Scan::Line { empty: true },
                b'\r' => Scan::Cr,
                _ => Scan::Line { empty: false },
            };
        }
        None
    }
}

/// An unfinished event grew past the reader's cap: it starts `at` bytes into the chunk fed
/// (0 when it started in an earlier one: [`EventReader::take_rest`] holds that part).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong {
    pub at: usize,
}

/// Bytes held in unfinished events by the readers that share it, past what each holds free
/// ([`FREE`]): many streams together hold no more than `limit`.
#[derive(Debug)]
pub struct Budget {
    held: AtomicUsize,
    limit: usize,
}

impl Budget {
    pub const fn new(limit: usize) -> Budget {
        Budget { held: AtomicUsize::new(0), limit }
    }

    /// Takes `n` bytes, unless that would pass the limit.
    pub fn take(&self, n: usize) -> bool {
        let taken = self.held.fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
            held.checked_add(n).filter(|total| *total <= self.limit)
        });
        taken.is_ok()
    }

    pub fn give_back(&self, n: usize) {
        self.held.fetch_sub(n, Ordering::AcqRel);
    }

    pub fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }
}

/// What a reader with a [`Budget`] holds of an unfinished event without drawing on it.
pub const FREE: usize = 16 << 10;

/// A stream cut into whole events, a chunk at a time: an event is handed over as soon as its
/// blank line arrives, and only an unfinished event is held (at most `cap` bytes; with a
/// budget, past [`FREE`] only while the budget has room).
#[derive(Debug)]
pub struct EventReader {
    end: EventEnd,
    partial: Vec<u8>,
    cap: usize,
    budget: Option<&'static Budget>,
    /// What the unfinished event holds of the budget.
    charged: usize,
}

impl EventReader {
    pub fn new(cap: usize) -> EventReader {
        EventReader { end: EventEnd::default(), partial: Vec::new(), cap, budget: None, charged: 0 }
    }

    /// A reader whose unfinished events past [`FREE`] draw on `budget`.
    pub fn with_budget(cap: usize, budget: &'static Budget) -> EventReader {
        EventReader { end: EventEnd::default(), partial: Vec::new(), cap, budget: Some(budget), charged: 0 }
    }

    /// Calls `each` with every event `chunk` completes, in order (events wholly inside the
    /// chunk are borrowed from it, not copied), and holds the unfinished rest.
    pub fn feed(&mut self, chunk: &[u8], mut each: impl FnMut(&[u8])) -> Result<(), TooLong> {
        let mut rest = chunk;
        while let Some(n) = self.end.find(rest) {
            let (tail, after) = rest.split_at_checked(n).unwrap_or((rest, &[]));
            if self.partial.is_empty() {
                each(tail);
            } else {
                self.partial.extend_from_slice(tail);
                each(&self.partial);
                self.partial.clear();
                self.release();
            }
            rest = after;
        }
        let held = self.partial.len().saturating_add(rest.len());
        if held > self.cap || !self.charge(held) {
            return Err(TooLong { at: chunk.len() - rest.len() });
        }
        self.partial.extend_from_slice(rest);
        Ok(())
    }

    /// Draws on the budget for an unfinished event of `held` bytes.
    fn charge(&mut self, held: usize) -> bool {
        let Some(budget) = self.budget else { return true };
        let need = held.saturating_sub(FREE).saturating_sub(self.charged);
        if need > 0 && !budget.take(need) {
            return false;
        }
        self.charged += need;
        true
    }

    fn release(&mut self) {
        if let Some(budget) = self.budget.filter(|_| self.charged > 0) {
            budget.give_back(self.charged);
        }
        self.charged = 0;
    }

    /// The unfinished event at the end of the stream (empty when the stream ended cleanly).
    pub fn take_rest(&mut self) -> Vec<u8> {
        self.release();
        std::mem::take(&mut self.partial)
    }

    /// After [`TooLong`], once the rest of that event was read elsewhere to its end
    /// (`federation::passing`): the next byte starts an event, as it does for a client.
    pub fn restart(&mut self) {
        self.end = EventEnd::default();
    }
}

impl Drop for EventReader {
    fn drop(&mut self) {
        self.release();
    }
}

/// An event's data as a client reads it (SSE: the values of its `data` lines, one leading
/// space dropped, joined with LF), and the byte range of every `data` line in `event`, each
/// with its line ending. None: the event has no `data` line.
pub fn data(event: &[u8]) -> Option<(Vec<u8>, Vec<Range<usize>>)> {
    let mut out: Option<(Vec<u8>, Vec<Range<usize>>)> = None;
    for (at, line, full) in raw_lines(event) {
        let value = match line.strip_prefix(b"data") {
            Some([]) => &[][..],
            Some([b':', v @ ..]) => v.strip_prefix(b" ").unwrap_or(v),
            _ => continue,
        };
        let (text, ranges) = out.get_or_insert_with(Default::default);
        if !ranges.is_empty() {
            text.push(b'\n');
        }
        text.extend_from_slice(value);
        ranges.push(at..at + full);
    }
    out
}

/// An event's `id` (its last `id` line, as a client reads it; an id holding NUL is ignored,
/// as the SSE spec says). None: no usable id.
pub fn id(event: &[u8]) -> Option<&str> {
    let value = last_field(event, b"id")?;
    std::str::from_utf8(value).ok().filter(|v| !v.contains('\0') && v.len() <= 1024)
}

/// Whether clients read the event as a `message` (no `event` field, an empty one, or
/// `message`): the SDKs ignore events of any other type.
pub fn is_message(event: &[u8]) -> bool {
    last_field(event, b"event").is_none_or(|kind| kind.is_empty() || kind == b"message")
}

/// An event's `retry`, in milliseconds (ASCII digits only, as the SSE spec says).
pub fn retry(event: &[u8]) -> Option<u64> {
    let value = last_field(event, b"retry")?;
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// The value of an event's last `name` field (one leading space dropped).
fn last_field<'a>(event: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    raw_lines(event)
        .filter_map(|(_, line, _)| match line.strip_prefix(name)? {
            [] => Some(&[][..]),
            [b':', v @ ..] => Some(v.strip_prefix(b" ").unwrap_or(v)),
            _ => None,
        })
        .last()
}

/// The lines of an event: offset, the line without its terminator, and its length with it.
fn raw_lines(event: &[u8]) -> impl Iterator<Item = (usize, &[u8], usize)> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let rest = event.get(at..).filter(|r| !r.is_empty())?;
        let len = rest.iter().position(|&b| b == b'\r' || b == b'\n').unwrap_or(rest.len());
        let terminator = match rest.get(len..) {
            Some([b'\r', b'\n', ..]) => 2,
            Some([_, ..]) => 1,
            _ => 0,
        };
        let line = (at, rest.get(..len)?, len + terminator);
        at += len + terminator;
        Some(line)
    })
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
