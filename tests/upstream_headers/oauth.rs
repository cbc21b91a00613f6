//! `[pool.oauth]`: the proxy's own token for a pool's backends, from a token endpoint the test
//! runs (the client credentials grant). The backend gets that token and never the caller's;
//! the token is fetched once and renewed before it expires; while the endpoint fails the
//! current token serves until it expires, then requests get 503 (never a request without a
//! token); health probes carry it; neither the secret nor the token is ever shown.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;

use crate::common::http::get;
use crate::common::{wait_until, Edge, Mock, Opts};
use crate::story::*;

const SECRET: &str = "client-secret-5519";
const SECRET_ENV: [(&str, &str); 1] = [("MCP_EDGE_TEST_CLIENT_SECRET", SECRET)];

/// A token endpoint: answers `tok-1`, `tok-2`, ... with `expires_in` seconds, or `status`
/// with an error body; records each request's head and body.
struct TokenServer {
    port: u16,
    status: Arc<AtomicU16>,
    expires_in: Arc<AtomicU64>,
    issued: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<(String, String)>>>,
}

impl TokenServer {
    fn start(expires_in: u64) -> TokenServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = TokenServer {
            port,
            status: Arc::new(AtomicU16::new(200)),
            expires_in: Arc::new(AtomicU64::new(expires_in)),
            issued: Arc::new(AtomicUsize::new(0)),
            requests: Arc::new(Mutex::new(Vec::new())),
        };
        let (status, expires, issued, requests) =
            (server.status.clone(), server.expires_in.clone(), server.issued.clone(), server.requests.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (head, body) = read_request(&conn);
                requests.lock().expect("requests").push((head, body));
                let answer = match status.load(SeqCst) {
                    200 => {
                        let n = issued.fetch_add(1, SeqCst) + 1;
                        format!(
                            r#"{{"access_token":"tok-{n}","token_type":"Bearer","expires_in":{}}}"#,
                            expires.load(SeqCst)
                        )
                    }
                    _ => r#"{"error":"temporarily_unavailable"}"#.to_owned(),
                };
                let _ = write!(
                    &conn,
                    "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    status.load(SeqCst),
                    answer.len()
                );
            }
        });
        server
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/oauth/token", self.port)
    }

    fn hits(&self) -> usize {
        self.requests.lock().expect("requests").len()
    }

    fn first(&self) -> (String, String) {
        self.requests.lock().expect("requests").first().cloned().unwrap_or_default()
    }
}

/// The value of header `name` in a recorded head ("" when absent).
fn field(head: &str, name: &str) -> String {
    head.lines()
        .find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_owned()))
        .unwrap_or_default()
}

/// One request's head and body, read by its Content-Length.
fn read_request(conn: &std::net::TcpStream) -> (String, String) {
    let mut reader = BufReader::new(conn);
    let (mut head, mut line, mut length) = (String::new(), String::new(), 0);
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        head.push_str(&line);
        line.clear();
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    (head, String::from_utf8_lossy(&body).into_owned())
}

fn oauth(tokens: &TokenServer, extra: &str) -> String {
    format!(
        "[pool.oauth]\ntoken_url = \"{}\"\nclient_id = \"mcp-edge\"\nclient_secret_env = \"MCP_EDGE_TEST_CLIENT_SECRET\"\nscope = \"tools:call\"\nresource = \"https://tools.example/mcp\"\n{extra}",
        tokens.url()
    )
}

fn edge_with(b: &Backend, tokens: &TokenServer) -> Edge {
    Edge::start_opts(
        &format!("{}{}{}", pool(b), oauth(tokens, ""), route("")),
        Opts { env: &SECRET_ENV, ..Opts::default() },
    )
}

fn authorization_received(b: &Backend, n: usize) -> Vec<Vec<String>> {
    b.rec.wait_count(n).iter().map(|r| r.header_all("authorization").into_iter().map(str::to_owned).collect()).collect()
}

