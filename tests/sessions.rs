//! Sticky legacy sessions: a backend's Mcp-Session-Id comes back as an encrypted token naming
//! that backend (readable by no client), every follow-up (POST, GET stream, DELETE, Last-Event-ID resume) reaches it, bad
//! tokens get 404, and two proxies sharing a key serve each other's sessions.

mod common;

use common::http::{post_mcp, request, Stream};
use common::{pool, Edge, Mock};

const INIT: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

fn whoami(id: u32) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"whoami"}}}}"#)
}

/// Initializes through the proxy and returns the token the client sees.
fn initialize(port: u16) -> String {
    let r = post_mcp(port, "/mcp", &[], INIT);
    assert_eq!(r.status, 200, "{}", r.text());
    r.header("mcp-session-id").expect("a session id comes back").to_owned()
}

fn served_by(port: u16, token: &str, id: u32) -> String {
    let r = post_mcp(port, "/mcp", &[("Mcp-Session-Id", token)], &whoami(id));
    assert_eq!(r.status, 200, "{}", r.text());
    r.header("x-mock-backend").expect("mock names itself").to_owned()
}

fn stateful_pair() -> (Mock, Mock) {
    (Mock::start("a", true), Mock::start("b", true))
}

fn edge_for(a: &Mock, b: &Mock, key: Option<&std::path::Path>) -> Edge {
    let body = format!("{}[[route]]\nname = \"main\"\npath = \"/mcp\"\npool = \"tools\"\n", pool("tools", &[a, b], ""));
    Edge::start_with_key(&body, key)
}

#[test]
fn every_call_of_a_session_reaches_the_backend_that_issued_it() {
    let (a, b) = stateful_pair();
    let edge = edge_for(&a, &b, None);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..4 {
        let token = initialize(edge.port);
        assert!(token.starts_with("e1.") && token.bytes().all(|c| (0x21..=0x7e).contains(&c)), "{token}");
        let first = served_by(edge.port, &token, 1);
        for i in 2..=20 {
            assert_eq!(served_by(edge.port, &token, i), first, "call {i} of the session moved");
        }
        seen.insert(first);
    }
    assert_eq!(seen.len(), 2, "round robin spreads sessions over both backends");
}

#[test]
fn forged_tokens_and_ids_the_proxy_never_minted_get_404_from_the_proxy() {
    let (a, b) = stateful_pair();
    let edge = edge_for(&a, &b, None);
    let token = initialize(edge.port);
    let mut forged = token.clone();
    forged.push('A');
    // A raw backend id too: it would skip the identity binding, the route check and revocation.
    for bad in [forged.as_str(), "e1.AAAA", "raw-backend-id"] {
        let r = post_mcp(edge.port, "/mcp", &[("Mcp-Session-Id", bad)], &whoami(9));
        assert_eq!(r.status, 404, "{bad}");
        assert_eq!(r.json()["id"], 9);
        assert_eq!(r.json()["error"]["code"], -32001);
        assert!(r.header("x-mock-backend").is_none(), "refused by the proxy itself");
    }
}

/// The bytes a client holds: the token after its `e1.` marker, base64url-decoded.
fn token_bytes(token: &str) -> Vec<u8> {
    use base64::Engine;
    let body = token.strip_prefix("e1.").expect("our marker");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body).expect("base64url")
}

#[test]
fn a_token_tells_the_client_nothing_and_old_format_tokens_get_404() {
    let (a, b) = stateful_pair();
    let edge = edge_for(&a, &b, None);
    let token = initialize(edge.port);
    let bytes = token_bytes(&token);
    let found = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(!found(b"tools"), "pool name readable in {token}");
    for port in [a.port, b.port] {
        assert!(!token.contains(&port.to_string()) && !found(port.to_string().as_bytes()));
    }
    assert!(!found(&[127, 0, 0, 1]), "backend IP readable in {token}");

    // The first (signed, readable) format: version 1, one member, pool, IPv4 backend, id, tag.
    let mut v1 = vec![1u8, 1, 5];
    v1.extend_from_slice(b"tools");
    v1.extend_from_slice(&[4, 127, 0, 0, 1]);
    v1.extend_from_slice(&a.port.to_be_bytes());
    v1.extend_from_slice(&[0, 3]);
    v1.extend_from_slice(b"abc");
    v1.extend_from_slice(&[0; 16]);
    let old = format!("e1.{}", base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &v1));
    let r = post_mcp(edge.port, "/mcp", &[("Mcp-Session-Id", &old)], &whoami(7));
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.header("x-mock-backend").is_none(), "refused by the proxy itself");
}

