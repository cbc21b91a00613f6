//! mcp-edge in the MCP authorization spec's resource-server role, proven with real SDK clients.
//! Each story starts three real processes on loopback: our own OAuth 2.1 authorization server
//! (`tests/peers/oauth_as.py`: RFC 8414 metadata, RFC 7591 registration, PKCE, RFC 8707
//! `resource`, ES256 JWTs, a JWKS), the Python SDK 2.x server behind mcp-edge (recording the
//! headers of every request it receives), and mcp-edge with a `jwt` authenticator that fetches
//! the authorization server's key set, on a route with `public_url` and `[route.oauth]`. Then a
//! real client walks the spec: the Python SDK 2.x `OAuthClientProvider` from 401 to a tool call
//! (and a refresh), and the TypeScript SDK's discovery functions and login.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use common::peers::{run_json, PeerServer, Peers};
use common::{free_port, http, Edge, Opts, Proc};
use serde_json::{json, Value};

const SCOPES: [&str; 2] = ["tools:read", "tools:call"];

/// `tests/peers/oauth_as.py`, its issuer URL and the JSON log of the requests it served.
struct AuthServer {
    issuer: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
    _proc: Proc,
}

impl AuthServer {
    /// Starts it and waits (with a deadline) for the issuer it prints once it listens.
    fn start(peers: &Peers) -> AuthServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("as.jsonl");
        let mut cmd = peers.script("PEERS_PY2", "oauth_as.py");
        cmd.args(["--log", log.to_str().expect("utf8 path")]).stdout(Stdio::piped()).stderr(Stdio::null());
        let mut proc = Proc::spawn("oauth_as.py", &mut cmd);
        let stdout = proc.child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("oauth_as.py printed its issuer in time");
        let issuer = line.trim().to_owned();
        assert!(issuer.starts_with("http://127.0.0.1:"), "oauth_as.py printed {line:?}");
        AuthServer { issuer, log, _dir: dir, _proc: proc }
    }

    /// Every request it served: {method, path, params, status, error}.
    fn requests(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).expect("a JSON log line")).collect()
    }

    fn requests_to(&self, method: &str, path: &str) -> Vec<Value> {
        self.requests().into_iter().filter(|r| r["method"] == method && r["path"] == path).collect()
    }
}

/// The real backend and what it received: one JSON line per request, with its headers.
struct Backend {
    server: PeerServer,
    record: PathBuf,
    _dir: tempfile::TempDir,
}

impl Backend {
    fn start(peers: &Peers) -> Backend {
        let dir = tempfile::tempdir().expect("tempdir");
        let record = dir.path().join("received.jsonl");
        let server = peers.server("PEERS_PY2_SERVER", &["--name", "py2", "--record", record.to_str().expect("utf8")]);
        Backend { server, record, _dir: dir }
    }

    fn addr(&self) -> String {
        self.server.addr()
    }

    fn received(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.record).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).expect("a JSON record line")).collect()
    }
}

fn header<'a>(request: &'a Value, name: &str) -> Option<&'a str> {
    request["headers"].as_array()?.iter().find(|h| h[0].as_str().is_some_and(|k| k.eq_ignore_ascii_case(name)))?[1]
        .as_str()
}

/// The authorization server, the backend, and mcp-edge in front of the backend as the
/// protected resource `public_url`, accepting the server's tokens (audience: `public_url`).
struct Stack {
    auth: AuthServer,
    backend: Backend,
    edge: Edge,
    public_url: String,
}

impl Stack {
    fn start(peers: &Peers) -> Stack {
        let auth = AuthServer::start(peers);
        let backend = Backend::start(peers);
        let port = free_port();
        let public_url = format!("http://127.0.0.1:{port}/mcp");
        let config = format!(
            r#"[[pool]]
name = "main"
backends = ["{backend}"]
path = "/mcp"
[pool.health]
check = "tcp"
interval = "1s"

[[authenticator]]
name = "tokens"
kind = "jwt"
issuer = "{issuer}"
jwks_url = "{issuer}/jwks.json"

[[route]]
name = "mcp"
path = "/mcp"
pool = "main"
auth = ["tokens"]
public_url = "{public_url}"
[route.oauth]
authorization_servers = ["{issuer}"]
scopes_supported = {scopes}
"#,
            backend = backend.addr(),
            issuer = auth.issuer,
            scopes = json!(SCOPES),
        );
        let edge = Edge::start_opts(&config, Opts { port: Some(port), ..Opts::default() });
        Stack { auth, backend, edge, public_url }
    }

    fn metadata_url(&self) -> String {
        self.edge.url("/.well-known/oauth-protected-resource/mcp")
    }

