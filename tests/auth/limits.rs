//! Limits keyed on who the caller is: `identity` (one budget per key or subject) and
//! `claim:tenant` (one budget shared by a tenant's identities).

use crate::common::Edge;
use crate::story::*;

fn limit(key: &str) -> String {
    format!("[[limit]]\nname = \"per\"\nkey = [\"{key}\"]\nrate = \"1/min\"\n\n")
}

#[test]
fn an_identity_limit_counts_each_key_on_its_own() {
    let b = backend("main");
    let entries = [key_entry("a", "acme", "ak_a_0123456789", ""), key_entry("b", "acme", "ak_b_0123456789", "")];
    let edge = Edge::start(&format!(
        "{}{}{}{}",
        pool(&b),
        limit("identity"),
        api_keys("", &entries),
        route("auth = [\"keys\"]\nlimits = [\"per\"]")
    ));
    let send = |key: &str| post(&edge, &[("Authorization", &bearer(key))]).status;
    assert_eq!(send("ak_a_0123456789"), 200);
    assert_eq!(send("ak_a_0123456789"), 429, "a's second call in the minute");
    assert_eq!(send("ak_b_0123456789"), 200, "b has its own budget");
}

#[test]
fn a_tenant_limit_is_shared_by_the_tenants_identities() {
    let b = backend("main");
    let dir = tempfile::tempdir().expect("tempdir");
    let issuer = Issuer::new("k1");
    let jwks = jwks_file(dir.path(), &[issuer.jwk()]);
    let edge = Edge::start(&format!(
        "{}{}{}{}",
        pool(&b),
        limit("claim:tenant"),
        jwt_authenticator(&jwks, ""),
        route(&format!("auth = [\"tokens\"]\npublic_url = \"{PUBLIC_URL}\"\nlimits = [\"per\"]"))
    ));
    let send = |sub: &str, tenant: &str| {
        let token = issuer.sign(&issuer.claims(sub, tenant));
        post(&edge, &[("Authorization", &bearer(&token))]).status
    };
    assert_eq!(send("alice", "acme"), 200);
    assert_eq!(send("bob", "acme"), 429, "bob shares acme's budget");
    assert_eq!(send("carol", "globex"), 200, "another tenant");
}
