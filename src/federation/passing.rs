//! A member's message the proxy does not hold whole, judged as it passes: an event longer
//! than a call's stream holds ([`PassingEvent`]), and a member's JSON answer
//! ([`JsonAnswer`]). Its bytes go on as they come; the byte that would complete a message that
//! may not pass (the `}` that closes it, the blank line that ends its event) never does, and
//! the response is cut there (`proxy::transform`): a client acts only on a whole message, so a
//! member cannot answer another member's call, or the call twice, by padding its message
//! past what is held. What may pass is what [`super::relay`] passes of a held one; requests
//! and notifications pass as sent (a request keeps the member's own id, which leads nowhere).
//!
//! Not here: reading the held events (`relay`), the JSON syntax (`scanner`).

use super::relay;
use super::scanner::{Refusal, Scanner, Top};

/// What a member may say on a call's stream or in its answer, read from the message's
/// top-level keys: JSON-RPC 2.0, and a request or notification (a string `method`), or the
/// call's own answer, once. `answered` is set by the call's answer.
pub fn judge(top: &Top, call: Option<&[u8]>, answered: &mut bool) -> Result<(), Refusal> {
    let two = |v: &[u8]| v == br#""2.0""# || serde_json::from_slice::<String>(v).is_ok_and(|v| v == "2.0");
    if !top.version.as_deref().is_some_and(two) {
        return Err(Refusal::NotRpc);
    }
    if top.has("method") {
        // A request that also carries an answer's keys: a lenient client reads an answer.
        let answer_keys = top.has("result") || top.has("error");
        let null_id = top.id.as_deref().is_some_and(|id| id == b"null");
        return match top.method == Some(b'"') && !null_id && !answer_keys {
            true => Ok(()),
            false => Err(Refusal::NotRpc),
        };
    }
    if !relay::answers(top.id.as_deref(), call) {
        return Err(Refusal::Foreign);
    }
    match std::mem::replace(answered, true) {
        true => Err(Refusal::Again),
        false => Ok(()),
    }
}

/// A member's JSON answer to a call, read as it passes.
#[derive(Debug, Default)]
pub struct JsonAnswer {
    scanner: Scanner,
    judged: bool,
}

impl JsonAnswer {
    /// The next bytes of the answer; `end`: the last.
    pub fn push(&mut self, bytes: &[u8], end: bool, call: Option<&[u8]>) -> Result<(), Refusal> {
        self.scanner.push(bytes)?;
        if self.scanner.closed() && !self.judged {
            self.judged = true;
            judge(self.scanner.top(), call, &mut false)?;
        }
        // An empty body is no message; a cut-off one is not passed whole.
        match end && !self.scanner.closed() && !self.scanner.untouched() {
            true => Err(Refusal::Unfinished),
            false => Ok(()),
        }
    }
}

/// Where a [`PassingEvent`] is in its current line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// At the start of a line.
    Start,
    /// In a field's name: how much of it matched `data` (past 4, or `other`: another field).
    Name { matched: u8, other: bool },
    /// In a field's value (`data`: a data line; `first`: no byte of it read yet).
    Value { data: bool, first: bool },
    /// After a CR that ended a line with something in it: an LF here is the rest of a CRLF.
    Cr,
}

/// An event of a call's stream too long to hold, read as it passes: its data as a client
/// reads it (the values of its `data` lines, one leading space dropped, joined with LF), which
/// must be one message that may pass, whole by the blank line that ends the event. Lines end
/// as [`crate::proxy::sse_event::EventEnd`] ends them.
#[derive(Debug)]
pub struct PassingEvent {
    line: Line,
    scanner: Scanner,
    /// A data line came.
    data: bool,
}

impl Default for PassingEvent {
    fn default() -> Self {
        PassingEvent { line: Line::Start, scanner: Scanner::default(), data: false }
    }
}

impl PassingEvent {
    /// The next bytes of the event. Some(n): it ended after `bytes[..n]` (its blank line
    /// included). Err: the byte that would complete a message that may not pass is in `bytes`.
    pub fn feed(&mut self, bytes: &[u8], call: Option<&[u8]>, answered: &mut bool) -> Result<Option<usize>, Refusal> {
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            if self.line == Line::Cr {
                self.line = Line::Start;
                if b == b'\n' {
                    i += 1;
                    continue;
                }
            }
            let line_end = b == b'\n' || b == b'\r';
            match self.line {
                Line::Start if line_end => {
                    self.ended()?;
                    let lf = b == b'\r' && bytes.get(i + 1) == Some(&b'\n');
                    return Ok(Some(i + 1 + usize::from(lf)));
                }
                Line::Start => {
                    self.line = Line::Name { matched: 0, other: false };
                    self.name(b, call, answered)?;
                }
                Line::Name { .. } => self.name(b, call, answered)?,
                Line::Value { .. } if line_end => self.line_end(b),
                Line::Value { data, first } => {
                    // The rest of the value, up to its line's end, in one piece.
                    let rest = bytes.get(i..).unwrap_or_default();
                    let run = rest.iter().position(|&c| c == b'\n' || c == b'\r').unwrap_or(rest.len());
                    self.line = Line::Value { data, first: false };
                    if data {
                        let value = rest.get(usize::from(first && b == b' ')..run).unwrap_or_default();
                        self.data_bytes(value, call, answered)?;
                    }
                    i += run;
                    continue;
                }
                Line::Cr => {}
            }
            i += 1;
        }
        Ok(None)
    }

    /// A byte of a field's name (or the byte that ends it).
    fn name(&mut self, b: u8, call: Option<&[u8]>, answered: &mut bool) -> Result<(), Refusal> {
        let Line::Name { matched, other } = self.line else { return Ok(()) };
        let data = matched == 4 && !other;
        match b {
            b':' => {
                self.line = Line::Value { data, first: true };
                if data {
                    self.data_line(call, answered)?;
                }
            }
            b'\n' | b'\r' => {
                // A line `data` without a colon: a data line with an empty value.
                if data {
                    self.data_line(call, answered)?;
                }
                self.line_end(b);
            }
            _ => {
                let fits = b"data".get(usize::from(matched)) == Some(&b) && !other;
                self.line = Line::Name { matched: matched.saturating_add(1).min(5), other: !fits };
            }
        }
        Ok(())
    }

    fn line_end(&mut self, b: u8) {
        self.line = if b == b'\r' { Line::Cr } else { Line::Start };
    }

    /// A data line starts: after the first, its value joins the data after an LF.
    fn data_line(&mut self, call: Option<&[u8]>, answered: &mut bool) -> Result<(), Refusal> {
        if std::mem::replace(&mut self.data, true) {
            self.data_bytes(b"\n", call, answered)?;
        }
        Ok(())
    }

    fn data_bytes(&mut self, bytes: &[u8], call: Option<&[u8]>, answered: &mut bool) -> Result<(), Refusal> {
        let closed = self.scanner.closed();
        self.scanner.push(bytes)?;
        if !closed && self.scanner.closed() {
            judge(self.scanner.top(), call, answered)?;
        }
        Ok(())
    }

    /// The blank line: an event whose data began must hold a whole message.
    fn ended(&self) -> Result<(), Refusal> {
        match self.scanner.closed() || self.scanner.untouched() {
            true => Ok(()),
            false => Err(Refusal::Unfinished),
        }
    }
}

#[cfg(test)]
#[path = "passing_tests.rs"]
mod tests;
