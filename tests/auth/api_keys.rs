//! API keys: from `Authorization: Bearer` or a header of their own, stored as digests,
//! compared exactly; rotation by `not_after` and by re-reading the keys file on reload.

use crate::common::http::request;
use crate::common::{Edge, Opts};
use crate::story::*;

const KEY: &str = "ak_live_0123456789abcdef";

fn keyed_edge(b: &Backend, header: &str, extra_route: &str) -> Edge {
    let entries = [key_entry("ci-bot", "acme", KEY, "roles = [\"deployer\"]")];
    Edge::start(&format!(
        "{}{}{}",
        pool(b),
        api_keys(header, &entries),
        route(&format!("auth = [\"keys\"]\n{extra_route}"))
    ))
}

#[test]
fn a_request_without_a_key_gets_401_with_a_bearer_challenge_and_reaches_no_backend() {
    let b = backend("main");
    let edge = keyed_edge(&b, "", "");
    assert_challenged(&post(&edge, &[]), 401, "Bearer");
    b.rec.assert_nothing();
}

#[test]
fn a_valid_bearer_key_is_admitted_and_never_forwarded() {
    let b = backend("main");
    let edge = keyed_edge(&b, "", "");
    assert_forwarded_without_credentials(&post(&edge, &[("Authorization", &bearer(KEY))]), &b, 1);
    // The scheme is case-insensitive (RFC 9110 11.1); the key is not.
    assert_forwarded_without_credentials(&post(&edge, &[("Authorization", &format!("bearer {KEY}"))]), &b, 2);
    // The access line names the caller by its id, never by its key.
    edge.wait_log(r#"identity="ci-bot""#);
    assert!(!edge.log().contains(KEY), "the key is never logged");
}

#[test]
fn a_wrong_key_gets_invalid_token() {
    let b = backend("main");
    let edge = keyed_edge(&b, "", "");
    let r = post(&edge, &[("Authorization", &bearer("ak_live_guess"))]);
    assert_challenged(&r, 401, "Bearer error=\"invalid_token\"");
    b.rec.assert_nothing();
}

#[test]
fn bypass_key_case_and_whitespace_variants_are_refused() {
    let b = backend("main");
    let edge = keyed_edge(&b, "", "");
    let upper = bearer(&KEY.to_uppercase());
    let short = bearer(&KEY[..KEY.len() - 1]);
    let longer = bearer(&format!("{KEY}0"));
    let two_spaces = format!("Bearer  {KEY}");
    let inner = bearer(&format!("{} {}", &KEY[..4], &KEY[4..]));
    let basic = format!("Basic {KEY}");
    let bare = KEY.to_owned();
    let tab = format!("Bearer\t{KEY}");
    for value in [&upper, &short, &longer, &two_spaces, &inner, &basic, &bare, &tab] {
        let r = post(&edge, &[("Authorization", value)]);
        assert_challenged(&r, 401, "Bearer error=\"invalid_token\"");
    }
    b.rec.assert_nothing();
}

#[test]
fn bypass_a_duplicated_authorization_header_is_refused_whichever_comes_first() {
    let b = backend("main");
    let edge = keyed_edge(&b, "", "");
    let (good, bad) = (bearer(KEY), bearer("ak_live_guess"));
    for pair in [[&good, &bad], [&bad, &good], [&good, &good]] {
        let r = post(&edge, &[("Authorization", pair[0]), ("Authorization", pair[1])]);
        assert_challenged(&r, 400, "Bearer error=\"invalid_request\"");
    }
    b.rec.assert_nothing();
}

#[test]
fn a_key_in_its_own_header_is_admitted_and_that_header_is_never_forwarded() {
    let b = backend("main");
    let edge = keyed_edge(&b, "header = \"x-api-key\"", "");
    assert_forwarded_without_credentials(&post(&edge, &[("X-Api-Key", KEY)]), &b, 1);
    // The bearer form is not this authenticator's header.
    assert_challenged(&post(&edge, &[("Authorization", &bearer(KEY))]), 401, "Bearer");
    assert_challenged(&post(&edge, &[("x-api-key", "nope")]), 401, "Bearer error=\"invalid_token\"");
    b.rec.assert_stays(1);
}

#[test]
fn the_challenge_names_the_resource_metadata_of_the_routes_public_url() {
    let b = backend("main");
    let edge = keyed_edge(&b, "", &format!("public_url = \"{PUBLIC_URL}\""));
    let meta = "resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\"";
    assert_challenged(&post(&edge, &[]), 401, &format!("Bearer {meta}"));
    let r = post(&edge, &[("Authorization", &bearer("wrong"))]);
    assert_challenged(&r, 401, &format!("Bearer error=\"invalid_token\", {meta}"));
}

#[test]
fn rotation_an_expired_key_stops_while_its_successor_admits() {
    let b = backend("main");
    let entries = [
        key_entry("old", "acme", "ak_old_0123456789", "not_after = \"2020-01-01T00:00:00Z\""),
        key_entry("new", "acme", "ak_new_0123456789", "not_after = \"2999-01-01T00:00:00Z\""),
    ];
    let edge = Edge::start(&format!("{}{}{}", pool(&b), api_keys("", &entries), route("auth = [\"keys\"]")));
    assert_challenged(
        &post(&edge, &[("Authorization", &bearer("ak_old_0123456789"))]),
        401,
        "Bearer error=\"invalid_token\"",
    );
    assert_forwarded_without_credentials(&post(&edge, &[("Authorization", &bearer("ak_new_0123456789"))]), &b, 1);
}

#[test]
fn rotation_the_keys_file_is_reread_on_reload() {
    let b = backend("main");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("keys.toml");
    let write_keys = |key: &str| {
        std::fs::write(&file, key_entry("ci", "acme", key, "").replace("authenticator.", "")).expect("keys")
    };
    write_keys("ak_first_0123456789");
    let body = format!(
        "{}[[authenticator]]\nname = \"keys\"\nkind = \"api_key\"\nkeys_file = \"{}\"\n{}",
        pool(&b),
        file.display(),
        route("auth = [\"keys\"]")
    );
    let edge = Edge::start(&body);
    assert_forwarded_without_credentials(&post(&edge, &[("Authorization", &bearer("ak_first_0123456789"))]), &b, 1);
    write_keys("ak_second_0123456789");
    edge.rewrite(&body, &Opts::default());
    assert_eq!(request(edge.admin, "POST", "/reload", &[], b"").status, 200, "reload");
    assert_challenged(
        &post(&edge, &[("Authorization", &bearer("ak_first_0123456789"))]),
        401,
        "Bearer error=\"invalid_token\"",
    );
    assert_forwarded_without_credentials(&post(&edge, &[("Authorization", &bearer("ak_second_0123456789"))]), &b, 2);
}
