use super::*;

fn one(body: &str) -> Message<'_> {
    match parse(body.as_bytes()) {
        Ok(Body::One(m)) => m,
        other => panic!("not one message: {other:?}"),
    }
}

fn refused(body: &str) -> EnvelopeError<'_> {
    parse(body.as_bytes()).expect_err("refused")
}

fn is_invalid_without_id(e: &EnvelopeError<'_>) -> bool {
    matches!(e, EnvelopeError::Invalid { id: None, .. })
}

#[test]
fn request_with_tool_name_borrows_and_skips_arguments() {
    let body = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"deploy_app","arguments":{"x":[1,{"name":"no"}]}}}"#;
    let m = one(body);
    assert_eq!(
        (m.kind, m.id, m.method.as_deref(), m.name.as_deref()),
        (Kind::Request, Some("7"), Some("tools/call"), Some("deploy_app"))
    );
    assert!(matches!(m.name, Some(Cow::Borrowed(_))));
}

#[test]
fn ids_are_slices_of_the_body() {
    let body = br#"{"id":"a\"b","jsonrpc":"2.0","method":"resources/read","params":{"uri":"file:///x"}}"#;
    let Ok(Body::One(m)) = parse(body) else { panic!() };
    let id = m.id.expect("id");
    assert_eq!(id, r#""a\"b""#);
    let range = body.as_ptr_range();
    assert!(range.contains(&id.as_ptr()), "the id points into the body");
    assert_eq!(m.uri.as_deref(), Some("file:///x"));
}

#[test]
fn notifications_and_responses() {
    let n = one(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    assert_eq!((n.kind, n.id), (Kind::Notification, None));
    let r = one(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#);
    assert_eq!((r.kind, r.id, r.method), (Kind::Response, Some("1"), None));
    let e = one(r#"{"jsonrpc":"2.0","id":"x","error":{"code":1,"message":"m"}}"#);
    assert_eq!(e.kind, Kind::Response);
}

#[test]
fn a_tools_call_notification_keeps_its_tool() {
    let n = one(r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"deploy_db"}}"#);
    assert_eq!((n.kind, n.name.as_deref()), (Kind::Notification, Some("deploy_db")));
}

#[test]
fn null_and_odd_ids_are_refused_and_never_echoed() {
    // The body that once aborted the process: an error response without an id, or with null.
    for body in [
        r#"{"jsonrpc":"2.0","error":{"code":0,"message":""}}"#,
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":0,"message":""}}"#,
        r#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"deploy_db"}}"#,
        r#"{"jsonrpc":"2.0","id":true,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":[1],"method":"ping"}"#,
    ] {
        assert!(is_invalid_without_id(&refused(body)), "{body}");
    }
}

#[test]
fn batches_are_lists_of_messages_and_one_bad_element_refuses_all() {
    let Ok(Body::Batch(all)) = parse(br#" [{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"n"}]"#)
    else {
        panic!("batch")
    };
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].id, Some("1"));
    assert!(is_invalid_without_id(&refused("[]")));
    assert!(is_invalid_without_id(&refused(
        r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":null,"method":"x"}]"#
    )));
    assert!(is_invalid_without_id(&refused("[1,2]")));
    assert_eq!(refused(r#"[{"jsonrpc":"#), EnvelopeError::Parse);
    assert_eq!(refused("[1,2"), EnvelopeError::Parse, "a shape error before a syntax error is still -32700");
    assert_eq!(refused(r#"{"jsonrpc":5, nope"#), EnvelopeError::Parse);
}

#[test]
fn bad_input_is_parse_or_invalid() {
    assert_eq!(refused("{nope"), EnvelopeError::Parse);
    assert!(is_invalid_without_id(&refused("42")));
    assert!(matches!(refused(r#"{"id":3,"method":"x"}"#), EnvelopeError::Invalid { id: Some("3"), .. }));
    assert!(matches!(refused(r#"{"jsonrpc":"2.0","id":3}"#), EnvelopeError::Invalid { id: Some("3"), .. }));
    assert!(matches!(refused(r#"{"jsonrpc":"2.0","id":3,"method":"a","result":{}}"#), EnvelopeError::Invalid { .. }));
    assert!(matches!(refused(r#"{"jsonrpc":"2.0","id":3,"result":{},"error":{}}"#), EnvelopeError::Invalid { .. }));
    assert!(is_invalid_without_id(&refused(r#"{"jsonrpc":"2.0","id":1,"method":"a","method":"b"}"#)));
    assert!(is_invalid_without_id(&refused(r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"a"}"#)));
    assert!(is_invalid_without_id(&refused(
        r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"name":"a","name":"b"}}"#
    )));
}

#[test]
fn non_string_names_are_not_targets() {
    let m = one(r#"{"jsonrpc":"2.0","id":1,"method":"custom/x","params":{"name":{"first":"a"}}}"#);
    assert_eq!(m.name, None);
}

#[test]
fn escaped_names_are_unescaped() {
    let m = one(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"de\u0070loy"}}"#);
    assert_eq!(m.name.as_deref(), Some("deploy"));
}

#[test]
fn the_meta_protocol_version_is_read() {
    let m = one(
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"x":1,"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
    );
    assert_eq!(m.version.as_deref(), Some("2026-07-28"));
    assert!(matches!(
        refused(
            r#"{"jsonrpc":"2.0","id":1,"method":"a","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"a","io.modelcontextprotocol/protocolVersion":"b"}}}"#
        ),
        EnvelopeError::Invalid { .. }
    ));
}

#[test]
fn skipped_values_are_read_as_strictly_as_a_full_parse() {
    // Each was accepted by a skip that did not look inside (found by the differential fuzzer).
    let bodies: [&[u8]; 5] = [
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"s":"\ud800"}}}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"n":1e400}}}"#,
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{\"x\":\"\xff\"}}",
        br#"{"jsonrpc":"2.0","id":"\udc00","method":"ping"}"#,
        br#"{"jsonrpc":"2.0","id":1e400,"method":"ping"}"#,
    ];
    for body in bodies {
        assert!(parse(body).is_err(), "{}", String::from_utf8_lossy(body));
        assert!(serde_json::from_slice::<serde_json::Value>(body).is_err(), "the reference refuses it too");
    }
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"x":{}1{}}}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    assert!(parse(deep.as_bytes()).is_err(), "nesting beyond serde_json's limit");
    let fine = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"x":{}1{}}}}}"#,
        "[".repeat(100),
        "]".repeat(100)
    );
    assert!(parse(fine.as_bytes()).is_ok());
}

#[test]
fn unknown_members_and_kept_values_are_read_strictly_too() {
    // Found by the classify fuzzer: invalid UTF-8 inside a member the envelope does not know.
    let body = b"{\"jsonrpc\":\"2.0\",\"id\":\"r1\",\"method\":\"tools/call\",\"extra\":{\"name\":\"deplo\xff\xff\"},\"params\":{\"name\":\"a\"}}";
    assert!(parse(body).is_err());
    assert!(serde_json::from_slice::<serde_json::Value>(body).is_err(), "the reference refuses it too");
    let surrogate_name = br#"{"jsonrpc":"2.0","id":1,"method":"custom/x","params":{"name":"\ud800"}}"#;
    assert!(parse(surrogate_name).is_err(), "a kept params value is checked like a skipped one");
    let fine = br#"{"jsonrpc":"2.0","id":1,"method":"ping","extra":{"a":[1,"b",null,true]}}"#;
    assert!(parse(fine).is_ok());
}

#[test]
fn a_key_a_case_insensitive_reader_takes_for_one_read_here_is_refused() {
    for body in [
        r#"{"jsonrpc":"2.0","id":1,"method":"ping","Method":"tools/call","params":{"name":"deploy"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","Name":"deploy"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"a://ok","URI":"a://secret"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","paramſ":{"name":"deploy"},"params":{"name":"echo"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{},"Method":"tools/call","params":{"name":"deploy"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{},"REF":{}}}"#,
        r#"{"jsonrpc":"2.0","ID":1,"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"TRACEPARENT":"x"}}}"#,
    ] {
        assert!(matches!(refused(body), EnvelopeError::Invalid { .. }), "{body}");
    }
    // Other keys, in any case, are nobody's business here.
    let m = one(
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","Arguments":{},"NAMES":1},"X":1}"#,
    );
    assert_eq!(m.name.as_deref(), Some("echo"));
}

#[test]
fn a_batch_whose_requests_share_an_id_by_value_is_refused() {
    for batch in [
        r#"[{"jsonrpc":"2.0","id":7,"method":"tools/list"},{"jsonrpc":"2.0","id":7,"method":"resources/list"}]"#,
        r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":1.0,"method":"ping"}]"#,
        r#"[{"jsonrpc":"2.0","id":-0,"method":"ping"},{"jsonrpc":"2.0","id":0,"method":"ping"}]"#,
        r#"[{"jsonrpc":"2.0","id":"a","method":"ping"},{"jsonrpc":"2.0","id":"\u0061","method":"ping"}]"#,
    ] {
        assert!(is_invalid_without_id(&refused(batch)), "{batch}");
    }
    let fine = r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":"1","method":"ping"},{"jsonrpc":"2.0","method":"notifications/x"},{"jsonrpc":"2.0","method":"notifications/y"}]"#;
    assert!(matches!(parse(fine.as_bytes()), Ok(Body::Batch(_))), "a number and a string are two ids");
}

#[test]
fn a_method_a_lenient_reader_takes_for_a_known_one_and_a_non_string_list_cursor_are_refused() {
    for body in [
        r#"{"jsonrpc":"2.0","id":1,"method":"Tools/Call","params":{"name":"deploy_db"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call\u0000","params":{"name":"deploy_db"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":" tools/call","params":{"name":"deploy_db"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":2}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"prompts/list","params":{"cursor":null}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"resources/list","params":{"cursor":["c1.x"]}}"#,
    ] {
        assert!(matches!(refused(body), EnvelopeError::Invalid { id: Some("1"), .. }), "{body}");
    }
    assert!(parse(br#"{"jsonrpc":"2.0","id":1,"method":"x/y","params":{"cursor":2}}"#).is_ok(), "not a list");
}
