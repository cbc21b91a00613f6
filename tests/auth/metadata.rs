//! RFC 9728 protected resource metadata, served by the proxy itself without authentication,
//! at the bare and the path-inserted well-known URL.

use crate::common::http::get;
use crate::common::Edge;
use crate::story::*;

fn oauth_edge(b: &Backend) -> Edge {
    let entries = [key_entry("ci-bot", "acme", "ak_live_0123456789", "")];
    let oauth = "[route.oauth]\nauthorization_servers = [\"https://auth.example.com\"]\nscopes_supported = [\"tools:read\", \"tools:call\"]\n";
    Edge::start(&format!(
        "{}{}{}",
        pool(b),
        api_keys("", &entries),
        route(&format!("auth = [\"keys\"]\npublic_url = \"{PUBLIC_URL}\"\n{oauth}"))
    ))
}

#[test]
fn the_metadata_document_is_served_unauthenticated_at_both_well_known_forms() {
    let b = backend("main");
    let edge = oauth_edge(&b);
    for path in ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"] {
        let r = get(edge.port, path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("x-mock-backend"), None, "a backend answered {path}");
        let doc = r.json();
        assert_eq!(doc["resource"], PUBLIC_URL);
        assert_eq!(doc["authorization_servers"], serde_json::json!(["https://auth.example.com"]));
        assert_eq!(doc["scopes_supported"], serde_json::json!(["tools:read", "tools:call"]));
        assert_eq!(doc["bearer_methods_supported"], serde_json::json!(["header"]));
    }
    b.rec.assert_nothing();
}

#[test]
fn the_challenge_names_the_metadata_and_the_supported_scopes() {
    let b = backend("main");
    let edge = oauth_edge(&b);
    let want = "Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\", scope=\"tools:read tools:call\"";
    assert_challenged(&post(&edge, &[]), 401, want);
    edge.wait_metric(r#"mcp_edge_rejections_total{reason="unauthenticated"} 1"#);
    b.rec.assert_nothing();
}

#[test]
fn other_well_known_paths_are_not_the_document() {
    let b = backend("main");
    let edge = oauth_edge(&b);
    for path in ["/.well-known/oauth-protected-resource/other", "/.well-known/oauth-protected-resourcex"] {
        assert_ne!(get(edge.port, path).status, 200, "{path}");
    }
    b.rec.assert_nothing();
}
