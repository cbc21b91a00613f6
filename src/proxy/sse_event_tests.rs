use super::*;

const ENDPOINT: &str = "event: endpoint\ndata: /messages/?session_id=abc123\n\n";
const WRAPPED: &str = "event: endpoint\ndata: /messages/?session_id=e1.<abc123>\n\n";

/// Streams `chunks` through a sniff (the last with `end`), wrapping ids as `e1.<id>`; returns
/// every byte forwarded, in order.
fn stream(chunks: &[&[u8]]) -> Vec<u8> {
    let mut sniff = EndpointSniff::default();
    let mut out = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let end = i + 1 == chunks.len();
        match sniff.push(chunk, end, |sid| Some(format!("e1.<{sid}>"))) {
            Some(forwarded) => {
                out.extend_from_slice(&forwarded);
                // Sniffing is over: the rest of the stream passes untouched.
                for rest in &chunks[i + 1..] {
                    out.extend_from_slice(rest);
                }
                return out;
            }
            None => assert!(!end, "the last chunk always releases what was held"),
        }
    }
    out
}

fn whole(text: &str) -> String {
    String::from_utf8(stream(&[text.as_bytes()])).expect("utf-8")
}

#[test]
fn an_endpoint_event_split_at_every_byte_is_rewritten_once() {
    let text = format!("{ENDPOINT}data: later\n\n");
    for at in 0..=text.len() {
        let (a, b) = text.as_bytes().split_at(at);
        let out = stream(&[a, b, b"more"]);
        assert_eq!(String::from_utf8(out).expect("utf-8"), format!("{WRAPPED}data: later\n\nmore"), "split at {at}");
    }
}

#[test]
fn a_crlf_event_followed_by_an_lf_event_ends_at_its_own_blank_line() {
    let text = "event: message\r\ndata: hi\r\n\r\nevent: endpoint\ndata: /m?session_id=abc\n\n";
    assert_eq!(EventEnd::default().find(text.as_bytes()), Some(28));
    assert_eq!(whole(text), text, "only the first event is ever rewritten");
}

#[test]
fn crlf_and_cr_framed_endpoint_events_keep_their_line_endings() {
    let crlf = "event: endpoint\r\ndata: /m?session_id=abc\r\n\r\n: ping\r\n\r\n";
    assert_eq!(whole(crlf), "event: endpoint\r\ndata: /m?session_id=e1.<abc>\r\n\r\n: ping\r\n\r\n");
    let cr = "event: endpoint\rdata: /m?session_id=abc\r\r: ping\r\r";
    assert_eq!(EventEnd::default().find(cr.as_bytes()), Some(41));
    assert_eq!(whole(cr), "event: endpoint\rdata: /m?session_id=e1.<abc>\r\r: ping\r\r");
}

#[test]
fn a_cr_ending_the_first_event_does_not_wait_for_a_possible_lf() {
    let mut sniff = EndpointSniff::default();
    let out = sniff.push(b"event: endpoint\rdata: /m?sessionId=abc\r\r", false, |s| Some(format!("<{s}>")));
    assert_eq!(out.as_deref(), Some(&b"event: endpoint\rdata: /m?sessionId=<abc>\r\r"[..]));
}

#[test]
fn a_first_event_over_the_cap_passes_through_untouched() {
    let long = format!("event: endpoint\n: {}\ndata: /m?session_id=abc\n\n", "x".repeat(MAX_SNIFF));
    let mut sniff = EndpointSniff::default();
    let (head, tail) = long.as_bytes().split_at(MAX_SNIFF - 1);
    assert_eq!(sniff.push(head, false, |_| unreachable!()), None, "still under the cap: held");
    assert_eq!(sniff.push(tail, false, |_| unreachable!()).as_deref(), Some(long.as_bytes()));
}

#[test]
fn an_endpoint_url_without_a_query_is_not_rewritten() {
    let text = "event: endpoint\ndata: /messages/\n\n";
    assert_eq!(whole(text), text);
}

