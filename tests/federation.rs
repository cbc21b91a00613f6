//! One endpoint over several MCP servers: a federated route offers each member's tools under
//! its prefix, lists them merged (every page of every member), and sends each call to the
//! member that owns the tool with the member's own name, in the body and in `Mcp-Name`.
//! Stories over recording mocks assert what each backend received; the last one runs the
//! Python SDK client in both eras against two Python SDK servers.

mod common;

#[path = "federation/catalog.rs"]
mod catalog;
#[path = "federation/conformance.rs"]
mod conformance;
#[path = "federation/era.rs"]
mod era;
#[path = "federation/forged.rs"]
mod forged;
#[path = "federation/kinds.rs"]
mod kinds;
#[path = "federation/listen.rs"]
mod listen;
#[path = "federation/pages.rs"]
mod pages;
#[path = "federation/policy.rs"]
mod policy;
#[path = "federation/prefixes.rs"]
mod prefixes;
#[path = "federation/results.rs"]
mod results;
#[path = "federation/sessions.rs"]
mod sessions;
#[path = "federation/streams.rs"]
mod streams;

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

/// A session key file for replicas that serve each other's sessions and cursors (the
/// directory lives as long as the returned guard).
fn shared_key() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("session.key");
    std::fs::write(&key, "0123456789abcdef0123456789abcdef-federated-test-key").expect("key");
    (dir, key)
}

/// POSTs `body` as a client of the era the headers name would: a 2026-07-28 request
/// carries its version and capabilities in `params._meta` ([`stamped`]).
fn post(edge: &Edge, extra: &[(&str, &str)], body: &str) -> RawResponse {
    let modern = extra.contains(&("MCP-Protocol-Version", MODERN));
    let body = if modern { stamped(body) } else { body.to_owned() };
    raw::send(edge.port, &raw::post(edge.port, "/mcp", extra, &body))
}

/// A request with the `_meta` every 2026-07-28 request carries, when it has none, put in as
/// text (the rest stays byte for byte: some stories check what members receive as sent).
fn stamped(body: &str) -> String {
    let meta = format!(
        r#""_meta":{{"io.modelcontextprotocol/protocolVersion":"{MODERN}","io.modelcontextprotocol/clientCapabilities":{{}}}}"#
    );
    let request = serde_json::from_str::<Value>(body).is_ok_and(|v| v.get("id").is_some() && v.get("method").is_some());
    if !request || body.contains("\"_meta\"") {
        return body.to_owned();
    }
    match body.find("\"params\":{") {
        Some(at) => {
            let at = at + "\"params\":{".len();
            let comma = if body[at..].trim_start().starts_with('}') { "" } else { "," };
            format!("{}{meta}{comma}{}", &body[..at], &body[at..])
        }
        None => format!("{{\"params\":{{{meta}}},{}", &body[1..]),
    }
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

fn rpc(id: u32, method: &str, params: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#)
}

/// The values of `field` in the entries of the answer's `key` list.
fn listed(r: &RawResponse, key: &str, field: &str) -> Vec<String> {
    let v = r.json();
    let items = v["result"][key].as_array().unwrap_or_else(|| panic!("a {key} list: {}", r.text()));
    items.iter().map(|t| t[field].as_str().unwrap_or_default().to_owned()).collect()
}

/// The streams a mock has open now (its GETs and listens).
fn open_streams(port: u16) -> u64 {
    let stats = common::http::get(port, "/_mock/stats").json();
    stats["open_streams"].as_u64().unwrap_or_else(|| panic!("the mock's stats: {stats}"))
}

/// The requests of `method` a member received.
fn received(rec: &Recording, method: &str) -> Vec<common::recording::Recorded> {
    let quoted = format!("\"{method}\"");
    rec.lines().into_iter().filter(|l| l.body.contains(&quoted)).collect()
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
    // The client's mistake, not a policy's denial.
    edge.wait_metric(r#"mcp_edge_rejections_total{reason="invalid_params"} 9"#);
    assert!(!edge.metrics().contains(r#"reason="forbidden""#));
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
    let versions = serde_json::json!([MODERN, "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"]);
    assert_eq!(r.json()["result"]["supportedVersions"], versions, "{}", r.text());
    assert_eq!(r.json()["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "all", "{}", r.text());
    let r = post(&edge, &[], r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    assert_eq!((r.status, r.body.len()), (202, 0));
    let r = post(
        &edge,
        &[],
        r#"{"jsonrpc":"2.0","id":5,"method":"resources/subscribe","params":{"uri":"a+mock://A/readme"}}"#,
    );
    // A subscription goes to the resource's owner under its own URI; this one has none.
    assert_eq!((r.status, r.rpc_code(), r.json()["id"].as_i64()), (200, Some(-32601), Some(5)), "{}", r.text());
    assert_eq!(r.header("x-mock-backend"), Some("A"), "{}", r.text());
    assert!(received(&a.rec, "resources/subscribe")[0].body.contains(r#""uri":"mock://A/readme""#));
    // `logging/setLevel` goes to every member; none took it, so the route has no logging either.
    let r = post(&edge, &[], r#"{"jsonrpc":"2.0","id":5,"method":"logging/setLevel","params":{"level":"debug"}}"#);
    assert_eq!((r.status, r.rpc_code()), (200, Some(-32601)), "{}", r.text());
    assert_eq!((received(&a.rec, "logging/setLevel").len(), received(&b.rec, "logging/setLevel").len()), (1, 1));
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
    assert_eq!(
        a.rec.count() + b.rec.count(),
        7,
        "nothing but the handshake, the subscription and the level reached a member"
    );
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
    // Paged by the route, 10 tools a page: the clients follow its cursors in both eras.
    let route = "path = \"/mcp\"\n[[route.member]]";
    let body =
        federated([&a.addr(), &b.addr()]).replacen(route, "path = \"/mcp\"\npage_size = 10\n[[route.member]]", 1);
    let edge = Edge::start(&body);
    let url = edge.url("/mcp");
    for era in ["legacy", "modern"] {
        let r = peers.client("PEERS_PY2_CLIENT", &url, &["--era", era, "--scenario", "catalog", "--tool", "b_whoami"]);
        let names: Vec<&str> = r["tool_names"].as_array().expect("names").iter().filter_map(Value::as_str).collect();
        assert_eq!(names.len(), 132, "66 tools from each server: {r}");
        assert_eq!(r["pages"], 14, "{era}: {r}");
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), 132, "each tool once: {r}");
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
