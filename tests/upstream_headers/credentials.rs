//! A pool's static credential: sent to its backends in place of anything the client sent
//! under that name, sent by its health checks, rotated by rewriting the file and reloading
//! (with the pool's circuit state kept), and never shown.

use std::path::PathBuf;
use std::time::Duration;

use crate::common::http::{get, request};
use crate::common::{wait_until, Edge, Mock, Opts, DEAD_BACKEND};
use crate::story::*;

const HEADER: &str = "X-Backend-Key";

/// A credential file in `edge`'s directory.
fn write_secret(dir: &std::path::Path, value: &str) -> PathBuf {
    let path = dir.join("backend.key");
    std::fs::write(&path, format!("{value}\n")).expect("write secret");
    path
}

fn credential(file: &std::path::Path) -> String {
    format!("[[pool.credential]]\nheader = \"{HEADER}\"\nfile = \"{}\"\n", file.display())
}

fn reload(edge: &Edge) {
    let r = request(edge.admin, "POST", "/reload", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
}

/// The `/status` entry of backend `addr` of the first pool.
fn backend_status(edge: &Edge, addr: &str) -> serde_json::Value {
    let status = get(edge.admin, "/status").json();
    let backends = status["pools"][0]["backends"].as_array().cloned().unwrap_or_default();
    backends.into_iter().find(|b| b["addr"] == addr).unwrap_or_default()
}

#[test]
fn the_backend_gets_the_pool_credential_never_the_clients_attempts() {
    let b = backend("main");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_secret(dir.path(), "pool-secret-0451");
    let edge = Edge::start(&format!("{}{}{}", pool(&b), credential(&file), route("")));
    let r = post(&edge, &[(HEADER, "forged-1"), ("x-backend-key", "forged-2"), ("X-BACKEND-KEY", "forged-3")]);
    assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("main")), "{}", r.text());
    let got = b.rec.wait_count(1);
    assert_eq!(got[0].header_all(HEADER), vec!["pool-secret-0451"], "one value, the pool's: {got:#?}");
    let shown = get(edge.admin, "/config").text() + &get(edge.admin, "/status").text() + &edge.metrics();
    assert!(!shown.contains("pool-secret-0451"), "the credential was shown: {shown}");
    assert!(shown.contains("<redacted>"), "/config names the credential redacted");
    assert!(!edge.log().contains("pool-secret-0451"), "the credential was logged");
}

#[test]
fn a_rotated_file_applies_on_reload_and_keeps_the_circuit_state() {
    let b = backend("main");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_secret(dir.path(), "old-secret");
    let body = |f: &std::path::Path| {
        format!(
            "[[pool]]\nname = \"main\"\nbackends = [\"{DEAD_BACKEND}\", \"{}\"]\n[pool.health]\ncheck = \"none\"\n[pool.breaker]\nfailures = 1\ncooldown = \"60s\"\n{}\n{}",
            b.mock.addr(),
            credential(f),
            route("")
        )
    };
    let edge = Edge::start(&body(&file));
    for _ in 0..4 {
        assert_eq!(post(&edge, &[]).status, 200, "retried on the live backend");
    }
    let before = backend_status(&edge, DEAD_BACKEND);
    assert_eq!((before["circuit"].as_str(), before["ejections"].as_u64()), (Some("open"), Some(1)), "{before}");
    assert_eq!(b.rec.lines().last().and_then(|r| r.header(HEADER).map(str::to_owned)).as_deref(), Some("old-secret"));

    write_secret(dir.path(), "new-secret");
    edge.rewrite(&body(&file), &Opts::default());
    reload(&edge);
    // Before any request: a rebuilt pool would show a closed circuit until traffic hit it.
    let after = backend_status(&edge, DEAD_BACKEND);
    assert_eq!(after["circuit"], before["circuit"], "circuit state survives: {after}");
    assert_eq!(after["ejections"], before["ejections"], "ejections survive: {after}");
    let n = b.rec.count();
    assert_eq!(post(&edge, &[]).status, 200);
    let last = b.rec.wait_count(n + 1).pop().expect("a request");
    assert_eq!(last.header_all(HEADER), vec!["new-secret"], "the rotated credential is sent");
    let changes = get(edge.admin, "/status").json()["config"]["last_changes"].to_string();
    assert!(changes.contains("pool main credentials or headers changed"), "{changes}");
    assert!(!changes.contains("secret"), "{changes}");
}

/// A backend that answers 401 without the credential; a pool with `check` over it becomes
/// healthy (and serves) only if its probes send the credential.
fn healthy_only_with_the_credential(check: &str) {
    let mock = Mock::start_with("strict", false, &["--require-header", &format!("{HEADER}=probe-secret")]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_secret(dir.path(), "probe-secret");
    let edge = Edge::start(&format!(
        "[[pool]]\nname = \"main\"\nbackends = [\"{}\"]\npath = \"/mcp\"\n[pool.health]\ncheck = \"{check}\"\npath = \"/healthz\"\ninterval = \"200ms\"\n{}\n{}",
        mock.addr(),
        credential(&file),
        route("")
    ));
    wait_until(&format!("the {check} check to pass"), Duration::from_secs(5), || {
        backend_status(&edge, &mock.addr())["healthy"] == true
    });
    let r = post(&edge, &[]);
    assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("strict")), "{}", r.text());
}

#[test]
fn mcp_health_checks_send_the_credential() {
    healthy_only_with_the_credential("mcp");
}

#[test]
fn http_health_checks_send_the_credential() {
    healthy_only_with_the_credential("http");
}

#[test]
fn health_checks_send_a_rotated_credential_after_reload() {
    let mock = Mock::start_with("strict", false, &["--require-header", &format!("{HEADER}=second")]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_secret(dir.path(), "first");
    let body = format!(
        "[[pool]]\nname = \"main\"\nbackends = [\"{}\"]\npath = \"/mcp\"\n[pool.health]\ncheck = \"mcp\"\ninterval = \"200ms\"\n{}\n{}",
        mock.addr(),
        credential(&file),
        route("")
    );
    let edge = Edge::start(&body);
    assert_eq!(backend_status(&edge, &mock.addr())["healthy"], false, "the backend refuses the first credential");
    write_secret(dir.path(), "second");
    reload(&edge);
    wait_until("the probes to send the rotated credential", Duration::from_secs(5), || {
        backend_status(&edge, &mock.addr())["healthy"] == true
    });
}

#[test]
fn a_credential_from_the_environment_is_sent_and_never_shown() {
    let b = backend("main");
    let cred = "[[pool.credential]]\nheader = \"Authorization\"\nenv = \"MCP_EDGE_TEST_BACKEND_TOKEN\"\nprefix = \"Bearer \"\n";
    let env = [("MCP_EDGE_TEST_BACKEND_TOKEN", "env-token-7731")];
    let edge = Edge::start_opts(&format!("{}{cred}{}", pool(&b), route("")), Opts { env: &env, ..Opts::default() });
    let r = post(&edge, &[("Authorization", "Bearer the-callers-own-token")]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(b.rec.wait_count(1)[0].header_all("authorization"), vec!["Bearer env-token-7731"]);
    let config = get(edge.admin, "/config").json();
    assert_eq!(config["pools"][0]["credentials"][0]["env"], "MCP_EDGE_TEST_BACKEND_TOKEN");
    assert_eq!(config["pools"][0]["credentials"][0]["value"], "<redacted>");
    assert!(!config.to_string().contains("env-token-7731"));
    assert!(!edge.log().contains("env-token-7731"));
}
