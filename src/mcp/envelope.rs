//! One-pass, borrowed parse of a JSON-RPC message: `jsonrpc`, `id`, `method`, and from
//! `params` only `name` and `uri`. Tool arguments and everything else are skipped without
//! being built (serde's `IgnoredAny`), and strings borrow from the body unless escaped.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// What the client sent, borrowed from the body.
#[derive(Debug, PartialEq)]
pub enum Message<'a> {
    Request {
        id: &'a str,
        method: Cow<'a, str>,
        name: Option<Cow<'a, str>>,
        uri: Option<Cow<'a, str>>,
    },
    Notification {
        method: Cow<'a, str>,
    },
    /// A client's response to a server request (result or error).
    Response {
        id: &'a str,
    },
    /// A JSON array body: legacy 2025-03-26 batching.
    Batch,
}

#[derive(Debug, PartialEq, Eq)]
pub enum EnvelopeError<'a> {
    /// Not JSON at all (-32700).
    Parse,
    /// JSON, but not a JSON-RPC 2.0 message (-32600); the id when one was readable.
    Invalid { id: Option<&'a str> },
}

pub fn parse(body: &[u8]) -> Result<Message<'_>, EnvelopeError<'_>> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        return match serde_json::from_slice::<IgnoredAny>(body) {
            Ok(_) => Ok(Message::Batch),
            Err(e) => Err(classify_err(&e)),
        };
    }
    let env: Envelope<'_> = serde_json::from_slice(body).map_err(|e| classify_err(&e))?;
    let id = env.id.map(|r| r.get());
    if env.jsonrpc.as_deref() != Some("2.0") {
        return Err(EnvelopeError::Invalid { id });
    }
    match (env.method, id) {
        (Some(method), Some(id)) => {
            let (name, uri) = env.params.map_or((None, None), |p| (p.name, p.uri));
            Ok(Message::Request { id, method: method.0, name: name.map(|n| n.0), uri: uri.map(|u| u.0) })
        }
        (Some(method), None) => Ok(Message::Notification { method: method.0 }),
        (None, Some(id)) if env.result.is_some() || env.error.is_some() => Ok(Message::Response { id }),
        // JSON-RPC allows an error response with a null id (the request id was unreadable).
        (None, None) if env.error.is_some() => Ok(Message::Response { id: "null" }),
        (None, id) => Err(EnvelopeError::Invalid { id }),
    }
}

fn classify_err(e: &serde_json::Error) -> EnvelopeError<'static> {
    match e.classify() {
        serde_json::error::Category::Data => EnvelopeError::Invalid { id: None },
        _ => EnvelopeError::Parse,
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    jsonrpc: Option<CowStr<'a>>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Option<CowStr<'a>>,
    #[serde(borrow)]
    params: Option<Params<'a>>,
    result: Option<IgnoredAny>,
    error: Option<IgnoredAny>,
}

/// A string that borrows from the input unless it had to be unescaped.
#[derive(Debug)]
struct CowStr<'a>(Cow<'a, str>);

impl std::ops::Deref for CowStr<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = CowStr<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// `params`: only `name` and `uri` are kept. Positional (array) params are accepted and
/// ignored, as JSON-RPC allows them and MCP never routes on them.
#[derive(Default)]
struct Params<'a> {
    name: Option<CowStr<'a>>,
    uri: Option<CowStr<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Params<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Params<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object or array")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut p = Params::default();
                while let Some(key) = map.next_key::<CowStr<'a>>()? {
                    match &*key {
                        "name" if p.name.is_none() => p.name = Some(map.next_value()?),
                        "uri" if p.uri.is_none() => p.uri = Some(map.next_value()?),
                        "name" | "uri" => return Err(de::Error::custom("duplicate params key")),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(p)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Params::default())
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(body: &str) -> Message<'_> {
        parse(body.as_bytes()).expect("valid")
    }

    #[test]
    fn request_with_tool_name_borrows_and_skips_arguments() {
        let body = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"deploy_app","arguments":{"x":[1,{"name":"no"}]}}}"#;
        let Message::Request { id, method, name, uri } = req(body) else { panic!("not a request") };
        assert_eq!((id, &*method, name.as_deref(), uri), ("7", "tools/call", Some("deploy_app"), None));
        assert!(matches!(name, Some(Cow::Borrowed(_))));
    }

    #[test]
    fn string_ids_keep_their_quotes_and_uris_are_read() {
        let body = r#"{"id":"a\"b","jsonrpc":"2.0","method":"resources/read","params":{"uri":"file:///x"}}"#;
        assert_eq!(
            req(body),
            Message::Request {
                id: r#""a\"b""#,
                method: "resources/read".into(),
                name: None,
                uri: Some("file:///x".into())
            }
        );
    }

    #[test]
    fn notifications_responses_and_batches() {
        assert_eq!(
            req(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Message::Notification { method: "notifications/initialized".into() }
        );
        assert_eq!(req(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#), Message::Response { id: "1" });
        assert_eq!(req(r#" [{"jsonrpc":"2.0","id":1,"method":"ping"}]"#), Message::Batch);
    }

    #[test]
    fn bad_input_is_parse_or_invalid() {
        assert_eq!(parse(b"{nope"), Err(EnvelopeError::Parse));
        assert_eq!(parse(b"[1,"), Err(EnvelopeError::Parse));
        assert_eq!(parse(b"42"), Err(EnvelopeError::Invalid { id: None }));
        assert_eq!(parse(br#"{"id":3,"method":"x"}"#), Err(EnvelopeError::Invalid { id: Some("3") }));
        assert_eq!(parse(br#"{"jsonrpc":"2.0","id":3}"#), Err(EnvelopeError::Invalid { id: Some("3") }));
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":1,"method":"a","method":"b"}"#),
            Err(EnvelopeError::Invalid { id: None })
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5}}"#),
            Err(EnvelopeError::Invalid { id: None })
        );
    }

    #[test]
    fn escaped_names_are_unescaped() {
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"de\u0070loy"}}"#;
        let Message::Request { name, .. } = req(body) else { panic!() };
        assert_eq!(name.as_deref(), Some("deploy"));
    }
}