#[test]
fn the_backend_gets_the_proxys_token_never_the_callers() {
    let b = backend("main");
    let tokens = TokenServer::start(3600);
    let edge = edge_with(&b, &tokens);
    for n in 0..3 {
        let r = post(&edge, &[("Authorization", "Bearer the-callers-own-token")]);
        assert_eq!(r.status, 200, "request {n}: {}", r.text());
    }
    assert_eq!(authorization_received(&b, 3), vec![vec!["Bearer tok-1".to_owned()]; 3], "the proxy's token, once");
    assert_eq!(tokens.hits(), 1, "one token request for three calls");
    let (head, form) = tokens.first();
    assert!(head.starts_with("POST /oauth/token "), "{head}");
    assert_eq!(field(&head, "content-type"), "application/x-www-form-urlencoded", "{head}");
    assert_eq!(form, "grant_type=client_credentials&scope=tools%3Acall&resource=https%3A%2F%2Ftools.example%2Fmcp");
    let authorization = field(&head, "authorization");
    let basic = authorization.strip_prefix("Basic ").unwrap_or_default();
    let decoded = base64::engine::general_purpose::STANDARD.decode(basic).unwrap_or_default();
    assert_eq!(String::from_utf8_lossy(&decoded), format!("mcp-edge:{SECRET}"), "client_secret_basic");
    let shown = get(edge.admin, "/config").text() + &get(edge.admin, "/status").text() + &edge.metrics() + &edge.log();
    assert!(!shown.contains(SECRET) && !shown.contains("tok-1"), "the secret or the token was shown: {shown}");
    assert!(edge.metrics().contains("mcp_edge_upstream_token_fetches_total{pool=\"main\",result=\"ok\"} 1"));
}

#[test]
fn client_secret_post_sends_the_credentials_in_the_form() {
    let b = backend("main");
    let tokens = TokenServer::start(3600);
    let body = format!("{}{}{}", pool(&b), oauth(&tokens, "client_auth = \"post\"\n"), route(""));
    let edge = Edge::start_opts(&body, Opts { env: &SECRET_ENV, ..Opts::default() });
    assert_eq!(post(&edge, &[]).status, 200);
    let (head, form) = tokens.first();
    assert_eq!(field(&head, "authorization"), "", "{head}");
    assert!(form.ends_with(&format!("&client_id=mcp-edge&client_secret={SECRET}")), "{form}");
}

