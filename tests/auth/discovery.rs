//! Filtered discovery (issue 9, section 4): on a route with a policy, `tools/list`,
//! `prompts/list`, `resources/list` and `resources/templates/list` show a caller only what it
//! may call, read or get. The mock pages its tools two at a time and, with `--sse-lists`,
//! answers lists as SSE (a logging event and a comment first, the answer cut across two
//! chunks). Each story walks the lists through mcp-edge as a caller and compares with what the
//! backend itself answers: hidden entries gone from every page, cursors kept, the events
//! around the answer untouched, and a route without a policy untouched byte for byte.

use crate::common::raw::{self, RawResponse};
use crate::common::recording;
use crate::common::{Edge, Mock};
use crate::story::*;

const DEV: &str = "ak_dev_0123456789";
const ADMIN: &str = "ak_adm_0123456789";

/// dev (role dev, scope mcp:read), admin (role ops, scope mcp:admin, which implies mcp:read).
fn keys() -> String {
    api_keys(
        "",
        &[
            key_entry("dev", "acme", DEV, "roles = [\"dev\"]\nscopes = [\"mcp:read\"]"),
            key_entry("admin", "acme", ADMIN, "roles = [\"ops\"]\nscopes = [\"mcp:admin\"]"),
        ],
    )
}

/// Deploys need mcp:admin, `slow` and `bytes` the ops role, secret prompts and resources are
/// hidden from everyone, and readers get echo, whoami, prompts and `mock://` resources.
const POLICY: &str = r#"[route.policy]
scope_implies = { "mcp:admin" = ["mcp:read"] }
[[route.policy.rule]]
effect = "allow"
tools = ["deploy_*"]
require_scopes = ["mcp:admin"]
[[route.policy.rule]]
effect = "allow"
roles = ["ops"]
tools = ["slow", "bytes"]
[[route.policy.rule]]
effect = "deny"
prompts = ["secret_*"]
resources = ["secret://*", "*/secret"]
deny_as = "unknown"
[[route.policy.rule]]
effect = "allow"
methods = ["initialize", "notifications/*", "tools/list", "prompts/list", "resources/list", "resources/templates/list", "completion/complete"]
tools = ["echo", "whoami"]
prompts = ["*"]
resources = ["mock://*"]
require_scopes = ["mcp:read"]
"#;

const ALL_TOOLS: [&str; 5] = ["echo", "whoami", "slow", "bytes", "deploy_app"];

/// A mock paging tools two at a time; `sse`: it answers lists as event streams.
fn lister(sse: bool) -> Mock {
    let flags: &[&str] = if sse { &["--page-size", "2", "--sse-lists"] } else { &["--page-size", "2"] };
    Mock::start_with("main", false, flags)
}

