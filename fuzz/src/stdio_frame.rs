//! `stdio_frame`: the stdio bridge's rewriting of messages (`stdio::frame`). For any client
//! body: a request reaches the process as exactly one line of JSON, under the bridge's number
//! (and, when it asked for progress, the bridge's token), never the client's; a notification
//! as one line; an `initialize` (what a session's process is started with) as one line under
//! the bridge's `initialize` number; nothing can add a second line (a message smuggled to the process). For any
//! line the process writes: the reading never panics, and an answer given back to a client
//! carries the client's id as the client wrote it, on one line; a client's answer to the
//! server reaches it on one line; what the server sends on its own reaches a session's client
//! as one SSE data line.
//!
//! Input: the whole input, as a client body and as a process line.

use mcp_edge::stdio::frame::{self, Inbound, Msg, Outbound};

const NUMBER: u64 = 4242;

/// The line as one JSON object, read as the process would (values as written: a number out of
/// `f64`'s range is still JSON).
fn one_line(line: &[u8]) -> Msg {
    assert_eq!(line.last(), Some(&b'\n'), "a line ends with a newline");
    assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1, "exactly one line");
    serde_json::from_slice(line).expect("the line is one JSON object")
}

/// `msg.params._meta.progressToken`, as written.
fn token(msg: &Msg) -> Option<String> {
    let params: Msg = serde_json::from_str(msg.get("params")?.get()).ok()?;
    let meta: Msg = serde_json::from_str(params.get("_meta")?.get()).ok()?;
    meta.get("progressToken").map(|t| t.get().to_owned())
}

pub fn check(data: &[u8]) {
    match frame::inbound(data, NUMBER) {
        Ok(Inbound::Request { progress, line, .. }) => {
            assert!(!line[..line.len() - 1].contains(&b'\r'), "no carriage return outside strings");
            let sent = one_line(&line);
            assert_eq!(sent.get("id").map(|id| id.get()), Some("4242"), "the process sees the bridge's number");
            match progress {
                Some(_) => assert_eq!(token(&sent).as_deref(), Some("\"mcp-edge-4242\"")),
                None => assert!(token(&sent).is_none(), "no token the client did not send"),
            }
        }
        Ok(Inbound::Notification(line)) => {
            let sent = one_line(&line);
            assert!(!sent.contains_key("id"), "a notification stays one");
        }
        Ok(Inbound::Initialize { line, .. }) => {
            // A session's process gets the client's own initialize, under the bridge's number.
            let sent = one_line(&line);
            assert_eq!(sent.get("id").map(|id| id.get()), Some("0"));
            let method = sent.get("method").and_then(|m| serde_json::from_str::<String>(m.get()).ok());
            assert_eq!(method.as_deref(), Some("initialize"));
        }
        Ok(Inbound::Answer(line)) => {
            // A session's process gets the client's answer to its own request: under the id
            // the server gave it (not renumbered), with a result or an error, on one line.
            let sent = one_line(&line);
            let given: Msg = serde_json::from_slice(data).expect("an answer was read from JSON");
            let id = |m: &Msg| m.get("id").and_then(|id| serde_json::from_str::<serde_json::Value>(id.get()).ok());
            assert_eq!(id(&sent), id(&given), "the server's own id, not renumbered");
            assert!(!sent.contains_key("method") && (sent.contains_key("result") || sent.contains_key("error")));
            assert_eq!(sent.len(), given.len(), "nothing added or dropped");
        }
        Ok(Inbound::Kept) | Err(_) => {}
    }
    let changed = matches!(frame::outbound(data), Outbound::Changed { .. });
    let method = serde_json::from_slice::<Msg>(data)
        .ok()
        .and_then(|m| m.get("method").and_then(|v| serde_json::from_str::<String>(v.get()).ok()));
    let lists = [
        "notifications/tools/list_changed",
        "notifications/prompts/list_changed",
        "notifications/resources/list_changed",
    ];
    let says_changed = method.as_deref().is_some_and(|m| lists.contains(&m));
    if changed {
        // Only the three list notifications, as written, and never one that carries an answer.
        assert!(says_changed, "{method:?}");
    }
    if let Outbound::Request { msg, .. } | Outbound::Notification(msg) | Outbound::Changed { msg, .. } =
        frame::outbound(data)
    {
        // What a session's process sends on its own goes to its client as one SSE data line.
        let sent = frame::relayed(&msg);
        assert!(!sent.contains(&b'\n') && !sent.contains(&b'\r'), "one SSE data line");
        let back: Msg = serde_json::from_slice(&sent).expect("JSON");
        assert_eq!(back.len(), msg.len(), "the message as the process wrote it");
    }
    if let Outbound::Response { number, msg } = frame::outbound(data) {
        assert_eq!(msg.get("id").map(|id| id.get().to_owned()), Some(number.to_string()));
        let id = serde_json::value::RawValue::from_string("123456789012345678901234567890".into()).expect("raw");
        let back = frame::answer(msg, id);
        assert!(!back.contains(&b'\n') && !back.contains(&b'\r'), "an answer fits one SSE data line");
        let back: frame::Msg = serde_json::from_slice(&back).expect("JSON");
        assert_eq!(
            back.get("id").map(|id| id.get()),
            Some("123456789012345678901234567890"),
            "the client's id, as written"
        );
    }
}
