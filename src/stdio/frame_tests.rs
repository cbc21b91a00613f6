use serde_json::{json, Value};

use super::*;

fn parsed(line: &[u8]) -> Value {
    assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1, "one line: {:?}", String::from_utf8_lossy(line));
    assert_eq!(line.last(), Some(&b'\n'));
    serde_json::from_slice(line).unwrap()
}

fn raw_of(text: &str) -> Box<RawValue> {
    RawValue::from_string(text.to_owned()).unwrap()
}

#[test]
fn a_request_reaches_the_process_under_the_bridges_number_and_token() {
    let body = br#"{"jsonrpc":"2.0","id":"a",
        "method":"tools/call","params":{"name":"x\n","_meta":{"progressToken":7}}}"#;
    let Ok(Inbound::Request { id, progress, line }) = inbound(body, 42) else { panic!("not a request") };
    assert_eq!((id.get(), progress.as_ref().map(|p| p.get())), (r#""a""#, Some("7")));
    let sent = parsed(&line);
    assert_eq!(sent["id"], json!(42));
    assert_eq!(sent["params"]["_meta"]["progressToken"], json!("mcp-edge-42"));
    assert_eq!(sent["params"]["name"], json!("x\n"), "a newline inside a string stays escaped");
}

#[test]
fn numbers_and_ids_keep_their_spelling_both_ways() {
    // A pretty-printed body: values kept as written still make one line.
    let body = b"{\"jsonrpc\":\"2.0\",\"id\":123456789012345678901234567890,\"method\":\"tools/call\",\r\n \"params\":{\"name\":\"t\",\"arguments\":{\"n\": [1e400, 0.1e1,\n -0, \"a b\\n\"]}}}";
    let Ok(Inbound::Request { id, line, .. }) = inbound(body, 3) else { panic!("not a request") };
    assert_eq!(id.get(), "123456789012345678901234567890");
    let text = String::from_utf8(line).unwrap();
    assert!(text.contains(r#""arguments":{"n":[1e400,0.1e1,-0,"a b\n"]}"#), "{text}");
    assert_eq!(text.matches('\n').count(), 1, "{text}");
    let Outbound::Response { msg, .. } =
        outbound(br#"{"jsonrpc":"2.0","id":3,"result":{"big":98765432109876543210987}}"#)
    else {
        panic!("not a response")
    };
    let back = String::from_utf8(answer(msg, id)).unwrap();
    assert_eq!(
        back,
        r#"{"id":123456789012345678901234567890,"jsonrpc":"2.0","result":{"big":98765432109876543210987}}"#
    );
}

#[test]
fn the_answer_and_its_progress_get_the_clients_id_and_token_back() {
    let Outbound::Response { number, msg } = outbound(br#"{"jsonrpc":"2.0","id":42,"result":{"ok":true}}"#) else {
        panic!("not a response")
    };
    assert_eq!(number, 42);
    let back: Value = serde_json::from_slice(&answer(msg, raw_of(r#""a""#))).unwrap();
    assert_eq!(back, json!({"jsonrpc":"2.0","id":"a","result":{"ok":true}}));

    let line =
        br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"mcp-edge-42","progress":1}}"#;
    let Outbound::Progress { number, msg } = outbound(line) else { panic!("not progress") };
    assert_eq!(number, 42);
    let back: Value = serde_json::from_slice(&progress(msg, raw_of("7"))).unwrap();
    assert_eq!(back["params"]["progressToken"], json!(7));
}

#[test]
fn the_bridge_keeps_what_the_process_must_not_see() {
    for kept in [
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3}}"#,
        r#"{"jsonrpc":"2.0","id":9}"#,
    ] {
        assert!(matches!(inbound(kept.as_bytes(), 1), Ok(Inbound::Kept)), "{kept}");
    }
    let init = inbound(br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#, 5);
    let Ok(Inbound::Initialize { id, line }) = init else { panic!("an initialize: {init:?}") };
    assert_eq!(id.get(), "1");
    // A session's process gets the client's own, under the bridge's number.
    assert_eq!(line, b"{\"id\":0,\"jsonrpc\":\"2.0\",\"method\":\"initialize\",\"params\":{}}\n");
    assert_eq!(inbound(b"[]", 1).err(), Some(Refused::Batch));
    assert_eq!(inbound(b"{\"method\":1}", 1).err(), Some(Refused::NotMessage));
    assert_eq!(inbound(b"7", 1).err(), Some(Refused::NotMessage));
    assert_eq!(inbound(b"{", 1).err(), Some(Refused::NotJson));
}

#[test]
fn a_clients_answer_to_the_server_reaches_it_as_written_on_one_line() {
    let body = b"{\"jsonrpc\":\"2.0\",\r\n \"id\":\"s1\",\"result\":{\"content\":{\"text\": \"a\\nb\"}}}";
    let Ok(Inbound::Answer(line)) = inbound(body, 7) else { panic!("not an answer") };
    assert_eq!(parsed(&line), json!({"jsonrpc":"2.0","id":"s1","result":{"content":{"text":"a\nb"}}}));
    let Ok(Inbound::Answer(line)) = inbound(br#"{"jsonrpc":"2.0","id":3,"error":{"code":-1,"message":"no"}}"#, 7)
    else {
        panic!("an error is an answer too")
    };
    assert_eq!(parsed(&line)["id"], json!(3), "the server's own id: not renumbered");
}

#[test]
fn what_the_server_sends_on_its_own_is_relayed_on_one_line() {
    let line = b"{\"jsonrpc\":\"2.0\",\r\"method\":\"notifications/message\",\"params\":{\"data\":\r\n\"x\"}}";
    let Outbound::Notification(msg) = outbound(line) else { panic!("not a notification") };
    let sent = relayed(&msg);
    assert!(!sent.contains(&b'\r') && !sent.contains(&b'\n'), "one SSE data line");
    assert_eq!(serde_json::from_slice::<Value>(&sent).unwrap()["params"]["data"], json!("x"));
    let changed = br#"{"jsonrpc":"2.0","method":"notifications/resources/list_changed"}"#;
    assert!(matches!(outbound(changed), Outbound::Changed { lists: Lists::Resources, .. }));
    let escaped = br#"{"jsonrpc":"2.0","method":"notifications/tools/list\u005fchanged"}"#;
    assert!(matches!(outbound(escaped), Outbound::Changed { lists: Lists::Tools, .. }), "read as JSON reads it");
    let answered = br#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed","result":{}}"#;
    assert!(matches!(outbound(answered), Outbound::Other), "not a notification");
    let foreign = br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"theirs"}}"#;
    assert!(matches!(outbound(foreign), Outbound::Notification(_)), "progress not for a bridge request");
    for hybrid in [
        &br#"{"jsonrpc":"2.0","id":3,"method":"x","result":{}}"#[..],
        br#"{"jsonrpc":"2.0","method":"notifications/message","error":{"code":1,"message":"m"}}"#,
    ] {
        assert!(matches!(outbound(hybrid), Outbound::Other), "a request or notification with an answer is neither");
    }
}

#[test]
fn server_requests_are_answered_by_the_bridge() {
    let Outbound::Request { id, method, .. } =
        outbound(br#"{"jsonrpc":"2.0","id":"s1","method":"sampling/createMessage"}"#)
    else {
        panic!("not a request")
    };
    assert_eq!(parsed(&refusal(&id, &method))["error"]["code"], json!(-32601));
    assert_eq!(parsed(&refusal(&raw_of("1"), "ping"))["result"], json!({}));
    assert!(
        matches!(outbound(br#"{"jsonrpc":"2.0","id":"x","result":{}}"#), Outbound::Other),
        "not a number we issued"
    );
    assert!(matches!(outbound(b"hello"), Outbound::Unreadable));
}

#[test]
fn a_token_whose_key_is_spelled_with_escapes_is_swapped_too() {
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","_meta":{"progress\u0054oken":"mcp-edge-7"}}}"#;
    let Ok(Inbound::Request { progress, line, .. }) = inbound(body, 42) else { panic!("not a request") };
    assert_eq!(progress.as_ref().map(|p| p.get()), Some(r#""mcp-edge-7""#));
    assert_eq!(parsed(&line)["params"]["_meta"]["progressToken"], json!("mcp-edge-42"));
    // Without a token, nothing is added.
    let Ok(Inbound::Request { progress, line, .. }) =
        inbound(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a\\b"}}"#, 3)
    else {
        panic!("not a request")
    };
    assert!(progress.is_none() && parsed(&line)["params"].get("_meta").is_none());
}

#[test]
fn only_ids_a_client_can_answer_under_are_relayed() {
    for plain in [r#""s1""#, "7", "-3", "123456789012345678901234567890"] {
        assert!(plain_id(&raw_of(plain)), "{plain}");
    }
    // Found by an attack: each reached the client, which could not answer it.
    let long = format!("\"{}\"", "i".repeat(1024));
    for other in [r#"{"a":1}"#, "[1]", "true", "null", "1e400", "1.5", long.as_str()] {
        assert!(!plain_id(&raw_of(other)), "{other}");
    }
}
