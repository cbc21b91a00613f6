//! The body a federated route forwards to a member: the client's bytes with one string
//! replaced by the member's own name for it (`params.name` of `tools/call` and `prompts/get`,
//! `params.uri` of `resources/read`, `params.ref.name` or `params.ref.uri` of
//! `completion/complete`). Every other byte reaches the member as sent: repeated keys, key
//! order, spacing and number spellings. Not owned here: which member and name (`super`).

use std::borrow::Cow;

use bytes::Bytes;
use serde_json::value::RawValue;

/// The string of the request a federated route renames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `params.name`
    Name,
    /// `params.uri`
    Uri,
}

/// `body` with the `field` string set to `name`. `target` is the one reading's value of it, a
/// slice of `body` when it had no escapes: its string is replaced in place. One written with
/// escapes is found by a reading of the body that keeps it raw (only then: it costs a second
/// parse).
pub fn renamed(body: &Bytes, target: Option<&Bytes>, field: Field, name: &str) -> Option<Bytes> {
    if let Some(spliced) = target.and_then(|t| splice(body, t, name)) {
        return Some(spliced);
    }
    #[derive(serde::Deserialize)]
    struct Top<'a> {
        #[serde(borrow)]
        params: Params<'a>,
    }
    #[derive(serde::Deserialize)]
    struct Params<'a> {
        #[serde(borrow)]
        name: Option<&'a RawValue>,
        #[serde(borrow)]
        uri: Option<&'a RawValue>,
    }
    let top: Top = serde_json::from_slice(body).ok()?;
    let raw = match field {
        Field::Name => top.params.name,
        Field::Uri => top.params.uri,
    }?;
    splice(body, inner(raw)?.as_bytes(), name)
}

/// What a `completion/complete` refers to, read from the client's body.
#[derive(Debug, PartialEq, Eq)]
pub struct Reference<'a> {
    /// `ref/prompt` (by name) rather than `ref/resource` (by URI).
    pub prompt: bool,
    /// The prompt's name or the resource's URI, decoded.
    pub target: Cow<'a, str>,
    /// Its string token's content in `body`, for [`complete`].
    raw: &'a str,
}

/// The reference of a `completion/complete` body: None when `params.ref` is missing, of
/// another type, or names its target twice (which one the member would read is unknown).
pub fn reference(body: &[u8]) -> Option<Reference<'_>> {
    #[derive(serde::Deserialize)]
    struct Top<'a> {
        #[serde(borrow)]
        params: Params<'a>,
    }
    #[derive(serde::Deserialize)]
    struct Params<'a> {
        #[serde(borrow, rename = "ref")]
        reference: &'a RawValue,
    }
    #[derive(serde::Deserialize)]
    struct Ref<'a> {
        #[serde(borrow, rename = "type")]
        kind: Cow<'a, str>,
        #[serde(borrow)]
        name: Option<&'a RawValue>,
        #[serde(borrow)]
        uri: Option<&'a RawValue>,
    }
    let raw_ref = serde_json::from_slice::<Top>(body).ok()?.params.reference;
    // A key a case-insensitive member reads for `type`, `name` or `uri`: not read at all.
    if crate::mcp::fold::object_aliases(raw_ref.get(), &["type", "name", "uri"]) {
        return None;
    }
    let r: Ref<'_> = serde_json::from_str(raw_ref.get()).ok()?;
    let (prompt, raw) = match r.kind.as_ref() {
        "ref/prompt" => (true, r.name?),
        "ref/resource" => (false, r.uri?),
        _ => return None,
    };
    let target: Cow<'_, str> = serde_json::from_str(raw.get()).ok()?;
    Some(Reference { prompt, target, raw: inner(raw)? })
}

/// A `completion/complete` body whose reference names `own` instead.
pub fn complete(body: &[u8], reference: &Reference<'_>, own: &str) -> Option<Bytes> {
    splice(body, reference.raw.as_bytes(), own)
}

/// A raw string token's content (between its quotes).
fn inner(raw: &RawValue) -> Option<&str> {
    raw.get().strip_prefix('"')?.strip_suffix('"')
}

