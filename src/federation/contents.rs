//! The resource URIs inside a member's answer, as the route offers them: what
//! `resources/read` returned (`contents[].uri`), and the resources a tool result's `content`
//! or a prompt's messages embed or link to (each only in answers to its own method) (content blocks of type `resource`, at `resource.uri`, and
//! `resource_link`, at `uri`). A client reading `a+file:///x` gets contents naming
//! `a+file:///x`, and a link a tool returned leads back through the route to its member.
//!
//! Only those places are read: a `uri` anywhere else (a tool's `structuredContent`, `_meta`)
//! is the member's data and stays as sent. Every other byte of the answer stays as sent too:
//! each URI string is replaced where it stands. An answer that does not read as one (not
//! JSON, an unexpected shape) goes on as sent; one that names a key read here twice (`uri`,
//! `type`, `resource`, `content`…, however escaped) may not pass: a client keeps the last
//! of the two, and the proxy could offer neither (found by an attack: a link to another
//! member's resource behind the member's own).
//!
//! Not owned here: what a URI becomes (the caller's `offered`, `super::stream::offered_uri`),
//! holding the answer whole (`proxy::transform`).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::mcp::method::Method;

/// Where an answer names resources, by the method it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Places {
    /// `resources/read`: `contents[].uri`.
    Read,
    /// `tools/call`: the blocks of `content`.
    Tool,
    /// `prompts/get`: the blocks of each `messages[].content`.
    Prompt,
}

/// Where answers to `method` name resources; None for methods whose answers name none.
pub fn places(method: Method) -> Option<Places> {
    match method {
        Method::ResourcesRead => Some(Places::Read),
        Method::ToolsCall => Some(Places::Tool),
        Method::PromptsGet => Some(Places::Prompt),
        _ => None,
    }
}

/// Whether `answer`'s bytes may name a `uri` key: spelled out, or with an escape (`"u\u0072i"`
/// is the same key to every client's parser).
pub fn may_name_uri(answer: &[u8]) -> bool {
    answer.windows(5).any(|w| w == b"\"uri\"") || answer.windows(2).any(|w| w == b"\\u")
}

/// An answer naming a key read here twice: it may not pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Twice;

/// `answer` (a JSON-RPC response to a method whose answers name resources at `places`) with
/// each resource URI in it replaced by `offered` of it; None when none changes (or the answer
/// does not read as one).
pub fn offered(answer: &[u8], places: Places, offered: impl Fn(&str) -> String) -> Result<Option<Vec<u8>>, Twice> {
    // Most answers name no URI: one scan, no parse.
    if !may_name_uri(answer) {
        return Ok(None);
    }
    read(answer, places, offered)
}

/// [`offered`] without its first scan (public for the fuzz target, which checks the scan
/// never skips an answer this would change).
pub fn read(answer: &[u8], places: Places, offered: impl Fn(&str) -> String) -> Result<Option<Vec<u8>>, Twice> {
    let Ok(text) = std::str::from_utf8(answer) else { return Ok(None) };
    let top: Top<'_> = match serde_json::from_str(text) {
        Ok(top) => top,
        Err(e) => return twice(&e).map(|()| None),
    };
    let Some(result) = top.result else { return Ok(None) };
    let mut uris: Vec<&RawValue> = Vec::new();
    match places {
        Places::Read => uris.extend(result.contents.iter().filter_map(|c| c.uri)),
        Places::Tool => uris.extend(result.content.iter().filter_map(Block::uri)),
        Places::Prompt => {
            for message in &result.messages {
                match message.blocks() {
                    Ok(blocks) => uris.extend(blocks.iter().filter_map(Block::uri)),
                    Err(e) => return twice(&e).map(|()| None),
                }
            }
        }
    }
    Ok(splice(answer, text, uris, offered))
}

/// Err when `e` is a key read here written twice; the answer goes on as sent otherwise.
fn twice(e: &serde_json::Error) -> Result<(), Twice> {
    // serde's own wording for a struct's field met twice (`Error::duplicate_field`).
    match e.to_string().starts_with("duplicate field") {
        true => Err(Twice),
        false => Ok(()),
    }
}

/// `answer` with each of `uris` (slices of `text`, which is `answer`) replaced by its offer.
fn splice(answer: &[u8], text: &str, uris: Vec<&RawValue>, offered: impl Fn(&str) -> String) -> Option<Vec<u8>> {
    let mut spliced = Vec::new();
    for raw in uris {
        let Ok(own) = serde_json::from_str::<Cow<'_, str>>(raw.get()) else { continue };
        let offered = offered(&own);
        if offered == own {
            continue;
        }
        let at = (raw.get().as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
        spliced.push((at, raw.get().len(), serde_json::to_string(&offered).ok()?));
    }
    if spliced.is_empty() {
        return None;
    }
    spliced.sort_unstable_by_key(|s| s.0);
    let mut out = Vec::with_capacity(answer.len() + spliced.iter().map(|s| s.2.len()).sum::<usize>());
    let mut from = 0;
    for (at, len, with) in spliced {
        out.extend_from_slice(answer.get(from..at)?);
        out.extend_from_slice(with.as_bytes());
        from = at + len;
    }
    out.extend_from_slice(answer.get(from..)?);
    Some(out)
}

#[derive(Deserialize)]
struct Top<'a> {
    #[serde(borrow)]
    result: Option<Answer<'a>>,
}

#[derive(Deserialize)]
struct Answer<'a> {
    /// `resources/read`.
    #[serde(borrow, default)]
    contents: Vec<Uri<'a>>,
    /// `tools/call`.
    #[serde(borrow, default)]
    content: Vec<Block<'a>>,
    /// `prompts/get`.
    #[serde(borrow, default)]
    messages: Vec<Message<'a>>,
}

#[derive(Deserialize)]
struct Uri<'a> {
    #[serde(borrow)]
    uri: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Block<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    uri: Option<&'a RawValue>,
    #[serde(borrow)]
    resource: Option<Uri<'a>>,
}

impl<'a> Block<'a> {
    fn uri(&self) -> Option<&'a RawValue> {
        match self.kind.as_deref() {
            Some("resource_link") => self.uri,
            Some("resource") => self.resource.as_ref()?.uri,
            _ => None,
        }
    }
}

/// A prompt message: one content block, or (newer servers) several.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    content: Option<&'a RawValue>,
}

impl<'a> Message<'a> {
    /// Its blocks, read where they stand in the answer (so their URIs can be replaced there).
    fn blocks(&self) -> serde_json::Result<Vec<Block<'a>>> {
        let Some(raw) = self.content else { return Ok(Vec::new()) };
        let text: &'a str = raw.get();
        match text.starts_with('[') {
            true => serde_json::from_str(text),
            false => serde_json::from_str(text).map(|b| vec![b]),
        }
    }
}

#[cfg(test)]
#[path = "contents_tests.rs"]
mod tests;
