//! The caller's identity forwarded as headers: set from the authenticated identity, removed
//! from every client request first (a client cannot forge them, with or without an identity),
//! and signed so the backend can verify them with the documented canonical string.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::common::raw;
use crate::common::Edge;
use crate::story::*;

const SIGNING_KEY: &str = "an-identity-signing-key-of-at-least-32-bytes";

/// Pool `main` forwarding id and tenant, signed; route `/mcp` with API keys, `/open` without.
fn edge_with_identity(b: &Backend, dir: &std::path::Path) -> Edge {
    let key = dir.join("identity.key");
    std::fs::write(&key, format!("{SIGNING_KEY}\n")).expect("write key");
    let keys = api_keys("", &[key_entry("ci-bot", "acme", "ak_live_0123456789", "")]);
    Edge::start(&format!(
        "{}forward_identity = {{ id = \"X-MCP-Identity\", tenant = \"X-MCP-Tenant\", sign_with = {{ key_file = \"{}\" }} }}\n{keys}{}[[route]]\nname = \"open\"\npath = \"/open\"\npool = \"main\"\n",
        pool(b),
        key.display(),
        route("auth = [\"keys\"]"),
    ))
}

const FORGED: [(&str, &str); 5] = [
    ("X-MCP-Identity", "admin"),
    ("x-mcp-identity", "root"),
    ("X-MCP-Tenant", "other-tenant"),
    ("X-MCP-Identity-Signature", "00"),
    ("X-MCP-Identity-Timestamp", "1"),
];

/// The README's check: HMAC-SHA256 over `v1\n<id>\n<tenant>\n<timestamp>`, lowercase hex.
fn verify(key: &[u8], id: &str, tenant: &str, timestamp: &str, signature: &str) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(format!("v1\n{id}\n{tenant}\n{timestamp}").as_bytes());
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    expected == signature
}

#[test]
fn an_api_key_identity_reaches_the_backend_signed_and_forgeries_do_not() {
    let b = backend("main");
    let dir = tempfile::tempdir().expect("tempdir");
    let edge = edge_with_identity(&b, dir.path());
    let mut headers = vec![("Authorization", "Bearer ak_live_0123456789")];
    headers.extend(FORGED);
    let r = post(&edge, &headers);
    assert_eq!(r.status, 200, "{}", r.text());
    let got = b.rec.wait_count(1).remove(0);
    assert_eq!(got.header_all("x-mcp-identity"), vec!["ci-bot"]);
    assert_eq!(got.header_all("x-mcp-tenant"), vec!["acme"]);
    let ts = got.header_all("x-mcp-identity-timestamp");
    let sig = got.header_all("x-mcp-identity-signature");
    assert_eq!((ts.len(), sig.len()), (1, 1), "one timestamp and one signature: {got:#?}");
    let age = now().abs_diff(ts[0].parse::<u64>().expect("unix seconds"));
    assert!(age <= 5, "the timestamp is now, not the client's: {}", ts[0]);
    assert!(verify(SIGNING_KEY.as_bytes(), "ci-bot", "acme", ts[0], sig[0]), "the signature verifies");
    assert!(!verify(SIGNING_KEY.as_bytes(), "admin", "acme", ts[0], sig[0]), "and binds the id");
    assert!(
        !edge.log().contains(SIGNING_KEY)
            && !crate::common::http::get(edge.admin, "/config").text().contains(SIGNING_KEY)
    );
}

#[test]
fn without_an_identity_forged_identity_headers_are_removed_and_none_set() {
    let b = backend("main");
    let dir = tempfile::tempdir().expect("tempdir");
    let edge = edge_with_identity(&b, dir.path());
    let r = raw::send(edge.port, &raw::post(edge.port, "/open", &FORGED, CALL));
    assert_eq!(r.header("x-mock-backend"), Some("main"), "the backend answered (its 404 for /open): {}", r.text());
    let got = b.rec.wait_count(1).remove(0);
    for (name, _) in FORGED {
        assert_eq!(got.header_all(name), Vec::<&str>::new(), "{name} reached the backend: {got:#?}");
    }
}