/// `body` with the string whose content is the slice `target` of it replaced by `name`.
fn splice(body: &[u8], target: &[u8], name: &str) -> Option<Bytes> {
    let start = (target.as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
    let end = start.checked_add(target.len()).filter(|&e| e < body.len())?;
    // The content of a string token without escapes: the quotes are the bytes around it.
    if start == 0 || body.get(start - 1) != Some(&b'"') || body.get(end) != Some(&b'"') {
        return None;
    }
    let quoted = serde_json::to_string(name).ok()?;
    let mut out = Vec::with_capacity(body.len() + quoted.len());
    out.extend_from_slice(body.get(..start - 1)?);
    out.extend_from_slice(quoted.as_bytes());
    out.extend_from_slice(body.get(end + 1..)?);
    Some(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renamed_call_keeps_every_other_value_as_sent() {
        let body = Bytes::from_static(br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"a_echo","arguments":{"n":1.50,"big":123456789012345678901234567890}}}"#);
        let out = renamed(&body, None, Field::Name, "echo").unwrap();
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.contains(r#""name":"echo""#) && !text.contains("a_echo"), "{text}");
        assert!(text.contains(r#"{"n":1.50,"big":123456789012345678901234567890}"#), "{text}");
        assert!(text.contains(r#""id":7"#));
        assert_eq!(renamed(&Bytes::from_static(b"[1]"), None, Field::Name, "x"), None);
        assert_eq!(renamed(&Bytes::from_static(br#"{"params":3}"#), None, Field::Name, "x"), None);
    }

    #[test]
    fn a_name_read_from_the_body_is_spliced_and_everything_else_is_sent_byte_for_byte() {
        let body = Bytes::from_static(
            br#"{"x":1,"x":2,"method":"tools/call","params":{"arguments":{"a":1e15},"name":"a_echo","arguments":{"a":-0}},"id":1}"#,
        );
        let at = body.windows(6).position(|w| w == b"a_echo").unwrap();
        let target = body.slice(at..at + 6);
        let out = renamed(&body, Some(&target), Field::Name, "e\"cho").unwrap();
        let want = br#"{"x":1,"x":2,"method":"tools/call","params":{"arguments":{"a":1e15},"name":"e\"cho","arguments":{"a":-0}},"id":1}"#;
        assert_eq!(std::str::from_utf8(&out).unwrap(), std::str::from_utf8(want).unwrap());
        // A name written with escapes (the one reading holds a decoded copy) is found raw.
        let escaped = Bytes::from_static(br#"{"x":1,"x":2,"params":{"name":"a_\u0065cho", "n":1.0e+0},"id":1}"#);
        let out = renamed(&escaped, Some(&Bytes::copy_from_slice(b"a_echo")), Field::Name, "echo").unwrap();
        assert_eq!(&out[..], br#"{"x":1,"x":2,"params":{"name":"echo", "n":1.0e+0},"id":1}"#);
    }

    #[test]
    fn a_uri_is_renamed_like_a_name() {
        let body = Bytes::from_static(
            br#"{"id":1,"method":"resources/read","params":{"uri":"d+file:///\u0061","name":"keep"}}"#,
        );
        let out = renamed(&body, None, Field::Uri, "file:///a").unwrap();
        assert_eq!(&out[..], br#"{"id":1,"method":"resources/read","params":{"uri":"file:///a","name":"keep"}}"#);
    }

    #[test]
    fn a_completion_reference_is_read_and_renamed_in_place() {
        let body = br#"{"id":2,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"d_gr\u0065et"},"argument":{"name":"who","value":"w"}}}"#;
        let r = reference(body).unwrap();
        assert!(r.prompt);
        assert_eq!(r.target, "d_greet");
        let out = complete(body, &r, "greet").unwrap();
        assert_eq!(&out[..], br#"{"id":2,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"greet"},"argument":{"name":"who","value":"w"}}}"#);
        let resource = br#"{"params":{"ref":{"uri":"d+x://{id}","type":"ref/resource"}}}"#;
        let r = reference(resource).unwrap();
        assert_eq!((r.prompt, r.target.as_ref()), (false, "d+x://{id}"));
        assert_eq!(
            &complete(resource, &r, "x://{id}").unwrap()[..],
            br#"{"params":{"ref":{"uri":"x://{id}","type":"ref/resource"}}}"#
        );
        // Named twice, of another type, or without its target: no reference.
        assert!(reference(br#"{"params":{"ref":{"type":"ref/prompt","name":"a","name":"b"}}}"#).is_none());
        assert!(reference(br#"{"params":{"ref":{"type":"ref/tool","name":"a"}}}"#).is_none());
        // A key a Go member reads as `name` or `type` (it matches keys ignoring case).
        assert!(reference(br#"{"params":{"ref":{"type":"ref/prompt","name":"a","Name":"b"}}}"#).is_none());
        assert!(reference(br#"{"params":{"ref":{"TYPE":"ref/tool","type":"ref/prompt","name":"a"}}}"#).is_none());
        assert!(reference(br#"{"params":{"ref":{"type":"ref/resource","name":"a"}}}"#).is_none());
    }
}
