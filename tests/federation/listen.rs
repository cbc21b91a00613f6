//! A 2026-07-28 client's `subscriptions/listen` on a federated route: the route acknowledges
//! first, sends each member its own listen (the client's list flags, the watched URIs that
//! member owns, under its own names), and passes on only what the client asked for, tagged
//! with the client's subscription id, whatever a member sends. A member whose listen ended
//! is asked again and the client told its lists may have changed.

use std::time::{Duration, Instant};

use super::streams::Listening;
use super::*;

const META: &str =
    r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;

/// A listen for `notifications` (the filter's JSON) under id `"sub-1"`.
fn listen(edge: &Edge, notifications: &str) -> Listening {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":"sub-1","method":"subscriptions/listen","params":{{"notifications":{notifications},"_meta":{META}}}}}"#
    );
    let headers = [("MCP-Protocol-Version", MODERN), ("Mcp-Method", "subscriptions/listen")];
    Listening::sent(edge, &raw::post(edge.port, "/mcp", &headers, &body))
}

/// Each message as `method` (and the URI of an update), in the order received.
fn heard(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| match m["params"]["uri"].as_str() {
            Some(uri) => format!("{} {uri}", m["method"].as_str().unwrap_or("-")),
            None => m["method"].as_str().unwrap_or("-").to_owned(),
        })
        .collect()
}

/// The listens a member received.
fn listens(rec: &Recording) -> Vec<Value> {
    let got = received(rec, "subscriptions/listen");
    got.iter().map(|l| serde_json::from_str(&l.body).expect("a JSON listen")).collect()
}

