//! No token passthrough: the caller's `Authorization` never reaches a backend, on any route,
//! unless the route says `pass_token = true`.

use crate::common::Edge;
use crate::story::*;

#[test]
fn authorization_is_removed_even_on_a_route_without_auth() {
    let b = backend("main");
    let edge = Edge::start(&format!("{}{}", pool(&b), route("")));
    let r = post(&edge, &[("Authorization", "Bearer caller-token-for-the-proxy")]);
    assert_forwarded_without_credentials(&r, &b, 1);
}

#[test]
fn pass_token_forwards_the_callers_authorization() {
    let b = backend("main");
    let entries = [key_entry("ci-bot", "acme", "ak_live_0123456789", "")];
    let edge = Edge::start(&format!(
        "{}{}{}",
        pool(&b),
        api_keys("", &entries),
        route("auth = [\"keys\"]\npass_token = true")
    ));
    let r = post(&edge, &[("Authorization", &bearer("ak_live_0123456789"))]);
    assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("main")), "{}", r.text());
    assert_eq!(b.rec.wait_count(1)[0].header_all("authorization"), vec!["Bearer ak_live_0123456789"]);
}
