//! Streaming and pass-through: SSE events reach the client as the backend sends them, a client
//! disconnect aborts the upstream stream, and statuses, bodies and MCP headers pass through
//! exactly. The legacy HTTP+SSE transport stays on one backend.

mod common;

use std::time::{Duration, Instant};

use common::http::{self, get, post_mcp, request, Stream, JSON_HEADERS};
use common::{pool, wait_until, Edge, Mock};

fn edge(mocks: &[&Mock], route_extra: &str) -> Edge {
    Edge::start(&format!(
        "{}[[route]]\nname = \"main\"\npath_prefix = \"/\"\npool = \"p\"\n{route_extra}",
        pool("p", mocks, "")
    ))
}

#[test]
fn progress_events_arrive_while_the_tool_still_runs() {
    let mock = Mock::start("m", false);
    let edge = edge(&[&mock], "");
    let call = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow","arguments":{"steps":3,"delay_ms":400}}}"#;
    let start = Instant::now();
    let mut s = Stream::open(edge.port, "POST", "/mcp", &JSON_HEADERS, call);
    assert_eq!(s.status, 200);
    assert!(s.header("content-type").is_some_and(|c| c.starts_with("text/event-stream")));
    let mut arrivals = Vec::new();
    while let Some((event, at)) = s.next_event() {
        arrivals.push((event, at.duration_since(start)));
        if arrivals.last().is_some_and(|(e, _)| e.contains("\"result\"")) {
            break;
        }
    }
    let progress: Vec<_> = arrivals.iter().filter(|(e, _)| e.contains("notifications/progress")).collect();
    assert_eq!(progress.len(), 3, "{arrivals:#?}");
    let result_at = arrivals.last().expect("a result").1;
    // Unbuffered: the first progress comes long before the result, and events are spaced out.
    assert!(result_at >= Duration::from_millis(1100), "{arrivals:#?}");
    assert!(
        progress[0].1 + Duration::from_millis(700) < result_at,
        "first progress must not wait for the result: {arrivals:#?}"
    );
    assert!(progress[1].1 >= progress[0].1 + Duration::from_millis(250), "{arrivals:#?}");
}

#[test]
fn a_client_disconnect_aborts_the_upstream_stream() {
    let mock = Mock::start_with("m", true, &["--tick-ms", "100"]);
    let edge = edge(&[&mock], "");
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let token = post_mcp(edge.port, "/mcp", &[], init).header("mcp-session-id").expect("session").to_owned();
    let open_streams = || get(mock.port, "/_mock/stats").json()["open_streams"].as_u64().unwrap_or(99);
    let mut s =
        Stream::open(edge.port, "GET", "/mcp", &[("Mcp-Session-Id", &token), ("Accept", "text/event-stream")], b"");
    assert!(s.next_event().is_some());
    assert_eq!(open_streams(), 1);
    drop(s);
    wait_until("the upstream stream to close", Duration::from_secs(5), || open_streams() == 0);
}

#[test]
fn statuses_bodies_and_auth_challenges_pass_through_exactly() {
    let mock = Mock::start("m", false);
    let edge = edge(&[&mock], "");
    // Every route validates bodies by default: these are well-formed JSON-RPC.
    let note = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let r = request(edge.port, "POST", "/status/202", &JSON_HEADERS, note);
    assert_eq!((r.status, r.body.len()), (202, 0));
    let r = request(edge.port, "POST", "/status/401", &JSON_HEADERS, note);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer resource_metadata="http://x/.well-known/oauth-protected-resource""#)
    );
    for code in [400, 404, 405, 406, 421] {
        let r = request(edge.port, "POST", &format!("/status/{code}"), &JSON_HEADERS, note);
        assert_eq!((r.status, r.json()["status"].as_u64()), (code, Some(code as u64)));
    }
    // Malformed JSON is answered at the edge (-32700), never forwarded.
    let r = post_mcp(edge.port, "/mcp", &[], "{bad json");
    assert_eq!((r.status, r.json()["error"]["code"].as_i64()), (400, Some(-32700)));
    assert!(r.header("x-mock-backend").is_none());
    let opaque = crate::edge(&[&mock], "inspect = \"never\"\n");
    let r = post_mcp(opaque.port, "/mcp", &[], "{bad json");
    assert_eq!(r.status, 400);
    assert_eq!(r.header("x-mock-backend"), Some("m"), "an explicit pass-through route lets the backend answer");
}

