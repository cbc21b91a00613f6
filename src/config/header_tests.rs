//! Config stories for upstream headers: credentials are read from the environment or a file
//! and never shown; every mistake (a missing variable, an unreadable file, a bad or reserved
//! header name, a bad template) is reported with its place, field and fix, and no message
//! carries the value, the variable's name or the bad name.

use std::path::Path;

use super::model::*;
use super::parse;

const ROUTE: &str = "[[route]]\nname = \"r\"\npath = \"/mcp\"\npool = \"p\"\n";

/// A pool `p` (lines 1-3) with `pool_lines` from line 4, then the route.
fn config(pool_lines: &str) -> String {
    format!("[[pool]]\nname = \"p\"\nbackends = [\"127.0.0.1:9001\"]\n{pool_lines}\n{ROUTE}")
}

fn errors(text: &str) -> Vec<String> {
    parse(Path::new("edge.toml"), text).expect_err("should be refused").0.iter().map(ToString::to_string).collect()
}

fn secret_file(content: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("backend.key");
    std::fs::write(&path, content).expect("write");
    let shown = path.display().to_string();
    (dir, shown)
}

#[test]
fn a_file_credential_is_trimmed_held_secret_and_never_shown() {
    let (_dir, file) = secret_file("  s3cr3t-backend-token\n");
    let text =
        config(&format!("[[pool.credential]]\nheader = \"Authorization\"\nfile = \"{file}\"\nprefix = \"Bearer \"\n"));
    let c = parse(Path::new("edge.toml"), &text).expect("valid");
    let cred = &c.pools[0].credentials[0];
    assert_eq!(cred.header, http::header::AUTHORIZATION);
    assert_eq!(cred.value.expose().as_bytes(), b"Bearer s3cr3t-backend-token");
    assert_eq!(cred.source, CredentialSource::File(file.clone().into()));
    let shown = format!("{c:?} {}", super::render::to_json(&c));
    assert!(!shown.contains("s3cr3t"), "the credential was shown: {shown}");
    let rendered = super::render::to_json(&c);
    assert_eq!(rendered["pools"][0]["credentials"][0]["value"], "<redacted>");
    assert_eq!(rendered["pools"][0]["credentials"][0]["file"], file.as_str());
}

#[test]
fn a_missing_environment_variable_is_named_by_place_not_by_name() {
    let var = "MCP_EDGE_TEST_SURELY_UNSET_CREDENTIAL";
    let got = errors(&config(&format!("[[pool.credential]]\nheader = \"X-Backend-Key\"\nenv = \"{var}\"\n")));
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(
        got[0].starts_with("edge.toml:6:7: pool.p.credential.env: names an environment variable that is not set"),
        "{got:#?}"
    );
    assert!(!got[0].contains(var), "the variable's name was echoed: {got:#?}");
}

#[test]
fn an_unreadable_or_empty_file_is_an_error_with_its_fix() {
    let got = errors(&config("[[pool.credential]]\nheader = \"X-Backend-Key\"\nfile = \"/nonexistent/backend.key\"\n"));
    assert!(
        got[0].starts_with("edge.toml:6:8: pool.p.credential.file: cannot read the file (entity not found)"),
        "{got:#?}"
    );
    assert!(!got[0].contains("/nonexistent"), "{got:#?}");
    let (_dir, file) = secret_file(" \n");
    let got = errors(&config(&format!("[[pool.credential]]\nheader = \"X-Backend-Key\"\nfile = \"{file}\"\n")));
    assert!(got[0].starts_with("edge.toml:6:8: pool.p.credential.file: the file is empty"), "{got:#?}");
}

#[test]
fn a_credential_needs_exactly_one_source_and_a_single_line_value() {
    let got = errors(&config("[[pool.credential]]\nheader = \"X-Backend-Key\"\n"));
    assert!(got[0].contains("pool.p.credential.header: needs a value source"), "{got:#?}");
    let (_dir, file) = secret_file("line-one\nline-two-secret\n");
    let got = errors(&config(&format!("[[pool.credential]]\nheader = \"X-Backend-Key\"\nfile = \"{file}\"\n")));
    assert!(
        got[0].starts_with("edge.toml:6:8: pool.p.credential.file: the value is not a valid header value"),
        "{got:#?}"
    );
    assert!(!got[0].contains("line-two-secret"), "{got:#?}");
}

#[test]
fn bad_and_reserved_header_names_are_refused_without_echo() {
    let (_dir, file) = secret_file("k");
    let text = config(&format!(
        "[[pool.credential]]\nheader = \"Bad Name:evil\"\nfile = \"{file}\"\n[pool.headers]\nset = {{ \"Content-Length\" = \"0\", \"X-Ok\" = \"{{request.path}}\" }}\nremove = [\"Transfer-Encoding\"]\n"
    ));
    let got = errors(&text);
    assert!(
        got.iter().any(|e| e.starts_with("edge.toml:5:10: pool.p.credential.header: is not a header name")),
        "{got:#?}"
    );
    assert!(got.iter().all(|e| !e.contains("evil")), "{got:#?}");
    assert!(
        got.iter().any(|e| e.starts_with("edge.toml:8:28: pool.p.headers.set: names a header the proxy manages")),
        "{got:#?}"
    );
    assert!(
        got.iter().any(|e| e.starts_with("edge.toml:8:42: pool.p.headers.set: names an unknown field")),
        "{got:#?}"
    );
    assert!(
        got.iter().any(|e| e.starts_with("edge.toml:9:11: pool.p.headers.remove: names a header the proxy manages")),
        "{got:#?}"
    );
}

