//! Legacy-era sessions through a federated route: one token carries a session per member,
//! each call goes in its owner's session, and foreign or forged tokens reach no member.

use super::*;

const INIT: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

/// The session ids a member issued, in the order of the handshakes it completed (each
/// `notifications/initialized` carries the one just issued).
pub(crate) fn issued(rec: &Recording) -> Vec<String> {
    let handshakes = rec.lines().into_iter().filter(|l| l.body.contains("notifications/initialized"));
    handshakes.filter_map(|l| l.header("mcp-session-id").map(str::to_owned)).collect()
}

/// The session ids of the DELETEs a member received.
pub(crate) fn ended(rec: &Recording) -> Vec<String> {
    let deletes = rec.lines().into_iter().filter(|l| l.method == "DELETE");
    deletes.filter_map(|l| l.header("mcp-session-id").map(str::to_owned)).collect()
}

fn delete(edge: &Edge, token: &str) -> RawResponse {
    let host = format!("Host: 127.0.0.1:{}", edge.port);
    raw::send(edge.port, &raw::lines("DELETE /mcp HTTP/1.1", &[&host, &format!("Mcp-Session-Id: {token}")], ""))
}

#[test]
fn a_legacy_session_carries_one_session_per_member_and_each_call_goes_in_its_owners() {
    let ((a, ra), (b, rb)) = (recording::stateful_mock("A"), recording::stateful_mock("B"));
    let edge = Edge::start(&federated([&a.addr(), &b.addr()]));
    let r = post(&edge, &[], INIT);
    let token = r.header("mcp-session-id").unwrap_or_else(|| panic!("a session: {}", r.text())).to_owned();
    let (sa, sb) = (issued(&ra)[0].clone(), issued(&rb)[0].clone());
    assert!(token.starts_with("e1.") && !token.contains(&sa) && !token.contains(&sb), "{token}");
    for (tool, rec, own, backend) in [("a_whoami", &ra, &sa, "A"), ("b_whoami", &rb, &sb, "B")] {
        let r = post(&edge, &[("Mcp-Session-Id", &token)], &call(tool, "{}"));
        assert_eq!((r.status, r.header("x-mock-backend")), (200, Some(backend)), "{}", r.text());
        assert!(r.header("mcp-session-id").is_none_or(|t| t == token), "the client's session id stays the proxy's");
        let received = calls_received(rec);
        assert_eq!(received.last().and_then(|c| c.header("mcp-session-id")), Some(own.as_str()), "{tool}");
    }
    // The catalog listed each member in a session of its own, ended once read.
    for rec in [&ra, &rb] {
        let own = issued(rec);
        assert_eq!(own.len(), 2, "the client's handshake and the catalog's");
        common::wait_until("the catalog's session ended", std::time::Duration::from_secs(5), || {
            ended(rec).contains(&own[1])
        });
        assert!(!ended(rec).contains(&own[0]), "the client's session is still open");
    }
    // The operator sees it under a member's pool, never the token's route entry.
    let sessions = common::http::get(edge.admin, "/sessions").json();
    assert_eq!(sessions["sessions"][0]["pool"].as_str(), Some("a"), "{sessions}");
    let metrics = common::http::get(edge.admin, "/metrics").text();
    assert!(
        metrics.contains("mcp_edge_sessions_opened_total{pool=\"b\"} 1") && !metrics.contains("pool=\"\"}"),
        "{metrics}"
    );
    // The client ends its session: every member's ends with it, and the token is refused.
    assert_eq!(delete(&edge, &token).status, 204);
    assert!(ended(&ra).contains(&sa) && ended(&rb).contains(&sb));
    let before = ra.count();
    let r = post(&edge, &[("Mcp-Session-Id", &token)], &call("a_whoami", "{}"));
    assert_eq!((r.status, r.rpc_code()), (404, Some(-32001)), "{}", r.text());
    assert_eq!(ra.count(), before, "nothing reached the member");
}

