//! The resource URIs inside a member's answer, as the route offers them: what
//! `resources/read` returned (`contents[].uri`), and the resources a tool result's `content`
//! or a prompt's messages embed or link to (each only in answers to its own method) (content blocks of type `resource`, at `resource.uri`, and
//! `resource_link`, at `uri`). A client reading `a+file:///x` gets contents naming
//! `a+file:///x`, and a link a tool returned leads back through the route to its member.
//!
//! Only those places are read: a `uri` anywhere else (a tool's `structuredContent`, `_meta`)
//! is the member's data and stays as sent. Every other byte of the answer stays as sent too:
//! each URI string is replaced where it stands. The places are read key by key
//! (`super::object`): an element of another shape names nothing a client could follow and is
//! skipped, the others still offered (a `"resource":0` beside a link kept the whole answer
//! as sent: found by a review); an answer that is not JSON goes on as sent. One that names a
//! key read here twice (`uri`, `type`, `resource`, `content`…, however escaped) or in another
//! case (`URI`, read by Go's case-insensitive reader) may not pass: clients disagree on its
//! value, and the proxy could offer neither (found by an attack: a link to another member's
//! resource behind the member's own).
//!
//! Not owned here: what a URI becomes (the caller's `offered`, `super::stream::offered_uri`),
//! holding the answer whole (`proxy::transform`).

use std::borrow::Cow;

use serde_json::value::RawValue;

use super::object;
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

/// Whether `answer`'s bytes may name a `uri` key: spelled out in any case (`"URI"` is `uri` to
/// Go's case-insensitive reader, and refused: found by an attack, as the scan let it pass
/// unread), or with an escape (`"u\u0072i"` is the same key to every client's parser).
pub fn may_name_uri(answer: &[u8]) -> bool {
    answer.windows(5).any(|w| w.eq_ignore_ascii_case(b"\"uri\"")) || answer.windows(2).any(|w| w == b"\\u")
}

/// An answer naming a key read here twice, or spelled as one read here: it may not pass.
pub use super::object::Ambiguous as Twice;

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
    let Some([Some(result)]) = object::read(text, ["result"])? else { return Ok(None) };
    let key = match places {
        Places::Read => "contents",
        Places::Tool => "content",
        Places::Prompt => "messages",
    };
    let Some([Some(place)]) = object::read(result.get(), [key])? else { return Ok(None) };
    let mut uris: Vec<&RawValue> = Vec::new();
    // An element of another shape names nothing a client could follow: the others still do.
    for element in object::elements(place.get()).unwrap_or_default() {
        match places {
            Places::Read => uris.extend(object::read(element.get(), ["uri"])?.and_then(|[uri]| uri)),
            Places::Tool => uris.extend(block(element)?),
            Places::Prompt => {
                let Some([Some(content)]) = object::read(element.get(), ["content"])? else { continue };
                match object::elements(content.get()) {
                    Some(blocks) => {
                        for b in blocks {
                            uris.extend(block(b)?);
                        }
                    }
                    None => uris.extend(block(content)?),
                }
            }
        }
    }
    Ok(splice(answer, text, uris, offered))
}

/// The URI a content block names: a `resource_link`'s `uri`, a `resource`'s `resource.uri`.
fn block(json: &RawValue) -> Result<Option<&RawValue>, Twice> {
    let Some([kind, uri, resource]) = object::read(json.get(), ["type", "uri", "resource"])? else { return Ok(None) };
    let kind = kind.and_then(|k| serde_json::from_str::<Cow<'_, str>>(k.get()).ok());
    Ok(match kind.as_deref() {
        Some("resource_link") => uri,
        Some("resource") => match resource {
            Some(resource) => object::read(resource.get(), ["uri"])?.and_then(|[uri]| uri),
            None => None,
        },
        _ => None,
    })
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

#[cfg(test)]
#[path = "contents_tests.rs"]
mod tests;
