//! One endpoint over several MCP servers: a federated route offers each member's tools under
//! its prefix, lists them merged (every page of every member), and sends each call to the
//! member that owns the tool with the member's own name, in the body and in `Mcp-Name`.
//! Stories over recording mocks assert what each backend received; the last one runs the
//! Python SDK client in both eras against two Python SDK servers.

mod common;

use common::peers::Peers;
use common::raw::{self, RawResponse};
use common::recording::{self, Recording};
use common::{free_port, Edge, Mock};
use serde_json::Value;

const MODERN: &str = "2026-07-28";

struct Member {
    mock: Mock,
    rec: Recording,
    addr: String,
}

/// A recording mock listing its 5 tools `page_size` at a time.
fn member(name: &str, page_size: &str) -> Member {
    let (mock, rec) = recording::mock_with(name, &["--page-size", page_size]);
    let addr = mock.addr();
    Member { mock, rec, addr }
}

/// Pools `a` and `b` at `addrs`, and `/mcp` federating them under prefixes `a` and `b`.
fn federated(addrs: [&str; 2]) -> String {
    let mut out = String::new();
    for (name, addr) in ["a", "b"].iter().zip(addrs) {
        out += &format!("[[pool]]\nname = \"{name}\"\nbackends = [\"{addr}\"]\npath = \"/mcp\"\n[pool.health]\ncheck = \"none\"\n\n");
    }
    out + "[[route]]\nname = \"all\"\npath = \"/mcp\"\n[[route.member]]\npool = \"a\"\nprefix = \"a\"\n[[route.member]]\npool = \"b\"\nprefix = \"b\"\n"
}

fn post(edge: &Edge, extra: &[(&str, &str)], body: &str) -> RawResponse {
    raw::send(edge.port, &raw::post(edge.port, "/mcp", extra, body))
}

fn call(name: &str, args: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{{"name":"{name}","arguments":{args}}}}}"#)
}

fn modern(method: &'static str, name: Option<&'static str>) -> Vec<(&'static str, &'static str)> {
    let mut h = vec![("MCP-Protocol-Version", MODERN), ("Mcp-Method", method)];
    h.extend(name.map(|n| ("Mcp-Name", n)));
    h
}

fn tool_names(r: &RawResponse) -> Vec<String> {
    let v = r.json();
    let tools = v["result"]["tools"].as_array().unwrap_or_else(|| panic!("a tool list: {}", r.text()));
    tools.iter().map(|t| t["name"].as_str().unwrap_or_default().to_owned()).collect()
}

/// How many `tools/list` requests a member received.
fn lists(rec: &Recording) -> usize {
    rec.lines().iter().filter(|l| l.body.contains("\"tools/list\"")).count()
}

/// The methods a member received, in order.
fn methods(rec: &Recording) -> Vec<String> {
    rec.lines()
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(&l.body)
                .map_or(l.method.clone(), |v| v["method"].as_str().unwrap_or("").to_owned())
        })
        .collect()
}

fn calls_received(rec: &Recording) -> Vec<common::recording::Recorded> {
    rec.lines().into_iter().filter(|l| l.body.contains("tools/call")).collect()
}

