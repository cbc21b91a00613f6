//! Config stories for authentication: every mistake is reported with its place, field and
//! fix, and no message carries a value from the file (keys, digests, secrets).

use std::path::Path;

use super::model::*;
use super::parse;

const POOL: &str = "[[pool]]\nname = \"p\"\nbackends = [\"127.0.0.1:9001\"]\n\n";
const DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn errors(text: &str) -> Vec<String> {
    let full = format!("{POOL}{text}");
    parse(Path::new("edge.toml"), &full).expect_err("should be refused").0.iter().map(ToString::to_string).collect()
}

fn keys(extra_key: &str) -> String {
    format!("[[authenticator]]\nname = \"keys\"\nkind = \"api_key\"\n[[authenticator.key]]\nid = \"ci\"\nsha256 = \"{DIGEST}\"\n{extra_key}\n")
}

const ROUTE: &str = "[[route]]\nname = \"r\"\npath = \"/mcp\"\npool = \"p\"\n";

#[test]
fn an_api_key_route_loads_with_digests_only() {
    let text = format!(
        "{POOL}{}{ROUTE}auth = [\"keys\"]\n",
        keys("roles = [\"deployer\"]\nnot_after = \"2027-01-01T00:00:00Z\"")
    );
    let c = parse(Path::new("edge.toml"), &text).expect("valid");
    assert_eq!(c.routes[0].auth.accept, vec![0]);
    let AuthKind::ApiKey(k) = &c.authenticators[0].kind else { panic!("api_key") };
    assert_eq!(k.header, CredentialHeader::Authorization);
    assert_eq!(k.keys[0].identity.roles, vec!["deployer".to_owned()]);
    let not_after = k.keys[0].not_after.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    assert_eq!(not_after.map(|d| d.as_secs()), Some(1_798_761_600));
    let shown = format!("{:?} {}", c, super::render::to_json(&c));
    assert!(!shown.contains(DIGEST), "a digest was shown: {shown}");
}

#[test]
fn auth_mistakes_are_all_reported_with_place_and_fix_and_no_value() {
    let text = format!(
        "[[authenticator]]\nname = \"keys\"\nkind = \"api_key\"\n[[authenticator.key]]\nid = \"ci\"\nsha256 = \"hunter2-secret-value\"\nnot_after = \"next tuesday\"\n\n[[authenticator]]\nname = \"tok\"\nkind = \"jwt\"\nissuer = \"https://a\"\nhs256_secret_file = \"/nonexistent/secret\"\n\n{ROUTE}auth = [\"keys\", \"tok\", \"nope\"]\npublic_url = \"ftp://x\"\n[route.oauth]\nauthorization_servers = []\n"
    );
    let errs = errors(&text);
    let has = |needle: &str| errs.iter().any(|e| e.contains(needle));
    assert!(has("edge.toml:10:10: authenticator.keys.key.sha256: is not a SHA-256 digest"), "{errs:#?}");
    assert!(has("authenticator.keys.key.not_after: is not an RFC 3339"), "{errs:#?}");
    assert!(has("authenticator.tok.hs256_secret_file: cannot read"), "{errs:#?}");
    assert!(has("route.r.auth: no authenticator named `nope`"), "{errs:#?}");
    assert!(has("route.r.public_url: is not an https:// URL"), "{errs:#?}");
    assert!(has("route.r.oauth: needs the route's `public_url`"), "{errs:#?}");
    assert!(!errs.iter().any(|e| e.contains("hunter2") || e.contains("tuesday")), "a value was echoed: {errs:#?}");
}

#[test]
fn a_jwt_authenticator_without_audience_needs_the_routes_public_url() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("hs");
    std::fs::write(&secret, "0123456789abcdef0123456789abcdef").expect("write");
    let auth = format!(
        "[[authenticator]]\nname = \"tok\"\nkind = \"jwt\"\nissuer = \"https://a\"\nhs256_secret_file = \"{}\"\n",
        secret.display()
    );
    let errs = errors(&format!("{auth}{ROUTE}auth = [\"tok\"]\n"));
    assert!(errs.iter().any(|e| e.contains("route.r.auth: authenticator `tok` has no `audience`")), "{errs:#?}");
    let ok = format!("{POOL}{auth}{ROUTE}auth = [\"tok\"]\npublic_url = \"https://mcp.example.com/mcp\"\n");
    assert!(parse(Path::new("edge.toml"), &ok).is_ok());
}