#[test]
fn a_data_line_without_a_space_after_the_colon_is_read() {
    let text = "event:endpoint\ndata:/m?x=1&sessionId=abc&y=2\n\n";
    assert_eq!(whole(text), "event:endpoint\ndata:/m?x=1&sessionId=e1.<abc>&y=2\n\n");
}

#[test]
fn other_lines_and_events_pass_byte_for_byte() {
    let text = "id: 7\n: comment\nevent: endpoint\ndata:  /m?session_id=abc  \nretry: 10\n\n";
    assert_eq!(whole(text), "id: 7\n: comment\nevent: endpoint\ndata:  /m?session_id=e1.<abc>  \nretry: 10\n\n");
    let message = "event: message\ndata: /m?session_id=abc\n\n";
    assert_eq!(whole(message), message, "not an endpoint event");
}

#[test]
fn a_stream_ending_before_its_first_event_is_released_as_is() {
    assert_eq!(
        stream(&[b"event: endpoint\n", b"data: /m?session_id=abc\n"]),
        b"event: endpoint\ndata: /m?session_id=abc\n"
    );
}

#[test]
fn a_declined_wrap_leaves_the_event_as_it_was() {
    let mut sniff = EndpointSniff::default();
    assert_eq!(sniff.push(ENDPOINT.as_bytes(), false, |_| None).as_deref(), Some(ENDPOINT.as_bytes()));
}

#[test]
fn an_events_id_and_retry_are_read_as_a_client_reads_them() {
    assert_eq!(id(b"id: 7\ndata: x\n\n"), Some("7"));
    assert_eq!(id(b"id:a\r\nid: b\r\n\r\n"), Some("b"));
    assert_eq!(id(b"id\n\n"), Some(""));
    assert_eq!(id(b"idx: 1\n\n"), None);
    assert_eq!(id(b"id: a\0b\n\n"), None);
    assert_eq!(retry(b"retry: 1500\n\n"), Some(1500));
    assert_eq!(retry(b"retry: 15s\n\n"), None);
    assert_eq!(retry(b"retry:\n\n"), None);
    assert_eq!(retry(b"data: x\n\n"), None);
}

#[test]
fn readers_sharing_a_budget_hold_no_more_than_it_past_what_each_holds_free() {
    static BUDGET: Budget = Budget::new(100 << 10);
    let mut readers: Vec<EventReader> = (0..4).map(|_| EventReader::with_budget(1 << 20, &BUDGET)).collect();
    let unfinished = vec![b'x'; 60 << 10];
    // Each holds 16 KiB free and draws 44 KiB: the third does not fit.
    assert!(readers[0].feed(&unfinished, |_| {}).is_ok());
    assert!(readers[1].feed(&unfinished, |_| {}).is_ok());
    assert_eq!(readers[2].feed(&unfinished, |_| {}), Err(TooLong { at: 0 }));
    assert_eq!(BUDGET.held(), 88 << 10);
    // An event that ends gives its share back; so does a reader dropped mid-event.
    let mut events = 0;
    assert!(readers[0].feed(b"\n\n", |_| events += 1).is_ok());
    assert_eq!((events, BUDGET.held()), (1, 44 << 10));
    drop(readers.remove(1));
    assert_eq!(BUDGET.held(), 0);
    // After an event too long to hold, read elsewhere to its end (cut mid-line here), reading
    // starts afresh: a blank line first is an event of its own, as a client reads it.
    let mut r = EventReader::new(8);
    assert_eq!(r.feed(b"data: 0123456789", |_| {}), Err(TooLong { at: 0 }));
    assert!(r.take_rest().is_empty());
    r.restart();
    let mut got = Vec::new();
    assert!(r.feed(b"\ndata: x\n\n", |e| got.push(e.to_vec())).is_ok());
    assert_eq!(got, [b"\n".to_vec(), b"data: x\n\n".to_vec()]);
}
