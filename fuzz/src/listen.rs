//! `listen`: a 2026-07-28 client's `subscriptions/listen` and what members send on theirs
//! (`federation::listen`). For any client request: the reading never panics; a listen read
//! has a string or number id, at most 256 watched URIs, and the body each member gets is one
//! JSON request under that id asking for the lists it asked for. For any member message: the
//! reading never panics, and whatever reaches the client is one JSON notification the client
//! asked for (a list it listens to, or an update of a URI it watches, as offered), tagged
//! with its subscription id and nothing else.
//!
//! Input: the first byte picks the client's list flags (bits 0..2) and whether it watches the
//! offered URI `m+res://x`; the rest is both a client's listen body and a member's message.

use mcp_edge::federation::listen::{self, Filter, Heard, SUBSCRIPTION_KEY};

fn offered(uri: &str) -> String {
    format!("m+{uri}")
}

pub fn check(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else { return };
    if let Some(asked) = listen::read(rest) {
        assert!(asked.filter.uris.len() <= listen::MAX_URIS);
        let id: serde_json::Value = match serde_json::from_str(&asked.id) {
            Ok(id) => id,
            // A lone surrogate escape (`"s\ud993"`) or a number past f64 (`1e400`): JSON by its
            // grammar, which serde_json refuses to read as a value. Passed as written.
            Err(e) => {
                serde_json::from_str::<&serde_json::value::RawValue>(&asked.id).expect("one JSON value");
                let escape = asked.id.starts_with('"') && asked.id.contains(r"\u");
                assert!(escape || e.to_string().contains("number out of range"), "only what serde refuses: {e}");
                return;
            }
        };
        assert!(id.is_string() || id.is_number(), "{id}");
        let member = listen::member_body(&asked, &asked.filter);
        let body: serde_json::Value = match serde_json::from_slice(&member) {
            Ok(body) => body,
            // The client's `_meta` goes as written, and may hold a lone surrogate escape
            // (`\ud8e9`) or a number past f64 (`1e400`): JSON by its grammar, which
            // serde_json refuses to read as a value.
            Err(e) => {
                serde_json::from_slice::<&serde_json::value::RawValue>(&member).expect("one JSON body");
                let escape = rest.windows(2).any(|w| w == br"\u");
                assert!(escape || e.to_string().contains("number out of range"), "only what serde refuses: {e}");
                return;
            }
        };
        assert_eq!(body["id"], id);
        assert_eq!(body["method"], "subscriptions/listen");
        for (i, key) in ["toolsListChanged", "promptsListChanged", "resourcesListChanged"].iter().enumerate() {
            assert_eq!(body["params"]["notifications"].get(*key).is_some(), asked.filter.lists[i]);
        }
        let ack = listen::acknowledged(&asked.id, &asked.filter);
        assert_eq!(data_of(&ack)["params"]["_meta"][SUBSCRIPTION_KEY], id);
    }
    let lists = [first & 1 != 0, first & 2 != 0, first & 4 != 0];
    let uris = if first & 8 != 0 { vec!["m+res://x".to_owned()] } else { Vec::new() };
    let filter = Filter { lists, uris };
    let id = r#""sub""#;
    if let Heard::Relay(event, changed) = listen::heard(rest, id, &filter, offered) {
        let m = data_of(&event);
        assert_eq!(m["params"]["_meta"][SUBSCRIPTION_KEY], "sub", "{m}");
        assert!(m.get("id").is_none(), "a notification: {m}");
        let method = m["method"].as_str().expect("a method");
        let asked = match method {
            "notifications/tools/list_changed" => lists[0],
            "notifications/prompts/list_changed" => lists[1],
            "notifications/resources/list_changed" => lists[2],
            "notifications/resources/updated" => {
                changed.is_empty() && m["params"]["uri"] == "m+res://x" && first & 8 != 0
            }
            _ => false,
        };
        assert!(asked, "the client did not ask for {m} (filter {filter:?})");
    }
}

/// The JSON of an SSE event holding one `data:` line.
fn data_of(event: &[u8]) -> serde_json::Value {
    let text = std::str::from_utf8(event).expect("utf8");
    assert!(text.ends_with("\n\n") && !text[..text.len() - 2].contains("\n\n"), "one event: {text:?}");
    let data: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
    assert_eq!(data.len(), 1, "{text:?}");
    serde_json::from_str(data[0]).expect("JSON data")
}
