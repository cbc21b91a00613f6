//! The URIs inside a member's answer, offered as the route offers them, and nothing else.

use super::*;

fn prefixed(own: &str) -> String {
    format!("a+{own}")
}

fn mapped(places: Places, answer: &str) -> Option<String> {
    let out = offered(answer.as_bytes(), places, prefixed).expect("read once each");
    out.map(|out| String::from_utf8(out).expect("UTF-8"))
}

#[test]
fn what_resources_read_returned_names_the_uri_the_client_asked_for() {
    let answer = r#"{"jsonrpc":"2.0","id":1,"result":{"contents":[{"uri":"file:///x","text":"uri: file:///x"},{"mimeType":"a","uri":"file:///y","blob":"AA=="}]}}"#;
    assert_eq!(
        mapped(Places::Read, answer).as_deref(),
        Some(
            r#"{"jsonrpc":"2.0","id":1,"result":{"contents":[{"uri":"a+file:///x","text":"uri: file:///x"},{"mimeType":"a","uri":"a+file:///y","blob":"AA=="}]}}"#
        )
    );
}

#[test]
fn links_and_embedded_resources_of_tool_results_and_prompts_are_offered_and_nothing_else() {
    let answer = r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"x","uri":"t://no"},{"type":"resource_link","uri":"r://link","name":"l"},{"type":"resource","resource":{"uri":"r://embedded","text":"e"}}],"structuredContent":{"uri":"s://data"},"_meta":{"uri":"m://x"}}}"#;
    let out = mapped(Places::Tool, answer).expect("changed");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["result"]["content"][0]["uri"], "t://no", "a text block's uri is its own data");
    assert_eq!(v["result"]["content"][1]["uri"], "a+r://link");
    assert_eq!(v["result"]["content"][2]["resource"]["uri"], "a+r://embedded");
    assert_eq!(v["result"]["structuredContent"]["uri"], "s://data");
    assert_eq!(v["result"]["_meta"]["uri"], "m://x");
    let prompt = r#"{"jsonrpc":"2.0","id":1,"result":{"messages":[{"role":"user","content":{"type":"resource_link","uri":"r://one"}},{"role":"user","content":[{"type":"resource","resource":{"uri":"r://two"}}]}]}}"#;
    let v: serde_json::Value = serde_json::from_str(&mapped(Places::Prompt, prompt).expect("changed")).expect("JSON");
    assert_eq!(v["result"]["messages"][0]["content"]["uri"], "a+r://one");
    assert_eq!(v["result"]["messages"][1]["content"][0]["resource"]["uri"], "a+r://two");
}

#[test]
fn escapes_are_read_and_written_and_every_other_byte_stays() {
    let answer =
        "{ \"id\" : 1 , \"result\" : { \"contents\" : [ { \"uri\" : \"r://a\\u002fb\\\"q\" , \"n\" : 1.50 } ] } }";
    assert_eq!(
        mapped(Places::Read, answer).as_deref(),
        Some("{ \"id\" : 1 , \"result\" : { \"contents\" : [ { \"uri\" : \"a+r://a/b\\\"q\" , \"n\" : 1.50 } ] } }")
    );
}

