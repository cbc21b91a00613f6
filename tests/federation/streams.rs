//! A legacy federated session's GET stream: the members' own streams, merged. Each member's
//! messages arrive as sent, a member's ended stream is resumed where it ended, its requests
//! to the client carry ids naming it and the client's answers go back to it alone, and what
//! a member sends that is no message for a client goes nowhere.

use std::time::{Duration, Instant};

use super::sessions::issued;
use super::*;
pub(super) use common::listening::Listening;

const INIT: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

/// The `seq` numbers of `backend`'s numbered messages, in order.
fn seqs(messages: &[Value], backend: &str) -> Vec<u64> {
    let from = messages.iter().filter(|m| m["params"]["backend"] == backend);
    from.filter_map(|m| m["params"]["seq"].as_u64()).collect()
}

/// The GET requests a member received.
fn gets(rec: &Recording) -> Vec<common::recording::Recorded> {
    rec.lines().into_iter().filter(|l| l.method == "GET").collect()
}

fn session(edge: &Edge) -> String {
    let r = post(edge, &[], INIT);
    r.header("mcp-session-id").unwrap_or_else(|| panic!("a session: {}", r.text())).to_owned()
}

#[test]
fn a_sessions_stream_merges_its_members_streams_and_resumes_each_where_it_ended() {
    let (a, ra) = recording::stateful_mock_with("A", &["--tick-ms", "50", "--stream-ends-after", "3"]);
    // B keeps its streams going when its sessions end: only the proxy can end the client's.
    let (b, rb) = recording::stateful_mock_with("B", &["--tick-ms", "50", "--keep-streams"]);
    let edge = Edge::start(&federated([&a.addr(), &b.addr()]));
    let token = session(&edge);
    let mut stream = Listening::open(&edge, &token, "text/event-stream");
    let messages =
        stream.until("A's messages 1 to 8 and three of B's", |m| seqs(m, "A").len() >= 8 && seqs(m, "B").len() >= 3);
    assert!(stream.head().starts_with("HTTP/1.1 200"), "{}", stream.head());
    assert!(stream.head().to_ascii_lowercase().contains("content-type: text/event-stream"), "{}", stream.head());
    // Served outside Pingora's request (detached): its connection ends with it.
    assert!(stream.head().to_ascii_lowercase().contains("connection: close"), "{}", stream.head());
    // A ended its stream every three messages; each time it was asked again from where it
    // ended, so the client saw every message once, in order.
    assert_eq!(seqs(&messages, "A")[..8], [1, 2, 3, 4, 5, 6, 7, 8]);
    let resumed: Vec<String> = gets(&ra).iter().filter_map(|g| g.header("last-event-id").map(str::to_owned)).collect();
    assert!(resumed.starts_with(&["3".to_owned(), "6".to_owned()]), "{resumed:?}");
    // Each member was asked in its own session, never the client's token.
    for (rec, name) in [(&ra, "A"), (&rb, "B")] {
        let own = issued(rec)[0].clone();
        assert!(gets(rec).iter().all(|g| g.header("mcp-session-id") == Some(own.as_str())), "{name}: {:?}", gets(rec));
    }
    // The merged stream has no event ids: there is no one position in two streams.
    assert!(!stream.body().lines().any(|l| l.starts_with("id:")), "{}", stream.body());
    edge.wait_metric("mcp_edge_streams_open 1");
    // The client leaves: the proxy stops following A, which ends its stream every 150 ms.
    drop(stream);
    edge.wait_metric("mcp_edge_streams_open 0");
    std::thread::sleep(Duration::from_millis(300));
    ra.assert_stays(ra.count());

    // A session ended by its client or by an operator ends its open streams with it.
    let mut by_client = Listening::open(&edge, &token, "text/event-stream");
    by_client.until("a message", |m| !m.is_empty());
    let other = session(&edge);
    let mut by_operator = Listening::open(&edge, &other, "text/event-stream");
    by_operator.until("a message", |m| !m.is_empty());
    let host = format!("Host: 127.0.0.1:{}", edge.port);
    let delete = raw::lines("DELETE /mcp HTTP/1.1", &[&host, &format!("Mcp-Session-Id: {token}")], "");
    assert_eq!(raw::send(edge.port, &delete).status, 204);
    by_client.until_end("the client's DELETE");
    let sessions = common::http::get(edge.admin, "/sessions").json();
    let fingerprint = sessions["sessions"]
        .as_array()
        .and_then(|s| s.iter().find_map(|s| s["fingerprint"].as_str().map(str::to_owned)));
    let fingerprint = fingerprint.unwrap_or_else(|| panic!("the open session: {sessions}"));
    let r = common::http::request(edge.admin, "DELETE", &format!("/sessions/{fingerprint}"), &[], b"");
    assert!(r.status < 300, "{}", r.text());
    by_operator.until_end("the operator's DELETE");

    let fresh = session(&edge);
    // No stream for a client that takes no events, or without a session.
    let r = raw::send(
        edge.port,
        format!(
            "GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAccept: application/json\r\nMcp-Session-Id: {fresh}\r\n\r\n",
            edge.port
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 405, "{}", r.text());
    let r = raw::send(
        edge.port,
        format!("GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAccept: text/event-stream\r\n\r\n", edge.port).as_bytes(),
    );
    assert_eq!(r.status, 405, "{}", r.text());
}

#[test]
fn a_members_request_reaches_the_client_under_an_id_naming_it_and_only_that_member_gets_the_answer() {
    let (a, ra) = recording::stateful_mock_with("A", &["--tick-ms", "50", "--stream-junk"]);
    let (b, rb) = recording::stateful_mock_with("B", &["--tick-ms", "50"]);
    let edge = Edge::start(&federated([&a.addr(), &b.addr()]));
    let token = session(&edge);
    let mut stream = Listening::open(&edge, &token, "text/event-stream");
    let messages = stream.until("two of A's numbered messages", |m| seqs(m, "A").len() >= 2);
    // Of A's junk only two messages reach the client: a request, its id mapped, and a
    // notification written over two data lines. No response, no junk, no id that cannot be
    // carried (an object, null), no method that is not a string.
    let from_a: Vec<&Value> = messages.iter().filter(|m| m["params"]["backend"] != "B").collect();
    let junk: Vec<&Value> = from_a.iter().copied().filter(|m| m["params"]["seq"].is_null()).collect();
    assert_eq!(junk.len(), 2, "{junk:#?}");
    assert_eq!(junk[0]["method"].as_str(), Some("roots/list"));
    let mapped = junk[0]["id"].as_str().unwrap_or_default();
    assert!(mapped.starts_with("mcp-edge~") && !mapped.contains("x~1"), "sealed, not readable: {mapped}");
    assert_eq!(junk[1]["params"]["junk"], "multi-line");

    // The client answers under the id it got: A receives it under its own id, in its session.
    let answer = format!(r#"{{"jsonrpc":"2.0","id":{},"result":{{"roots":[]}}}}"#, junk[0]["id"]);
    let before_a = ra.count();
    let r = post(&edge, &[("Mcp-Session-Id", &token)], &answer);
    assert_eq!(r.status, 202, "{}", r.text());
    let got = ra.wait_count(before_a + 1);
    let got = got.last().expect("the answer");
    assert_eq!(serde_json::from_str::<Value>(&got.body).expect("JSON")["id"], "x~1", "{}", got.body);
    assert_eq!(got.header("mcp-session-id"), Some(issued(&ra)[0].as_str()));
    // Answers naming no member, or under ids the proxy never gave, reach nobody.
    // Neither can another session use the id it got (the id is bound to its session).
    let other = session(&edge);
    let r = post(&edge, &[("Mcp-Session-Id", &other)], &answer);
    assert_eq!(r.status, 202, "{}", r.text());
    let forged =
        [r#""mcp-edge~0~\"x~1\"""#, r#""mcp-edge~0~1""#, r#""mcp-edge~9~1""#, r#""mcp-edge~""#, "5", r#""x~1""#];
    for id in forged {
        let r = post(&edge, &[("Mcp-Session-Id", &token)], &format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{}}}}"#));
        assert_eq!(r.status, 202, "{id}: {}", r.text());
    }
    let answers = |rec: &Recording| rec.lines().iter().filter(|l| l.body.contains("\"result\"")).count();
    assert_eq!((answers(&ra), answers(&rb)), (1, 0), "only the one answer reached a member");
    assert!(edge.metrics().contains("mcp_edge_panics_total 0"), "{}", edge.metrics());
}

#[test]
fn real_servers_notifications_and_requests_reach_the_python_client_and_refresh_the_catalog() {
    let peers = Peers::load();
    let (py1, everything) = (
        peers.server("PEERS_PY1_SERVER", &["--name", "P", "--changes"]),
        peers.server("PEERS_EVERYTHING", &["--mode", "streamableHttp"]),
    );
    // A catalog kept ten minutes: only the member's list_changed can refresh it in time.
    let config = federated([&py1.addr(), &everything.addr()])
        .replace("path = \"/mcp\"\n[[route.member]]", "path = \"/mcp\"\ncatalog_ttl = \"10m\"\n[[route.member]]");
    let edge = Edge::start(&config);
    let r = peers.client("PEERS_PY1_CLIENT", &edge.url("/mcp"), &["--scenario", "changes", "--tool", "fresh"]);
    let names = |key: &str| -> Vec<String> {
        r[key].as_array().expect(key).iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()
    };
    assert!(!names("before").contains(&"a_fresh".to_owned()) && names("after").contains(&"a_fresh".to_owned()), "{r}");
    assert!(names("after").contains(&"b_echo".to_owned()), "the other member's tools stay: {r}");
    // Sampling asked on the session's stream and on a call's own stream, each answered back
    // to the member that asked.
    assert_eq!(
        (r["sampled"].as_str(), r["sampled_inline"].as_str()),
        (Some("sampled: two plus two"), Some("sampled: three")),
        "{r}"
    );
    assert_eq!(names("uris"), ["a+res://greeting"], "the updated resource as the route offers it: {r}");
    assert!(names("logs").iter().any(|l| l == "touched res://greeting"), "{r}");
    assert!(names("methods").contains(&"notifications/tools/list_changed".to_owned()), "{r}");
    let evicted = r#"mcp_edge_federation_catalog_evictions_total{reason="list_changed",route="all"} "#;
    let metrics = edge.metrics();
    let count = metrics.lines().find_map(|l| l.strip_prefix(evicted)).and_then(|v| v.parse::<u64>().ok());
    assert!(count.is_some_and(|c| c >= 1), "the merged tool list was made stale: {count:?}");
}

#[test]
fn a_members_request_on_a_calls_stream_gets_a_sealed_id_even_after_an_event_too_long_to_hold() {
    for pad in ["0", "5000000"] {
        let (a, ra) = recording::stateful_mock_with("A", &["--slow-asks", pad]);
        let b = member("B", "5");
        let edge = Edge::start(&federated([&a.addr(), &b.addr]));
        let token = session(&edge);
        let accept = ("Accept", "application/json, text/event-stream");
        let r = post(&edge, &[("Mcp-Session-Id", &token), accept], &call("a_slow", r#"{"steps":1,"delay_ms":10}"#));
        assert_eq!(r.status, 200, "{pad}: {}", common::tail(&r.body, 300));
        let body = String::from_utf8_lossy(&r.body).into_owned();
        // The padding passed whole, as it came; the request after it was still read.
        assert!(body.len() > pad.parse::<usize>().unwrap_or(0), "{pad}: {} bytes", body.len());
        let request = body.lines().find(|l| l.contains("roots/list")).unwrap_or_else(|| panic!("{pad}: no request"));
        let request: Value = serde_json::from_str(request.trim_start_matches("data: ")).expect("JSON");
        let id = request["id"].as_str().unwrap_or_else(|| panic!("{pad}: a sealed id: {request}"));
        assert!(id.starts_with("mcp-edge~"), "{pad}: {id}");
        assert!(body.contains("\"result\""), "{pad}: the call's answer follows");
        // The answer reaches A under its own id.
        let before = ra.count();
        let answer = format!(r#"{{"jsonrpc":"2.0","id":"{id}","result":{{"roots":[]}}}}"#);
        assert_eq!(post(&edge, &[("Mcp-Session-Id", &token)], &answer).status, 202);
        let got = ra.wait_count(before + 1);
        assert!(got.last().is_some_and(|l| l.body.contains(r#""id":77"#)), "{pad}: {:?}", got.last());
    }
}

#[test]
fn a_calls_stream_carries_its_own_answer_only_and_an_escaped_key_is_the_key() {
    // Found by an attack: A answers the client's other request (42) on this call's stream,
    // sends junk, and a request under `m\u0065thod`; its link's key is `u\u0072i`.
    let (a, _ra) = recording::stateful_mock_with("A", &["--hostile-answers", "--links"]);
    let b = member("B", "5");
    let edge = Edge::start(&federated([&a.addr(), &b.addr]));
    let token = session(&edge);
    let accept = ("Accept", "application/json, text/event-stream");
    let r = post(&edge, &[("Mcp-Session-Id", &token), accept], &call("a_slow", r#"{"steps":1,"delay_ms":10}"#));
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.text();
    assert!(!body.contains("SPOOFED") && !body.contains("hello"), "another answer, or junk, passed: {body}");
    let request = body.lines().find(|l| l.contains("roots/list")).unwrap_or_else(|| panic!("no request: {body}"));
    let request: Value = serde_json::from_str(request.trim_start_matches("data: ")).expect("JSON");
    assert!(request["id"].as_str().is_some_and(|id| id.starts_with("mcp-edge~")), "a sealed id: {request}");
    assert!(body.contains("\"result\""), "the call's own answer: {body}");
    let r = post(&edge, &[("Mcp-Session-Id", &token)], &call("a_whoami", "{}"));
    let result = &r.json()["result"];
    assert_eq!(result["content"][1]["uri"], "a+mock://A/readme", "{}", r.text());
    assert_eq!(result["content"][2]["resource"]["uri"], "a+mock://A/secret", "{}", r.text());
    assert_eq!(result["structuredContent"]["uri"], "mock://A/readme", "its own data: {}", r.text());
}

#[test]
fn a_member_that_says_its_list_changed_all_the_time_delays_no_caller() {
    // A says its tools changed ten times a second, and takes 1.5 s to list them.
    let (a, _ra) = recording::stateful_mock_with(
        "A",
        &["--tick-ms", "100", "--stream-method", "notifications/tools/list_changed", "--list-delay-ms", "1500"],
    );
    let b = member("B", "5");
    let edge = Edge::start(&federated([&a.addr(), &b.addr]));
    let token = session(&edge);
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    assert_eq!(tool_names(&post(&edge, &[], list)).len(), 10, "the first list waits for A");
    let mut stream = Listening::open(&edge, &token, "text/event-stream");
    // Each change reaches the client once the list is new again.
    stream.until("three of A's changes", |m| seqs(m, "A").len() >= 3);
    // Meanwhile every other caller gets the list as it stands: none waits for A again.
    for _ in 0..10 {
        assert_eq!(tool_names(&post(&edge, &[], list)).len(), 10);
    }
    let lookups = |result: &str| {
        let line =
            format!(r#"mcp_edge_federation_catalog_lookups_total{{list="tools",result="{result}",route="all"}} "#);
        edge.metrics().lines().find_map(|l| l.strip_prefix(&line).map(str::to_owned)).unwrap_or_default()
    };
    assert_eq!(lookups("miss"), "1", "only the very first list waited");
    let evicted = edge.metrics();
    assert!(evicted.contains(r#"reason="list_changed",route="all"}"#), "counted: {evicted}");
}

#[test]
fn a_client_that_leaves_its_sessions_stream_closes_the_members_streams_at_once() {
    // Quiet members: their streams carry nothing for ten minutes.
    let (a, _ra) = recording::stateful_mock_with("A", &["--tick-ms", "600000"]);
    let (b, _rb) = recording::stateful_mock_with("B", &["--tick-ms", "600000"]);
    let edge = Edge::start(&federated([&a.addr(), &b.addr()]));
    let token = session(&edge);
    let stream = Listening::open(&edge, &token, "text/event-stream");
    let both = |n| open_streams(a.port) == n && open_streams(b.port) == n;
    common::wait_until("each member's stream open", Duration::from_secs(5), || both(1));
    drop(stream);
    common::wait_until("each member's stream closed", Duration::from_secs(3), || both(0));
}

#[test]
fn a_client_that_leaves_before_the_members_streams_open_stops_them_at_once() {
    // A answers its stream's head after 30 s (the proxy gives a member 5 s); B at once.
    let (a, _ra) = recording::stateful_mock_with("A", &["--tick-ms", "600000", "--stream-head-delay-ms", "30000"]);
    let (b, _rb) = recording::stateful_mock_with("B", &["--tick-ms", "600000"]);
    let edge = Edge::start(&federated([&a.addr(), &b.addr()]));
    let token = session(&edge);
    let stream = Listening::open(&edge, &token, "text/event-stream");
    let both = |n| open_streams(a.port) == n && open_streams(b.port) == n;
    common::wait_until("each member asked for its stream", Duration::from_secs(5), || both(1));
    drop(stream);
    common::wait_until("each member's stream closed before A answers", Duration::from_secs(2), || both(0));
    edge.wait_metric(r#"mcp_edge_client_aborts_total{phase="response"} 1"#);
}

#[test]
fn merged_streams_hold_at_most_max_member_streams_members_streams() {
    // Each GET stream follows both members: two places each, four in all.
    let quiet = ["--tick-ms", "600000"];
    let ((a, _ra), (b, _rb)) = (recording::stateful_mock_with("A", &quiet), recording::stateful_mock_with("B", &quiet));
    let opts = common::Opts { proxy: "max_member_streams = 4", ..common::Opts::default() };
    let edge = Edge::start_opts(&federated([&a.addr(), &b.addr()]), opts);
    let (one, two, three) = (session(&edge), session(&edge), session(&edge));
    let first = Listening::open(&edge, &one, "text/event-stream");
    let _second = Listening::open(&edge, &two, "text/event-stream");
    common::wait_until("four members' streams open", Duration::from_secs(5), || {
        open_streams(a.port) == 2 && open_streams(b.port) == 2
    });
    let refused = raw::send(
        edge.port,
        format!("GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAccept: text/event-stream\r\nMcp-Session-Id: {three}\r\nConnection: close\r\n\r\n", edge.port).as_bytes(),
    );
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(refused.text().contains("max_member_streams"), "{}", refused.text());
    assert_eq!((open_streams(a.port), open_streams(b.port)), (2, 2), "the refused one opened none");
    // A stream that ends gives its places back.
    drop(first);
    common::wait_until("the first stream's places back", Duration::from_secs(5), || {
        open_streams(a.port) == 1 && open_streams(b.port) == 1
    });
    let _third = Listening::open(&edge, &three, "text/event-stream");
    common::wait_until("the third stream's members' streams open", Duration::from_secs(5), || {
        open_streams(a.port) == 2 && open_streams(b.port) == 2
    });
}

#[test]
fn a_member_flooding_a_client_that_does_not_read_its_merged_stream_waits() {
    // Events of 3 MB every millisecond: the merged stream's queue holds 8 MiB of them, then
    // the member waits (64 queued events held 192 MB before).
    let (a, _ra) = recording::stateful_mock_with("A", &["--tick-ms", "1", "--stream-pad", "3000000"]);
    let b = member("B", "5");
    let edge = Edge::start(&federated([&a.addr(), &b.addr]));
    let token = session(&edge);
    let before = edge.rss_mib();
    let mut stream = Listening::open(&edge, &token, "text/event-stream");
    assert!(stream.until_head().starts_with("HTTP/1.1 200"), "{}", stream.head());
    // The client reads nothing more. Watched for 5 s, the proxy holds no more than the queue,
    // the socket buffers and what is being read (about 21 MiB here; 70 MiB after 3 s, and
    // growing, without the queue's bound).
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut peak = before;
    while Instant::now() < deadline {
        peak = peak.max(edge.rss_mib());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(peak < before + 48, "mcp-edge grew from {before} to {peak} MiB");
    drop(stream);
}

#[test]
fn a_stream_whose_client_pipelined_another_request_behind_it_is_not_served() {
    // Found by a review: the bytes were kept as a next request that the endless stream never
    // let through, so the client's second request went unanswered while the stream ran on.
    let (a, _ra) = recording::stateful_mock_with("A", &["--tick-ms", "50"]);
    let b = member("B", "5");
    let edge = Edge::start(&federated([&a.addr(), &b.addr]));
    let token = session(&edge);
    let get = format!(
        "GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAccept: text/event-stream\r\nMcp-Session-Id: {token}\r\n\r\n",
        edge.port
    );
    let post =
        raw::post(edge.port, "/mcp", &[("Mcp-Session-Id", &token)], r#"{"jsonrpc":"2.0","id":9,"method":"ping"}"#);
    let mut stream = Listening::sent(&edge, &[get.as_bytes(), &post].concat());
    stream.until_end("the client pipelined a request behind its stream");
    assert!(!stream.head().starts_with("HTTP/1.1 200"), "the stream ran: {}", stream.head());
}

#[test]
fn an_http_1_0_client_gets_its_sessions_stream_framed_by_the_connections_close() {
    // Found by the ninth attack round: HTTP/1.0 has no chunked coding (RFC 9112 6.1), yet the
    // merged stream the proxy writes itself went out chunked, under `Connection: keep-alive`.
    let (a, _ra) = recording::stateful_mock_with("A", &["--tick-ms", "50"]);
    let (b, _rb) = recording::stateful_mock_with("B", &["--tick-ms", "50"]);
    let edge = Edge::start(&federated([&a.addr(), &b.addr()]));
    let token = session(&edge);
    let get = format!(
        "GET /mcp HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nConnection: keep-alive\r\nAccept: text/event-stream\r\nMcp-Session-Id: {token}\r\n\r\n",
        edge.port
    );
    let mut stream = Listening::sent(&edge, get.as_bytes());
    stream.until("two messages of each member", |m| seqs(m, "A").len() >= 2 && seqs(m, "B").len() >= 2);
    let head = stream.head().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200") && !head.contains("transfer-encoding"), "RFC 9112 6.1: {head}");
    assert!(head.contains("connection: close"), "its body ends with the connection: {head}");
    // The events themselves are written with bare line feeds: a carriage return in the body
    // would be chunk framing.
    assert!(!stream.body().contains('\r'), "no chunk framing: {:?}", stream.body());
    // The session's end ends the stream by closing its connection.
    let host = format!("Host: 127.0.0.1:{}", edge.port);
    let delete = raw::lines("DELETE /mcp HTTP/1.1", &[&host, &format!("Mcp-Session-Id: {token}")], "");
    assert_eq!(raw::send(edge.port, &delete).status, 204);
    stream.until_end("the client's DELETE");
    assert!(!stream.body().contains('\r'), "no last chunk either: {:?}", stream.body());
}
