use super::*;

/// The message read whole, then split at every byte: the same outcome either way.
fn scan(message: &str) -> Result<Scanner, Refusal> {
    let whole = {
        let mut s = Scanner::default();
        s.push(message.as_bytes()).map(|()| s)
    };
    for at in 1..message.len() {
        let mut s = Scanner::default();
        let (a, b) = message.as_bytes().split_at(at);
        let split = s.push(a).and_then(|()| s.push(b)).map(|()| s);
        assert_eq!(split.as_ref().map(|s| s.closed()), whole.as_ref().map(|s| s.closed()), "{message} at {at}");
        if let (Ok(split), Ok(whole)) = (&split, &whole) {
            assert_eq!(split.top().id, whole.top().id, "{message} at {at}");
        }
    }
    whole
}

fn top(message: &str) -> Top {
    let s = scan(message).unwrap_or_else(|e| panic!("{message}: {e}"));
    assert!(s.closed(), "{message}: not closed");
    std::mem::take(&mut { s }.top)
}

#[test]
fn the_top_level_keys_say_what_the_message_is_and_nested_ones_do_not() {
    let t = top(r#" {"jsonrpc":"2.0","id": 12345678901234567890 ,"method":"x","params":{"id":7,"method":1}} "#);
    assert_eq!(t.version.as_deref(), Some(&br#""2.0""#[..]));
    assert_eq!(t.id.as_deref(), Some(&b"12345678901234567890"[..]), "as written");
    assert_eq!(t.method, Some(b'"'));
    assert!(t.has("params") && !t.has("result"));
    let t = top(r#"{"result":{"content":[{"id":1}]},"\u0069d":"a\"b","jsonrpc":"2\u002e0"}"#);
    assert_eq!(t.id.as_deref(), Some(&br#""a\"b""#[..]), "an escaped key is the key");
    assert_eq!(t.version.as_deref(), Some(&br#""2\u002e0""#[..]));
    assert_eq!(t.method, None);
    let t = top(r#"{"id":[1,{"a":[]}],"x":-0.5e+3,"y":true,"z":null}"#);
    assert_eq!(t.id.as_deref(), Some(&br#"[1,{"a":[]}]"#[..]));
}

#[test]
fn a_json_rpc_key_twice_or_spelled_as_another_is_refused() {
    for (message, refusal) in [
        (r#"{"id":1,"id":2}"#, Refusal::KeyTwice),
        (r#"{"id":1,"\u0069d":2}"#, Refusal::KeyTwice),
        (r#"{"id":1,"ID":2}"#, Refusal::KeyAlias),
        (r#"{"Result":{}}"#, Refusal::KeyAlias),
        (r#"{"jsonrpc":"2.0","json\u0052pc":"1.0"}"#, Refusal::KeyAlias),
        ("{\"paramſ\":{}}", Refusal::KeyAlias),
    ] {
        assert_eq!(scan(message).err(), Some(refusal), "{message}");
    }
    // A key past the longest alias, or one only a lone surrogate away, is another key.
    top(r#"{"id":1,"i\ud800d":2,"idxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx":3}"#);
}

#[test]
fn only_one_json_object_is_read() {
    for message in [
        "[1]",
        "1",
        r#""s""#,
        r#"{"a":1,}"#,
        r#"{"a":01}"#,
        r#"{"a":1.}"#,
        r#"{"a":-}"#,
        r#"{"a":1e}"#,
        "{\"a\":\"\u{1}\"}",
        r#"{"a":"\q"}"#,
        r#"{"a":"\u12G4"}"#,
        r#"{"a":tru}"#,
        r#"{"a":1}x"#,
        r#"{"a":1}{}"#,
        r#"{"a" 1}"#,
        r#"{1:2}"#,
        r#"{"a":[1,]}"#,
        r#"{"a":[1}"#,
        r#"{"a":{]}"#,
        "\u{feff}{}",
    ] {
        assert_eq!(scan(message).err(), Some(Refusal::NotJson), "{message}");
    }
    assert!(!scan(r#"{"a":[1,2"#).is_ok_and(|s| s.closed()), "an open object is not closed");
}

#[test]
fn nesting_is_bounded() {
    let deep = |n: usize| format!("{{\"a\":{}{}}}", "[".repeat(n), "]".repeat(n));
    assert!(top(&deep(MAX_DEPTH - 1)).keys == 0);
    let mut s = Scanner::default();
    assert_eq!(s.push(deep(MAX_DEPTH).as_bytes()), Err(Refusal::TooDeep));
}

#[test]
fn an_id_too_long_to_compare_is_no_id() {
    let long = format!(r#"{{"id":"{}","jsonrpc":"2.0"}}"#, "a".repeat(MAX_ID));
    let t = top(&long);
    assert!(t.has("id") && t.id.is_none());
    assert_eq!(t.version.as_deref(), Some(&br#""2.0""#[..]));
}

#[test]
fn a_number_as_long_as_what_is_kept_is_kept_whole() {
    // Found by fuzzing: the byte that ended such a number counted as one past the bound.
    let id = "1".repeat(MAX_ID);
    let t = top(&format!(r#"{{"id":{id},"jsonrpc":"2.0"}}"#));
    assert_eq!(t.id.as_deref(), Some(id.as_bytes()));
}
