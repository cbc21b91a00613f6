//! A member that forges an answer to another of the client's requests where a proxy that
//! holds only so much would not read it: padded past what a call's stream holds, in a JSON
//! answer, under a content type in another case, or compressed. The client never gets it
//! whole: its response is cut before the forged answer's last byte (or refused, 502).

use super::*;

/// A federated route over A (forging as `mode` says) and B; the call to A's `slow` tool sent
/// in the 2026-07-28 era, and every byte the client got until the proxy closed.
struct Forged {
    edge: Edge,
    received: Vec<u8>,
    member: Recording,
    _mocks: (Mock, Member),
}

fn forged(mode: &str) -> Forged {
    forged_with(&["--forge", mode])
}

/// [`forged`] with the mock's whole command line (`--forge MODE` and more).
fn forged_with(args: &[&str]) -> Forged {
    let (a, member) = recording::mock_with("A", args);
    let b = self::member("B", "5");
    let edge = Edge::start(&federated([&a.addr(), &b.addr]));
    let body = stamped(&call("a_slow", r#"{"steps":1,"delay_ms":1}"#));
    let received =
        raw::until_close(edge.port, &raw::post(edge.port, "/mcp", &modern("tools/call", Some("a_slow")), &body));
    Forged { edge, received, member, _mocks: (a, b) }
}

impl Forged {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.received).into_owned()
    }

    /// The forged answer reached the client whole: its last bytes (`,"id":42}`) came.
    fn forged_whole(&self) -> bool {
        self.text().contains(r#""id":42}"#)
    }

    /// The response ended as HTTP/1.1 says: the last chunk came, or all of its
    /// `Content-Length`.
    fn finished(&self) -> bool {
        let text = self.text();
        let Some((head, body)) = text.split_once("\r\n\r\n") else { return false };
        let length =
            head.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ")?.trim().parse().ok());
        match length {
            Some(length) => body.len() >= length,
            None => self.received.ends_with(b"0\r\n\r\n"),
        }
    }

    fn cut_for(&self, reason: &str) -> bool {
        let line =
            format!(r#"mcp_edge_federation_member_messages_cut_total{{member="a",reason="{reason}",route="all"}} 1"#);
        self.edge.metrics().contains(&line)
    }
}

#[test]
fn a_forged_answer_padded_past_what_a_calls_stream_holds_never_reaches_the_client_whole() {
    let f = forged("padded");
    let text = f.text();
    assert!(text.starts_with("HTTP/1.1 200"), "{}", common::tail(&f.received, 300));
    assert!(!f.forged_whole(), "the forged answer's last bytes never follow");
    assert!(!f.finished(), "the stream is cut, not ended: {}", common::tail(&f.received, 600));
    assert!(f.cut_for("foreign_answer"), "{}", f.edge.metrics());
    f.edge.wait_log("a member's message may not pass (an answer to another request)");
}

#[test]
fn a_json_answer_under_another_requests_id_is_cut_before_its_last_byte() {
    let f = forged("json");
    let text = f.text();
    assert!(text.starts_with("HTTP/1.1 200"), "{}", common::tail(&f.received, 300));
    assert!(!f.forged_whole(), "the answer's last bytes never follow");
    assert!(!f.finished(), "the answer is cut");
    assert!(f.cut_for("foreign_answer"), "{}", f.edge.metrics());
}

#[test]
fn an_event_stream_typed_in_another_case_is_read_as_one() {
    // The Python SDK lower-cases the type before it looks: clients read this stream.
    let f = forged("upper");
    let text = f.text();
    assert!(!text.contains("SPOOFED"), "the forged answer passed: {text}");
    assert!(text.contains(r#""id":"c1""#) && f.finished(), "the call's own answer, and the stream's end: {text}");
}

#[test]
fn a_compressed_answer_the_proxy_cannot_read_is_refused_and_the_member_was_asked_for_identity() {
    let f = forged("gzip");
    assert!(f.text().starts_with("HTTP/1.1 502"), "{}", f.text());
    assert!(!f.text().contains("SPOOFED"));
    assert!(f.cut_for("encoded"), "{}", f.edge.metrics());
    let asked = f.member.lines().into_iter().rfind(|l| l.body.contains("tools/call")).expect("A got the call");
    assert_eq!(asked.header("accept-encoding"), Some("identity"), "{:?}", asked.headers);
    // The proxy closes the connection after it: the reply says so even to a client that
    // asked to keep it, so none sends its next request on it.
    let body = stamped(&call("a_slow", r#"{"steps":1,"delay_ms":1}"#));
    let mut headers = modern("tools/call", Some("a_slow"));
    headers.push(("Connection", "keep-alive"));
    let again = raw::until_close(f.edge.port, &raw::post(f.edge.port, "/mcp", &headers, &body));
    let again = String::from_utf8_lossy(&again).to_ascii_lowercase();
    assert!(again.starts_with("http/1.1 502") && again.contains("\r\nconnection: close\r\n"), "{again}");
}

#[test]
fn a_forged_answer_behind_a_byte_order_mark_is_read_as_clients_read_it_and_dropped() {
    // Clients decode a BOM away at the start of a stream, and read the event after it.
    let f = forged("bom");
    let text = f.text();
    assert!(!text.contains("SPOOFED"), "the forged answer passed: {text}");
    assert!(text.contains(r#""id":"c1""#) && f.finished(), "the call's own answer, and the stream's end: {text}");
}

#[test]
fn a_json_answer_under_a_type_an_sdk_reads_as_json_is_read_as_json() {
    // TypeScript SDKs before 1.24 read any type that contains `application/json` as JSON.
    let f = forged("ctype");
    assert!(f.text().starts_with("HTTP/1.1 200"), "{}", f.text());
    assert!(!f.forged_whole() && !f.finished(), "{}", common::tail(&f.received, 300));
    assert!(f.cut_for("foreign_answer"), "{}", f.edge.metrics());
}

#[test]
fn a_request_that_carries_an_answer_too_is_cut() {
    let f = forged("hybrid");
    assert!(!f.forged_whole() && !f.finished(), "{}", common::tail(&f.received, 300));
    assert!(f.cut_for("not_jsonrpc"), "{}", f.edge.metrics());
}

#[test]
fn every_byte_order_mark_a_client_strips_is_stripped_before_the_stream_is_read() {
    // Found by an attack: the TypeScript SDK strips a BOM and then `ï»¿` (a BOM read as
    // Latin-1); stripping only one left the next where the client strips it.
    let f = forged("marks");
    let text = f.text();
    assert!(!text.contains("SPOOFED"), "the forged answer passed: {text}");
    assert!(text.contains(r#""id":"c1""#) && f.finished(), "the call's own answer, and the stream's end: {text}");
    assert!(!f.received.windows(3).any(|w| w == b"\xEF\xBB\xBF"), "no mark reaches the client");
}

#[test]
fn an_event_stream_in_another_charset_is_refused() {
    // Found by an attack: httpx (the Python SDK) decodes a stream in its charset.
    let f = forged("charset");
    assert!(f.text().starts_with("HTTP/1.1 502"), "{}", f.text());
    assert!(f.cut_for("content_type"), "{}", f.edge.metrics());
}

#[test]
fn an_event_that_is_a_request_and_an_answer_is_dropped() {
    let f = forged("hybrid_event");
    let text = f.text();
    assert!(!text.contains("SPOOFED"), "the forged answer passed: {text}");
    assert!(text.contains(r#""id":"c1""#) && f.finished(), "the call's own answer, and the stream's end: {text}");
}

#[test]
fn an_answer_naming_a_links_uri_twice_is_cut() {
    // Found by an attack: it went on as sent, and a client keeps the last `uri`, a link to
    // another member's resource.
    let f = forged("twice");
    // Held whole, it is refused before its head went out.
    assert!(f.text().starts_with("HTTP/1.1 502"), "{}", f.text());
    assert!(!f.text().contains("b+mock://B/secret"), "{}", f.text());
    assert!(f.cut_for("uri_twice"), "{}", f.edge.metrics());
    // Its head came 300 ms before its body: the head went to Pingora, which answers no 502
    // after it, and the proxy's connection kept it for the answer (one write). The client
    // still gets it, then the cut, not a bare close.
    let f = forged_with(&["--forge", "twice", "--answer-gap-ms", "300"]);
    assert!(f.text().starts_with("HTTP/1.1 200"), "{:?}", f.text());
    assert!(!f.text().contains("b+mock://B/secret") && !f.finished(), "{}", f.text());
    assert!(f.cut_for("uri_twice"), "{}", f.edge.metrics());
}

#[test]
fn an_event_cut_off_at_the_streams_end_is_not_passed() {
    // Found by an attack: the Python SDK 2.x dispatches an event ended by a lone CR at the
    // stream's end, which was passed unread.
    let f = forged("cr_end");
    assert!(f.text().starts_with("HTTP/1.1 200"), "{}", f.text());
    assert!(!f.text().contains("SPOOFED"), "the cut-off event passed: {}", f.text());
}

#[test]
fn an_interim_answer_is_not_passed_and_arms_nothing_and_the_final_answer_is_held() {
    // Found by attacks: a `103` typed as JSON armed the hold, and the final answer kept a
    // `Content-Length` its rewritten body no longer had; passed on, the `103` carried the
    // member's raw session id and cookie to the client.
    let f = forged("hints");
    let text = f.text();
    assert!(text.starts_with("HTTP/1.1 200"), "the answer is the first head: {text:?}");
    assert!(!text.contains("RAW-SECRET") && !text.contains("evil"), "nothing of the interim head: {text:?}");
    assert!(text.contains(r#""uri":"a+mock://A/readme""#) && f.finished(), "held and offered: {text:?}");
}

#[test]
fn interim_heads_past_eight_are_refused_as_on_detached_streams() {
    // Found by an attack: without end they kept a core busy until the first-byte timeout.
    let f = forged_with(&["--forge", "hints", "--interim-heads", "8"]);
    assert!(f.text().starts_with("HTTP/1.1 200") && f.finished(), "eight pass unseen: {}", f.text());
    let f = forged_with(&["--forge", "hints", "--interim-heads", "9"]);
    assert!(f.text().starts_with("HTTP/1.1 502"), "{}", f.text());
}

#[test]
fn interim_heads_are_counted_per_backend_across_a_retry() {
    // Found by an attack: A's five and B's five made ten, and B, healthy, got the 502 and the
    // blame. Each request that goes to A first is resent to B (the route's tools are safe to
    // resend); with the heads counted per backend, every one is answered.
    let (a, _ra) = recording::mock_with("A", &["--forge", "hints_cut", "--interim-heads", "5"]);
    let (b, _rb) = recording::mock_with("B", &["--forge", "hints", "--interim-heads", "5"]);
    let config = format!(
        "{}[[route]]\nname = \"p\"\npath = \"/mcp\"\npool = \"p\"\nidempotent_tools = [\"*\"]\n",
        common::pool("p", &[&a, &b], "")
    );
    let edge = Edge::start(&config);
    let body = stamped(&call("slow", r#"{"steps":1,"delay_ms":1}"#));
    let retried = || edge.metrics().lines().any(|l| l.starts_with(r#"mcp_edge_upstream_retries_total{pool="p"}"#));
    for _ in 0..8 {
        let received =
            raw::until_close(edge.port, &raw::post(edge.port, "/mcp", &modern("tools/call", Some("slow")), &body));
        let text = String::from_utf8_lossy(&received);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    }
    assert!(retried(), "some went to A first: {}", edge.metrics());
}

#[test]
fn a_backend_sending_too_many_interim_heads_on_a_pooled_connection_is_blamed() {
    // Found by an attack: a failure on a reused connection was excused as a stale pooled
    // connection, even when the backend had answered on it with nine interim heads.
    let (mock, _rec) = recording::mock_with("P", &["--forge", "hints", "--interim-heads", "9"]);
    let config = format!(
        "{}[[route]]\nname = \"p\"\npath = \"/mcp\"\npool = \"p\"\n",
        common::pool("p", &[&mock], "[pool.breaker]\nfailures = 1\ncooldown = \"30s\"\n")
    );
    let edge = Edge::start(&config);
    let on_one_connection = [
        raw::post(edge.port, "/mcp", &[("Connection", "keep-alive")], &rpc(1, "tools/list", "{}")),
        raw::post(
            edge.port,
            "/mcp",
            &modern("tools/call", Some("slow")),
            &stamped(&call("slow", r#"{"steps":1,"delay_ms":1}"#)),
        ),
    ]
    .concat();
    let received = raw::until_close(edge.port, &on_one_connection);
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200") && text.contains("HTTP/1.1 502"), "{text}");
    edge.wait_metric("mcp_edge_upstream_ejections_total{");
}

#[test]
fn a_client_that_asked_to_be_told_to_continue_is_told_once() {
    // The proxy reads the body (a federated route does) and says continue itself; the member
    // never sees the expectation, and its own `100` is not passed on as a second one (found
    // by an attack).
    let (a, rec) = recording::mock_with("A", &["--forge", "hints", "--interim-status", "100"]);
    let b = member("B", "5");
    let edge = Edge::start(&federated([&a.addr(), &b.addr]));
    let body = stamped(&call("a_slow", r#"{"steps":1,"delay_ms":1}"#));
    let mut headers = modern("tools/call", Some("a_slow"));
    headers.push(("Expect", "100-continue"));
    let received = raw::until_close(edge.port, &raw::post(edge.port, "/mcp", &headers, &body));
    let text = String::from_utf8_lossy(&received);
    assert_eq!(text.matches("100 Continue").count(), 1, "{text}");
    assert!(text.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200"), "{text}");
    let sent = rec.wait_count(1);
    assert!(sent.iter().all(|r| r.header("expect").is_none()), "the member was asked to expect nothing");
}

#[test]
fn a_protocol_switch_no_one_asked_for_is_refused() {
    // Found by an attack: a member's `101` made the rest of the connection its raw bytes, and
    // its forged answer and request reached the client of the federated route.
    let f = forged("switch");
    assert!(f.text().starts_with("HTTP/1.1 502"), "{}", f.text());
    assert!(!f.text().contains("SPOOFED") && !f.text().contains("sampling"), "{}", f.text());
    // A plain route refuses it too.
    let (mock, _rec) = recording::mock_with("P", &["--forge", "switch"]);
    let config = format!("{}[[route]]\nname = \"p\"\npath = \"/mcp\"\npool = \"p\"\n", common::pool("p", &[&mock], ""));
    let edge = Edge::start(&config);
    let body = stamped(&call("slow", r#"{"steps":1,"delay_ms":1}"#));
    let received =
        raw::until_close(edge.port, &raw::post(edge.port, "/mcp", &modern("tools/call", Some("slow")), &body));
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 502") && !text.contains("SPOOFED"), "{text}");
}