#[test]
fn delete_ends_the_session_and_later_calls_get_404() {
    let (a, b) = stateful_pair();
    let edge = edge_for(&a, &b, None);
    let token = initialize(edge.port);
    let r = request(edge.port, "DELETE", "/mcp", &[("Mcp-Session-Id", &token)], b"");
    assert_eq!(r.status, 200);
    let r = post_mcp(edge.port, "/mcp", &[("Mcp-Session-Id", &token)], &whoami(3));
    assert_eq!(r.status, 404, "the backend's 404 passes through: {}", r.text());
}

#[test]
fn get_streams_and_last_event_id_resume_reach_the_same_backend() {
    let (a, b) = stateful_pair();
    let edge = edge_for(&a, &b, None);
    let token = initialize(edge.port);
    let owner = served_by(edge.port, &token, 1);
    let accept = ("Accept", "text/event-stream");
    let mut s = Stream::open(edge.port, "GET", "/mcp", &[("Mcp-Session-Id", &token), accept], b"");
    assert_eq!(s.status, 200);
    assert_eq!(s.header("x-mock-backend"), Some(owner.as_str()));
    let (event, _) = s.next_event().expect("an event");
    assert!(event.contains(&format!("\"backend\":\"{owner}\"")), "{event}");
    drop(s);
    let mut s =
        Stream::open(edge.port, "GET", "/mcp", &[("Mcp-Session-Id", &token), accept, ("Last-Event-ID", "41")], b"");
    let (event, _) = s.next_event().expect("a resumed event");
    assert!(event.contains("id: 42"), "resume continues after the given id: {event}");
}

#[test]
fn two_proxies_sharing_a_key_serve_each_others_sessions() {
    let (a, b) = stateful_pair();
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("session.key");
    std::fs::write(&key, "0123456789abcdef0123456789abcdef-shared-test-key").expect("key");
    let (one, two) = (edge_for(&a, &b, Some(&key)), edge_for(&a, &b, Some(&key)));
    let token = initialize(one.port);
    let owner = served_by(one.port, &token, 1);
    for i in 2..10 {
        assert_eq!(served_by(two.port, &token, i), owner);
    }
    // A proxy with a different (random) key refuses the token.
    let other = edge_for(&a, &b, None);
    assert_eq!(post_mcp(other.port, "/mcp", &[("Mcp-Session-Id", &token)], &whoami(1)).status, 404);
}

