//! Header transforms per route and pool, in the documented order: client headers, then the
//! route's rules, then the pool's, then the pool's credential (which always wins); on the way
//! back the pool's response rules, then the route's.

use crate::common::Edge;
use crate::story::*;

#[test]
fn route_then_pool_then_credential_and_back_pool_then_route() {
    let b = backend("main");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("backend.key");
    std::fs::write(&file, "the-credential").expect("write");
    let keys = api_keys("", &[key_entry("ci-bot", "acme", "ak_live_0123456789", "")]);
    let edge = Edge::start(&format!(
        "{}[[pool.credential]]\nheader = \"X-Backend-Key\"\nfile = \"{}\"\n[pool.headers]\nset = {{ \"X-Order\" = \"pool\", \"X-Backend-Key\" = \"from-a-transform\" }}\nadd = {{ \"X-Trail\" = \"pool\" }}\nremove = [\"X-Debug\"]\nresponse_set = {{ \"X-Answer\" = \"pool\" }}\nresponse_remove = [\"X-Mock-Backend\"]\n{keys}{}[route.headers]\nset = {{ \"X-Order\" = \"route\", \"X-Caller\" = \"{{identity.id}}@{{identity.tenant}}\" }}\nadd = {{ \"X-Trail\" = \"route\" }}\nresponse_set = {{ \"X-Answer\" = \"route for {{identity.id}}\" }}\n",
        pool(&b),
        file.display(),
        route("auth = [\"keys\"]"),
    ));
    let client = [
        ("Authorization", "Bearer ak_live_0123456789"),
        ("X-Order", "client"),
        ("X-Trail", "client"),
        ("X-Debug", "1"),
        ("X-Caller", "forged"),
    ];
    let r = post(&edge, &client);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-answer"), Some("route for ci-bot"), "the route's response rule is last");
    assert_eq!(r.header("x-mock-backend"), None, "the pool's response_remove applied");
    let got = b.rec.wait_count(1).remove(0);
    assert_eq!(got.header_all("x-order"), vec!["pool"], "the pool's set comes after the route's");
    assert_eq!(got.header_all("x-trail"), vec!["client", "route", "pool"], "adds append in order");
    assert_eq!(got.header_all("x-debug"), Vec::<&str>::new(), "removed");
    assert_eq!(got.header_all("x-caller"), vec!["ci-bot@acme"], "set from the identity, never the client's");
    assert_eq!(got.header_all("x-backend-key"), vec!["the-credential"], "credentials always win");
}

/// A legacy session's GET stream is relayed outside Pingora's request future, through the
/// same filters: it gets the pool's credential and the route's response headers too.
#[test]
fn a_detached_event_stream_gets_the_same_headers() {
    use crate::common::http::{post_mcp, Stream};
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, record) = (dir.path().join("backend.key"), dir.path().join("requests.jsonl"));
    std::fs::write(&file, "stream-credential").expect("write");
    let record = record.to_str().expect("utf8").to_owned();
    let mock = crate::common::Mock::start_with("m", true, &["--tick-ms", "100", "--record", &record]);
    let edge = Edge::start(&format!(
        "{}[[pool.credential]]\nheader = \"X-Backend-Key\"\nfile = \"{}\"\n[[route]]\nname = \"main\"\npath = \"/mcp\"\npool = \"p\"\n[route.headers]\nresponse_set = {{ \"X-Answer\" = \"route\" }}\n",
        crate::common::pool("p", &[&mock], ""),
        file.display()
    ));
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let token = post_mcp(edge.port, "/mcp", &[], init).header("mcp-session-id").expect("session").to_owned();
    let headers = [("Mcp-Session-Id", token.as_str()), ("Accept", "text/event-stream"), ("x-backend-key", "forged")];
    let mut s = Stream::open(edge.port, "GET", "/mcp", &headers, b"");
    assert_eq!((s.status, s.header("x-answer")), (200, Some("route")));
    assert!(s.next_event().is_some(), "events arrive");
    edge.wait_metric("mcp_edge_streams_open 1");
    let text = std::fs::read_to_string(&record).expect("record");
    let get = text.lines().find(|l| l.contains("\"GET\"")).expect("the GET reached the backend");
    assert!(get.contains("stream-credential") && !get.contains("forged"), "{get}");
}
