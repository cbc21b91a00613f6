use super::*;
use crate::proxy::sse_event::EventEnd;

const CALL: Option<&[u8]> = Some(b"\"c1\"");

fn judged(message: &str, answered: &mut bool) -> Result<(), Refusal> {
    let mut answer = JsonAnswer::default();
    answer.push(message.as_bytes(), true, CALL)?;
    // The same rules for an event's data.
    let mut event = PassingEvent::default();
    let mut again = *answered;
    let out = event.feed(format!("data: {message}\n\n").as_bytes(), CALL, &mut again).map(|_| ());
    let whole = judge(&scan(message), CALL, answered);
    assert_eq!(out, whole, "{message}: an event judged as its data");
    whole
}

fn scan(message: &str) -> Top {
    let mut s = crate::federation::scanner::Scanner::default();
    s.push(message.as_bytes()).unwrap_or_else(|e| panic!("{message}: {e}"));
    s.top().clone()
}

#[test]
fn the_calls_answer_passes_once_and_an_answer_to_anything_else_never() {
    let mut answered = false;
    assert_eq!(judged(r#"{"jsonrpc":"2.0","id":"c\u0031","result":{}}"#, &mut answered), Ok(()));
    assert!(answered);
    assert_eq!(judged(r#"{"jsonrpc":"2.0","id":"c1","result":{}}"#, &mut answered), Err(Refusal::Again));
    for (message, refusal) in [
        (r#"{"jsonrpc":"2.0","id":42,"result":{}}"#, Refusal::Foreign),
        (r#"{"jsonrpc":"2.0","id":null,"error":{}}"#, Refusal::Foreign),
        (r#"{"jsonrpc":"2.0","result":{}}"#, Refusal::Foreign),
        (r#"{"id":"c1","result":{}}"#, Refusal::NotRpc),
        (r#"{"jsonrpc":"1.0","id":"c1","result":{}}"#, Refusal::NotRpc),
        (r#"{"jsonrpc":"2.0","id":7,"method":5}"#, Refusal::NotRpc),
        (r#"{"jsonrpc":"2.0","id":null,"method":"x"}"#, Refusal::NotRpc),
        // A request with an answer's keys: a lenient client reads an answer (an attack).
        (r#"{"jsonrpc":"2.0","id":42,"method":"x","result":{}}"#, Refusal::NotRpc),
        (r#"{"jsonrpc":"2.0","error":{},"id":42,"method":"x"}"#, Refusal::NotRpc),
    ] {
        assert_eq!(judged(message, &mut false), Err(refusal), "{message}");
    }
    // Requests and notifications pass as sent.
    assert_eq!(judged(r#"{"jsonrpc":"2.0","id":7,"method":"sampling/createMessage"}"#, &mut false), Ok(()));
    assert_eq!(judged(r#"{"method":"notifications/progress","jsonrpc":"2.0"}"#, &mut false), Ok(()));
    // A call without an id (a notification, or the client's answer to a member) has no answer.
    assert_eq!(judge(&scan(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#), None, &mut false), Err(Refusal::Foreign));
}

/// Feeds `event` in pieces of `n` bytes: where the event ended, or the refusal.
fn fed(event: &[u8], n: usize) -> Result<Option<usize>, Refusal> {
    let mut passing = PassingEvent::default();
    let mut at = 0;
    for piece in event.chunks(n) {
        if let Some(end) = passing.feed(piece, CALL, &mut false)? {
            return Ok(Some(at + end));
        }
        at += piece.len();
    }
    Ok(None)
}

/// Where the proxy's event reader ends the event, fed in the same pieces.
fn reader_end(event: &[u8], n: usize) -> Option<usize> {
    let mut end = EventEnd::default();
    let mut at = 0;
    for piece in event.chunks(n) {
        if let Some(n) = end.find(piece) {
            return Some(at + n);
        }
        at += piece.len();
    }
    None
}

#[test]
fn an_event_ends_where_the_event_reader_ends_it_and_its_data_is_read_as_a_client_reads_it() {
    for event in [
        &b"data: {\"jsonrpc\":\"2.0\",\n: a comment\ndata:\"id\":\"c1\",\"result\":{}}\n\nrest"[..],
        b"id: 9\r\nevent: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"c1\",\"result\":{}}\r\n\r\nrest",
        b"data:{\"jsonrpc\":\"2.0\",\"id\":\"c1\",\"result\":{}}\r\rrest",
        b"data\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"c1\",\"result\":{}}\n\n",
        b"datax: junk\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"c1\",\"result\":{}}\n\n",
        b": only a comment\n\n",
        b"retry: 10\n\n",
        b"data: \n\n",
    ] {
        for n in [1, 2, 3, 7, event.len()] {
            assert_eq!(fed(event, n), Ok(reader_end(event, n)), "{} in {n}s", String::from_utf8_lossy(event));
        }
    }
}

#[test]
fn an_event_whose_data_is_not_a_message_that_may_pass_is_cut_before_its_blank_line() {
    for (event, refusal) in [
        (&b"data: {\"jsonrpc\":\"2.0\",\"id\":42,\"result\":{}}\n\n"[..], Refusal::Foreign),
        // The blank line ends it with the object still open: the client would read junk.
        (b"data: {\"jsonrpc\":\"2.0\",\"id\":\"c1\",\n\n", Refusal::Unfinished),
        // A second data line after the object.
        (b"data: {\"jsonrpc\":\"2.0\",\"id\":\"c1\",\"result\":{}}\ndata: {}\n\n", Refusal::NotJson),
        (b"data: {\"jsonrpc\":\"2.0\",\"ID\":42,\"id\":\"c1\",\"result\":{}}\n\n", Refusal::KeyAlias),
        (b"data: not json\n\n", Refusal::NotJson),
    ] {
        for n in [1, 5, event.len()] {
            assert_eq!(fed(event, n), Err(refusal), "{} in {n}s", String::from_utf8_lossy(event));
        }
    }
}

#[test]
fn a_json_answer_cut_off_is_not_whole_and_an_empty_one_is_no_message() {
    let mut answer = JsonAnswer::default();
    assert_eq!(answer.push(br#"{"jsonrpc":"2.0","id":"c1","#, false, CALL), Ok(()));
    assert_eq!(answer.push(br#""result":{"#, true, CALL), Err(Refusal::Unfinished));
    assert_eq!(JsonAnswer::default().push(b" \n", true, CALL), Ok(()));
}