#[test]
fn a_listen_carries_only_what_its_client_asked_for_tagged_with_its_id() {
    let (a, b) = (member("A", "5"), member("B", "5"));
    let edge = Edge::start(&federated([&a.addr, &b.addr]));
    let asked =
        r#"{"promptsListChanged":true,"resourceSubscriptions":["a+mock://A/readme","z+nobody://x"],"taskIds":["t1"]}"#;
    let mut stream = listen(&edge, asked);
    // The mocks send every kind of message, asked for or not: prompts changed (from each
    // member) and A's readme updated are all this client asked for.
    let want = |m: &[Value]| m.len() >= 4;
    let messages = stream.until("the acknowledgement, two prompt changes and an update", want);
    assert!(stream.head().starts_with("HTTP/1.1 200"), "{}", stream.head());
    let ack = &messages[0];
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged", "the route's own acknowledgement first");
    assert_eq!(
        ack["params"]["notifications"],
        serde_json::json!({"promptsListChanged": true, "resourceSubscriptions": ["a+mock://A/readme", "z+nobody://x"]}),
        "what the route honours: an extension it does not know is not"
    );
    // Anything else a member sent would have arrived by now; read a little longer to see.
    let deadline = Instant::now() + Duration::from_millis(700);
    while Instant::now() < deadline {
        let _ = stream.until("more", |m| m.len() > 4 || Instant::now() >= deadline);
    }
    let messages = stream.messages();
    let mut rest = heard(&messages[1..]);
    rest.sort();
    assert_eq!(
        rest,
        [
            "notifications/prompts/list_changed",
            "notifications/prompts/list_changed",
            "notifications/resources/updated a+mock://A/readme"
        ]
    );
    for m in &messages {
        assert_eq!(m["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "sub-1", "{m}");
    }
    // Each member was asked for what it owns, under its own names, with the client's `_meta`.
    let (to_a, to_b) = (listens(&a.rec), listens(&b.rec));
    assert_eq!((to_a.len(), to_b.len()), (1, 1));
    assert_eq!(
        to_a[0]["params"]["notifications"],
        serde_json::json!({"promptsListChanged": true, "resourceSubscriptions": ["mock://A/readme"]})
    );
    assert_eq!(to_b[0]["params"]["notifications"], serde_json::json!({"promptsListChanged": true}));
    assert_eq!(to_a[0]["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"], MODERN);
    let head = &received(&a.rec, "subscriptions/listen")[0];
    assert_eq!(head.header("mcp-method"), Some("subscriptions/listen"));
    assert_eq!(head.header("mcp-protocol-version"), Some(MODERN));
    assert_eq!(
        edge.metrics().lines().find(|l| l.starts_with("mcp_edge_panics_total")),
        Some("mcp_edge_panics_total 0")
    );
}

#[test]
fn a_member_whose_listen_ended_is_asked_again_and_the_client_told_its_lists_may_have_changed() {
    let (a, ra) = recording::mock_with("A", &["--stream-ends-after", "1"]);
    let b = member("B", "5");
    let edge = Edge::start(&federated([&a.addr(), &b.addr]));
    let mut stream = listen(&edge, r#"{"toolsListChanged":true}"#);
    // A ends each listen with its result: asked again (with backoff), it says its tools
    // changed each time, and the route says so too once A's stream is open again.
    let changes = |m: &[Value]| heard(m).iter().filter(|h| h.ends_with("tools/list_changed")).count();
    let messages = stream.until("A's listen asked again", |m| changes(m) >= 7);
    // Each of A's listens carried one change, B's one: the rest are the route's own.
    let asked = listens(&ra).len();
    assert!(asked >= 2 && changes(&messages) > asked + 1, "{asked} listens of A; heard {:?}", heard(&messages));
    let acks = heard(&messages).iter().filter(|h| h.ends_with("acknowledged")).count();
    assert_eq!(acks, 1, "one acknowledgement, the route's: {:?}", heard(&messages));
    assert_eq!(listens(&b.rec).len(), 1, "B's stream stays open");
    // A member that ends each listen as soon as it opens is asked again later each time
    // (0.25, 0.5, 1, 2 s...): at most 4 listens in its first 3 s, not 12.
    drop(stream);
    let mut slow = listen(&edge, r#"{"toolsListChanged":true}"#);
    let opened = Instant::now();
    let before = listens(&ra).len();
    let _ = slow.until("3 s of A's listens", |_| opened.elapsed() >= Duration::from_secs(3));
    let asked = listens(&ra).len() - before;
    assert!((2..=4).contains(&asked), "{asked} listens of A in 3 s");
    // A client that asks for nothing a member could send still gets its acknowledgement;
    // a listen that is not one is refused as invalid params.
    let mut idle = listen(&edge, "{}");
    let first = idle.until("the acknowledgement", |m| !m.is_empty());
    assert_eq!(first[0]["params"]["notifications"], serde_json::json!({}));
    let body = r#"{"jsonrpc":"2.0","id":9,"method":"subscriptions/listen","params":{"notifications":{"toolsListChanged":"yes"}}}"#;
    let r = post(&edge, &modern("subscriptions/listen", None), body);
    assert_eq!((r.status, r.rpc_code(), r.json()["id"].as_i64()), (400, Some(-32602), Some(9)), "{}", r.text());
}

#[test]
fn the_python_sdk_client_hears_a_members_new_tool_and_a_resource_update_through_the_route() {
    let peers = Peers::load();
    let (a, b) = (
        peers.server("PEERS_PY2_SERVER", &["--name", "A", "--changes"]),
        peers.server("PEERS_PY2_SERVER", &["--name", "B", "--changes"]),
    );
    let edge = Edge::start(&federated([&a.addr(), &b.addr()]));
    let args = ["--era", "modern", "--scenario", "listen", "--tool", "fresh", "--uri", "a+res://greeting"];
    let out = peers.client(
        "PEERS_PY2_CLIENT",
        &edge.url("/mcp"),
        &[&args[..], &["--args", r#"{"uri":"res://greeting"}"#]].concat(),
    );
    assert_eq!(out["ok"], true, "{out}");
    assert_eq!(
        out["honored"],
        serde_json::json!({"toolsListChanged": true, "resourceSubscriptions": ["a+res://greeting"]})
    );
    assert_eq!(out["heard"], serde_json::json!(["tools", "updated a+res://greeting"]), "{out}");
    let has = |list: &str, name: &str| out[list].as_array().is_some_and(|l| l.iter().any(|t| t == name));
    assert!(!has("before", "a_fresh") && has("after", "a_fresh"), "the next list has the new tool: {out}");
}

#[test]
fn a_client_that_leaves_its_listen_closes_the_members_listens_at_once() {
    let (a, b) = (member("A", "5"), member("B", "5"));
    let edge = Edge::start(&federated([&a.addr, &b.addr]));
    let mut stream = listen(&edge, r#"{"toolsListChanged":true}"#);
    stream.until("the acknowledgement and each member's tools change", |m| m.len() >= 3);
    let both = |n| open_streams(a.mock.port) == n && open_streams(b.mock.port) == n;
    common::wait_until("each member's listen open", Duration::from_secs(5), || both(1));
    // The members are quiet now: nothing is written to the client, so only watching its
    // socket finds out it left (the stream's 15 s keep-alive comment would, much later).
    drop(stream);
    common::wait_until("each member's listen closed", Duration::from_secs(3), || both(0));
    // A client that half-closes its side (sends FIN) has left as well.
    let mut stream = listen(&edge, r#"{"toolsListChanged":true}"#);
    stream.until("the acknowledgement and each member's tools change", |m| m.len() >= 3);
    common::wait_until("each member's listen open", Duration::from_secs(5), || both(1));
    stream.half_close();
    common::wait_until("each member's listen closed", Duration::from_secs(3), || both(0));
    // A client that sends anything more on its listen's connection (a pipelined request,
    // junk) after the stream began has its connection closed: an endless stream's
    // connection carries nothing else (and a byte kept for later would blind the watch).
    let mut stream = listen(&edge, r#"{"toolsListChanged":true}"#);
    stream.until("the acknowledgement and each member's tools change", |m| m.len() >= 3);
    common::wait_until("each member's listen open", Duration::from_secs(5), || both(1));
    stream.send(b"GET /mcp HTTP/1.1\r\nHost: x\r\n\r\n");
    stream.until_end("more bytes on its connection");
    common::wait_until("each member's listen closed", Duration::from_secs(3), || both(0));
    let metrics = edge.metrics();
    let aborts = metrics.lines().find(|l| l.starts_with(r#"mcp_edge_client_aborts_total{phase="response"}"#));
    assert_eq!(aborts, Some(r#"mcp_edge_client_aborts_total{phase="response"} 3"#), "each client's leaving is counted");
}
