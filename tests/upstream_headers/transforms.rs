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
