//! `contents`: the resource URIs inside a member's answer, offered as the route offers them
//! (`federation::contents`). The reading never panics; an answer it rewrites was one JSON
//! value and stays one, equal to the answer with exactly the strings at the places URIs live
//! (`result.contents[].uri`, `resource_link` blocks' `uri`, `resource` blocks'
//! `resource.uri`, in `result.content` and each of `result.messages[].content`) offered,
//! found here by a walk of the parsed value, not by the code under test (an answer it
//! rewrites, it rewrites whole: every place or none), each method's places only (a read's
//! contents, a tool result's content, a prompt's messages). The first scan never skips an
//! answer the reading would change. As an event of a call's stream
//! (`federation::relay::answer_event`), the call's own answer goes offered or byte for byte.
//!
//! Input: the whole input is a member's answer, and the same bytes as one event's data.

use std::sync::LazyLock;

use mcp_edge::federation::contents::{self, Places};
use mcp_edge::federation::relay;
use mcp_edge::session::{KeyRing, SessionKey};
use serde_json::Value;

use crate::message::Reading;

static KEYS: LazyLock<KeyRing> = LazyLock::new(|| KeyRing::new(SessionKey::random()));

fn offered(uri: &str) -> String {
    format!("m+{uri}")
}

pub fn check(data: &[u8]) {
    for places in [Places::Read, Places::Tool, Places::Prompt] {
        check_places(data, places);
    }
}

fn check_places(data: &[u8], places: Places) {
    let out = contents::offered(data, places, offered);
    // The first scan never skips an answer the reading would change (an attack found one:
    // `"u\u0072i"`).
    match (&out, contents::read(data, places, offered)) {
        // Skipped, and a key twice: no `uri` in it, so nothing it could link to.
        (Ok(None), Err(_)) => assert!(!contents::may_name_uri(data)),
        (out, read) => assert_eq!(out, &read, "the scan skipped an answer with URIs"),
    }
    let Ok(out) = out else {
        // Refused: a key twice, or one a case-insensitive reader takes for a key read, which
        // a walk of the oracle's own finds.
        assert_ne!(repeats_a_key(data), Some(false), "refused, with no key twice or spelled as one read");
        return;
    };
    if let Some(out) = &out {
        match serde_json::from_slice::<Value>(data) {
            Ok(before) => {
                let after: Value = serde_json::from_slice(out).expect("a rewritten answer stays JSON");
                assert_eq!(after, expected(before, places), "only the URIs change");
            }
            // What a value cannot hold (a lone surrogate in some string) stays as it was.
            Err(_) => assert!(serde_json::from_slice::<Value>(out).is_err(), "the rewrite changed more than URIs"),
        }
    }
    // As the data of one event of a call's stream, answering the call (id 1).
    let ids = relay::Ids { keys: &KEYS, session: "fp" };
    let mut event = b"data: ".to_vec();
    event.extend_from_slice(data);
    event.extend_from_slice(b"\n\n");
    let single_line = !data.iter().any(|&b| b == b'\n' || b == b'\r');
    let mut sent = Vec::new();
    let mut asked =
        relay::Asked { id: Some(b"1"), places: Some(places), keep: Some(Vec::new()), answered: false, eventful: false };
    let _ = relay::answer_event(&ids, &mut asked, 0, &event, offered, &mut sent);
    let kept = asked.keep.unwrap_or_default();
    // The call's answer: JSON-RPC 2.0 with its keys once and none read as another (`"ID"`), no
    // method, and one `id` 1. Where the oracle cannot tell (`"2\u002e0"`, keys beyond ASCII),
    // it asserts nothing of the event.
    #[derive(serde::Deserialize)]
    struct Id {
        id: Option<Value>,
    }
    let reading = Reading::of(data);
    let decided = !reading.escaped_rpc && reading.plain;
    let id = serde_json::from_slice::<Id>(data).ok().and_then(|i| i.id);
    let answer = reading.well_formed()
        && reading.msg.as_ref().is_some_and(|m| !m.contains_key("method"))
        && id == Some(Value::from(1));
    let single_line = single_line && decided;
    if single_line && answer {
        match &out {
            Some(text) => {
                let text = std::str::from_utf8(text).expect("text");
                assert_eq!(sent, format!("event: message\ndata: {text}\n\n").into_bytes(), "the answer, offered");
            }
            None => assert_eq!(sent, event, "an answer with nothing to offer passes byte for byte"),
        }
    }
    // What the result cache keeps is the answer as the client got it, and only the answer.
    if single_line && !data.trim_ascii().is_empty() {
        let expected: &[u8] = match (&out, answer) {
            (_, false) => b"",
            (Some(text), true) => text,
            (None, true) => data,
        };
        assert_eq!(kept, expected, "the kept answer is the one the client got");
    }
}

