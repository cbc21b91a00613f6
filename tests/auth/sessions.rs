//! Sessions belong to the identity that opened them: the sealed token carries a digest of it,
//! so a token replayed by another caller is an unknown session (404) that reaches no backend.

use crate::common::raw::{self, RawResponse};
use crate::common::recording;
use crate::common::Edge;
use crate::story::*;

const ALICE: &str = "ak_live_alice_0123456789";
const BOB: &str = "ak_live_bob_0123456789ab";
const INIT: &str = r#"{"jsonrpc":"2.0","id":"i-1","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

fn as_caller(edge: &Edge, key: &str, session: Option<&str>, body: &str) -> RawResponse {
    let auth = bearer(key);
    let mut headers = vec![("Authorization", auth.as_str())];
    if let Some(token) = session {
        headers.push(("Mcp-Session-Id", token));
    }
    raw::send(edge.port, &raw::post(edge.port, "/mcp", &headers, body))
}

#[test]
fn a_session_token_replayed_by_another_identity_is_unknown_and_reaches_no_backend() {
    let (mock, rec) = recording::stateful_mock("main");
    let b = Backend { mock, rec };
    let keys = [key_entry("alice", "acme", ALICE, ""), key_entry("bob", "acme", BOB, "")];
    let edge = Edge::start(&format!("{}{}{}", pool(&b), api_keys("", &keys), route("auth = [\"keys\"]")));

    let opened = as_caller(&edge, ALICE, None, INIT);
    assert_eq!(opened.status, 200, "{}", opened.text());
    let token = opened.header("mcp-session-id").expect("a session token").to_owned();
    b.rec.wait_count(1);

    assert_eq!(as_caller(&edge, ALICE, Some(&token), CALL).status, 200, "the owner keeps its session");
    b.rec.wait_count(2);

    let replayed = as_caller(&edge, BOB, Some(&token), CALL);
    assert_eq!(replayed.status, 404, "{}", replayed.text());
    assert_eq!(replayed.json()["id"], "c-1", "the error echoes the id");
    b.rec.assert_stays(2);
}
