//! A request that names its session twice (D16): backends read one session id, and which one
//! differs (Starlette takes the last `session_id`, case-sensitively and percent-decoded), so
//! the proxy refuses instead of pinning one session while the backend serves another.

use crate::common::raw;
use crate::common::Edge;
use crate::story::*;

fn edge_for(b: &Backend) -> Edge {
    Edge::start(&format!("{}[[route]]\nname = \"all\"\npath_prefix = \"/\"\npool = \"main\"\n", pool("main", b)))
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