/// The answer with every URI place's string offered: an independent walk of the value.
fn expected(mut v: Value, places: Places) -> Value {
    let offer = |s: &mut Value| {
        if let Value::String(uri) = s {
            *uri = offered(uri);
        }
    };
    let block = |b: &mut Value| match b.get("type").and_then(Value::as_str) {
        Some("resource_link") => b.get_mut("uri").map(offer).unwrap_or_default(),
        Some("resource") => b.pointer_mut("/resource/uri").map(offer).unwrap_or_default(),
        _ => {}
    };
    let Some(result) = v.get_mut("result") else { return v };
    if places == Places::Read {
        for c in result.get_mut("contents").and_then(Value::as_array_mut).into_iter().flatten() {
            c.get_mut("uri").map(offer).unwrap_or_default();
        }
    }
    if places == Places::Tool {
        for b in result.get_mut("content").and_then(Value::as_array_mut).into_iter().flatten() {
            block(b);
        }
    }
    let messages = if places == Places::Prompt { result.get_mut("messages") } else { None };
    for m in messages.and_then(Value::as_array_mut).into_iter().flatten() {
        match m.get_mut("content") {
            Some(Value::Array(blocks)) => blocks.iter_mut().for_each(block),
            Some(one) => block(one),
            None => {}
        }
    }
    v
}

/// The keys the reading reads somewhere.
const READ: [&str; 7] = ["result", "contents", "content", "messages", "type", "uri", "resource"];

/// Whether `key` holds a character Go folds to an ASCII letter (`ſ`, the Kelvin sign): the
/// oracle does not decide what such a key aliases.
fn folds(key: &str) -> bool {
    key.chars().any(|c| c == '\u{17F}' || c == '\u{212A}')
}

/// Whether some object in `data` names a key twice (escapes read), or a key that is one of
/// [`READ`] in another case: None when `data` does not read as one JSON value (a lone
/// surrogate in a key, trailing bytes).
fn repeats_a_key(data: &[u8]) -> Option<bool> {
    use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};

    struct Repeats(bool);
    struct Walk;
    impl<'de> Visitor<'de> for Walk {
        type Value = Repeats;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E>(self, _: bool) -> Result<Repeats, E> {
            Ok(Repeats(false))
        }
        fn visit_i64<E>(self, _: i64) -> Result<Repeats, E> {
            Ok(Repeats(false))
        }
        fn visit_u64<E>(self, _: u64) -> Result<Repeats, E> {
            Ok(Repeats(false))
        }
        fn visit_f64<E>(self, _: f64) -> Result<Repeats, E> {
            Ok(Repeats(false))
        }
        fn visit_str<E>(self, _: &str) -> Result<Repeats, E> {
            Ok(Repeats(false))
        }
        fn visit_unit<E>(self) -> Result<Repeats, E> {
            Ok(Repeats(false))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Repeats, A::Error> {
            let mut any = false;
            while let Some(Repeats(r)) = seq.next_element()? {
                any |= r;
            }
            Ok(Repeats(any))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Repeats, A::Error> {
            let (mut seen, mut any) = (std::collections::HashSet::new(), false);
            while let Some(key) = map.next_key::<String>()? {
                any |= READ.iter().any(|k| *k != key && k.eq_ignore_ascii_case(&key)) || folds(&key);
                any |= !seen.insert(key);
                let Repeats(r) = map.next_value()?;
                any |= r;
            }
            Ok(Repeats(any))
        }
    }
    impl<'de> serde::Deserialize<'de> for Repeats {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Repeats, D::Error> {
            d.deserialize_any(Walk)
        }
    }
    serde_json::from_slice::<Repeats>(data).ok().map(|Repeats(r)| r)
}