#[test]
fn each_member_is_called_in_the_protocol_version_it_agreed_to_whatever_the_clients() {
    // A speaks only 2025-06-18 and refuses a request naming another version, as SDK servers
    // do; B agrees to what it is asked. Both streams are quiet.
    let quiet = ["--tick-ms", "600000"];
    let (a, ra) = recording::stateful_mock_with("A", &["--protocol-version", "2025-06-18", quiet[0], quiet[1]]);
    let (b, rb) = recording::stateful_mock_with("B", &quiet);
    let edge = Edge::start(&federated([&a.addr(), &b.addr()]));
    let r = post(&edge, &[], INIT);
    assert_eq!(r.json()["result"]["protocolVersion"], "2025-11-25", "the route speaks the client's version");
    let token = r.header("mcp-session-id").unwrap_or_else(|| panic!("a session: {}", r.text())).to_owned();
    let version = |rec: &Recording, method: &str| {
        let got = received(rec, method);
        got.last().and_then(|l| l.header("mcp-protocol-version").map(str::to_owned)).unwrap_or_default()
    };
    let headers = [("Mcp-Session-Id", token.as_str()), ("MCP-Protocol-Version", "2025-11-25")];
    for (tool, backend) in [("a_whoami", "A"), ("b_whoami", "B")] {
        let r = post(&edge, &headers, &call(tool, "{}"));
        assert_eq!((r.status, r.header("x-mock-backend")), (200, Some(backend)), "{tool}: {}", r.text());
    }
    assert_eq!((version(&ra, "tools/call"), version(&rb, "tools/call")), ("2025-06-18".into(), "2025-11-25".into()));
    let r = post(&edge, &headers, &rpc(5, "logging/setLevel", r#"{"level":"info"}"#));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (version(&ra, "logging/setLevel"), version(&rb, "logging/setLevel")),
        ("2025-06-18".into(), "2025-11-25".into())
    );
    // The session's GET stream: A's in its version too.
    let _stream = super::streams::Listening::open(&edge, &token, "text/event-stream");
    common::wait_until("each member's stream open", std::time::Duration::from_secs(5), || {
        open_streams(a.port) == 1 && open_streams(b.port) == 1
    });
    let get = ra.lines().into_iter().find(|l| l.method == "GET" && l.target == "/mcp").expect("A's GET");
    assert_eq!(get.header("mcp-protocol-version"), Some("2025-06-18"));
    // A client naming an older version than the members agreed to asks for its behaviour, as
    // it would of them directly: each gets it as sent.
    let older = [("Mcp-Session-Id", token.as_str()), ("MCP-Protocol-Version", "2025-03-26")];
    for tool in ["a_whoami", "b_whoami"] {
        assert_eq!(post(&edge, &older, &call(tool, "{}")).status, 200);
    }
    assert_eq!((version(&ra, "tools/call"), version(&rb, "tools/call")), ("2025-03-26".into(), "2025-03-26".into()));
}

#[test]
fn a_member_agreeing_to_a_version_without_sessions_is_spoken_to_in_the_clients() {
    // 2026-07-28 has no `initialize`: agreed to in one, it is not the member's session version.
    let ((a, ra), (b, _rb)) =
        (recording::stateful_mock_with("A", &["--protocol-version", "2026-07-28"]), recording::stateful_mock("B"));
    let edge = Edge::start(&federated([&a.addr(), &b.addr()]));
    let r = post(&edge, &[], INIT);
    let token = r.header("mcp-session-id").unwrap_or_else(|| panic!("a session: {}", r.text())).to_owned();
    let headers = [("Mcp-Session-Id", token.as_str()), ("MCP-Protocol-Version", "2025-06-18")];
    post(&edge, &headers, &call("a_whoami", "{}"));
    let got = calls_received(&ra);
    assert_eq!(got.last().and_then(|c| c.header("mcp-protocol-version")), Some("2025-06-18"), "{got:?}");
}

#[test]
fn a_clients_cancellation_reaches_every_member_in_its_own_session_as_sent() {
    let ((a, ra), (b, rb)) = (recording::stateful_mock("A"), recording::stateful_mock("B"));
    let edge = Edge::start(&federated([&a.addr(), &b.addr()]));
    let token = post(&edge, &[], INIT).header("mcp-session-id").map(str::to_owned).expect("a session");
    let (sa, sb) = (issued(&ra)[0].clone(), issued(&rb)[0].clone());
    let cancel = r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"c1","reason":"user"}}"#;
    let r = post(&edge, &[("Mcp-Session-Id", &token)], cancel);
    assert_eq!((r.status, r.body.len()), (202, 0), "{}", r.text());
    // The client's request ids reach members as written: the member running "c1" knows it.
    for (rec, own) in [(&ra, &sa), (&rb, &sb)] {
        let got = received(rec, "notifications/cancelled");
        assert_eq!(got.len(), 1, "each member told once");
        assert_eq!(got[0].header("mcp-session-id"), Some(own.as_str()));
        assert_eq!(got[0].body, cancel, "as the client sent it");
    }
    // Without a session there is no member session to tell: nobody is.
    let r = post(&edge, &[], cancel);
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(received(&ra, "notifications/cancelled").len() + received(&rb, "notifications/cancelled").len(), 2);
}

