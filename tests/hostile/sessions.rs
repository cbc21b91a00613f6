//! Session ids a client can spell. A request that names its session twice (D16): backends
//! read one session id, and which one differs (Starlette takes the last `session_id`,
//! case-sensitively and percent-decoded), so the proxy refuses instead of pinning one session
//! while the backend serves another. A session id the proxy did not mint (F1): a raw backend
//! id would skip the identity binding, the route check and revocation, so it reaches no
//! backend however it is spelled, in either era.

use crate::common::raw;
use crate::common::Edge;
use crate::story::*;

fn edge_for(b: &Backend) -> Edge {
    Edge::start(&format!("{}[[route]]\nname = \"all\"\npath_prefix = \"/\"\npool = \"main\"\n", pool("main", b)))
}

/// A legacy session opened through `edge` on a stateful recording backend: the client's
/// token and the backend's own id (read from what the backend received on a follow-up).
fn open_session(edge: &Edge, b: &Backend) -> (String, String) {
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let r = post(edge, "/mcp", &[], init);
    let token = r.header("mcp-session-id").expect("a session token comes back").to_owned();
    assert!(token.starts_with("e1."), "{token}");
    let r = post(edge, "/mcp", &[("Mcp-Session-Id", &token)], &call("echo"));
    assert_eq!(r.header("x-mock-backend"), Some(b.rec.name.as_str()), "{}", r.text());
    let seen = b.rec.wait_count(2);
    let raw = seen[1].header("mcp-session-id").expect("the backend got its own id").to_owned();
    assert_ne!(raw, token);
    (token, raw)
}

fn post_to(edge: &Edge, target: &str, extra: &[(&str, &str)]) -> raw::RawResponse {
    post(edge, target, extra, &call("echo"))
}

#[test]
fn d16_a_query_naming_the_session_twice_is_refused() {
    let main = backend("main");
    let edge = edge_for(&main);
    for target in [
        "/messages/?session_id=e1.AAAA&session_id=raw-victim",
        "/messages/?sessionId=e1.AAAA&SESSION_ID=raw-victim",
        "/messages/?session_id=e1.AAAA&session%5Fid=raw-victim",
    ] {
        let r = post_to(&edge, target, &[]);
        assert_refused(&r, 400, -32600);
        assert!(r.text().contains("more than once"), "{target}: {}", r.text());
    }
    assert_alive_and_only_probe(&edge, "/mcp", &main);
}

#[test]
fn d16_a_session_in_both_the_header_and_the_query_is_refused() {
    let main = backend("main");
    let edge = edge_for(&main);
    let r = post_to(&edge, "/messages/?session_id=raw-victim", &[("Mcp-Session-Id", "e1.AAAA")]);
    assert_refused(&r, 400, -32600);
    assert_alive_and_only_probe(&edge, "/mcp", &main);
}

#[test]
fn f1_a_session_id_the_proxy_never_minted_reaches_no_backend() {
    let main = backend("main");
    let edge = edge_for(&main);
    let modern = modern_call("echo");
    let with_modern = |extra: &[(&'static str, &'static str)]| [modern.as_slice(), extra].concat();
    let attacks: [(&str, Vec<(&str, &str)>); 17] = [
        // As PHP reads names: `$_GET['session_id']` for each.
        ("/messages/?session[id=raw-victim", vec![]),
        ("/messages/?%20session_id=raw-victim", vec![]),
        ("/messages/?session.id=raw-victim", vec![]),
        ("/messages/?session+id=raw-victim", vec![]),
        ("/messages/?session%20id=raw-victim", vec![]),
        ("/messages/?sessionId[]=raw-victim", vec![]),
        ("/messages/?sessionId%5B0%5D=raw-victim", vec![]),
        ("/mcp", vec![("Mcp-Session-Id", "raw-victim")]),
        ("/messages/?session_id=raw-victim", vec![]),
        ("/messages/?SESSIONID=raw-victim", vec![]),
        ("/messages/?session%5Fid=raw-victim", vec![]),
        ("/messages/?session_%69d=raw-victim", vec![]),
        ("/messages/?x=1;session_id=raw-victim", vec![]),
        ("/messages/?session_id=e1%2Eraw-victim", vec![]),
        ("/messages/?session_id", vec![]),
        ("/mcp", with_modern(&[("Mcp-Session-Id", "raw-victim")])),
        ("/messages/?session_id=raw-victim", with_modern(&[])),
    ];
    for (target, extra) in &attacks {
        let r = post_to(&edge, target, extra);
        assert_refused(&r, 404, -32001);
        assert_eq!(r.json()["id"], "c-echo", "{target}: the refusal names the request");
    }
    assert_alive_and_only_probe(&edge, "/mcp", &main);
}