#[test]
fn mcp_headers_reach_the_backend_unchanged_and_host_is_preserved() {
    let mock = Mock::start("m", false);
    let edge = edge(&[&mock], "allowed_hosts = [\"mcp.example.test\"]\n");
    let headers = [
        ("Accept", "application/json, text/event-stream"),
        ("MCP-Protocol-Version", "2025-06-18"),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", "echo"),
        ("Mcp-Param-Region", "eu"),
        ("Last-Event-ID", "7"),
        ("Host", "mcp.example.test"),
    ];
    let call = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#;
    let seen = request(edge.port, "POST", "/echo-headers?x=1", &headers, call).json();
    assert_eq!(seen["accept"], "application/json, text/event-stream");
    assert_eq!(seen["mcp-protocol-version"], "2025-06-18");
    assert_eq!(seen["mcp-method"], "tools/call");
    assert_eq!(seen["mcp-name"], "echo");
    assert_eq!(seen["mcp-param-region"], "eu");
    assert_eq!(seen["last-event-id"], "7");
    assert_eq!(seen["path"], "/echo-headers?x=1");
    assert!(seen["host"].as_str().is_some_and(|h| h.starts_with("mcp.example.test")), "{seen}");
}

#[test]
fn the_request_id_reaches_the_backend_and_comes_back_and_a_hostile_one_is_replaced() {
    let mock = Mock::start("m", false);
    let edge = edge(&[&mock], "");
    let ask = |id: Option<&str>| {
        let mut headers = vec![("Accept", "application/json")];
        headers.extend(id.map(|id| ("X-Request-Id", id)));
        request(edge.port, "GET", "/echo-headers", &headers, b"")
    };
    let kept = ask(Some("client-id-1"));
    assert_eq!(
        (kept.json()["x-request-id"].as_str(), kept.header("x-request-id")),
        (Some("client-id-1"), Some("client-id-1"))
    );
    for hostile in [Some("a b"), Some("x\" route=forged"), None] {
        let made = ask(hostile);
        let sent = made.json()["x-request-id"].as_str().map(str::to_owned).expect("the backend got an id");
        assert_eq!(sent.len(), 32, "{hostile:?} became {sent}");
        assert_eq!(made.header("x-request-id"), Some(sent.as_str()), "the client gets the id the backend saw");
    }
    // Named hop-by-hop, the client's header is stripped on the way up: the id still arrives.
    let hop = request(
        edge.port,
        "GET",
        "/echo-headers",
        &[("Accept", "application/json"), ("Connection", "keep-alive, X-Request-Id"), ("X-Request-Id", "hop-1")],
        b"",
    );
    assert_eq!((hop.json()["x-request-id"].as_str(), hop.header("x-request-id")), (Some("hop-1"), Some("hop-1")));
}

#[test]
fn a_pool_can_rewrite_host_and_endpoint_path() {
    let mock = Mock::start("m", false);
    let body = format!(
        "[[pool]]\nname = \"p\"\nbackends = [\"{}\"]\npath = \"/echo-headers\"\nhost = \"backend.internal\"\n[pool.health]\ncheck = \"tcp\"\n\n[[route]]\nname = \"main\"\npath = \"/mcp\"\npool = \"p\"\n",
        mock.addr()
    );
    let edge = Edge::start(&body);
    let seen = request(edge.port, "POST", "/mcp", &JSON_HEADERS, br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).json();
    assert_eq!(seen["host"], "backend.internal");
    assert_eq!(seen["path"], "/echo-headers");
}

#[test]
fn legacy_sse_transport_posts_reach_the_backend_holding_the_stream() {
    let (a, b) = (
        Mock::start_with("sse-alpha", false, &["--legacy-sse"]),
        Mock::start_with("sse-bravo", false, &["--legacy-sse"]),
    );
    let edge = edge(&[&a, &b], "inspect = \"never\"\n");
    for _ in 0..4 {
        let mut stream = Stream::open(edge.port, "GET", "/sse", &[("Accept", "text/event-stream")], b"");
        let owner = stream.header("x-mock-backend").expect("backend").to_owned();
        let (event, _) = stream.next_event().expect("endpoint event");
        assert!(event.starts_with("event: endpoint"), "{event}");
        let url = event.lines().find_map(|l| l.strip_prefix("data: ")).expect("data line").trim().to_owned();
        assert!(url.contains("session_id=e1."), "the session id is wrapped: {url}");
        for i in 0..5 {
            let r = post_mcp(
                edge.port,
                &url,
                &[],
                &format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"tools/call","params":{{"name":"whoami"}}}}"#),
            );
            assert_eq!(r.status, 202, "{}", r.text());
            let (answer, _) = stream.next_event().expect("the answer on the stream");
            assert!(answer.contains(&owner), "answer from the stream's backend {owner}: {answer}");
        }
    }
    let _ = http::get(edge.admin, "/metrics");
}
