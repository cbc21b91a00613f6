//! What clients take off the start of an event stream before they read it, taken off here
//! too, so that the proxy reads a federated call's stream from the byte clients read it from:
//! the UTF-8 byte order mark (the TypeScript SDK's `TextDecoderStream` decodes one away), and
//! the same mark decoded as Latin-1 and written again as UTF-8, `ï»¿` (eventsource-parser, under
//! the TypeScript SDK, strips `/^\xEF\xBB\xBF/` from its first chunk: in JavaScript those are
//! the three characters U+00EF U+00BB U+00BF). Each client strips at most one of each, in that
//! order, so one dropped here shifted the next to where a client strips it too (found by an
//! attack: two marks, then a forged answer's data line). Hence every one that leads the stream
//! is dropped, in any order and however many: what is left starts with a byte no client
//! strips, and every client reads it as the proxy does.
//!
//! Not owned here: reading the events (`call_stream`).

use std::borrow::Cow;

/// The sequences dropped from the stream's start.
const MARKS: [&[u8]; 2] = [b"\xEF\xBB\xBF", b"\xC3\xAF\xC2\xBB\xC2\xBF"];

/// Longest mark.
const LONGEST: usize = 6;

/// A stream's start, until its first byte that begins no mark.
#[derive(Debug, Default)]
pub struct Preamble {
    /// The bytes of a mark seen so far (withheld until the mark is whole, or turns out none).
    held: [u8; LONGEST],
    len: u8,
    /// The stream is past its start.
    past: bool,
}

impl Preamble {
    /// `chunk` without the marks that lead the stream; bytes withheld that turn out to be no
    /// mark go on in front of it.
    pub fn strip<'a>(&mut self, chunk: &'a [u8]) -> Cow<'a, [u8]> {
        if self.past {
            return Cow::Borrowed(chunk);
        }
        for (i, &b) in chunk.iter().enumerate() {
            let len = usize::from(self.len);
            let held = self.held;
            let seen = held.get(..len).unwrap_or_default();
            let extends = |m: &&&[u8]| m.len() > len && m.starts_with(seen) && m.get(len) == Some(&b);
            let Some(mark) = MARKS.iter().find(extends) else {
                self.past = true;
                let rest = chunk.get(i..).unwrap_or_default();
                if len == 0 {
                    return Cow::Borrowed(rest);
                }
                let mut out = seen.to_vec();
                out.extend_from_slice(rest);
                self.len = 0;
                return Cow::Owned(out);
            };
            if let Some(slot) = self.held.get_mut(len) {
                *slot = b;
            }
            self.len += 1;
            if usize::from(self.len) == mark.len() {
                self.len = 0;
            }
        }
        Cow::Borrowed(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::Preamble;

    /// The stream after [`Preamble::strip`], fed in `pieces`.
    fn fed(pieces: &[&[u8]]) -> Vec<u8> {
        let mut preamble = Preamble::default();
        pieces.iter().flat_map(|p| preamble.strip(p).into_owned()).collect()
    }

    /// `stream` fed in every split into two pieces, and byte by byte: always `expected`.
    fn always(stream: &[u8], expected: &[u8]) {
        for at in 0..=stream.len() {
            let (a, b) = stream.split_at(at);
            assert_eq!(fed(&[a, b]), expected, "split at {at}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(fed(&bytes), expected, "byte by byte");
    }

    #[test]
    fn every_mark_that_leads_the_stream_is_dropped_however_it_comes() {
        let data = b"data: x\n\n";
        always(&[b"\xEF\xBB\xBF", &data[..]].concat(), data);
        always(&[b"\xEF\xBB\xBF\xEF\xBB\xBF", &data[..]].concat(), data);
        always(&[b"\xC3\xAF\xC2\xBB\xC2\xBF", &data[..]].concat(), data);
        always(&[b"\xEF\xBB\xBF\xC3\xAF\xC2\xBB\xC2\xBF\xEF\xBB\xBF", &data[..]].concat(), data);
    }

    #[test]
    fn nothing_else_is_dropped() {
        let data = b"data: x\n\n";
        always(&[b"\xEF\xBB", &data[..]].concat(), &[b"\xEF\xBB", &data[..]].concat());
        always(&[b"\xC3\xAF\xC2\xBB", &data[..]].concat(), &[b"\xC3\xAF\xC2\xBB", &data[..]].concat());
        // A mark begun and left for the other's first byte: the half mark stays, the rest is
        // read from the byte that broke it.
        always(b"\xC3\xAF\xEF\xBB\xBFdata", b"\xC3\xAF\xEF\xBB\xBFdata");
        always(b"\xEF\xBB\xBFx\xEF\xBB\xBF", b"x\xEF\xBB\xBF");
        assert_eq!(fed(&[b"data: x\n\n", b"\xEF\xBB\xBF"]), b"data: x\n\n\xEF\xBB\xBF", "only at the start");
        assert_eq!(fed(&[b"\xC3"]), b"", "a stream that ends inside a mark gives nothing of it");
    }
}