#[test]
fn a_session_overrides_tool_rules_and_the_override_is_counted() {
    let (a, b) = stateful_pair();
    let deploy = Mock::start("deploy", true);
    let body = format!(
        "{}{}[[route]]\nname = \"main\"\npath = \"/mcp\"\npool = \"tools\"\n[[route.rule]]\ntool = \"deploy_*\"\npool = \"deploy\"\n",
        pool("tools", &[&a, &b], ""),
        pool("deploy", &[&deploy], "")
    );
    let edge = Edge::start(&body);
    let token = initialize(edge.port);
    let owner = served_by(edge.port, &token, 1);
    let call = r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"deploy_app"}}"#;
    let r = post_mcp(edge.port, "/mcp", &[("Mcp-Session-Id", &token)], call);
    assert_eq!(r.header("x-mock-backend"), Some(owner.as_str()), "the session's backend wins over the rule");
    assert!(edge.metrics().contains(r#"mcp_edge_session_overrides_total{route="main"} 1"#));
}

#[test]
fn a_token_only_works_on_routes_that_reach_its_pool() {
    let (a, b) = stateful_pair();
    let other = Mock::start("other", true);
    let body = format!(
        "{}{}[[route]]\nname = \"tenant-a\"\npath = \"/a/mcp\"\npool = \"tools\"\n[[route]]\nname = \"tenant-b\"\npath = \"/b/mcp\"\npool = \"other\"\n",
        pool("tools", &[&a, &b], ""),
        pool("other", &[&other], "")
    );
    let edge = Edge::start(&body);
    let r = post_mcp(edge.port, "/a/mcp", &[], INIT);
    let token = r.header("mcp-session-id").expect("token").to_owned();
    assert_eq!(post_mcp(edge.port, "/a/mcp", &[("Mcp-Session-Id", &token)], &whoami(1)).status, 200);
    let r = post_mcp(edge.port, "/b/mcp", &[("Mcp-Session-Id", &token)], &whoami(2));
    assert_eq!(r.status, 404, "tenant b's route cannot use tenant a's session");
    assert!(r.header("x-mock-backend").is_none());
}

/// The first 16 hex digits of the token's SHA-256: how the admin API names a session.
fn fingerprint(token: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_admin_api_lists_a_session_and_ending_it_deletes_it_upstream_and_refuses_its_token() {
    let (mock, rec) = common::recording::stateful_mock("a");
    let body =
        format!("{}[[route]]\nname = \"main\"\npath = \"/mcp\"\npool = \"tools\"\n", pool("tools", &[&mock], ""));
    let edge = Edge::start(&body);
    let token = initialize(edge.port);
    served_by(edge.port, &token, 1);
    served_by(edge.port, &token, 2);
    let fp = fingerprint(&token);
    let list = request(edge.admin, "GET", "/sessions", &[], b"");
    let listed = list.json();
    assert_eq!(listed["count"], 1, "{}", list.text());
    let s = &listed["sessions"][0];
    assert_eq!(
        (s["fingerprint"].as_str(), s["route"].as_str(), s["pool"].as_str()),
        (Some(fp.as_str()), Some("main"), Some("tools"))
    );
    assert_eq!(s["backend"].as_str(), Some(mock.addr().as_str()));
    assert_eq!(s["requests"], 3, "initialize and two calls");
    assert_eq!(request(edge.admin, "GET", "/status", &[], b"").json()["sessions"]["seen"], 1);
    assert!(edge.metrics().lines().any(|l| l == "mcp_edge_sessions_seen 1"), "the gauge follows the list");
    let calls = rec.lines();
    let call = calls.iter().rev().find(|r| r.body.contains("whoami")).expect("the calls reached the backend");
    let upstream_id = call.header("mcp-session-id").expect("the backend's own id").to_owned();
    assert!(!list.text().contains(&upstream_id) && !list.text().contains(&token), "{}", list.text());
    assert_eq!(request(edge.admin, "GET", &format!("/sessions/{fp}"), &[], b"").json()["requests"], 3);

    let ended = request(edge.admin, "DELETE", &format!("/sessions/{fp}"), &[], b"");
    assert_eq!(ended.status, 200, "{}", ended.text());
    assert_eq!(ended.json()["upstream_status"], 200, "{}", ended.text());
    // Health probes open and delete sessions of their own: only this session's DELETE counts.
    let deletes = rec
        .lines()
        .into_iter()
        .filter(|r| r.method == "DELETE" && r.header("mcp-session-id") == Some(&upstream_id))
        .count();
    assert_eq!(deletes, 1, "the backend was asked, with its own id, to end the session");

    let refused = post_mcp(edge.port, "/mcp", &[("Mcp-Session-Id", &token)], &whoami(3));
    assert_eq!((refused.status, refused.header("x-mock-backend")), (404, None), "the proxy refuses the ended session");
    assert_eq!(request(edge.admin, "GET", "/sessions", &[], b"").json()["count"], 0);
    assert_eq!(request(edge.admin, "DELETE", &format!("/sessions/{fp}"), &[], b"").status, 404);
    assert_eq!(request(edge.admin, "DELETE", "/sessions/not-a-fingerprint", &[], b"").status, 404);
}
