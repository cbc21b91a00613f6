//! `relay`: what a member sends on its streams, on its way to a client of a federated session
//! (`federation::relay`). For any member message: the reading never panics; a message passed
//! rewritten is one JSON object; a member's request reaches the client under an id that
//! restores to that member and to the id exactly as the member wrote it, and the client's
//! answer under that id goes back with it. For any client answer id: only an id the relay
//! made restores. For any event of a call's stream: an event that names no `"method"` passes
//! byte for byte, and whatever passes adds no event (no blank line inside a relayed event).
//!
//! Input: the first byte picks the member (0..=7); the rest is a member's message, and the
//! same bytes as a whole SSE event and as a client's answer id.

use mcp_edge::federation::relay::{self, Relayed};

fn offered(uri: &str) -> String {
    format!("m+{uri}")
}

pub fn check(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else { return };
    let member = usize::from(first % 8);
    let as_written: Option<serde_json::Map<String, serde_json::Value>> = serde_json::from_slice(rest).ok();
    match relay::relay(member, rest, offered) {
        Relayed::Rewritten(text) => {
            let out: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&text).expect("a rewritten message is one JSON object");
            if let (Some(id), Some(_)) = (out.get("id"), out.get("method")) {
                let mapped = serde_json::to_vec(id).expect("an id");
                let (to, own) = relay::restore(&mapped).expect("the relay's id restores");
                assert_eq!(to, member, "the answer goes to the member that asked");
                let written: serde_json::Value = serde_json::from_str(&own).expect("the member's id");
                let sent = as_written.as_ref().and_then(|m| m.get("id")).expect("the member sent an id");
                assert_eq!(&written, sent, "the member's id comes back as it wrote it");
                let answer = format!(r#"{{"jsonrpc":"2.0","id":{},"result":{{}}}}"#, String::from_utf8_lossy(&mapped));
                let back = relay::answered(answer.as_bytes(), &own).expect("the answer is rewritten");
                let back: serde_json::Value = serde_json::from_slice(&back).expect("JSON");
                assert_eq!(&back["id"], sent);
            }
        }
        Relayed::Changed(kinds) => assert!(!kinds.is_empty()),
        Relayed::AsIs | Relayed::Dropped => {}
    }
    // A client's answer id: only the relay's own restore, each to one member.
    if let Some((to, own)) = relay::restore(rest) {
        let id: String = serde_json::from_slice(rest).expect("a restored id is a JSON string");
        assert_eq!(id, format!("{}{to}~{own}", relay::ID_PREFIX), "the id names what it restores to");
        let _ = relay::answered(rest, &own);
    }
    // The bytes as one event of a call's stream.
    let mut out = Vec::new();
    let _ = relay::answer_event(member, rest, offered, &mut out);
    if !rest.windows(8).any(|w| w == b"\"method\"") {
        assert_eq!(out, rest, "an event naming no method passes byte for byte");
    } else if out != rest {
        // Rewritten: one event, ending in its one blank line.
        let text = std::str::from_utf8(&out).expect("a rewritten event is text");
        assert!(text.ends_with("\n\n") && !text[..text.len() - 2].contains("\n\n"), "one event: {text:?}");
        assert!(!text.contains('\r'), "no other line ending: {text:?}");
    }
}
