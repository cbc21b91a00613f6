use super::*;

fn data(event: &Bytes) -> serde_json::Value {
    let text = std::str::from_utf8(event).expect("utf8");
    let line = text.lines().find_map(|l| l.strip_prefix("data: ")).expect("a data line");
    serde_json::from_str(line).expect("json")
}

fn listen(body: &str) -> Listen {
    read(body.as_bytes()).unwrap_or_else(|| panic!("a listen: {body}"))
}

const META: &str =
    r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;

#[test]
fn a_listen_is_read_with_its_flags_uris_and_meta_and_refused_when_malformed() {
    let l = listen(&format!(
        r#"{{"jsonrpc":"2.0","id":"s1","method":"subscriptions/listen","params":{{"notifications":{{"toolsListChanged":true,"promptsListChanged":false,"resourceSubscriptions":["a+res://x"],"taskIds":["t"]}},"_meta":{META}}}}}"#
    ));
    assert_eq!(l.id, r#""s1""#);
    assert_eq!(l.filter, Filter { lists: [true, false, false], uris: vec!["a+res://x".into()] });
    assert_eq!(l.meta.get(), META);
    for bad in [
        // No notifications, no _meta, a flag that is not a boolean, a URI that is not a string.
        format!(r#"{{"id":1,"params":{{"_meta":{META}}}}}"#),
        r#"{"id":1,"params":{"notifications":{}}}"#.to_owned(),
        format!(r#"{{"id":1,"params":{{"notifications":{{"toolsListChanged":"yes"}},"_meta":{META}}}}}"#),
        format!(r#"{{"id":1,"params":{{"notifications":{{"resourceSubscriptions":[1]}},"_meta":{META}}}}}"#),
        format!(r#"{{"id":{{"x":1}},"params":{{"notifications":{{}},"_meta":{META}}}}}"#),
        r#"{"id":1,"params":{"notifications":{},"_meta":[1]}}"#.to_owned(),
    ] {
        assert!(read(bad.as_bytes()).is_none(), "{bad}");
    }
    let many: Vec<String> = (0..=MAX_URIS).map(|i| format!("\"u{i}\"")).collect();
    let body = format!(
        r#"{{"id":1,"params":{{"notifications":{{"resourceSubscriptions":[{}]}},"_meta":{META}}}}}"#,
        many.join(",")
    );
    assert!(read(body.as_bytes()).is_none(), "more URIs than a listen watches");
}

#[test]
fn the_member_gets_the_clients_id_and_meta_with_its_own_filter() {
    let l = listen(&format!(r#"{{"id":7,"params":{{"notifications":{{"toolsListChanged":true}},"_meta":{META}}}}}"#));
    let own = Filter { lists: [true, false, true], uris: vec!["res://x".into()] };
    let body: serde_json::Value = serde_json::from_slice(&member_body(&l, &own)).expect("json");
    assert_eq!(body["id"], 7);
    assert_eq!(body["method"], "subscriptions/listen");
    assert_eq!(
        body["params"]["notifications"],
        serde_json::json!({"toolsListChanged": true, "resourcesListChanged": true, "resourceSubscriptions": ["res://x"]})
    );
    assert_eq!(body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"], "2026-07-28");
}

#[test]
fn the_acknowledgement_and_the_close_carry_the_subscription_id() {
    let ack = data(&acknowledged(r#""s1""#, &Filter { lists: [false, true, false], uris: vec![] }));
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(ack["params"]["notifications"], serde_json::json!({"promptsListChanged": true}));
    assert_eq!(ack["params"]["_meta"][SUBSCRIPTION_KEY], "s1");
    let end = data(&closing("42"));
    assert_eq!(end["id"], 42);
    assert_eq!(end["result"]["_meta"][SUBSCRIPTION_KEY], 42);
}

#[test]
fn only_what_the_client_asked_for_reaches_it_tagged_with_its_id() {
    let filter = Filter { lists: [true, false, false], uris: vec!["a+res://x".into()] };
    let offered = |own: &str| format!("a+{own}");
    let hear = |json: &str| heard(json.as_bytes(), r#""s1""#, &filter, offered);
    let Heard::Relay(event, kinds) = hear(
        r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed","params":{"_meta":{"io.modelcontextprotocol/subscriptionId":99}}}"#,
    ) else {
        panic!("tools changed is relayed")
    };
    assert_eq!(kinds, &[Kind::Tools]);
    let v = data(&event);
    assert_eq!(v["method"], "notifications/tools/list_changed");
    assert_eq!(v["params"]["_meta"][SUBSCRIPTION_KEY], "s1", "the client's id, not the member's");
    let Heard::Relay(event, kinds) =
        hear(r#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"res://x"}}"#)
    else {
        panic!("a watched resource's update is relayed")
    };
    assert!(kinds.is_empty());
    assert_eq!(data(&event)["params"]["uri"], "a+res://x");
    // Not asked for: prompts, another URI, anything else a member sends; its own ack.
    for not in [
        r#"{"jsonrpc":"2.0","method":"notifications/prompts/list_changed"}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"res://y"}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"x"}}"#,
        r#"{"jsonrpc":"2.0","id":5,"method":"sampling/createMessage","params":{}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged","params":{}}"#,
        "not json",
        r#"{"jsonrpc":"2.0"}"#,
    ] {
        assert_eq!(hear(not), Heard::Nothing, "{not}");
    }
    assert_eq!(hear(r#"{"jsonrpc":"2.0","id":"s1","result":{}}"#), Heard::Ended { refused: false });
    assert_eq!(hear(r#"{"jsonrpc":"2.0","id":"s1","error":{"code":-32601}}"#), Heard::Ended { refused: true });
}

#[test]
fn a_resumed_member_says_each_listened_list_changed() {
    let told = resumed("3", &Filter { lists: [true, false, true], uris: vec!["x".into()] });
    let methods: Vec<String> = told.iter().map(|(e, _)| data(e)["method"].as_str().unwrap_or("").to_owned()).collect();
    assert_eq!(methods, ["notifications/tools/list_changed", "notifications/resources/list_changed"]);
    assert_eq!(told[1].1, &[Kind::Resources, Kind::Templates]);
}

#[test]
fn an_announced_change_reaches_only_the_listens_that_asked_for_that_list() {
    let filter = Filter { lists: [true, false, true], uris: Vec::new() };
    let told = announced(r#""sub-1""#, &filter, &[Kind::Tools]).expect("asked for tools");
    let told = String::from_utf8_lossy(&told).into_owned();
    assert!(told.contains("notifications/tools/list_changed") && told.contains(r#""sub-1""#), "{told}");
    assert!(announced(r#""sub-1""#, &filter, &[Kind::Prompts]).is_none(), "not asked for prompts");
    assert!(announced(r#""sub-1""#, &filter, &[Kind::Resources, Kind::Templates]).is_some());
    let legacy = announced_legacy(&[Kind::Prompts]).expect("a legacy stream hears every list");
    assert!(String::from_utf8_lossy(&legacy)
        .contains(r#"data: {"jsonrpc":"2.0","method":"notifications/prompts/list_changed"}"#));
}