#[test]
fn answers_that_do_not_read_as_one_go_as_sent() {
    for answer in [
        r#"{"id":1,"result":{"content":[{"type":"text","text":"x"}]}}"#,
        r#"{"id":1,"error":{"code":1,"message":"\"uri\""}}"#,
        r#"{"id":1,"result":{"contents":{"uri":"a"}}}"#,
        r#"{"id":1,"result":{"contents":[{"uri":7}]}}"#,
        r#"{"id":1,"result":{"contents":[{"uri":"a"}]}"#,
        "not json \"uri\"",
    ] {
        assert_eq!(mapped(Places::Read, answer), None, "{answer}");
    }
    // A URI offered as it is changes nothing.
    assert_eq!(offered(br#"{"id":1,"result":{"contents":[{"uri":"a"}]}}"#, Places::Read, str::to_owned), Ok(None));
}

#[test]
fn a_key_read_here_twice_may_not_pass() {
    // Found by an attack: the answer went on as sent, and a client keeps the last `uri`: a
    // link to another member's resource behind the member's own.
    for (places, answer) in [
        (Places::Read, r#"{"id":1,"result":{"contents":[{"uri":"a","uri":"b+x"}]}}"#),
        (Places::Tool, r#"{"id":1,"result":{"content":[{"type":"resource_link","uri":"a","u\u0072i":"b+x"}]}}"#),
        (Places::Tool, r#"{"id":1,"result":{"content":[{"type":"text","uri":"b+x","type":"resource_link"}]}}"#),
        (Places::Tool, r#"{"id":1,"result":{"content":[],"content":[{"type":"resource_link","uri":"b+x"}]}}"#),
        (
            Places::Prompt,
            r#"{"id":1,"result":{"messages":[{"content":{"type":"resource","resource":{"uri":"a","uri":"b+x"}}}]}}"#,
        ),
    ] {
        assert_eq!(offered(answer.as_bytes(), places, prefixed), Err(Twice), "{answer}");
    }
    // Found by a review: spelled as a key read here, for a case-insensitive reader (Go's).
    for (places, answer) in [
        (Places::Tool, r#"{"id":1,"result":{"content":[{"type":"resource_link","uri":"a","URI":"b+x"}]}}"#),
        (Places::Tool, r#"{"id":1,"result":{"content":[{"Type":"resource_link","type":"text","uri":"b+x"}]}}"#),
        (Places::Read, r#"{"id":1,"result":{"Contents":[{"uri":"b+x"}],"contents":[]}}"#),
        // Found by an attack: alone, the first scan let it by unread.
        (Places::Tool, r#"{"id":1,"result":{"content":[{"type":"resource_link","URI":"b+x"}]}}"#),
        (Places::Read, r#"{"id":1,"result":{"contents":[{"Uri":"b+x"}]}}"#),
    ] {
        assert_eq!(offered(answer.as_bytes(), places, prefixed), Err(Twice), "{answer}");
    }
    // Twice where nothing is read: the member's own data.
    let data = r#"{"id":1,"result":{"content":[{"type":"text","text":"a","text":"b"}],"structuredContent":{"uri":"a","uri":"b"}}}"#;
    assert_eq!(offered(data.as_bytes(), Places::Tool, prefixed), Ok(None));
}

#[test]
fn an_escaped_key_is_the_same_key_and_each_method_names_resources_in_its_own_places() {
    // Found by an attack: `"u\u0072i"` skipped the first scan, and the link led to another
    // member through the route.
    let link = r#"{"id":1,"result":{"content":[{"type":"resource_link","u\u0072i":"m+mock://x","name":"n"}]}}"#;
    assert_eq!(
        mapped(Places::Tool, link).as_deref(),
        Some(r#"{"id":1,"result":{"content":[{"type":"resource_link","u\u0072i":"a+m+mock://x","name":"n"}]}}"#)
    );
    let read = r#"{"id":1,"result":{"cont\u0065nts":[{"\u0075ri":"r://x"}]}}"#;
    assert!(mapped(Places::Read, read).is_some_and(|out| out.contains("a+r://x")));
    // A tool result's `contents`, or a read's `content`, names nothing.
    let both = r#"{"id":1,"result":{"contents":[{"uri":"r://c"}],"content":[{"type":"resource_link","uri":"r://l"}]}}"#;
    let tool = mapped(Places::Tool, both).expect("the link");
    assert!(tool.contains(r#""uri":"r://c""#) && tool.contains("a+r://l"), "{tool}");
    let read = mapped(Places::Read, both).expect("the contents");
    assert!(read.contains("a+r://c") && read.contains(r#""uri":"r://l""#), "{read}");
}

#[test]
fn a_value_of_another_shape_beside_a_link_does_not_keep_it_from_being_offered() {
    // Found by a review: each made the whole answer go on as sent, its link to another member.
    for (places, answer) in [
        (
            Places::Tool,
            r#"{"id":1,"result":{"content":[{"type":"resource_link","name":"x","uri":"b+x","resource":0}]}}"#,
        ),
        (
            Places::Tool,
            r#"{"id":1,"result":{"messages":0,"contents":7,"content":[{"type":"resource_link","uri":"b+x"}]}}"#,
        ),
        (Places::Tool, r#"{"id":1,"result":{"content":[7,{"type":1},{"type":"resource_link","uri":"b+x"}]}}"#),
        (Places::Prompt, r#"{"id":1,"result":{"messages":[0,{"content":{"type":"resource_link","uri":"b+x"}}]}}"#),
    ] {
        let out = mapped(places, answer).unwrap_or_else(|| panic!("not offered: {answer}"));
        assert!(out.contains(r#""a+b+x""#), "{out}");
    }
}