/// mcp-edge in front of `mock` on a route with auth and, when `policy`, the policy above.
fn edge(mock: &Mock, policy: bool) -> Edge {
    let pool = format!("[[pool]]\nname = \"main\"\nbackends = [\"{}\"]\n\n", mock.addr());
    let route = route(&format!("auth = [\"keys\"]\npublic_url = \"{PUBLIC_URL}\"\n"));
    Edge::start(&format!("{pool}{}{route}{}", keys(), if policy { POLICY } else { "" }))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Era {
    Legacy,
    Modern,
}

fn request(method: &str, params: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":"l-1","method":"{method}","params":{params}}}"#)
}

/// `method` as `key` in `era` (2026-07-28: the version and `Mcp-Method` headers).
fn ask(port: u16, key: &str, era: Era, method: &str, params: &str) -> RawResponse {
    let auth = bearer(key);
    let mut headers = vec![("Authorization", auth.as_str())];
    if era == Era::Modern {
        headers.extend([("MCP-Protocol-Version", "2026-07-28"), ("Mcp-Method", method)]);
    }
    raw::send(port, &raw::post(port, "/mcp", &headers, &request(method, params)))
}

/// The JSON-RPC answer in a response: its body, or the `data` of its event that carries an id.
fn answer(r: &RawResponse) -> serde_json::Value {
    assert_eq!(r.status, 200, "{}", r.text());
    if !r.header("content-type").is_some_and(|t| t.starts_with("text/event-stream")) {
        return r.json();
    }
    let text = r.text();
    let data = text.split("\n\n").filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")));
    let mut messages = data.map(|d| serde_json::from_str::<serde_json::Value>(d).expect("event data is JSON"));
    messages.find(|m| m.get("id").is_some()).unwrap_or_else(|| panic!("no answer event in {text}"))
}

/// Every page of `tools/list` as `key`: the results, in order.
fn tool_pages(port: u16, key: &str, era: Era) -> Vec<serde_json::Value> {
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let params = cursor.map_or("{}".to_owned(), |c: String| format!(r#"{{"cursor":"{c}"}}"#));
        let result = answer(&ask(port, key, era, "tools/list", &params))["result"].clone();
        cursor = result["nextCursor"].as_str().map(str::to_owned);
        pages.push(result);
        if cursor.is_none() || pages.len() > 10 {
            return pages;
        }
    }
}

fn names(list: &serde_json::Value, field: &str) -> Vec<String> {
    let entries = list.as_array().unwrap_or_else(|| panic!("not a list: {list}"));
    entries.iter().map(|e| e[field].as_str().expect("a name").to_owned()).collect()
}

fn all_names(pages: &[serde_json::Value]) -> Vec<String> {
    pages.iter().flat_map(|p| names(&p["tools"], "name")).collect()
}

#[test]
fn a_denied_tool_is_hidden_from_every_page_of_json_and_sse_lists_in_both_eras() {
    for sse in [false, true] {
        let mock = lister(sse);
        let edge = edge(&mock, true);
        for era in [Era::Legacy, Era::Modern] {
            let pages = tool_pages(edge.port, DEV, era);
            let story = format!("sse: {sse}, era: {era:?}");
            assert_eq!(all_names(&pages), ["echo", "whoami"], "{story}");
            // The second page (slow, bytes) is emptied, yet still leads to the third.
            assert_eq!(pages.len(), 3, "{story}: {pages:?}");
            assert_eq!(pages[1], serde_json::json!({"tools": [], "nextCursor": "4"}).with_private(era), "{story}");
            for page in &pages {
                let scope = if era == Era::Modern { serde_json::json!("private") } else { serde_json::Value::Null };
                assert_eq!(page["cacheScope"], scope, "{story}: a modern filtered list is private");
            }
        }
    }
}

trait Private {
    fn with_private(self, era: Era) -> Self;
}

impl Private for serde_json::Value {
    fn with_private(mut self, era: Era) -> Self {
        if era == Era::Modern {
            self["cacheScope"] = "private".into();
        }
        self
    }
}

#[test]
fn an_allowed_caller_sees_every_tool() {
    let mock = lister(true);
    let edge = edge(&mock, true);
    for era in [Era::Legacy, Era::Modern] {
        assert_eq!(all_names(&tool_pages(edge.port, ADMIN, era)), ALL_TOOLS, "{era:?}");
    }
}

#[test]
fn events_before_the_answer_pass_untouched_and_only_the_answer_changes() {
    let mock = lister(true);
    let edge = edge(&mock, true);
    // The second page: `slow` and `bytes`, neither of which dev may call.
    let params = r#"{"cursor":"2"}"#;
    let direct = raw::send(mock.port, &raw::post(mock.port, "/mcp", &[], &request("tools/list", params)));
    let proxied = ask(edge.port, DEV, Era::Legacy, "tools/list", params);
    assert_eq!(proxied.header("content-type"), Some("text/event-stream"));
    let (direct, proxied) = (direct.text(), proxied.text());
    let answer_at = direct.find("id: 2\n").expect("the mock's answer event");
    assert!(answer_at > 0 && proxied.starts_with(&direct[..answer_at]), "events before the answer changed:\n{proxied}");
    let want = "id: 2\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"l-1\",\"result\":{\"tools\":[],\"nextCursor\":\"4\"}}\n\n";
    assert_eq!(&proxied[answer_at..], want);
}

#[test]
fn prompts_resources_and_templates_show_only_what_the_caller_may_get_or_read() {
    for sse in [false, true] {
        let mock = lister(sse);
        let edge = edge(&mock, true);
        let list = |method: &str, key: &str, field: &str| {
            names(&answer(&ask(edge.port, DEV, Era::Legacy, method, "{}"))["result"][key], field)
        };
        assert_eq!(list("prompts/list", "prompts", "name"), ["greet"], "sse: {sse}");
        assert_eq!(list("resources/list", "resources", "uri"), ["mock://main/readme"], "sse: {sse}");
        let templates = list("resources/templates/list", "resourceTemplates", "uriTemplate");
        assert_eq!(templates, ["mock://main/files/{path}"], "sse: {sse}");
        // The backend itself lists the hidden ones.
        let direct = raw::send(mock.port, &raw::post(mock.port, "/mcp", &[], &request("prompts/list", "{}")));
        assert!(direct.text().contains("secret_plan"));
    }
}

#[test]
fn completion_for_a_denied_prompt_or_resource_is_refused_like_getting_it() {
    let (mock, rec) = recording::mock_with("main", &[]);
    let edge = edge(&mock, true);
    let complete = |reference: &str| {
        let params = format!(r#"{{"ref":{reference},"argument":{{"name":"who","value":"w"}}}}"#);
        ask(edge.port, DEV, Era::Legacy, "completion/complete", &params)
    };
    let hidden = complete(r#"{"type":"ref/prompt","name":"secret_plan"}"#);
    let get = ask(edge.port, DEV, Era::Legacy, "prompts/get", r#"{"name":"secret_plan"}"#);
    assert_eq!((hidden.status, hidden.text()), (get.status, get.text()), "answered as the prompt itself");
    assert_eq!(hidden.json()["error"]["message"], "Unknown prompt: secret_plan");
    let resource = complete(r#"{"type":"ref/resource","uri":"secret://plans"}"#);
    assert_eq!(resource.json()["error"]["code"], -32002, "{}", resource.text());
    rec.assert_nothing();
    let allowed = complete(r#"{"type":"ref/prompt","name":"greet"}"#);
    assert_eq!(allowed.header("x-mock-backend"), Some("main"), "{}", allowed.text());
    assert_eq!(allowed.json()["result"]["completion"]["values"][0], "world");
}

#[test]
fn a_route_without_a_policy_answers_lists_byte_for_byte_as_the_backend() {
    for sse in [false, true] {
        let mock = lister(sse);
        let edge = edge(&mock, false);
        // The last page, which holds the tool this caller could not call on a policy route.
        let body = request("tools/list", r#"{"cursor":"4"}"#);
        let direct = raw::send(mock.port, &raw::post(mock.port, "/mcp", &[], &body));
        let proxied = ask(edge.port, DEV, Era::Legacy, "tools/list", r#"{"cursor":"4"}"#);
        assert_eq!(proxied.body, direct.body, "sse: {sse}");
        assert_eq!(proxied.header("content-length"), direct.header("content-length"), "sse: {sse}");
        assert!(proxied.text().contains("deploy_app"));
    }
}

#[test]
fn list_calls_ask_the_backend_for_an_uncompressed_answer_and_others_keep_the_clients_encoding() {
    let (mock, rec) = recording::mock_with("main", &[]);
    let edge = edge(&mock, true);
    let auth = bearer(DEV);
    let headers = [("Authorization", auth.as_str()), ("Accept-Encoding", "gzip")];
    let send = |body: &str| raw::send(edge.port, &raw::post(edge.port, "/mcp", &headers, body));
    assert_eq!(send(&request("tools/list", "{}")).status, 200);
    assert_eq!(send(&request("tools/call", r#"{"name":"echo","arguments":{"text":"x"}}"#)).status, 200);
    let got = rec.wait_count(2);
    assert_eq!(got[0].header_all("accept-encoding"), ["identity"]);
    assert_eq!(got[1].header_all("accept-encoding"), ["gzip"]);
}

#[test]
fn a_filtered_answer_keeps_the_connection_reusable() {
    let mock = lister(false);
    let edge = edge(&mock, true);
    let auth = bearer(DEV);
    let headers = [("Authorization", auth.as_str()), ("Connection", "keep-alive")];
    let one = raw::post(edge.port, "/mcp", &headers, &request("tools/list", "{}"));
    let all = raw::exchange_many(edge.port, &[&one, &one]);
    assert_eq!(all.len(), 2, "the second request was answered on the same connection");
    for r in &all {
        assert_eq!(r.header("content-length"), None, "the backend's length no longer applies");
        assert_eq!(names(&r.json()["result"]["tools"], "name"), ["echo", "whoami"]);
    }
}

/// A backend that answers every request as SDK servers answer `tools/list`: with the id it
/// parsed, re-serialised (`1.0` comes back as `1`). Returns its port and the bodies it got.
fn normalising_backend() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&bodies);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn);
            let mut length = 0;
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            seen.lock().expect("bodies").push(String::from_utf8_lossy(&body).into_owned());
            let answer = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"},{"name":"deploy_app"}]}}"#;
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
            let _ = reader.get_mut().write_all(reply.as_bytes());
        }
    });
    (port, bodies)
}

#[test]
fn a_request_id_spelled_as_a_float_cannot_walk_around_the_filter() {
    let (port, bodies) = normalising_backend();
    let pool =
        format!("[[pool]]\nname = \"main\"\nbackends = [\"127.0.0.1:{port}\"]\n[pool.health]\ncheck = \"none\"\n\n");
    let route = route(&format!("auth = [\"keys\"]\npublic_url = \"{PUBLIC_URL}\"\n"));
    let edge = Edge::start(&format!("{pool}{}{route}{POLICY}", keys()));
    for id in ["1", "1.0", "1e0"] {
        let auth = bearer(DEV);
        let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list"}}"#);
        let r = raw::send(edge.port, &raw::post(edge.port, "/mcp", &[("Authorization", auth.as_str())], &body));
        assert_eq!(names(&answer(&r)["result"]["tools"], "name"), ["echo"], "id {id}: {}", r.text());
        let last = bodies.lock().expect("bodies").last().cloned().unwrap_or_default();
        assert_eq!(last, body, "the backend got the request as sent");
    }
}

#[test]
fn a_resumed_get_stream_on_a_policy_route_starts_afresh_so_no_unfiltered_answer_is_replayed() {
    let (mock, rec) = recording::stateful_mock("main");
    let edge = edge(&mock, true);
    let auth = bearer(DEV);
    let init = r#"{"jsonrpc":"2.0","id":"i-1","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let opened = raw::send(edge.port, &raw::post(edge.port, "/mcp", &[("Authorization", &auth)], init));
    let token = opened.header("mcp-session-id").expect("a session").to_owned();
    let stream = crate::common::http::Stream::open(
        edge.port,
        "GET",
        "/mcp",
        &[
            ("Authorization", &auth),
            ("Mcp-Session-Id", &token),
            ("Accept", "text/event-stream"),
            ("Last-Event-ID", "7"),
        ],
        b"",
    );
    assert_eq!(stream.status, 200);
    let got = rec.wait_count(2);
    let get = got.iter().find(|r| r.method == "GET").expect("the GET reached the backend");
    assert_eq!(get.header("last-event-id"), None, "resumption must not replay unfiltered answers: {get:?}");
}

#[test]
fn a_list_answered_under_another_id_is_refused_not_passed_unfiltered() {
    for sse in [false, true] {
        let flags: &[&str] = if sse { &["--sse-lists", "--stray-list-id"] } else { &["--stray-list-id"] };
        let mock = Mock::start_with("main", false, flags);
        let edge = edge(&mock, true);
        // The backend does list the tool the caller may not see, under an id nobody asked for.
        let direct = raw::send(mock.port, &raw::post(mock.port, "/mcp", &[], &request("tools/list", "{}")));
        assert!(direct.text().contains(r#""id":"stray""#) && direct.text().contains("deploy_app"), "{}", direct.text());

        let through = answer(&ask(edge.port, DEV, Era::Legacy, "tools/list", "{}"));
        assert_eq!(through["id"], "l-1", "the refusal answers the request: {through} (sse: {sse})");
        assert_eq!(through["error"]["code"], -32603, "{through}");
        assert!(!through.to_string().contains("deploy_app"), "nothing of the answer passes: {through}");
        let counted = r#"mcp_edge_list_answers_refused_total{reason="unreadable",route="mcp"} 1"#;
        assert!(edge.metrics().contains(counted), "{}", edge.metrics());
    }
}