#[test]
fn a_token_is_renewed_before_it_expires_and_no_request_waits_without_one() {
    let b = backend("main");
    let tokens = TokenServer::start(2);
    let edge = edge_with(&b, &tokens);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sent = 0;
    while tokens.hits() < 2 && Instant::now() < deadline {
        let r = post(&edge, &[]);
        assert_eq!(r.status, 200, "every request has a token: {}", r.text());
        sent += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(post(&edge, &[]).status, 200);
    let seen = authorization_received(&b, sent + 1);
    assert!(seen.iter().all(|v| v.len() == 1 && v[0].starts_with("Bearer tok-")), "{seen:?}");
    assert_eq!(seen.last().map(|v| v[0].as_str()), Some("Bearer tok-2"), "renewed: {seen:?}");
}

#[test]
fn while_the_token_endpoint_fails_the_token_serves_until_it_expires_then_requests_get_503() {
    let b = backend("main");
    let tokens = TokenServer::start(3);
    let edge = edge_with(&b, &tokens);
    assert_eq!(post(&edge, &[]).status, 200);
    tokens.status.store(500, SeqCst);
    let refused = wait_until_status(&edge, 503, Duration::from_secs(10));
    assert!(refused.text().contains("[pool.oauth]"), "{}", refused.text());
    let seen = authorization_received(&b, 1);
    assert!(seen.iter().all(|v| v == &["Bearer tok-1".to_owned()]), "no request went without the token: {seen:?}");
    assert!(seen.len() > 1, "tok-1 served while the endpoint failed: {seen:?}");
    let metrics = edge.metrics();
    assert!(metrics.contains("mcp_edge_upstream_token_fetches_total{pool=\"main\",result=\"refused\"}"), "{metrics}");
    assert!(metrics.contains("mcp_edge_rejections_total{reason=\"upstream_credential\"}"), "{metrics}");
    tokens.status.store(200, SeqCst);
    wait_until_status(&edge, 200, Duration::from_secs(10));
    let last = b.rec.lines().last().map(|r| r.header_all("authorization").join(",")).unwrap_or_default();
    assert_eq!(last, "Bearer tok-2");
}

/// Posts every 100 ms until one answer has `status`; returns it.
fn wait_until_status(edge: &Edge, status: u16, within: Duration) -> crate::common::raw::RawResponse {
    let deadline = Instant::now() + within;
    loop {
        let r = post(edge, &[]);
        if r.status == status || Instant::now() > deadline {
            assert_eq!(r.status, status, "{}", r.text());
            return r;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A backend that answers 401 without the proxy's token becomes healthy only if the probes
/// of `check` send it.
fn probes_carry_the_token(check: &str) {
    let tokens = TokenServer::start(3600);
    let mock = Mock::start_with("strict", false, &["--require-header", "Authorization=Bearer tok-1"]);
    let body = format!(
        "[[pool]]\nname = \"main\"\nbackends = [\"{}\"]\npath = \"/mcp\"\n{}[pool.health]\ncheck = \"{check}\"\npath = \"/healthz\"\ninterval = \"200ms\"\n{}",
        mock.addr(),
        oauth(&tokens, ""),
        route("")
    );
    let edge = Edge::start_opts(&body, Opts { env: &SECRET_ENV, ..Opts::default() });
    wait_until(&format!("the {check} probes to carry the token"), Duration::from_secs(5), || {
        let status = get(edge.admin, "/status").json();
        status["pools"][0]["backends"][0]["healthy"] == true
    });
    assert_eq!(post(&edge, &[]).status, 200);
}

#[test]
fn mcp_health_probes_carry_the_token() {
    probes_carry_the_token("mcp");
}

#[test]
fn http_health_probes_carry_the_token() {
    probes_carry_the_token("http");
}

/// A route admitting JWTs (`tokens`) and API keys (`keys`) to a pool whose backends get a
/// token exchanged for the caller's own (RFC 8693).
fn exchange_edge(b: &Backend, tokens: &TokenServer, dir: &std::path::Path, issuer: &Issuer) -> Edge {
    let auth = jwt_authenticator(&jwks_file(dir, &[issuer.jwk()]), "")
        + &api_keys("", &[key_entry("ci-bot", "acme", "api-key-0001", "")]);
    let body = format!(
        "{auth}{}{}{}",
        pool(b),
        oauth(tokens, "grant = \"token_exchange\"\n"),
        route(&format!("auth = [\"tokens\", \"keys\"]\npublic_url = \"{PUBLIC_URL}\""))
    );
    Edge::start_opts(&body, Opts { env: &SECRET_ENV, ..Opts::default() })
}

#[test]
fn token_exchange_gives_each_caller_its_own_token_once_and_never_forwards_theirs() {
    let b = backend("main");
    let tokens = TokenServer::start(3600);
    let dir = tempfile::tempdir().expect("tempdir");
    let issuer = Issuer::new("k1");
    let edge = exchange_edge(&b, &tokens, dir.path(), &issuer);
    let (alice, bob) = (issuer.sign(&issuer.claims("alice", "acme")), issuer.sign(&issuer.claims("bob", "acme")));
    for caller in [&alice, &alice, &bob, &alice] {
        let r = post(&edge, &[("Authorization", &bearer(caller))]);
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let seen: Vec<String> = authorization_received(&b, 4).into_iter().map(|v| v.join(",")).collect();
    assert_eq!(seen, ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2", "Bearer tok-1"], "one exchange per caller");
    assert_eq!(tokens.hits(), 2);
    let (head, form) = tokens.first();
    assert!(field(&head, "authorization").starts_with("Basic "), "the proxy authenticates as its client: {head}");
    let expected = form_of(&[
        ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
        ("subject_token", &alice),
        ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
        ("requested_token_type", "urn:ietf:params:oauth:token-type:access_token"),
        ("scope", "tools:call"),
        ("resource", "https://tools.example/mcp"),
    ]);
    assert_eq!(form, expected);
    let shown = get(edge.admin, "/config").text() + &edge.metrics() + &edge.log();
    assert!(!shown.contains(&alice) && !shown.contains("tok-1"), "a caller's or an exchanged token was shown");
}

#[test]
fn token_exchange_refuses_a_caller_without_a_bearer_token() {
    let b = backend("main");
    let tokens = TokenServer::start(3600);
    let dir = tempfile::tempdir().expect("tempdir");
    let edge = exchange_edge(&b, &tokens, dir.path(), &Issuer::new("k1"));
    let r = post(&edge, &[("Authorization", "Bearer api-key-0001")]);
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("token exchange"), "{}", r.text());
    b.rec.assert_stays(0);
    assert_eq!(tokens.hits(), 0, "nothing to exchange");
}

fn form_of(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={}", form_encode(v))).collect::<Vec<_>>().join("&")
}

fn form_encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => (b as char).to_string(),
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