#[test]
fn forward_identity_signing_needs_an_id_and_a_long_key() {
    let (_dir, file) = secret_file("short-key");
    let text = format!(
        "{}forward_identity = {{ tenant = \"X-Tenant\", sign_with = {{ key_file = \"{file}\" }} }}\n",
        config("")
    );
    let got = errors(&text);
    assert!(
        got.iter()
            .any(|e| e.contains("route.r.forward_identity.sign_with.key_file: holds a key shorter than 32 bytes")),
        "{got:#?}"
    );
    assert!(got.iter().any(|e| e.contains("route.r.forward_identity.id: must be set when `sign_with` is")), "{got:#?}");
    assert!(got.iter().all(|e| !e.contains("short-key")), "{got:#?}");
}

#[test]
fn route_and_pool_rules_compile_in_order() {
    let text = format!(
        "{}[route.headers]\nadd = {{ \"X-Via\" = \"edge\" }}\nset = {{ \"X-Caller\" = \"{{identity.id}}\" }}\nremove = [\"X-Debug\"]\nresponse_set = {{ \"Cache-Control\" = \"no-store\" }}\n",
        config("")
    );
    let c = parse(Path::new("edge.toml"), &text).expect("valid");
    let kinds: Vec<&str> = c.routes[0]
        .headers
        .request
        .iter()
        .map(|op| match op {
            HeaderOp::Remove(_) => "remove",
            HeaderOp::Set(..) => "set",
            HeaderOp::Add(..) => "add",
        })
        .collect();
    assert_eq!(kinds, ["remove", "set", "add"]);
    assert_eq!(c.routes[0].headers.response.len(), 1);
}

/// `[pool.oauth]` lines with the secret in a file.
fn oauth(extra: &str, file: &str) -> String {
    format!(
        "[pool.oauth]\ntoken_url = \"https://auth.example/oauth/token\"\nclient_id = \"edge\"\nclient_secret_file = \"{file}\"\n{extra}"
    )
}

#[test]
fn an_oauth_client_reads_its_secret_and_never_shows_it() {
    let (_dir, file) = secret_file("oauth-client-s3cr3t\n");
    let text = config(&oauth("scope = \"tools:call tools:read\"\nresource = \"https://tools.example/mcp\"\n", &file));
    let c = parse(Path::new("edge.toml"), &text).expect("valid");
    let o = c.pools[0].oauth.as_ref().expect("oauth");
    assert_eq!((o.secret.expose().as_str(), o.client_auth), ("oauth-client-s3cr3t", ClientAuth::Basic));
    assert_eq!(o.scope.as_deref(), Some("tools:call tools:read"));
    let rendered = super::render::to_json(&c);
    assert_eq!(rendered["pools"][0]["oauth"]["client_secret"], "<redacted>");
    assert_eq!(rendered["pools"][0]["oauth"]["client_secret_source"]["file"], file.as_str());
    let shown = format!("{c:?} {rendered}");
    assert!(!shown.contains("oauth-client-s3cr3t"), "the secret was shown: {shown}");
}

#[test]
fn oauth_mistakes_are_reported_with_their_place_and_fix_and_no_value() {
    let (_dir, file) = secret_file("oauth-client-s3cr3t\n");
    let cases = [
        (oauth("grant = \"password\"\n", &file), "pool.p.oauth.grant", "\"client_credentials\" or \"token_exchange\""),
        (
            oauth("subject_token_type = \"saml\"\ngrant = \"token_exchange\"\n", &file),
            "pool.p.oauth.subject_token_type",
            "\"access_token\" or \"jwt\"",
        ),
        (oauth("subject_token_type = \"jwt\"\n", &file), "pool.p.oauth.subject_token_type", "token_exchange\" only"),
        (oauth("client_auth = \"jwt\"\n", &file), "pool.p.oauth.client_auth", "\"basic\" or \"post\""),
        (oauth("scope = \"a \\\"b\\\"\"\n", &file), "pool.p.oauth.scope", "space-separated"),
        (oauth("resource = \"tools\"\n", &file), "pool.p.oauth.resource", "absolute URI"),
        (oauth("client_secret_env = \"X\"\n", &file), "pool.p.oauth.client_secret_env", "not both"),
        (
            oauth("", &file).replace("https://auth.example", "http://auth.example"),
            "pool.p.oauth.token_url",
            "use https://",
        ),
        (
            oauth("", &file).replace("https://auth.example/oauth/token", "auth.example"),
            "pool.p.oauth.token_url",
            "absolute https://",
        ),
        (
            oauth("", &file).replace(&format!("client_secret_file = \"{file}\"\n"), ""),
            "pool.p.oauth.client_secret_env",
            "never written inline",
        ),
        (
            format!("[[pool.credential]]\nheader = \"authorization\"\nfile = \"{file}\"\n{}", oauth("", &file)),
            "pool.p.credential.header",
            "keep one",
        ),
    ];
    for (lines, field, fix) in cases {
        let got = errors(&config(&lines));
        assert!(got.iter().any(|e| e.contains(field) && e.contains(fix)), "{field}: {got:?}");
        assert!(got.iter().all(|e| !e.contains("oauth-client-s3cr3t")), "{got:?}");
    }
    let plain_loopback = oauth("", &file).replace("https://auth.example", "http://127.0.0.1:9");
    assert!(parse(Path::new("edge.toml"), &config(&plain_loopback)).is_ok(), "plain http is fine on loopback");
}
