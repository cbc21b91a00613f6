use super::*;

const MODERN: &[u8] = b"2026-07-28";

fn read(era: Era, h: Mirrored<'_>, body: &str) -> Result<Call, Refusal> {
    classify(era, h, &Bytes::copy_from_slice(body.as_bytes()), false)
}

fn legacy(body: &str) -> Result<Call, Refusal> {
    read(Era::Legacy, Mirrored::default(), body)
}

fn modern<'a>(method: &'a str, name: Option<&'a str>) -> Mirrored<'a> {
    Mirrored { version: Some(MODERN), method: Some(method.as_bytes()), name: name.map(str::as_bytes) }
}

fn why(r: Result<Call, Refusal>) -> Why {
    r.expect_err("refused").why
}

#[test]
fn a_legacy_tool_call_is_read_from_the_body() {
    let call =
        legacy(r#"{"jsonrpc":"2.0","id":"r1","method":"tools/call","params":{"name":"deploy_db"}}"#).expect("read");
    assert_eq!(call.one.method, Method::ToolsCall);
    assert_eq!(call.one.target_str(), Some("deploy_db"));
    assert_eq!(call.one.id.as_deref(), Some(&br#""r1""#[..]));
    assert_eq!(call.elements().len(), 1);
}

#[test]
fn the_error_response_without_an_id_is_refused_not_a_crash() {
    for body in [
        r#"{"jsonrpc":"2.0","error":{"code":0,"message":""}}"#,
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":0,"message":""}}"#,
    ] {
        let refusal = legacy(body).expect_err("refused");
        assert!(matches!(refusal.why, Why::Invalid(_)));
        assert_eq!(refusal.id, None);
    }
}

#[test]
fn notifications_keep_their_target_and_calls_without_one_are_refused() {
    let call = legacy(r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"deploy_db"}}"#).expect("read");
    assert_eq!(
        (call.one.method, call.one.target_str(), call.one.id.clone()),
        (Method::ToolsCall, Some("deploy_db"), None)
    );
    assert_eq!(why(legacy(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#)), Why::MissingTarget);
    assert_eq!(why(legacy(r#"{"jsonrpc":"2.0","id":1,"method":"resources/read"}"#)), Why::MissingTarget);
}

#[test]
fn batches_are_refused_unless_the_route_accepts_them() {
    let body = r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}},{"jsonrpc":"2.0","id":2,"method":"ping"}]"#;
    assert_eq!(why(legacy(body)), Why::Batch);
    let call = classify(Era::Legacy, Mirrored::default(), &Bytes::from(body), true).expect("accepted");
    assert_eq!(call.one.method, Method::Batch);
    let methods: Vec<_> = call.elements().iter().map(|e| (e.method, e.target_str().map(str::to_owned))).collect();
    assert_eq!(methods, [(Method::ToolsCall, Some("a".to_owned())), (Method::Ping, None)]);
    let modern_batch = classify(Era::Modern, Mirrored::default(), &Bytes::from(body), true);
    assert!(matches!(why(modern_batch), Why::Invalid(_)));
}

#[test]
fn modern_headers_must_be_present_and_agree_with_the_body() {
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"deploy_x"}}"#;
    assert!(read(Era::Modern, modern("tools/call", Some("deploy_x")), call).is_ok());
    assert!(matches!(why(read(Era::Modern, modern("tools/call", Some("safe")), call)), Why::Mismatch(_)));
    assert!(matches!(why(read(Era::Modern, modern("tools/call", None), call)), Why::Mismatch(_)));
    assert!(matches!(why(read(Era::Modern, modern("tools/list", Some("deploy_x")), call)), Why::Mismatch(_)));
    let no_method = Mirrored { version: Some(MODERN), method: None, name: Some(b"deploy_x") };
    assert!(matches!(why(read(Era::Modern, no_method, call)), Why::Mismatch(_)));
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    assert!(matches!(why(read(Era::Modern, modern("tools/list", Some("x")), list)), Why::Mismatch(_)));
}

#[test]
fn headers_sent_in_the_legacy_era_must_agree_too() {
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"deploy_x"}}"#;
    let h = Mirrored { version: None, method: Some(b"tools/call"), name: Some(b"safe") };
    assert!(matches!(why(read(Era::Legacy, h, call)), Why::Mismatch(_)));
    assert!(legacy(call).is_ok(), "legacy requests need no headers");
}

#[test]
fn base64_names_are_decoded_before_comparing() {
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"grüß"}}"#;
    let encoded = "=?base64?Z3LDvMOf?=";
    assert!(read(Era::Modern, modern("tools/call", Some(encoded)), call).is_ok());
    assert!(matches!(why(read(Era::Modern, modern("tools/call", Some("=?base64?!!?=")), call)), Why::Mismatch(_)));
}

#[test]
fn the_meta_version_must_match_the_header() {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2027-01-01"}}}"#;
    assert!(matches!(why(read(Era::Modern, modern("tools/list", None), body)), Why::Mismatch(_)));
}

#[test]
fn modern_clients_send_no_responses() {
    assert!(matches!(
        why(read(
            Era::Modern,
            Mirrored { version: Some(MODERN), ..Default::default() },
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#
        )),
        Why::Invalid(_)
    ));
}

#[test]
fn slices_never_panic_on_foreign_strings() {
    let body = Bytes::from_static(b"hello world");
    assert_eq!(slice_of(&body, "null"), Bytes::from_static(b"null"));
    let inside = std::str::from_utf8(&body[6..]).expect("utf8");
    assert_eq!(slice_of(&body, inside), Bytes::from_static(b"world"));
    assert_eq!(slice_of(&Bytes::new(), ""), Bytes::new());
}

#[test]
fn names_are_encoded_for_mcp_name_only_when_a_header_cannot_carry_them_plainly() {
    for (name, header) in [
        ("echo", "echo"),
        ("get weather", "get weather"),
        ("ünï", "=?base64?w7xuw68=?="),
        (" lead", "=?base64?IGxlYWQ=?="),
        ("=?base64?eA==?=", "=?base64?PT9iYXNlNjQ/ZUE9PT89?="),
        ("", "=?base64??="),
    ] {
        let encoded = encode_name(name);
        assert_eq!(encoded, header, "{name:?}");
        assert_eq!(decode_name(encoded.as_bytes()).as_deref(), Some(name.as_bytes()), "{name:?}");
    }
}

#[test]
fn what_a_2026_07_28_request_meta_carries_is_read_and_a_removed_method_needs_no_target() {
    let body = |meta: &str| format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{{meta}}}}}"#);
    let keys = |meta: &str| read(Era::Modern, modern("tools/list", None), &body(meta)).expect("read").meta;
    assert_eq!(keys(""), MetaKeys::default());
    let both = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"x":[1]}}"#;
    assert!(keys(both).complete());
    let no_caps = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}"#;
    assert_eq!(keys(no_caps), MetaKeys { present: true, version: true, capabilities: false });
    let no_version = r#""_meta":{"io.modelcontextprotocol/clientCapabilities":{}}"#;
    assert_eq!(keys(no_version), MetaKeys { present: true, version: false, capabilities: true });
    // resources/subscribe is gone in 2026-07-28: its server says "not found", not "no uri".
    let subscribe = r#"{"jsonrpc":"2.0","id":2,"method":"resources/subscribe","params":{}}"#;
    let call = read(Era::Modern, modern("resources/subscribe", None), subscribe).expect("read");
    assert_eq!((call.one.method, call.one.target.clone()), (Method::ResourcesSubscribe, None));
    assert_eq!(why(legacy(subscribe)), Why::MissingTarget);
}