#[test]
fn the_merged_list_offers_every_page_of_every_member_under_its_prefix() {
    let (a, b) = (member("A", "2"), member("B", "5"));
    let edge = Edge::start(&federated([&a.addr, &b.addr]));
    let r = post(&edge, &[], r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let own = ["echo", "whoami", "slow", "bytes", "deploy_app"];
    let want: Vec<String> = ["a", "b"].iter().flat_map(|p| own.iter().map(move |t| format!("{p}_{t}"))).collect();
    assert_eq!(tool_names(&r), want);
    assert_eq!(r.json()["result"].get("nextCursor"), None, "one merged page");
    // A walked its three pages, B answered one (each after its handshake); nobody received a call.
    assert_eq!((lists(&a.rec), lists(&b.rec)), (3, 1));
    assert!(calls_received(&a.rec).is_empty() && calls_received(&b.rec).is_empty());
    // Within catalog_ttl the list is served without asking again, in the modern era with its hints.
    let again = post(&edge, &[], r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#);
    assert_eq!((tool_names(&again).len(), lists(&a.rec)), (10, 3));
    let m = post(&edge, &modern("tools/list", None), r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#);
    assert_eq!(tool_names(&m).len(), 10, "{}", m.text());
    assert_eq!((m.json()["result"]["cacheScope"].as_str(), m.json()["id"].as_i64()), (Some("public"), Some(3)));
    assert!(m.json()["result"]["ttlMs"].as_u64().is_some_and(|t| t <= 30_000), "{}", m.text());
}

#[test]
fn a_call_reaches_the_owner_with_its_own_name_in_the_body_and_in_mcp_name() {
    let (a, b) = (member("A", "5"), member("B", "5"));
    let edge = Edge::start(&federated([&a.addr, &b.addr]));
    let r = post(&edge, &[], &call("b_whoami", "{}"));
    assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("B")), "{}", r.text());
    let got = calls_received(&b.rec);
    assert_eq!(got.len(), 1);
    assert!(got[0].body.contains(r#""name":"whoami""#) && !got[0].body.contains("b_whoami"), "{}", got[0].body);
    assert!(calls_received(&a.rec).is_empty(), "A got no call");

    // 2026-07-28: the body and Mcp-Name both carry the member's name; arguments arrive as
    // sent (the number keeps its spelling) and the new length frames the body.
    let args = r#"{"text":"hi \"there\"","n":1.50}"#;
    let r = post(&edge, &modern("tools/call", Some("a_echo")), &call("a_echo", args));
    assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("A")), "{}", r.text());
    assert!(r.text().contains(r#"hi \"there\""#), "{}", r.text());
    let got = calls_received(&a.rec);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("mcp-name"), Some("echo"));
    assert!(got[0].body.contains(&format!(r#""arguments":{args}"#)), "{}", got[0].body);
    assert_eq!(got[0].header("content-length"), Some(got[0].body.len().to_string().as_str()));

    // Everything but the name reaches the member byte for byte: key order, repeated keys,
    // spacing, number spellings (a member reading the last `x` reads what the proxy read).
    let sent = r#"{"x":1, "id":"c2","x":2,"method":"tools/call","params":{"arguments":{"n":1e15},"name":"a_echo" ,"arguments":{"text":"-0"}},"jsonrpc":"2.0"}"#;
    let r = post(&edge, &[], sent);
    assert_eq!(r.status, 200, "{}", r.text());
    let got = calls_received(&a.rec);
    assert_eq!(got.last().map(|c| c.body.as_str()), Some(sent.replace("a_echo", "echo").as_str()));
    // However the name is spelled.
    let escaped = sent.replace("a_echo", "a_\\u0065cho");
    assert_eq!(post(&edge, &[], &escaped).status, 200);
    let got = calls_received(&a.rec);
    assert_eq!(got.last().map(|c| c.body.as_str()), Some(sent.replace("a_echo", "echo").as_str()));
}

#[test]
fn names_no_member_owns_are_unknown_and_reach_no_backend() {
    let (a, b) = (member("A", "5"), member("B", "5"));
    let edge = Edge::start(&federated([&a.addr, &b.addr]));
    for name in ["c_echo", "A_echo", "echo", "a_", "_echo", "a_nonexistent", "a_echo ", "a\\u0000_echo", "b__whoami"] {
        let r = post(&edge, &[], &call(name, "{}"));
        assert_eq!((r.status, r.rpc_code()), (200, Some(-32602)), "{name}: {}", r.text());
        assert_eq!((r.header("x-mock-backend"), r.json()["id"].as_str()), (None, Some("c1")), "{name}");
    }
    // An escaped name is the name it decodes to, for the proxy and the member alike.
    let r = post(&edge, &[], &call("a\\u005fwhoami", "{}"));
    assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("A")), "{}", r.text());
    assert_eq!(calls_received(&a.rec).len(), 1);
    assert!(calls_received(&b.rec).is_empty());
    // The header must agree with the body, before any member is chosen.
    let r = post(&edge, &modern("tools/call", Some("b_whoami")), &call("a_whoami", "{}"));
    assert_eq!(r.rpc_code(), Some(-32020), "{}", r.text());
    assert_eq!(calls_received(&a.rec).len() + calls_received(&b.rec).len(), 1, "the mismatch reached nobody");
}

#[test]
fn the_route_answers_the_handshake_and_what_it_does_not_offer_itself() {
    let (a, b) = (member("A", "5"), member("B", "5"));
    let edge = Edge::start(&federated([&a.addr, &b.addr]));
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let r = post(&edge, &[], init);
    assert_eq!((r.status, r.header("mcp-session-id")), (200, None), "no member issued a session: {}", r.text());
    // Each member had the client's handshake, and no session to carry.
    for rec in [&a.rec, &b.rec] {
        assert_eq!(methods(rec), ["initialize", "notifications/initialized"]);
    }
    let v = r.json();
    assert_eq!(
        (v["result"]["protocolVersion"].as_str(), v["result"]["serverInfo"]["name"].as_str()),
        (Some("2025-06-18"), Some("all"))
    );
    // What the members announced besides tools (the mocks: prompts and resources).
    assert_eq!(v["result"]["capabilities"], serde_json::json!({ "tools": {}, "prompts": {}, "resources": {} }));
    let r = post(&edge, &modern("server/discover", None), r#"{"jsonrpc":"2.0","id":"d","method":"server/discover"}"#);
    assert_eq!(r.json()["result"]["supportedVersions"], serde_json::json!([MODERN]), "{}", r.text());
    let r = post(&edge, &[], r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    assert_eq!((r.status, r.body.len()), (202, 0));
    let r = post(
        &edge,
        &[],
        r#"{"jsonrpc":"2.0","id":5,"method":"resources/subscribe","params":{"uri":"a+mock://A/readme"}}"#,
    );
    assert_eq!((r.status, r.rpc_code(), r.json()["id"].as_i64()), (200, Some(-32601), Some(5)), "{}", r.text());
    let r = post(&edge, &[], r#"{"jsonrpc":"2.0","id":5,"method":"logging/setLevel","params":{"level":"debug"}}"#);
    assert_eq!((r.status, r.rpc_code()), (200, Some(-32601)), "{}", r.text());
    let r = post(&edge, &[], r#"{"jsonrpc":"2.0","id":6,"method":"ping"}"#);
    assert_eq!(r.json()["result"], serde_json::json!({}));
    for method in ["GET", "DELETE"] {
        let req = raw::lines(
            &format!("{method} /mcp HTTP/1.1"),
            &[&format!("Host: 127.0.0.1:{}", edge.port), "Accept: text/event-stream"],
            "",
        );
        assert_eq!(raw::send(edge.port, &req).status, 405, "{method}");
    }
    assert_eq!(a.rec.count() + b.rec.count(), 4, "nothing but the handshake reached a member");
}

#[test]
fn a_member_that_is_down_leaves_the_others_listed_and_callable() {
    let a = member("A", "5");
    let dead = format!("127.0.0.1:{}", free_port());
    let edge = Edge::start(&federated([&a.addr, &dead]));
    let r = post(&edge, &[], r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(tool_names(&r).iter().all(|n| n.starts_with("a_")) && tool_names(&r).len() == 5, "{}", r.text());
    let r = post(&edge, &[], &call("a_whoami", "{}"));
    assert_eq!(r.header("x-mock-backend"), Some("A"), "{}", r.text());
    let r = post(&edge, &[], &call("b_whoami", "{}"));
    assert_eq!(r.rpc_code(), Some(-32602), "the dead member's tools are unknown: {}", r.text());

    // The operator sees which member is missing, and why, on /servers and in the metrics.
    let servers = common::http::get(edge.admin, "/servers").json();
    let members = &servers["routes"][0]["members"];
    assert_eq!(
        (members[0]["prefix"].as_str(), members[0]["legacy"]["tools"].as_u64()),
        (Some("a"), Some(5)),
        "{servers}"
    );
    assert_eq!(members[0]["legacy"]["last_error"], Value::Null);
    assert_eq!(
        (members[1]["legacy"]["tools"].as_u64(), members[1]["usable_backends"].as_u64()),
        (Some(0), Some(1)),
        "{servers}"
    );
    assert!(members[1]["legacy"]["last_error"].as_str().is_some_and(|e| e.contains("connection")), "{servers}");
    assert_eq!(members[1]["modern"], Value::Null, "no client asked in the 2026-07-28 era");
    let metrics = edge.metrics();
    for (member, result) in [("a", "ok"), ("b", "failed")] {
        let line = format!(
            "mcp_edge_federation_member_lists_total{{list=\"tools\",member=\"{member}\",result=\"{result}\",route=\"all\"}} 1"
        );
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
}

#[test]
fn python_sdk_clients_in_both_eras_list_and_call_across_two_python_sdk_servers() {
    let peers = Peers::load();
    let (a, b) = (
        peers.server("PEERS_PY2_SERVER", &["--name", "A", "--stateless"]),
        peers.server("PEERS_PY2_SERVER", &["--name", "B", "--stateless", "--json"]),
    );
    let edge = Edge::start(&federated([&a.addr(), &b.addr()]));
    let url = edge.url("/mcp");
    for era in ["legacy", "modern"] {
        let r = peers.client("PEERS_PY2_CLIENT", &url, &["--era", era, "--scenario", "catalog", "--tool", "b_whoami"]);
        let names: Vec<&str> = r["tool_names"].as_array().expect("names").iter().filter_map(Value::as_str).collect();
        assert_eq!(names.len(), 132, "66 tools from each server: {r}");
        assert!(names.contains(&"a_echo") && names.contains(&"b_deploy_db"), "{r}");
        assert_eq!((r["text"].as_str(), r["is_error"].as_bool()), (Some("B"), Some(false)), "{era}: {r}");
        let r = peers.client(
            "PEERS_PY2_CLIENT",
            &url,
            &["--era", era, "--scenario", "catalog", "--tool", "a_echo", "--args", r#"{"text":"through the edge"}"#],
        );
        assert_eq!(r["text"].as_str(), Some("through the edge"), "{era}: {r}");
    }
}

#[test]
fn a_session_token_from_another_route_is_refused_and_reaches_no_member() {
    let (mock, rec) = recording::stateful_mock("A");
    let b = member("B", "5");
    let plain = "[[route]]\nname = \"plain\"\npath = \"/plain\"\npool = \"a\"\n";
    let edge = Edge::start(&(federated([&mock.addr(), &b.addr]) + plain));
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let r = raw::send(edge.port, &raw::post(edge.port, "/plain", &[], init));
    let token = r.header("mcp-session-id").expect("a session on the plain route").to_owned();
    let r = post(&edge, &[("Mcp-Session-Id", &token)], &call("a_whoami", "{}"));
    assert_eq!((r.status, r.rpc_code(), r.header("x-mock-backend")), (404, Some(-32001), None), "{}", r.text());
    assert_eq!((rec.count(), b.rec.count()), (1, 0), "only the initialize reached a backend");
}

#[test]
fn a_stale_list_is_served_while_a_hung_member_is_asked_again() {
    let (a, b) = (member("A", "5"), member("B", "5"));
    let edge = Edge::start(
        &federated([&a.addr, &b.addr])
            .replace("path = \"/mcp\"\n[[route.member]]", "path = \"/mcp\"\ncatalog_ttl = \"200ms\"\n[[route.member]]"),
    );
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    assert_eq!(tool_names(&post(&edge, &[], list)).len(), 10);
    // B now accepts connections and never answers; the list goes stale.
    b.mock.signal("STOP");
    common::wait_until("the list to pass catalog_ttl", std::time::Duration::from_secs(5), || {
        common::http::get(edge.admin, "/servers").json()["routes"][0]["members"][0]["legacy"]["age_ms"].as_u64()
            > Some(300)
    });
    // Callers get the stale list and their calls at once; the refresh waits on B behind them.
    let started = std::time::Instant::now();
    for _ in 0..3 {
        assert_eq!(tool_names(&post(&edge, &[], list)).len(), 10);
        let r = post(&edge, &[], &call("a_whoami", "{}"));
        assert_eq!(r.header("x-mock-backend"), Some("A"), "{}", r.text());
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "callers waited for the hung member: {:?}",
        started.elapsed()
    );
    b.mock.signal("CONT");
}

#[test]
fn answers_on_a_kept_alive_connection_are_not_held_back_by_nagle() {
    use std::io::{Read, Write};
    let (a, b) = (member("A", "5"), member("B", "5"));
    let edge = Edge::start(&federated([&a.addr, &b.addr]));
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let request = raw::post(edge.port, "/mcp", &[("Connection", "keep-alive")], body);
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", edge.port)).expect("connect");
    conn.set_read_timeout(Some(std::time::Duration::from_secs(5))).expect("timeout");
    let started = std::time::Instant::now();
    for _ in 0..20 {
        conn.write_all(&request).expect("send");
        // The merged list ends the answer: read until its closing bytes.
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        while !got.ends_with(b"]}}") {
            let n = conn.read(&mut buf).expect("read");
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
    }
    // Held back by Nagle and the client's delayed ACK, each answer took 40 ms or more.
    assert!(started.elapsed() < std::time::Duration::from_millis(600), "20 answers took {:?}", started.elapsed());
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

/// The session ids a member issued, in the order of the handshakes it completed (each
/// `notifications/initialized` carries the one just issued).
fn issued(rec: &Recording) -> Vec<String> {
    let handshakes = rec.lines().into_iter().filter(|l| l.body.contains("notifications/initialized"));
    handshakes.filter_map(|l| l.header("mcp-session-id").map(str::to_owned)).collect()
}

/// The session ids of the DELETEs a member received.
fn ended(rec: &Recording) -> Vec<String> {
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

fn rpc(id: u32, method: &str, params: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#)
}

/// The values of `field` in the entries of the answer's `key` list.
fn listed(r: &RawResponse, key: &str, field: &str) -> Vec<String> {
    let v = r.json();
    let items = v["result"][key].as_array().unwrap_or_else(|| panic!("a {key} list: {}", r.text()));
    items.iter().map(|t| t[field].as_str().unwrap_or_default().to_owned()).collect()
}

/// The requests of `method` a member received.
fn received(rec: &Recording, method: &str) -> Vec<common::recording::Recorded> {
    let quoted = format!("\"{method}\"");
    rec.lines().into_iter().filter(|l| l.body.contains(&quoted)).collect()
}

#[test]
fn prompts_and_resources_of_every_member_are_listed_under_its_prefix() {
    let (a, b) = (member("A", "5"), member("B", "5"));
    let edge = Edge::start(&federated([&a.addr, &b.addr]));
    for extra in [vec![], modern("prompts/list", None)] {
        let r = post(&edge, &extra, &rpc(1, "prompts/list", "{}"));
        assert_eq!(
            listed(&r, "prompts", "name"),
            ["a_greet", "a_secret_plan", "b_greet", "b_secret_plan"],
            "{}",
            r.text()
        );
    }
    let r = post(&edge, &[], &rpc(2, "resources/list", "{}"));
    assert_eq!(
        listed(&r, "resources", "uri"),
        ["a+mock://A/readme", "a+mock://A/secret", "b+mock://B/readme", "b+mock://B/secret"],
        "{}",
        r.text()
    );
    // Only the naming field changes: the rest of each entry is the member's.
    assert_eq!(listed(&r, "resources", "name"), ["readme", "secret", "readme", "secret"]);
    let r = post(&edge, &[], &rpc(3, "resources/templates/list", "{}"));
    assert_eq!(
        listed(&r, "resourceTemplates", "uriTemplate"),
        ["a+mock://A/files/{path}", "a+secret://{id}", "b+mock://B/files/{path}", "b+secret://{id}"],
        "{}",
        r.text()
    );
    // Each list was asked of each member once (after the catalog's own handshake), then served.
    assert_eq!(post(&edge, &[], &rpc(4, "prompts/list", "{}")).status, 200);
    for rec in [&a.rec, &b.rec] {
        let asked: Vec<usize> = ["prompts/list", "resources/list", "resources/templates/list"]
            .iter()
            .map(|m| received(rec, m).len())
            .collect();
        assert_eq!(asked, [2, 1, 1], "one per era for prompts, legacy only for the others");
        assert!(received(rec, "prompts/get").is_empty() && received(rec, "resources/read").is_empty());
    }
}

#[test]
fn a_prompt_a_resource_and_a_completion_reach_their_owner_under_its_own_names() {
    let (a, b) = (member("A", "5"), member("B", "5"));
    let edge = Edge::start(&federated([&a.addr, &b.addr]));
    let r = post(&edge, &[], &rpc(1, "prompts/get", r#"{"name":"b_greet","arguments":{"who":"x"}}"#));
    assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("B")), "{}", r.text());
    assert_eq!(r.json()["result"]["description"].as_str(), Some("prompt greet from B"));
    let got = received(&b.rec, "prompts/get");
    assert_eq!(got.len(), 1);
    assert!(got[0].body.contains(r#""name":"greet","arguments":{"who":"x"}"#), "{}", got[0].body);

    // 2026-07-28: the URI in the body and in Mcp-Name is the member's own; a client that
    // lower- or upper-cases the scheme (the prefix is part of it) still reaches the member.
    let r = post(
        &edge,
        &modern("resources/read", Some("A+mock://A/readme")),
        &rpc(2, "resources/read", r#"{"uri":"A+mock://A/readme"}"#),
    );
    assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("A")), "{}", r.text());
    let got = received(&a.rec, "resources/read");
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].header("mcp-name"), got[0].body.contains(r#""uri":"mock://A/readme""#)),
        (Some("mock://A/readme"), true),
        "{}",
        got[0].body
    );
    // A URI the client expanded from an offered template.
    let r = post(&edge, &[], &rpc(3, "resources/read", r#"{"uri":"a+mock://A/files/x%20y.txt"}"#));
    assert_eq!(r.header("x-mock-backend"), Some("A"), "{}", r.text());
    assert!(received(&a.rec, "resources/read")[1].body.contains(r#""uri":"mock://A/files/x%20y.txt""#));

    // A completion is the owner's, its reference renamed, everything else as sent.
    let r = post(
        &edge,
        &[],
        &rpc(
            4,
            "completion/complete",
            r#"{"ref":{"type":"ref/prompt","name":"b_greet"},"argument":{"name":"who","value":"w"}}"#,
        ),
    );
    assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("B")), "{}", r.text());
    let got = received(&b.rec, "completion/complete");
    assert!(
        got[0].body.contains(r#"{"ref":{"type":"ref/prompt","name":"greet"},"argument":{"name":"who","value":"w"}}"#),
        "{}",
        got[0].body
    );
    let r = post(
        &edge,
        &[],
        &rpc(
            5,
            "completion/complete",
            r#"{"argument":{"name":"path","value":"r"},"ref":{"uri":"a+mock://A/files/{path}","type":"ref/resource"}}"#,
        ),
    );
    assert_eq!(r.header("x-mock-backend"), Some("A"), "{}", r.text());
    let got = received(&a.rec, "completion/complete");
    assert!(got[0].body.contains(r#""ref":{"uri":"mock://A/files/{path}","type":"ref/resource"}"#), "{}", got[0].body);
}

#[test]
fn prompts_resources_and_references_no_member_owns_are_unknown_and_reach_no_backend() {
    let (a, b) = (member("A", "5"), member("B", "5"));
    let edge = Edge::start(&federated([&a.addr, &b.addr]));
    let before = a.rec.count() + b.rec.count();
    for name in ["c_greet", "greet", "a_nothing", "a+greet"] {
        let r = post(&edge, &[], &rpc(1, "prompts/get", &format!(r#"{{"name":"{name}"}}"#)));
        assert_eq!((r.status, r.rpc_code()), (200, Some(-32602)), "{name}: {}", r.text());
        assert!(r.text().contains("Unknown prompt"), "{}", r.text());
    }
    for uri in ["mock://A/readme", "c+mock://A/readme", "+mock://A/readme", "a+", "a_mock://A/readme"] {
        let r = post(&edge, &[], &rpc(2, "resources/read", &format!(r#"{{"uri":"{uri}"}}"#)));
        assert_eq!((r.status, r.rpc_code()), (200, Some(-32002)), "{uri}: {}", r.text());
    }
    let r = post(
        &edge,
        &[],
        &rpc(
            3,
            "completion/complete",
            r#"{"ref":{"type":"ref/prompt","name":"c_greet"},"argument":{"name":"a","value":""}}"#,
        ),
    );
    assert!(r.text().contains("Unknown prompt: c_greet") && r.json()["id"] == 3, "{}", r.text());
    // A reference named twice, or of no known type, is refused rather than guessed at.
    for reference in
        [r#"{"type":"ref/prompt","name":"a_greet","name":"b_greet"}"#, r#"{"type":"ref/tool","name":"a_echo"}"#]
    {
        let r = post(
            &edge,
            &[],
            &rpc(4, "completion/complete", &format!(r#"{{"ref":{reference},"argument":{{"name":"a","value":""}}}}"#)),
        );
        assert_eq!((r.status, r.rpc_code()), (400, Some(-32602)), "{reference}: {}", r.text());
    }
    // Only the catalog's own requests (for prompts, to resolve names) reached the members.
    for rec in [&a.rec, &b.rec] {
        for m in ["prompts/get", "resources/read", "completion/complete"] {
            assert!(received(rec, m).is_empty(), "{m}");
        }
    }
    assert!(a.rec.count() + b.rec.count() > before);
}

/// Pools `a`, `b`, `c` at `addrs`, and `/mcp` federating them under prefixes `a`, `b`, `c`.
fn federated3(addrs: [&str; 3]) -> String {
    let mut out = String::new();
    for (name, addr) in ["a", "b", "c"].iter().zip(addrs) {
        out += &format!("[[pool]]\nname = \"{name}\"\nbackends = [\"{addr}\"]\npath = \"/mcp\"\n[pool.health]\ncheck = \"none\"\n\n");
    }
    out += "[[route]]\nname = \"all\"\npath = \"/mcp\"\n";
    for p in ["a", "b", "c"] {
        out += &format!("[[route.member]]\npool = \"{p}\"\nprefix = \"{p}\"\n");
    }
    out
}

#[test]
fn real_servers_offer_their_prompts_and_resources_through_one_route_to_every_client() {
    let peers = Peers::load();
    let (py1, py2, everything) = (
        peers.server("PEERS_PY1_SERVER", &["--name", "P"]),
        peers.server("PEERS_PY2_SERVER", &["--name", "Q"]),
        peers.server("PEERS_EVERYTHING", &["--mode", "streamableHttp"]),
    );
    let edge = Edge::start(&federated3([&py1.addr(), &py2.addr(), &everything.addr()]));
    let url = edge.url("/mcp");
    let runs: [(&str, &[&str]); 3] =
        [("PEERS_PY1_CLIENT", &[]), ("PEERS_PY2_CLIENT", &["--era", "legacy"]), ("PEERS_TS_CLIENT", &[])];
    for (client, extra) in runs {
        let args: Vec<&str> = extra.iter().copied().chain(["--scenario", "members"]).collect();
        let r = peers.client(client, &url, &args);
        let got = &r["got"];
        assert_eq!(got["a"]["text"].as_str(), Some("Hello, world! (P)"), "{client}: {r}");
        assert_eq!(got["b"]["text"].as_str(), Some("Hello, world! (Q)"), "{client}: {r}");
        assert!(got["c"]["name"].as_str().is_some_and(|n| n.starts_with("c_")), "{client}: {r}");
        assert!(got["c"]["text"].as_str().is_some_and(|t| !t.is_empty()), "{client}: {r}");
        let read = &r["read"];
        assert_eq!(read["a"]["uri"].as_str(), Some("a+res://greeting"), "{client}: {r}");
        assert_eq!(read["a"]["text"].as_str(), Some("Hello from P"), "{client}: {r}");
        assert_eq!(read["b"]["text"].as_str(), Some("Hello from Q"), "{client}: {r}");
        assert!(read["c"]["uri"].as_str().is_some_and(|u| u.starts_with("c+")), "{client}: {r}");
        assert!(read["c"]["text"].as_str().is_some_and(|t| !t.is_empty()), "{client}: {r}");
        let templates = r["template_uris"].as_array().expect("templates");
        assert!(templates.iter().any(|t| t == "b+res://items/{item_id}"), "{client}: {r}");
    }
}

#[test]
fn a_client_of_either_era_gets_a_prompt_and_reads_a_resource_of_each_stateless_member() {
    let peers = Peers::load();
    let (a, b) = (
        peers.server("PEERS_PY2_SERVER", &["--name", "A", "--stateless"]),
        peers.server("PEERS_PY2_SERVER", &["--name", "B", "--stateless", "--json"]),
    );
    let edge = Edge::start(&federated([&a.addr(), &b.addr()]));
    for era in ["legacy", "modern"] {
        let r = peers.client("PEERS_PY2_CLIENT", &edge.url("/mcp"), &["--era", era, "--scenario", "members"]);
        assert_eq!(r["prompt_names"], serde_json::json!(["a_greet", "b_greet"]), "{era}: {r}");
        assert_eq!(r["got"]["b"]["text"].as_str(), Some("Hello, world! (B)"), "{era}: {r}");
        assert_eq!(r["read"]["a"]["text"].as_str(), Some("Hello from A"), "{era}: {r}");
        assert_eq!(r["read"]["b"]["uri"].as_str(), Some("b+res://greeting"), "{era}: {r}");
    }
}

#[test]
fn a_member_without_prompts_or_resources_has_none_and_the_others_are_offered() {
    let b = member("B", "5");
    let (tools_only, rec) = recording::mock_with("T", &["--tools-only"]);
    let edge = Edge::start(&federated([&tools_only.addr(), &b.addr]));
    let r = post(&edge, &[], &rpc(1, "prompts/list", "{}"));
    assert_eq!(listed(&r, "prompts", "name"), ["b_greet", "b_secret_plan"], "{}", r.text());
    let r = post(&edge, &modern("resources/list", None), &rpc(2, "resources/list", "{}"));
    assert_eq!(listed(&r, "resources", "uri"), ["b+mock://B/readme", "b+mock://B/secret"], "{}", r.text());
    assert_eq!(received(&rec, "prompts/list").len(), 1, "asked, and its 'method not found' taken as none");
    // Not a failure: /servers names no error, and counts none.
    let servers = common::http::get(edge.admin, "/servers").json();
    let t = &servers["routes"][0]["members"][0];
    assert_eq!((t["legacy"]["prompts"].as_u64(), &t["legacy"]["last_error"]), (Some(0), &Value::Null), "{servers}");
    assert_eq!((t["modern"]["resources"].as_u64(), &t["modern"]["tools"]), (Some(0), &Value::Null), "{servers}");
    // The session's capabilities are what some member announced.
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let r = post(&edge, &[], init);
    assert_eq!(r.json()["result"]["capabilities"], serde_json::json!({ "tools": {}, "prompts": {}, "resources": {} }));
    drop(tools_only);
    let (t1, _) = recording::mock_with("T1", &["--tools-only"]);
    let (t2, _) = recording::mock_with("T2", &["--tools-only"]);
    let edge = Edge::start(&federated([&t1.addr(), &t2.addr()]));
    assert_eq!(post(&edge, &[], init).json()["result"]["capabilities"], serde_json::json!({ "tools": {} }));

    // Any other error is a failure, not an absence: named on /servers and counted as failed
    // (and, as for tools, the entries of an earlier list would stay offered).
    let (failing, _) = recording::mock_with("F", &["--list-error", "-32603"]);
    let edge = Edge::start(&federated([&failing.addr(), &b.addr]));
    assert_eq!(listed(&post(&edge, &[], &rpc(1, "prompts/list", "{}")), "prompts", "name").len(), 2);
    let servers = common::http::get(edge.admin, "/servers").json();
    let f = &servers["routes"][0]["members"][0]["legacy"];
    assert!(f["last_error"].as_str().is_some_and(|e| e.contains("prompts") && e.contains("-32603")), "{servers}");
    let line = r#"mcp_edge_federation_member_lists_total{list="prompts",member="a",result="failed",route="all"} 1"#;
    assert!(edge.metrics().contains(line), "{line}");
}

#[test]
fn an_operator_invalidates_a_routes_lists_and_the_next_client_gets_them_anew() {
    let (a, b) = (member("A", "5"), member("B", "5"));
    let edge = Edge::start(&federated([&a.addr, &b.addr]));
    let prompts = |id| post(&edge, &[], &rpc(id, "prompts/list", "{}"));
    assert_eq!(listed(&prompts(1), "prompts", "name").len(), 4);
    assert_eq!(listed(&prompts(2), "prompts", "name").len(), 4);
    assert_eq!(received(&a.rec, "prompts/list").len(), 1, "served from the catalog within catalog_ttl");
    let servers = common::http::get(edge.admin, "/servers").json();
    assert!(servers["routes"][0]["members"][0]["legacy"]["bytes"].as_u64().is_some_and(|b| b > 100), "{servers}");

    // A name that is no federated route's is refused, and not echoed.
    let r = common::http::request(edge.admin, "POST", "/cache/invalidate?route=nope", &[], b"");
    assert_eq!(r.status, 404);
    assert!(!r.text().contains("nope"), "{}", r.text());
    assert_eq!(common::http::request(edge.admin, "GET", "/cache/invalidate", &[], b"").status, 405);
    assert_eq!(received(&a.rec, "prompts/list").len(), 1);

    let r = common::http::request(edge.admin, "POST", "/cache/invalidate?route=all", &[], b"");
    assert_eq!((r.status, r.json()["invalidated"].clone()), (200, serde_json::json!(["all"])), "{}", r.text());
    assert_eq!(listed(&prompts(3), "prompts", "name").len(), 4);
    assert_eq!((received(&a.rec, "prompts/list").len(), received(&b.rec, "prompts/list").len()), (2, 2));
    assert_eq!(listed(&prompts(4), "prompts", "name").len(), 4);
    assert_eq!(received(&a.rec, "prompts/list").len(), 2, "and cached again");
    let r = common::http::request(edge.admin, "POST", "/cache/invalidate", &[], b"");
    assert_eq!(r.json()["invalidated"], serde_json::json!(["all"]));
    assert_eq!(tool_names(&post(&edge, &[], r#"{"jsonrpc":"2.0","id":5,"method":"tools/list"}"#)).len(), 10);
    assert_eq!(lists(&a.rec), 1, "tools were never listed before: asked once");
}

/// `federated`, fail-closed.
fn fail_closed(addrs: [&str; 2]) -> String {
    federated(addrs)
        .replace("path = \"/mcp\"\n[[route.member]]", "path = \"/mcp\"\nfailure_mode = \"closed\"\n[[route.member]]")
}

#[test]
fn a_fail_closed_route_refuses_lists_and_sessions_a_member_is_missing_from() {
    let a = member("A", "5");
    let dead = format!("127.0.0.1:{}", free_port());
    let edge = Edge::start(&fail_closed([&a.addr, &dead]));
    for (method, era) in [("tools/list", modern("tools/list", None)), ("prompts/list", vec![])] {
        let r = post(&edge, &era, &rpc(1, method, "{}"));
        assert_eq!((r.status, r.rpc_code()), (503, Some(-32000)), "{method}: {}", r.text());
        assert!(r.text().contains("fail-closed"), "{}", r.text());
    }
    let config = common::http::get(edge.admin, "/config").json();
    let fed = &config["routes"][0]["federation"];
    assert_eq!(
        (fed["failure_mode"].as_str(), fed["members"][1]["prefix"].as_str()),
        (Some("closed"), Some("b")),
        "{config}"
    );
    // A call to a member that answers still goes through: only lists are refused.
    let r = post(&edge, &modern("tools/call", Some("a_whoami")), &call("a_whoami", "{}"));
    assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("A")), "{}", r.text());

    // A session the dead member cannot join is not opened: the live member's part is ended.
    let (mock, rec) = recording::stateful_mock("S");
    let edge = Edge::start(&fail_closed([&mock.addr(), &dead]));
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let r = post(&edge, &[], init);
    assert_eq!((r.status, r.header("mcp-session-id")), (503, None), "{}", r.text());
    assert_eq!(issued(&rec).len(), 1, "{:?}", methods(&rec));
    assert_eq!(issued(&rec), ended(&rec), "the member session opened was ended");
}
