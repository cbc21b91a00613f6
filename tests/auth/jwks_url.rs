//! Key sets fetched from `jwks_url`: fetched when first needed, refetched on an unknown `kid`
//! (debounced), and the last good set kept while the issuer is down.

use crate::common::Edge;
use crate::story::*;

/// `refresh` long: only an unknown `kid` makes the proxy refetch during a test.
fn remote_edge(b: &Backend, jwks: &JwksServer) -> Edge {
    let auth = format!(
        "[[authenticator]]\nname = \"tokens\"\nkind = \"jwt\"\nissuer = \"{ISSUER}\"\njwks_url = \"http://127.0.0.1:{}/jwks.json\"\njwks_refresh = \"1h\"\n",
        jwks.port
    );
    Edge::start(&format!("{}{auth}{}", pool(b), route(&format!("auth = [\"tokens\"]\npublic_url = \"{PUBLIC_URL}\""))))
}

fn status(edge: &Edge, issuer: &Issuer) -> u16 {
    post(edge, &[("Authorization", &bearer(&issuer.sign(&issuer.claims("alice", "acme"))))]).status
}

#[test]
fn a_token_is_verified_with_keys_fetched_from_the_jwks_url() {
    let b = backend("main");
    let k1 = Issuer::new("k1");
    let jwks = JwksServer::start(&[k1.jwk()]);
    let edge = remote_edge(&b, &jwks);
    let r = post(&edge, &[("Authorization", &bearer(&k1.sign(&k1.claims("alice", "acme"))))]);
    assert_forwarded_without_credentials(&r, &b, 1);
    assert!(jwks.hits() >= 1, "the key set was fetched");
}

#[test]
fn a_rotated_key_is_fetched_on_its_unknown_kid() {
    let b = backend("main");
    let (k1, k2) = (Issuer::new("k1"), Issuer::new("k2"));
    let jwks = JwksServer::start(&[k1.jwk()]);
    let edge = remote_edge(&b, &jwks);
    assert_eq!(status(&edge, &k1), 200);
    jwks.set(200, &[k1.jwk(), k2.jwk()]);
    // The first k2 token triggers the refetch and waits for it.
    assert_eq!(status(&edge, &k2), 200);
    assert_eq!(status(&edge, &k1), 200, "k1 is still in the set");
}

#[test]
fn the_last_good_key_set_is_kept_while_the_issuer_is_down_and_it_is_not_hammered() {
    let b = backend("main");
    let k1 = Issuer::new("k1");
    let jwks = JwksServer::start(&[k1.jwk()]);
    let edge = remote_edge(&b, &jwks);
    assert_eq!(status(&edge, &k1), 200);
    jwks.set(500, &[]);
    let before = jwks.hits();
    for n in 0..20 {
        let stranger = Issuer::new(&format!("forged-{n}"));
        assert_eq!(status(&edge, &stranger), 401, "unknown kid {n}");
        assert_eq!(status(&edge, &k1), 200, "k1 still admitted after {n} failed refetches");
    }
    // One refetch for the first forged kid; the rest fall within the 10 s debounce.
    let fetches = jwks.hits() - before;
    assert_eq!(fetches, 1, "fetches for 20 forged kids: one, then debounced");
}
