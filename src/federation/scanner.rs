//! One JSON-RPC message read as it streams past, a byte at a time, with no copy of it: for a
//! member's message too long to hold ([`super::passing`]). It owns the JSON syntax (one
//! object, nothing after it but whitespace) and what the top-level keys say (`jsonrpc`, `id`,
//! `method`, each once and none spelled as another); what a message may be, given the call it
//! answers, is `passing`'s.
//!
//! Not checked: that strings are UTF-8. A client decodes the stream lossily (invalid bytes
//! become U+FFFD), which cannot make a key or a structural character out of them.

use crate::federation::relay::RPC_KEYS;

/// Deepest nesting read (a member's answer nests a few levels; the bound keeps the reader's
/// state a fixed size whatever a member sends).
pub const MAX_DEPTH: usize = 1024;
/// Longest `id` kept to compare with the call's (a longer one answers no call).
const MAX_ID: usize = 1024;
/// Longest `jsonrpc` value kept (`"2.0"`, however escaped).
const MAX_VERSION: usize = 64;
/// Longest top-level key kept, unescaped: a key that reads as a JSON-RPC key ignoring case
/// has at most 7 characters of at most 3 bytes each (`fold`).
const MAX_KEY: usize = 32;

/// Why a message cannot pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("not one JSON object")]
    NotJson,
    #[error("nested deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("a JSON-RPC key twice")]
    KeyTwice,
    #[error("a key read as a JSON-RPC key")]
    KeyAlias,
    #[error("not JSON-RPC 2.0")]
    NotRpc,
    #[error("an answer to another request")]
    Foreign,
    #[error("the call answered twice")]
    Again,
    #[error("cut off")]
    Unfinished,
    #[error("compressed, or in a transfer coding")]
    Encoded,
    #[error("a content type clients read two ways, or not in UTF-8")]
    ContentType,
    #[error("a key where resource URIs are read, twice")]
    UriTwice,
}

impl Refusal {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::NotJson => "not_json",
            Refusal::TooDeep => "too_deep",
            Refusal::KeyTwice => "key_twice",
            Refusal::KeyAlias => "key_alias",
            Refusal::NotRpc => "not_jsonrpc",
            Refusal::Foreign => "foreign_answer",
            Refusal::Again => "second_answer",
            Refusal::Unfinished => "unfinished",
            Refusal::Encoded => "encoded",
            Refusal::UriTwice => "uri_twice",
            Refusal::ContentType => "content_type",
        }
    }
}

/// What the top-level keys said, once the object closed.
#[derive(Debug, Default, Clone)]
pub struct Top {
    /// The JSON-RPC keys seen (a bit each, in [`RPC_KEYS`] order).
    pub keys: u8,
    /// `jsonrpc`'s value as written (None past [`MAX_VERSION`]).
    pub version: Option<Vec<u8>>,
    /// `id`'s value as written (None past [`MAX_ID`]).
    pub id: Option<Vec<u8>>,
    /// The first byte of `method`'s value (`"` for a string).
    pub method: Option<u8>,
}

impl Top {
    pub fn has(&self, key: &str) -> bool {
        RPC_KEYS.iter().position(|k| *k == key).is_some_and(|i| self.keys & (1 << i) != 0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the object.
    Start,
    /// After `{`: a key or `}`.
    KeyOrEnd,
    /// After `,` in an object.
    Key,
    Colon,
    /// After `:`, or `,` in an array.
    Value,
    /// After `[`: a value or `]`.
    ValueOrEnd,
    /// After a value inside a container.
    CommaOrEnd,
    Str {
        key: bool,
        esc: Esc,
    },
    Num(Num),
    Lit {
        word: &'static [u8],
        at: u8,
    },
    /// After the object: whitespace only.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Esc {
    No,
    Backslash,
    /// `\u` and the hex digits read so far (count, value).
    Hex(u8, u32),
}

/// Where a number is in `-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Num {
    Minus,
    Zero,
    Int,
    Dot,
    Frac,
    E,
    ESign,
    Exp,
}

impl Num {
    fn next(self, b: u8) -> Option<Num> {
        Some(match (self, b) {
            (Num::Minus, b'0') => Num::Zero,
            (Num::Minus, b'1'..=b'9') => Num::Int,
            (Num::Int, b'0'..=b'9') => Num::Int,
            (Num::Zero | Num::Int, b'.') => Num::Dot,
            (Num::Dot | Num::Frac, b'0'..=b'9') => Num::Frac,
            (Num::Zero | Num::Int | Num::Frac, b'e' | b'E') => Num::E,
            (Num::E, b'+' | b'-') => Num::ESign,
            (Num::E | Num::ESign | Num::Exp, b'0'..=b'9') => Num::Exp,
            _ => return None,
        })
    }