    /// The proxy still serves: ready, and still challenging a caller without a token.
    fn assert_alive(&mut self) {
        assert!(self.edge.proc.child.try_wait().expect("try_wait").is_none(), "mcp-edge exited:\n{}", self.edge.log());
        assert_eq!(http::try_status(self.edge.admin, "/readyz"), Some(200));
        assert_eq!(self.unauthenticated_initialize().status, 401);
    }

    fn unauthenticated_initialize(&self) -> http::Resp {
        let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#;
        http::post_mcp(self.edge.port, "/mcp", &[], init)
    }
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

/// The claims of a token the authorization server issued for this resource.
fn assert_token_for(claims: &Value, stack: &Stack) {
    assert_eq!(claims["iss"], stack.auth.issuer.as_str(), "{claims}");
    assert_eq!(claims["aud"], stack.public_url.as_str(), "the audience is the resource the client asked for");
    assert_eq!(claims["scope"], SCOPES.join(" "), "the scopes the challenge named: {claims}");
    assert!(claims["sub"].as_str().is_some_and(|s| !s.is_empty()), "{claims}");
}

#[test]
fn the_python_sdk_client_logs_in_with_oauth_and_calls_a_tool_through_the_proxy() {
    let peers = Peers::load();
    let mut stack = Stack::start(&peers);

    // No token: 401, and the challenge names the metadata document and the scopes.
    let r = stack.unauthenticated_initialize();
    assert_eq!(r.status, 401, "{}", r.text());
    let challenge = r.header("www-authenticate").expect("a challenge").to_owned();
    let want = format!("Bearer resource_metadata=\"{}\", scope=\"{}\"", stack.metadata_url(), SCOPES.join(" "));
    assert_eq!(challenge, want);

    let mut cmd = peers.script("PEERS_PY2", "py2_oauth_client.py");
    cmd.args(["--url", &stack.public_url, "--tool", "echo", "--args", r#"{"text":"past the edge"}"#, "--refresh"]);
    let r = run_json("py2_oauth_client.py", &mut cmd);

    // The client got in, listed the server's tools, called one, and again after a refresh.
    assert_eq!(r["call"], json!({"text": "past the edge", "is_error": false}), "{r}");
    assert_eq!(r["refreshed_call"], json!({"text": "past the edge", "is_error": false}), "{r}");
    assert_eq!(r["server_info"], "py2", "{r}");
    let tools = strings(&r["tools"]);
    assert!(tools.len() == 66 && tools.contains(&"echo"), "all three pages of tools: {r}");

    // What the SDK did, in order: 401, the metadata the challenge named, then the authorization
    // server; every MCP request after that carried the token.
    let seen = strings(&r["http"]);
    assert_eq!(seen[..2], ["POST /mcp 401", "GET /.well-known/oauth-protected-resource/mcp 200"], "{r}");
    let (before, after) = seen.split_at(seen.iter().position(|e| e.starts_with("POST /token 200")).expect("a token"));
    assert!(before.contains(&"GET /.well-known/oauth-authorization-server 200"), "{seen:?}");
    assert!(before.contains(&"POST /register 201"), "{seen:?}");
    let mcp: Vec<&&str> = after.iter().filter(|e| e.contains(" /mcp ")).collect();
    assert!(mcp.len() >= 4, "initialize, initialized, tools/list, tools/call: {seen:?}");
    assert!(mcp.iter().all(|e| e.ends_with(" bearer") && !e.contains(" 401")), "{seen:?}");

    // Two tokens (the code's, the refresh's), both for this resource, from this issuer.
    let claims = r["token_claims"].as_array().expect("claims");
    assert_eq!(claims.len(), 2, "{r}");
    for c in claims {
        assert_token_for(c, &stack);
    }
    assert_ne!(claims[0]["jti"], claims[1]["jti"], "the refresh issued a new token");

    // The authorization server saw a registration, an authorization request with PKCE S256
    // and `resource` = the public URL, and token requests that proved the verifier.
    let auth = &stack.auth;
    assert_eq!(auth.requests_to("POST", "/register").len(), 1);
    let authorize = auth.requests_to("GET", "/authorize");
    assert_eq!(authorize.len(), 1, "{authorize:?}");
    let p = &authorize[0]["params"];
    assert_eq!((&authorize[0]["status"], &p["code_challenge_method"]), (&json!(302), &json!("S256")), "{p}");
    assert_eq!(p["code_challenge"].as_str().map(str::len), Some(43), "a base64url SHA-256: {p}");
    assert_eq!(p["resource"], stack.public_url.as_str(), "RFC 8707: {p}");
    assert_eq!(p["scope"], SCOPES.join(" "), "{p}");
    let tokens = auth.requests_to("POST", "/token");
    let grants: Vec<(&str, u64)> = tokens
        .iter()
        .map(|t| (t["params"]["grant_type"].as_str().unwrap_or("?"), t["status"].as_u64().unwrap_or(0)))
        .collect();
    assert_eq!(grants, [("authorization_code", 200), ("refresh_token", 200)], "{tokens:?}");
    assert!(tokens[0]["params"]["code_verifier"].as_str().is_some_and(|v| v.len() >= 43), "{tokens:?}");
    assert!(tokens.iter().all(|t| t["params"]["resource"] == stack.public_url.as_str()), "{tokens:?}");
    assert!(!auth.requests_to("GET", "/jwks.json").is_empty(), "mcp-edge fetched the key set");

    // The backend served one session, from initialize to DELETE, across the refresh (the
    // new token names the same caller), and never saw a token.
    let received = stack.backend.received();
    assert!(received.iter().filter(|q| q["method"] == "POST").count() >= 5, "{received:?}");
    let sessions: std::collections::BTreeSet<&str> =
        received.iter().filter_map(|q| header(q, "mcp-session-id")).collect();
    assert_eq!(sessions.len(), 1, "{received:?}");
    assert!(received.iter().any(|q| q["method"] == "DELETE"), "the client ended its session: {received:?}");
    for q in &received {
        assert_eq!(header(q, "authorization"), None, "the backend got the caller's token: {q}");
    }
    stack.assert_alive();
}

#[test]
fn the_typescript_sdk_discovers_the_resource_and_its_authorization_server_and_logs_in() {
    let peers = Peers::load();
    let mut stack = Stack::start(&peers);

    let mut cmd = peers.script("PEERS_NODE", "ts_oauth_discovery.mjs");
    cmd.args(["--url", &stack.public_url, "--call", "whoami", "--timeout", "60"]);
    let r = run_json("ts_oauth_discovery.mjs", &mut cmd);

    // The 401's challenge, as the SDK parses it.
    assert_eq!(r["unauthenticated_status"], 401, "{r}");
    assert_eq!(r["challenge"]["resource_metadata"], stack.metadata_url().as_str(), "{r}");
    assert_eq!(r["challenge"]["scope"], SCOPES.join(" "), "{r}");
    assert_eq!(r["challenge"]["error"], Value::Null, "no credential was sent: {r}");

    // The same document from the challenge's URL and from the SDK's own well-known URL.
    let prm = &r["resource_metadata"];
    assert_eq!(prm["resource"], stack.public_url.as_str(), "{r}");
    assert_eq!(prm["authorization_servers"], json!([stack.auth.issuer]), "{r}");
    assert_eq!(prm["scopes_supported"], json!(SCOPES), "{r}");
    assert_eq!(prm["bearer_methods_supported"], json!(["header"]), "{r}");
    assert_eq!(r["resource_metadata_well_known"], *prm, "{r}");
    assert_eq!(r["selected_resource"], stack.public_url.as_str(), "the resource the SDK would send: {r}");

    // The authorization server it names, and its metadata.
    let asm = &r["authorization_server_metadata"];
    assert_eq!(r["authorization_server"], stack.auth.issuer.as_str(), "{r}");
    assert_eq!(asm["issuer"], stack.auth.issuer.as_str(), "{r}");
    assert_eq!(asm["token_endpoint"], format!("{}/token", stack.auth.issuer), "{r}");
    assert_eq!(asm["code_challenge_methods_supported"], json!(["S256"]), "{r}");
    assert_eq!(r["server_info"]["issuer"], stack.auth.issuer.as_str(), "discoverOAuthServerInfo: {r}");

    // And the SDK's own login (registration, PKCE, `resource`) ends in a tool call.
    let login = &r["login"];
    assert_eq!(login["call"], json!({"text": "py2", "is_error": false}), "{r}");
    assert_eq!(login["authorize_params"]["resource"], stack.public_url.as_str(), "{r}");
    assert_eq!(login["authorize_params"]["code_challenge_method"], "S256", "{r}");
    assert_token_for(&login["token_claims"][0], &stack);
    let seen = strings(&r["http"]);
    let after_login = &seen[seen.iter().position(|e| e.starts_with("POST /token 200")).expect("a token")..];
    assert!(after_login.contains(&"POST /mcp 200 bearer"), "{seen:?}");
    assert!(!after_login.iter().any(|e| e.starts_with("POST /mcp 401")), "{seen:?}");

    for q in &stack.backend.received() {
        assert_eq!(header(q, "authorization"), None, "the backend got the caller's token: {q}");
    }
    stack.assert_alive();
}