#[test]
fn a_member_without_sessions_is_called_without_one_beside_a_member_with_them() {
    let (a, (b, rb)) = (member("A", "5"), recording::stateful_mock("B"));
    let edge = Edge::start(&federated([&a.addr, &b.addr()]));
    let token = post(&edge, &[], INIT).header("mcp-session-id").expect("B issued a session").to_owned();
    let r = post(&edge, &[("Mcp-Session-Id", &token)], &call("a_echo", r#"{"text":"hi"}"#));
    assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("A")), "{}", r.text());
    assert_eq!(calls_received(&a.rec)[0].header("mcp-session-id"), None, "no session id to a member without sessions");
    let r = post(&edge, &[("Mcp-Session-Id", &token)], &call("b_echo", r#"{"text":"hi"}"#));
    assert_eq!(r.header("x-mock-backend"), Some("B"), "{}", r.text());
    assert_eq!(calls_received(&rb)[0].header("mcp-session-id"), Some(issued(&rb)[0].as_str()));
}

#[test]
fn a_federated_token_is_refused_on_a_plain_route_and_a_forged_one_everywhere() {
    let (a, _ra) = recording::stateful_mock("A");
    let b = member("B", "5");
    let plain = "[[route]]\nname = \"plain\"\npath = \"/plain\"\npool = \"a\"\n";
    let edge = Edge::start(&(federated([&a.addr(), &b.addr]) + plain));
    let token = post(&edge, &[], INIT).header("mcp-session-id").expect("a session").to_owned();
    let on_plain =
        raw::send(edge.port, &raw::post(edge.port, "/plain", &[("Mcp-Session-Id", &token)], &call("whoami", "{}")));
    assert_eq!((on_plain.status, on_plain.rpc_code()), (404, Some(-32001)), "{}", on_plain.text());
    let mut forged = token.clone().into_bytes();
    let last = forged.len() - 2;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).expect("ascii");
    let r = post(&edge, &[("Mcp-Session-Id", &forged)], &call("a_whoami", "{}"));
    assert_eq!((r.status, r.rpc_code()), (404, Some(-32001)), "{}", r.text());
}

#[test]
fn real_stateful_servers_behind_one_route_serve_python_and_typescript_clients_in_their_sessions() {
    let peers = Peers::load();
    let (py1, everything) = (
        peers.server("PEERS_PY1_SERVER", &["--name", "P"]),
        peers.server("PEERS_EVERYTHING", &["--mode", "streamableHttp"]),
    );
    let edge = Edge::start(&federated([&py1.addr(), &everything.addr()]));
    let url = edge.url("/mcp");
    let args = |tool: &'static str, text: &'static str| ["--scenario", "catalog", "--tool", tool, "--args", text];
    let r = peers.client("PEERS_PY1_CLIENT", &url, &args("a_echo", r#"{"text":"to the python server"}"#));
    let names: Vec<&str> = r["tool_names"].as_array().expect("names").iter().filter_map(Value::as_str).collect();
    assert!(names.contains(&"a_whoami") && names.contains(&"b_echo") && names.contains(&"b_get-sum"), "{r}");
    assert_eq!((r["text"].as_str(), r["is_error"].as_bool()), (Some("to the python server"), Some(false)), "{r}");
    let r = peers.client(
        "PEERS_PY2_CLIENT",
        &url,
        &["--era", "legacy"].iter().chain(&args("b_echo", r#"{"message":"hi"}"#)).copied().collect::<Vec<_>>(),
    );
    assert_eq!(r["text"].as_str(), Some("Echo: hi"), "{r}");
    let r = peers.client(
        "PEERS_TS_CLIENT",
        &url,
        &["--scenario", "tool", "--tool", "b_echo", "--args", r#"{"message":"from ts"}"#],
    );
    assert_eq!((r["text"].as_str(), r["is_error"].as_bool()), (Some("Echo: from ts"), Some(false)), "{r}");
}

#[test]
fn a_member_answering_under_another_id_is_left_out_of_the_list() {
    let (stray, rec) = recording::mock_with("A", &["--stray-list-id"]);
    let b = member("B", "5");
    let edge = Edge::start(&federated([&stray.addr(), &b.addr]));
    let r = post(&edge, &[], r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(tool_names(&r).iter().all(|n| n.starts_with("b_")) && tool_names(&r).len() == 5, "{}", r.text());
    assert_eq!(lists(&rec), 1, "the stray answer was read, and refused");
    let servers = common::http::get(edge.admin, "/servers").text();
    assert!(servers.contains("holds no JSON-RPC response"), "{servers}");
}

#[test]
fn a_raw_session_id_never_reaches_a_member_even_where_foreign_ids_are_forwarded() {
    let (a, ra) = recording::stateful_mock("A");
    let b = member("B", "5");
    let edge =
        Edge::start(&("[sessions]\nforeign_ids = \"forward\"\n\n".to_owned() + &federated([&a.addr(), &b.addr])));
    for (target, extra) in [("/mcp?session_id=raw-1", vec![]), ("/mcp", vec![("Mcp-Session-Id", "raw-1")])] {
        let r = raw::send(edge.port, &raw::post(edge.port, target, &extra, &call("a_whoami", "{}")));
        assert_eq!((r.status, r.rpc_code()), (404, Some(-32001)), "{target}: {}", r.text());
    }
    assert!(calls_received(&ra).is_empty(), "no call reached the member");
}

#[test]
fn two_replicas_sharing_a_key_serve_each_others_federated_sessions() {
    let ((a, ra), (b, rb)) = (recording::stateful_mock("A"), recording::stateful_mock("B"));
    let (_dir, key) = shared_key();
    let body = federated([&a.addr(), &b.addr()]);
    let (one, two) = (Edge::start_with_key(&body, Some(&key)), Edge::start_with_key(&body, Some(&key)));
    let r = post(&one, &[], INIT);
    let token = r.header("mcp-session-id").unwrap_or_else(|| panic!("a session: {}", r.text())).to_owned();
    let (sa, sb) = (issued(&ra)[0].clone(), issued(&rb)[0].clone());
    // The other replica holds nothing of the session: the token carries every member's.
    for (tool, rec, own, backend) in [("a_whoami", &ra, &sa, "A"), ("b_whoami", &rb, &sb, "B")] {
        let r = post(&two, &[("Mcp-Session-Id", &token)], &call(tool, "{}"));
        assert_eq!((r.status, r.header("x-mock-backend")), (200, Some(backend)), "{}", r.text());
        let received = calls_received(rec);
        assert_eq!(received.last().and_then(|c| c.header("mcp-session-id")), Some(own.as_str()), "{tool}");
    }
    // Ended on the second replica: every member's session ends.
    assert_eq!(delete(&two, &token).status, 204);
    assert!(ended(&ra).contains(&sa) && ended(&rb).contains(&sb));
    // A replica with another key refuses the token, and no member hears of it.
    let other = Edge::start(&body);
    let before = (ra.count(), rb.count());
    let r = post(&other, &[("Mcp-Session-Id", &token)], &call("a_whoami", "{}"));
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!((ra.count(), rb.count()), before);
}

#[test]
fn an_operator_ends_a_federated_session_and_every_members_session_ends_with_it_on_any_replica() {
    let ((a, ra), (b, rb)) = (recording::stateful_mock("A"), recording::stateful_mock("B"));
    let (_dir, key) = shared_key();
    let body = federated([&a.addr(), &b.addr()]);
    let (one, two) = (Edge::start_with_key(&body, Some(&key)), Edge::start_with_key(&body, Some(&key)));
    let token = post(&one, &[], INIT).header("mcp-session-id").map(str::to_owned).expect("a session");
    let (sa, sb) = (issued(&ra)[0].clone(), issued(&rb)[0].clone());
    // The second replica first sees the session when a call to B arrives on it.
    assert_eq!(post(&two, &[("Mcp-Session-Id", &token)], &call("b_whoami", "{}")).status, 200);
    let sessions = common::http::get(two.admin, "/sessions").json();
    let seen = &sessions["sessions"][0];
    assert_eq!(seen["members"], 2, "{sessions}");
    let fp = seen["fingerprint"].as_str().expect("a fingerprint").to_owned();
    let r = common::http::request(two.admin, "DELETE", &format!("/sessions/{fp}"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(ended(&ra).contains(&sa) && ended(&rb).contains(&sb), "A ended {:?}, B ended {:?}", ended(&ra), ended(&rb));
    let r = post(&two, &[("Mcp-Session-Id", &token)], &call("a_whoami", "{}"));
    assert_eq!((r.status, r.rpc_code()), (404, Some(-32001)), "{}", r.text());
}