    fn complete(self) -> bool {
        matches!(self, Num::Zero | Num::Int | Num::Frac | Num::Exp)
    }
}

/// The top-level value being kept, for the key it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Version,
    Id,
    Method,
}

impl Field {
    /// Most bytes of the value kept.
    fn cap(self) -> usize {
        match self {
            Field::Version => MAX_VERSION,
            Field::Id => MAX_ID,
            Field::Method => 1,
        }
    }
}

/// One message read as it passes ([`Scanner::push`]); [`Scanner::closed`] once its object
/// closed, then [`Scanner::top`] says what it said.
#[derive(Debug)]
pub struct Scanner {
    state: State,
    /// Open containers, one bit each (set: an object); `depth` of them.
    stack: [u64; MAX_DEPTH / 64],
    depth: usize,
    /// The top-level key being read, unescaped, and whether it grew past [`MAX_KEY`].
    key: Vec<u8>,
    long_key: bool,
    /// The top-level value being kept: which, its bytes as written, and whether it overflowed.
    field: Option<Field>,
    value: Vec<u8>,
    long_value: bool,
    top: Top,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            state: State::Start,
            stack: [0; MAX_DEPTH / 64],
            depth: 0,
            key: Vec::new(),
            long_key: false,
            field: None,
            value: Vec::new(),
            long_value: false,
            top: Top::default(),
        }
    }
}

fn whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

impl Scanner {
    /// Whether the object closed (and only whitespace followed).
    pub fn closed(&self) -> bool {
        self.state == State::Done
    }

    /// Whether nothing but whitespace came yet.
    pub fn untouched(&self) -> bool {
        self.state == State::Start
    }

    pub fn top(&self) -> &Top {
        &self.top
    }

