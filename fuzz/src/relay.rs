//! `relay`: what a member sends on its streams, on its way to a client of a federated session
//! (`federation::relay`). For any member message: the reading never panics; a message passed
//! rewritten is one JSON object; a message naming a key twice never passes; a member's request
//! reaches the client under an id that restores to that member and to the id exactly as the
//! member wrote it, and the client's answer under that id goes back with it; a message that is
//! not JSON-RPC 2.0, or has a key that reads as a JSON-RPC key ignoring case, never passes. For any client answer id:
//! only an id the relay made restores, for the session it made it for. For any event of a call's
//! stream: one without data passes byte for byte; an answer to another request, or data that is not
//! one JSON object, never passes; whatever passes adds no event (no blank line inside a relayed
//! event).
//!
//! Input: the first byte picks the member (0..=7) and whether URIs are offered (bit 3); the rest is a member's message, and the
//! same bytes as a whole SSE event and as a client's answer id.

use std::sync::LazyLock;

use mcp_edge::federation::contents::Places;
use mcp_edge::federation::relay::{self, Ids, Relayed};
use mcp_edge::proxy::sse_event;
use mcp_edge::session::{KeyRing, SessionKey};

use crate::message::{Msg, Reading};

static KEYS: LazyLock<KeyRing> = LazyLock::new(|| KeyRing::new(SessionKey::random()));

fn offered(uri: &str) -> String {
    format!("m+{uri}")
}

pub fn check(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else { return };
    let member = usize::from(first % 8);
    let ids = Ids { keys: &KEYS, session: "fp" };
    // Read apart from the relay: values as written, JSON-RPC 2.0, keys once, no key that reads
    // as a JSON-RPC key ignoring ASCII case without being one (`"ID"`).
    let reading = Reading::of(rest);
    let as_written = &reading.msg;
    let relayed = relay::relay(&ids, member, rest, offered);
    // A request or notification carrying an answer too is neither, and never passes.
    let hybrid = as_written
        .as_ref()
        .is_some_and(|m| m.contains_key("method") && (m.contains_key("result") || m.contains_key("error")));
    if hybrid {
        assert_eq!(relayed, Relayed::Dropped, "a request carrying an answer passes");
    }
    // A request whose id is a string or number of at most 256 bytes always reaches the client.
    let request = as_written.as_ref().filter(|_| !hybrid).and_then(|m| Some((m.get("method")?, m.get("id")?)));
    if let Some((method, id)) = request {
        let named = serde_json::from_str::<String>(method.get()).is_ok();
        let carried =
            id.get().len() <= 256 && id.get().starts_with(|c: char| c == '"' || c == '-' || c.is_ascii_digit());
        if named && carried && reading.well_formed() {
            assert!(matches!(relayed, Relayed::Rewritten(_)), "a request reaches the client: {relayed:?}");
        }
    }
    assert!(!reading.twice || relayed == Relayed::Dropped, "a message with a key written twice passes: {relayed:?}");
    if reading.ill_formed() {
        assert_eq!(relayed, Relayed::Dropped, "not JSON-RPC 2.0, or a key read as another, passes");
    }
    match relayed {
        Relayed::Rewritten(text) => {
            let out: Msg = serde_json::from_str(&text).expect("a rewritten message is one JSON object");
            if let (Some(id), Some(_)) = (out.get("id"), out.get("method")) {
                let mapped = id.get().as_bytes();
                let (to, own) = ids.restore(mapped).expect("the relay's id restores");
                let elsewhere = Ids { keys: &KEYS, session: "another" };
                assert!(elsewhere.restore(mapped).is_none(), "another session cannot use it");
                assert_eq!(to, member, "the answer goes to the member that asked");
                let sent = as_written.as_ref().and_then(|m| m.get("id")).expect("the member sent an id");
                assert_eq!(own, sent.get(), "the member's id comes back as it wrote it");
                let answer = format!(r#"{{"jsonrpc":"2.0","id":{},"result":{{}}}}"#, id.get());
                let back = relay::answered(answer.as_bytes(), &own).expect("the answer is rewritten");
                let back: Msg = serde_json::from_slice(&back).expect("JSON");
                assert_eq!(back.get("id").map(|i| i.get()), Some(sent.get()));
            }
        }
        Relayed::Changed(kinds) => assert!(!kinds.is_empty()),
        Relayed::AsIs | Relayed::Dropped | Relayed::Response(_) => {}
    }
    // A client's answer id: only the relay's own restore (sealed with a key no input knows).
    assert!(ids.restore(rest).is_none(), "an id the relay did not make restores");
    // The bytes as one event of a call's stream (the client's call has id "c1").
    let mut out = Vec::new();
    // Every other input is a tool call, whose answer can carry resource URIs (`contents`
    // checks what becomes of those).
    let places = (first & 8 != 0).then_some(Places::Tool);
    let mut asked = relay::Asked { id: Some(b"\"c1\""), places, keep: None, answered: false, eventful: false };
    let _ = relay::answer_event(&ids, &mut asked, member, rest, offered, &mut out);
    let data = sse_event::data(rest).map(|(d, _)| d);
    match data.as_deref().filter(|d| !d.trim_ascii().is_empty()) {
        None => assert_eq!(out, rest, "an event without data passes byte for byte"),
        Some(data) => {
            // As written (a number out of `f64`'s range is JSON).
            let msg: Option<Msg> = serde_json::from_slice(data).ok();
            let ours =
                |id: &serde_json::value::RawValue| serde_json::from_str::<String>(id.get()).is_ok_and(|i| i == "c1");
            let foreign =
                msg.as_ref().is_some_and(|m| !m.contains_key("method") && !m.get("id").is_some_and(|i| ours(i)));
            let twice = Reading::of(data).twice;
            if foreign || twice || msg.is_none() {
                assert!(out.is_empty(), "no answer to another request, nothing but messages: {out:?}");
            }
        }
    }
    if out != rest && !out.is_empty() {
        // Rewritten: one event, ending in its one blank line.
        let text = std::str::from_utf8(&out).expect("a rewritten event is text");
        assert!(text.ends_with("\n\n") && !text[..text.len() - 2].contains("\n\n"), "one event: {text:?}");
        assert!(!text.contains('\r'), "no other line ending: {text:?}");
    }
}
