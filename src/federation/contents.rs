//! The resource URIs inside a member's answer, as the route offers them: what
//! `resources/read` returned (`contents[].uri`), and the resources a tool result or a prompt's
//! messages embed or link to (content blocks of type `resource`, at `resource.uri`, and
//! `resource_link`, at `uri`). A client reading `a+file:///x` gets contents naming
//! `a+file:///x`, and a link a tool returned leads back through the route to its member.
//!
//! Only those places are read: a `uri` anywhere else (a tool's `structuredContent`, `_meta`)
//! is the member's data and stays as sent. Every other byte of the answer stays as sent too:
//! each URI string is replaced where it stands. An answer that does not read as one (not
//! JSON, a duplicate key, an unexpected shape) goes on as sent.
//!
//! Not owned here: what a URI becomes (the caller's `offered`, `super::stream::offered_uri`),
//! holding the answer whole (`proxy::transform`).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::mcp::method::Method;

/// Whether answers to `method` can carry resource URIs.
pub fn carries_uris(method: Method) -> bool {
    matches!(method, Method::ResourcesRead | Method::ToolsCall | Method::PromptsGet)
}

/// `answer` (a JSON-RPC response) with each resource URI in it replaced by `offered` of it;
/// None when none changes (or the answer does not read as one).
pub fn offered(answer: &[u8], offered: impl Fn(&str) -> String) -> Option<Vec<u8>> {
    // Most answers name no URI: one scan, no parse.
    if !answer.windows(5).any(|w| w == b"\"uri\"") {
        return None;
    }
    let text = std::str::from_utf8(answer).ok()?;
    let top: Top<'_> = serde_json::from_str(text).ok()?;
    let result = top.result?;
    let mut uris: Vec<&RawValue> = result.contents.iter().filter_map(|c| c.uri).collect();
    uris.extend(result.content.iter().filter_map(Block::uri));
    for message in &result.messages {
        uris.extend(message.blocks()?.iter().filter_map(Block::uri));
    }
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
    /// Its blocks, read where they stand in the answer (so their URIs can be replaced there);
    /// None when they do not read as blocks.
    fn blocks(&self) -> Option<Vec<Block<'a>>> {
        let Some(raw) = self.content else { return Some(Vec::new()) };
        let text: &'a str = raw.get();
        match text.starts_with('[') {
            true => serde_json::from_str(text).ok(),
            false => serde_json::from_str(text).ok().map(|b| vec![b]),
        }
    }
}

#[cfg(test)]
#[path = "contents_tests.rs"]
mod tests;