    /// Reads the next bytes of the message.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), Refusal> {
        let mut rest = bytes;
        while let Some((&b, after)) = rest.split_first() {
            if let State::Str { key, esc: Esc::No } = self.state {
                // Most bytes are inside strings: their plain run in one piece.
                let run = rest.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).unwrap_or(rest.len());
                if let Some((plain, after)) = rest.split_at_checked(run).filter(|_| run > 0) {
                    self.plain_run(plain, key);
                    rest = after;
                    continue;
                }
            }
            self.byte(b)?;
            rest = after;
        }
        Ok(())
    }

    /// Bytes of a string with no quote, backslash or control character: kept where a key or
    /// a kept value is being read.
    fn plain_run(&mut self, plain: &[u8], key: bool) {
        if key && self.depth == 1 {
            let room = MAX_KEY.saturating_sub(self.key.len());
            self.key.extend_from_slice(plain.get(..room).unwrap_or(plain));
            self.long_key |= plain.len() > room;
        }
        if let Some(field) = self.field {
            let room = field.cap().saturating_sub(self.value.len());
            self.value.extend_from_slice(plain.get(..room).unwrap_or(plain));
            self.long_value |= plain.len() > room;
        }
    }

    fn byte(&mut self, b: u8) -> Result<(), Refusal> {
        // A number ends at the first byte that is not part of it, which belongs to what
        // follows.
        if let State::Num(num) = self.state {
            match num.next(b) {
                Some(next) => {
                    self.keep(b);
                    self.state = State::Num(next);
                    return Ok(());
                }
                None if num.complete() => self.value_done(),
                None => return Err(Refusal::NotJson),
            }
        }
        // Inside a kept top-level value every byte is part of it.
        self.keep(b);
        match self.state {
            State::Start => match b {
                b'{' => self.open(true)?,
                _ if whitespace(b) => {}
                _ => return Err(Refusal::NotJson),
            },
            State::KeyOrEnd | State::Key => match b {
                b'"' => {
                    self.state = State::Str { key: true, esc: Esc::No };
                    self.key.clear();
                    self.long_key = false;
                }
                b'}' if self.state == State::KeyOrEnd => self.close()?,
                _ if whitespace(b) => {}
                _ => return Err(Refusal::NotJson),
            },
            State::Colon => match b {
                b':' => {
                    self.state = State::Value;
                    if self.depth == 1 {
                        self.key_done()?;
                    }
                }
                _ if whitespace(b) => {}
                _ => return Err(Refusal::NotJson),
            },
            State::Value | State::ValueOrEnd => match b {
                b'{' => self.open(true)?,
                b'[' => self.open(false)?,
                b'"' => self.state = State::Str { key: false, esc: Esc::No },
                b'-' => self.state = State::Num(Num::Minus),
                b'0' => self.state = State::Num(Num::Zero),
                b'1'..=b'9' => self.state = State::Num(Num::Int),
                b't' => self.state = State::Lit { word: b"true", at: 1 },
                b'f' => self.state = State::Lit { word: b"false", at: 1 },
                b'n' => self.state = State::Lit { word: b"null", at: 1 },
                b']' if self.state == State::ValueOrEnd => self.close()?,
                _ if whitespace(b) => {}
                _ => return Err(Refusal::NotJson),
            },
            State::CommaOrEnd => {
                let object = self.in_object();
                match b {
                    b',' => self.state = if object { State::Key } else { State::Value },
                    b'}' if object => self.close()?,
                    b']' if !object => self.close()?,
                    _ if whitespace(b) => {}
                    _ => return Err(Refusal::NotJson),
                }
            }
            State::Str { key, esc } => self.string(b, key, esc)?,
            State::Num(_) => {}
            State::Lit { word, at } => {
                if word.get(usize::from(at)) != Some(&b) {
                    return Err(Refusal::NotJson);
                }
                match usize::from(at) + 1 == word.len() {
                    true => self.value_done(),
                    false => self.state = State::Lit { word, at: at + 1 },
                }
            }
            State::Done if whitespace(b) => {}
            State::Done => return Err(Refusal::NotJson),
        }
        Ok(())
    }

    /// Keeps `b` when it belongs to a kept top-level value: true when it was kept.
    fn keep(&mut self, b: u8) -> bool {
        let Some(field) = self.field else { return false };
        let cap = field.cap();
        // Whitespace before the value is not kept (the value starts at its first byte).
        if self.value.is_empty() && whitespace(b) && matches!(self.state, State::Value) {
            return false;
        }
        if self.value.len() < cap {
            self.value.push(b);
            return true;
        }
        self.long_value = true;
        false
    }

    fn string(&mut self, b: u8, key: bool, esc: Esc) -> Result<(), Refusal> {
        let top_key = key && self.depth == 1;
        let esc = match (esc, b) {
            (Esc::No, b'"') => {
                match key {
                    true => self.state = State::Colon,
                    false => self.value_done(),
                }
                return Ok(());
            }
            (Esc::No, b'\\') => Esc::Backslash,
            (Esc::No, 0..=0x1f) => return Err(Refusal::NotJson),
            (Esc::No, _) => {
                if top_key {
                    self.key_byte(b);
                }
                Esc::No
            }
            (Esc::Backslash, b'u') => Esc::Hex(0, 0),
            (Esc::Backslash, _) => {
                let unescaped = match b {
                    b'"' | b'\\' | b'/' => b,
                    b'b' => 0x08,
                    b'f' => 0x0c,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    _ => return Err(Refusal::NotJson),
                };
                if top_key {
                    self.key_byte(unescaped);
                }
                Esc::No
            }
            (Esc::Hex(n, value), _) => {
                let digit = char::from(b).to_digit(16).ok_or(Refusal::NotJson)?;
                let value = value * 16 + digit;
                if n < 3 {
                    Esc::Hex(n + 1, value)
                } else {
                    if top_key {
                        // A surrogate (half of a pair, or alone) is no character of any
                        // JSON-RPC key: U+FFFD stands for it.
                        let c = char::from_u32(value).unwrap_or(char::REPLACEMENT_CHARACTER);
                        let mut buf = [0; 4];
                        c.encode_utf8(&mut buf).bytes().for_each(|b| self.key_byte(b));
                    }
                    Esc::No
                }
            }
        };
        self.state = State::Str { key, esc };
        Ok(())
    }

    fn key_byte(&mut self, b: u8) {
        match self.key.len() < MAX_KEY {
            true => self.key.push(b),
            false => self.long_key = true,
        }
    }

    /// A top-level key was read whole: notes a JSON-RPC key (refusing one seen before, or a
    /// key a case-insensitive reader takes for one) and keeps the values that matter.
    fn key_done(&mut self) -> Result<(), Refusal> {
        if self.long_key {
            return Ok(());
        }
        let Ok(key) = std::str::from_utf8(&self.key) else { return Ok(()) };
        if crate::mcp::fold::aliases(key, RPC_KEYS) {
            return Err(Refusal::KeyAlias);
        }
        let Some(i) = RPC_KEYS.iter().position(|k| *k == key) else { return Ok(()) };
        if self.top.keys & (1 << i) != 0 {
            return Err(Refusal::KeyTwice);
        }
        self.top.keys |= 1 << i;
        self.field = match key {
            "jsonrpc" => Some(Field::Version),
            "id" => Some(Field::Id),
            "method" => Some(Field::Method),
            _ => None,
        };
        self.value.clear();
        self.long_value = false;
        Ok(())
    }

    fn in_object(&self) -> bool {
        let Some(top) = self.depth.checked_sub(1) else { return false };
        self.stack.get(top / 64).is_some_and(|w| w & (1 << (top % 64)) != 0)
    }

    fn open(&mut self, object: bool) -> Result<(), Refusal> {
        let at = self.depth;
        let word = self.stack.get_mut(at / 64).ok_or(Refusal::TooDeep)?;
        match object {
            true => *word |= 1 << (at % 64),
            false => *word &= !(1 << (at % 64)),
        }
        self.depth += 1;
        self.state = if object { State::KeyOrEnd } else { State::ValueOrEnd };
        Ok(())
    }

    fn close(&mut self) -> Result<(), Refusal> {
        self.depth = self.depth.checked_sub(1).ok_or(Refusal::NotJson)?;
        match self.depth {
            0 => {
                self.state = State::Done;
                Ok(())
            }
            _ => {
                self.value_done();
                Ok(())
            }
        }
    }

    /// A value ended: at the top level, what it said is noted.
    fn value_done(&mut self) {
        self.state = State::CommaOrEnd;
        if self.depth != 1 {
            return;
        }
        let value = std::mem::take(&mut self.value);
        let whole = !std::mem::replace(&mut self.long_value, false);
        match self.field.take() {
            Some(Field::Version) => self.top.version = whole.then_some(value),
            Some(Field::Id) => self.top.id = whole.then_some(value),
            Some(Field::Method) => self.top.method = value.first().copied(),
            None => {}
        }
    }
}

#[cfg(test)]
#[path = "scanner_tests.rs"]
mod tests;
