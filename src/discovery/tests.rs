use bytes::Bytes;

use super::answer::{Answer, Head, Out, Refusal};
use super::filter::{filter, Filtered};
use super::{ListKind, Wanted};
use crate::mcp::method::Era;

fn wanted(era: Era, kind: ListKind) -> Wanted {
    Wanted { era, lists: vec![(Bytes::from_static(b"7"), kind)], others: vec![Bytes::from_static(b"8")] }
}

/// Hides everything whose name starts with `secret`.
fn allows(_: ListKind, name: &str) -> bool {
    !name.starts_with("secret")
}

fn filtered(json: &str, w: &Wanted) -> serde_json::Value {
    match filter(json.as_bytes(), w, &allows, &mut 0) {
        Filtered::Rewritten(out) => serde_json::from_slice(&out).expect("valid JSON"),
        other => panic!("not rewritten: {other:?}"),
    }
}

const TOOLS: &str = r#"{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"echo"},{"name":"secret_keys"},{"name":"whoami","x":[1, 2]}],"nextCursor":"c2","_meta":{"a":1}}}"#;

#[test]
fn denied_entries_go_and_everything_else_stays() {
    let out = filtered(TOOLS, &wanted(Era::Legacy, ListKind::Tools));
    let want = serde_json::json!({"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"echo"},{"name":"whoami","x":[1,2]}],"nextCursor":"c2","_meta":{"a":1}}});
    assert_eq!(out, want);
}

#[test]
fn an_emptied_page_keeps_its_cursor_and_a_modern_one_is_private() {
    let json = r#"{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"secret_a"}],"nextCursor":"c3","ttlMs":5000,"cacheScope":"public"}}"#;
    let out = filtered(json, &wanted(Era::Modern, ListKind::Tools));
    assert_eq!(out["result"], serde_json::json!({"tools":[],"nextCursor":"c3","ttlMs":5000,"cacheScope":"private"}));
    // An older era's answer gets no scope it did not have, but loses a public one.
    let legacy = filtered(json, &wanted(Era::Legacy, ListKind::Tools));
    assert_eq!(legacy["result"]["cacheScope"], "private");
    assert_eq!(filtered(TOOLS, &wanted(Era::Legacy, ListKind::Tools))["result"].get("cacheScope"), None);
}

#[test]
fn each_list_is_judged_by_its_own_field() {
    let cases = [
        (ListKind::Prompts, r#"{"prompts":[{"name":"greet"},{"name":"secret_p"}]}"#, "prompts", "name", "greet"),
        (
            ListKind::Resources,
            r#"{"resources":[{"uri":"secret://x"},{"uri":"doc://a"}]}"#,
            "resources",
            "uri",
            "doc://a",
        ),
        (
            ListKind::Templates,
            r#"{"resourceTemplates":[{"uriTemplate":"doc://{id}"},{"uriTemplate":"secret://{id}"}]}"#,
            "resourceTemplates",
            "uriTemplate",
            "doc://{id}",
        ),
    ];
    for (kind, result, key, field, kept) in cases {
        let json = format!(r#"{{"jsonrpc":"2.0","id":7,"result":{result}}}"#);
        let out = filtered(&json, &wanted(Era::Legacy, kind));
        assert_eq!(out["result"][key], serde_json::json!([{ field: kept }]), "{kind:?}");
    }
}

#[test]
fn entries_that_cannot_be_judged_are_dropped_and_escapes_are_decoded() {
    let json = r#"{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"\u0073ecret_x"},{"title":"no name"},{"name":1},{"name":"ok","name":"secret_dup"},{"name":"fine"}]}}"#;
    let out = filtered(json, &wanted(Era::Legacy, ListKind::Tools));
    assert_eq!(out["result"]["tools"], serde_json::json!([{"name":"fine"}]));
}

#[test]
fn a_result_under_an_id_nobody_asked_for_is_refused() {
    // The body asked for a list under id 7 and something else under id 8.
    let w = wanted(Era::Legacy, ListKind::Tools);
    for json in [
        r#"{"jsonrpc":"2.0","id":9,"result":{"tools":[{"name":"secret"}]}}"#,
        r#"{"jsonrpc":"2.0","id":"7","result":{"tools":[{"name":"secret"}]}}"#,
        r#"[{"jsonrpc":"2.0","id":8,"result":{}},{"jsonrpc":"2.0","id":null,"result":{"tools":[{"name":"secret"}]}}]"#,
    ] {
        assert_eq!(filter(json.as_bytes(), &w, &allows, &mut 0), Filtered::Unreadable, "{json}");
    }
    // An error under an unknown id lists nothing (a backend's parse error has a null id).
    let error = r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse"}}"#;
    assert_eq!(filter(error.as_bytes(), &w, &allows, &mut 0), Filtered::Untouched);
}

#[test]
fn errors_other_ids_and_notifications_pass_untouched() {
    let w = wanted(Era::Legacy, ListKind::Tools);
    for json in [
        r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"no"}}"#,
        r#"{"jsonrpc":"2.0","id":8,"result":{"tools":[{"name":"secret"}]}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"tools":[{"name":"secret"}]}}"#,
    ] {
        assert_eq!(filter(json.as_bytes(), &w, &allows, &mut 0), Filtered::Untouched, "{json}");
    }
    assert_eq!(filter(b"{nope", &w, &allows, &mut 0), Filtered::Unreadable);
    let bad_shape = r#"{"jsonrpc":"2.0","id":7,"result":{"tools":{"name":"secret"}}}"#;
    assert_eq!(filter(bad_shape.as_bytes(), &w, &allows, &mut 0), Filtered::Unreadable);
}

#[test]
fn an_id_spelled_another_way_is_still_the_answer() {
    let w =
        Wanted { lists: vec![(Bytes::from_static(br#""a1""#), ListKind::Tools)], era: Era::Legacy, others: Vec::new() };
    let json = r#"{"jsonrpc":"2.0","id":"\u00611","result":{"tools":[{"name":"secret"}]}}"#;
    assert_eq!(filtered(json, &w)["result"]["tools"], serde_json::json!([]));
}

/// Streams `chunks` through an SSE answer; returns what the client receives.
fn stream(chunks: &[&[u8]]) -> Vec<u8> {
    let mut answer = Answer::new(wanted(Era::Legacy, ListKind::Tools));
    assert_eq!(answer.head(200, Some(b"text/event-stream"), None), Head::Reframe);
    let mut out = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        match answer.push(chunk, i + 1 == chunks.len(), &allows) {
            (Out::Same, None) => out.extend_from_slice(chunk),
            (Out::Bytes(b), None) => out.extend_from_slice(&b),
            (_, Some(why)) => panic!("refused: {why:?}"),
        }
    }
    out
}

#[test]
fn only_the_answer_event_changes_whatever_the_chunking_and_line_endings() {
    let progress = "id: 1\r\nevent: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":1}}\r\n\r\n";
    let answer = "id: 2\revent: message\rdata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[{\"name\":\"secret\"},{\"name\":\"echo\"}]}}\r\r";
    let text = format!(": ping\n\n{progress}{answer}trailing");
    let want = format!(
        ": ping\n\n{progress}id: 2\revent: message\rdata: {{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{{\"tools\":[{{\"name\":\"echo\"}}]}}}}\r\rtrailing"
    );
    for at in 0..=text.len() {
        let (a, b) = text.as_bytes().split_at(at);
        assert_eq!(String::from_utf8(stream(&[a, b])).expect("utf-8"), want, "split at {at}");
    }
}

#[test]
fn a_multi_line_data_answer_is_one_data_line_after() {
    let text = "data: {\"jsonrpc\":\"2.0\",\"id\":7,\ndata: \"result\":{\"tools\":[{\"name\":\"secret\"}]}}\n\n";
    let out = String::from_utf8(stream(&[text.as_bytes()])).expect("utf-8");
    assert_eq!(out, "data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[]}}\n\n");
}

#[test]
fn a_cr_ended_data_line_before_a_blank_lf_line_still_ends_the_event() {
    // Two data lines, the first ended by CR: rewritten in place of the first, the CR would
    // meet the blank line's LF as one CRLF and the event would run into the next.
    let text = "data\rdata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[]}}\n\ndata: next\n\n";
    let out = String::from_utf8(stream(&[text.as_bytes()])).expect("utf-8");
    assert_eq!(out, "data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[]}}\n\ndata: next\n\n");
}

#[test]
fn unfilterable_answers_are_refused_with_the_request_id() {
    let mut compressed = Answer::new(wanted(Era::Legacy, ListKind::Tools));
    assert_eq!(compressed.head(200, Some(b"application/json"), Some(b"gzip")), Head::Refuse(Refusal::Compressed));
    let (Out::Bytes(body), _) = compressed.push(b"\x1f\x8b...", true, &allows) else { panic!("no error body") };
    let error: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(
        (error["id"].clone(), error["error"]["code"].clone()),
        (serde_json::json!(7), serde_json::json!(-32603))
    );

    let mut huge = Answer::new(wanted(Era::Legacy, ListKind::Tools));
    assert_eq!(huge.head(200, Some(b"application/json"), None), Head::Reframe);
    let chunk = vec![b' '; super::MAX_ANSWER / 2 + 1];
    assert_eq!(huge.push(&chunk, false, &allows), (Out::Bytes(Vec::new()), None));
    let (Out::Bytes(body), why) = huge.push(&chunk, false, &allows) else { panic!("no error body") };
    assert_eq!(why, Some(Refusal::TooLarge));
    assert!(String::from_utf8_lossy(&body).contains("-32603"));
    assert_eq!(huge.push(b"]}", true, &allows), (Out::Bytes(Vec::new()), None), "nothing of the answer follows");
}

#[test]
fn http_errors_are_not_touched() {
    let mut answer = Answer::new(wanted(Era::Legacy, ListKind::Tools));
    assert_eq!(answer.head(500, Some(b"application/json"), None), Head::Untouched);
    assert_eq!(answer.push(b"{}", true, &allows), (Out::Same, None));
}

#[test]
fn nothing_of_the_stream_follows_a_refused_answer_event() {
    let events = b": c\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":\"oops\"}\n\ndata: later\n\n";
    let mut answer = Answer::new(wanted(Era::Legacy, ListKind::Tools));
    assert_eq!(answer.head(200, Some(b"text/event-stream"), None), Head::Reframe);
    let (Out::Bytes(out), why) = answer.push(events, true, &allows) else { panic!("not rewritten") };
    assert_eq!(why, Some(Refusal::Unreadable));
    let out = String::from_utf8(out).expect("utf-8");
    assert!(out.starts_with(": c\n\nevent: message\ndata: {") && out.contains("-32603"), "{out}");
    assert!(!out.contains("later") && !out.contains("oops"), "{out}");
}

#[test]
fn a_numeric_id_is_matched_by_value_however_the_request_spelled_it() {
    // SDK servers answer `1.0`, `1e0` and `10.0e-1` as `1`, and round integers past 2^53.
    for (asked, answered) in
        [("1.0", "1"), ("1e0", "1"), ("10.0e-1", "1"), ("-0", "0"), ("9007199254740993", "9007199254740992")]
    {
        let w = Wanted {
            lists: vec![(Bytes::from(asked.to_owned()), ListKind::Tools)],
            era: Era::Legacy,
            others: Vec::new(),
        };
        let json = format!(
            r#"{{"jsonrpc":"2.0","id":{answered},"result":{{"tools":[{{"name":"echo"}},{{"name":"secret_keys"}}]}}}}"#
        );
        let out = filtered(&json, &w);
        assert_eq!(out["result"]["tools"], serde_json::json!([{"name":"echo"}]), "asked {asked}, answered {answered}");
    }
}

#[test]
fn a_list_request_without_an_id_is_filtered_when_a_server_answers_it_anyway() {
    let body = Bytes::from_static(br#"{"jsonrpc":"2.0","method":"tools/list"}"#);
    let call = crate::mcp::call::classify(Era::Legacy, Default::default(), &body, false).expect("a request");
    let w = super::arm(&call).expect("armed, though it should get no answer");
    let answer = r#"{"jsonrpc":"2.0","id":null,"result":{"tools":[{"name":"echo"},{"name":"secret_keys"}]}}"#;
    assert_eq!(filtered(answer, &w)["result"]["tools"], serde_json::json!([{"name":"echo"}]));
}