#[test]
fn a_keys_file_error_names_the_keys_files_own_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("keys.toml");
    std::fs::write(&file, "[[key]]\nid = \"ci\"\nsha256 = \"not-hex-and-secret\"\n").expect("write");
    let text =
        format!("[[authenticator]]\nname = \"keys\"\nkind = \"api_key\"\nkeys_file = \"{}\"\n{ROUTE}", file.display());
    let errs = errors(&text);
    let want = format!("{}:3:10: key.sha256: is not a SHA-256 digest", file.display());
    assert!(errs.iter().any(|e| e.starts_with(&want)), "{errs:#?}");
    assert!(!errs.iter().any(|e| e.contains("not-hex-and-secret")), "{errs:#?}");
}

#[test]
fn identity_and_tenant_are_limit_key_parts() {
    let text =
        format!("{POOL}[[limit]]\nname = \"l\"\nkey = [\"identity\", \"claim:tenant\"]\nrate = \"1/s\"\n{ROUTE}");
    let c = parse(Path::new("edge.toml"), &text).expect("valid");
    assert_eq!(c.limits[0].key, vec![KeyPart::Identity, KeyPart::Tenant]);
    let errs = errors(&format!("[[limit]]\nname = \"l\"\nkey = [\"claim:sub\"]\nrate = \"1/s\"\n{ROUTE}"));
    assert!(errs.iter().any(|e| e.contains("identity, claim:tenant")), "{errs:#?}");
}

#[test]
fn a_jwt_authenticator_takes_exactly_one_key_source() {
    let two = "[[authenticator]]\nname = \"tok\"\nkind = \"jwt\"\nissuer = \"https://a\"\naudience = [\"x\"]\njwks_file = \"/k.json\"\njwks_url = \"https://a/jwks\"\n";
    let errs = errors(&format!("{two}{ROUTE}"));
    assert!(errs.iter().any(|e| e.contains("set one of `jwks_file`, `hs256_secret_file` or `jwks_url`")), "{errs:#?}");
    let refresh_alone = "[[authenticator]]\nname = \"tok\"\nkind = \"jwt\"\nissuer = \"https://a\"\naudience = [\"x\"]\nhs256_secret_file = \"/s\"\njwks_refresh = \"1m\"\n";
    let errs = errors(&format!("{refresh_alone}{ROUTE}"));
    assert!(errs.iter().any(|e| e.contains("jwks_refresh: applies only with `jwks_url`")), "{errs:#?}");
    let url = "[[authenticator]]\nname = \"tok\"\nkind = \"jwt\"\nissuer = \"https://a\"\naudience = [\"x\"]\njwks_url = \"http://idp.example.com/jwks\"\n";
    let errs = errors(&format!("{url}{ROUTE}"));
    assert!(errs.iter().any(|e| e.contains("jwks_url: is not an https:// URL")), "{errs:#?}");
}

#[test]
fn a_client_cert_authenticator_loads_and_its_mistakes_are_named() {
    let agents = "[[authenticator]]\nname = \"agents\"\nkind = \"client_cert\"\nidentity = \"uri\"\nallow = [\"spiffe://acme.example/agent/*\"]\ntenant = \"acme\"\nroles = [\"agent\"]\n";
    let c = parse(Path::new("edge.toml"), &format!("{POOL}{agents}{ROUTE}auth = [\"agents\"]\n")).expect("valid");
    let AuthKind::ClientCert(k) = &c.authenticators[0].kind else { panic!("client_cert") };
    assert_eq!(
        (k.field, k.tenant.as_deref(), k.roles.as_slice()),
        (CertField::Uri, Some("acme"), &["agent".to_owned()][..])
    );
    let cases = [
        (
            agents.replace("\"uri\"", "\"serial\""),
            "authenticator.agents.identity",
            "\"cn\", \"uri\", \"dns\" or \"email\"",
        ),
        (
            format!("{agents}issuer = \"https://a.example\"\n"),
            "authenticator.agents.issuer",
            "applies only to kind = \"jwt\"",
        ),
        (
            keys("").replace("[[authenticator.key]]", "tenant = \"acme\"\n[[authenticator.key]]"),
            "authenticator.keys.tenant",
            "applies only to kind = \"client_cert\"",
        ),
        (agents.replace("[\"agent\"]", "[\"\"]"), "authenticator.agents.roles", "one name per entry"),
    ];
    for (text, field, fix) in cases {
        let got = errors(&text);
        assert!(got.iter().any(|e| e.contains(field) && e.contains(fix)), "{field}: {got:?}");
    }
}