#[test]
fn f1_a_token_under_any_spelling_of_the_parameter_reaches_the_backend_as_its_own_id() {
    let (mock, rec) = crate::common::recording::stateful_mock("main");
    let main = Backend { mock, rec };
    let edge = edge_for(&main);
    let (token, raw) = open_session(&edge, &main);
    for (n, query) in ["session%5Fid={t}", "x=1;session_id={t}", "SessionId={t}&y=2"].iter().enumerate() {
        let target = format!("/messages/?{}", query.replace("{t}", &token));
        post_to(&edge, &target, &[]);
        let got = main.rec.wait_count(3 + n);
        let forwarded = &got[2 + n].target;
        assert_eq!(*forwarded, format!("/messages/?{}", query.replace("{t}", &raw)), "{target}");
    }
}

#[test]
fn f1_foreign_ids_forward_only_where_configured_and_never_on_a_route_with_auth() {
    use sha2::Digest;
    let main = backend("main");
    let key: String = sha2::Sha256::digest(b"ak_f1_0123456789abc").iter().map(|b| format!("{b:02x}")).collect();
    let edge = Edge::start(&format!(
        "[sessions]\nforeign_ids = \"forward\"\n\n[[authenticator]]\nname = \"keys\"\nkind = \"api_key\"\n[[authenticator.key]]\nid = \"alice\"\nsha256 = \"{key}\"\n\n{}[[route]]\nname = \"open\"\npath = \"/mcp\"\npool = \"main\"\n\n[[route]]\nname = \"closed\"\npath = \"/auth\"\npool = \"main\"\nauth = [\"keys\"]\n",
        pool("main", &main)
    ));
    let r =
        post_to(&edge, "/auth", &[("Mcp-Session-Id", "raw-victim"), ("Authorization", "Bearer ak_f1_0123456789abc")]);
    assert_refused(&r, 404, -32001);
    let r = post_to(&edge, "/mcp", &[("Mcp-Session-Id", "raw-victim")]);
    assert_eq!(r.header("x-mock-backend"), Some("main"), "forwarded: {}", r.text());
    let got = main.rec.wait_count(1);
    assert_eq!(got[0].header("mcp-session-id"), Some("raw-victim"), "untouched");
    // Even there, a parameter the proxy reads without a value is refused: `sessionId[;]=x` is
    // `sessionId[` (no value) to the proxy and `x` to a backend splitting on `&` alone.
    for target in ["/mcp?sessionId[;]=raw-victim", "/mcp?session_id"] {
        let r = post_to(&edge, target, &[]);
        assert_refused(&r, 404, -32001);
    }
    main.rec.assert_stays(1);
}

#[test]
fn f4_a_header_a_cgi_backend_reads_as_the_session_header_is_refused() {
    let main = backend("main");
    let edge = edge_for(&main);
    for (name, value) in
        [("Mcp_Session_Id", "raw-victim"), ("mcp-session_id", "raw-victim"), ("Mcp_Method", "tools/call")]
    {
        let r = post_to(&edge, "/mcp", &[(name, value)]);
        assert_refused(&r, 400, -32600);
    }
    assert_alive_and_only_probe(&edge, "/mcp", &main);
}
