//! TLS on a proxy listener, against the real binary with certificates made for each test:
//! requests proxied over TLS, SNI choosing the certificate, HTTP/2 by ALPN, client
//! certificates (mTLS), certificates swapped by reload under an open connection, the head
//! deadline covering the handshake and the request head inside TLS, plain HTTP refused.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::http::{self, Resp};
use common::recording::{self, Recording};
use common::tls::{self as tlsc, Ca, Issued};
use common::{free_port, wait_until, Edge, Mock, Opts, Proc, MCP_EDGE};

const LIST: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;

/// A proxy whose one listener speaks TLS with `a.test` (default, also 127.0.0.1) and
/// `b.test`, in front of a recording mock.
struct Tls {
    edge: Edge,
    backend: Recording,
    _mock: Mock,
    servers: Ca,
    clients: Ca,
    a: Issued,
    b: Issued,
    dir: tempfile::TempDir,
}

impl Tls {
    fn start(listener_extra: &str, proxy: &str) -> Tls {
        let dir = tempfile::tempdir().expect("tempdir");
        let servers = Ca::new(dir.path(), "servers");
        let clients = Ca::new(dir.path(), "clients");
        let a = servers.issue(dir.path(), "a", "a.test", &["a.test", "127.0.0.1"]);
        let b = servers.issue(dir.path(), "b", "b.test", &["b.test"]);
        let (mock, backend) = recording::mock("tls-backend");
        let port = free_port();
        let extra = listener_extra.replace("CLIENTS", &clients.pem.display().to_string());
        let proxy = format!("{proxy}\n{}", tlsc::listener_toml(port, &[&a, &b], &extra));
        let routes = "[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"main\"\n\n[[route]]\nname = \"raw\"\npath_prefix = \"/\"\npool = \"main\"\n";
        // No health check: the backend records client requests only.
        let body = format!("[[pool]]\nname = \"main\"\nbackends = [\"{}\"]\n\n{routes}", mock.addr());
        let edge = Edge::start_opts(&body, Opts { proxy: &proxy, port: Some(port), ..Opts::default() });
        Tls { edge, backend, _mock: mock, servers, clients, a, b, dir }
    }

    fn connect(&self, name: &str) -> BufReader<tlsc::TlsStream> {
        BufReader::new(
            tlsc::connect(self.edge.port, name, self.servers.client(None, &[b"http/1.1"])).expect("handshake"),
        )
    }
}

#[test]
fn a_request_over_tls_reaches_the_backend_as_sent() {
    let t = Tls::start("", "");
    let mut conn = t.connect("a.test");
    let r = tlsc::exchange(&mut conn, &tlsc::post("/mcp", LIST)).expect("response");
    assert_eq!(r.status, 200, "{}", r.text());
    let got = t.backend.wait_count(1);
    assert_eq!(got[0].body, LIST);
    assert_eq!(got[0].header("host"), Some("localhost"), "the loopback Host guard passes on a loopback TLS listener");
    let r = tlsc::exchange(&mut conn, &tlsc::post("/mcp", LIST)).expect("second response on the same connection");
    assert_eq!(r.status, 200);
    let rebinding =
        "POST /mcp HTTP/1.1\r\nHost: evil.example\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
    let r = tlsc::exchange(&mut conn, rebinding.as_bytes()).expect("response");
    assert_eq!(r.status, 403, "the DNS-rebinding guard still holds on TLS: {}", r.text());
}

#[test]
fn sni_chooses_the_certificate_and_no_name_gets_the_first() {
    let t = Tls::start("", "");
    let config = t.servers.client(None, &[]);
    for (name, want) in [("b.test", &t.b), ("a.test", &t.a), ("127.0.0.1", &t.a)] {
        let stream = tlsc::connect(t.edge.port, name, config.clone()).expect("handshake");
        assert!(tlsc::presented(&stream) == want.der, "{name} got the wrong certificate");
    }
}

#[test]
fn http2_is_offered_by_alpn_and_proxies_requests() {
    let t = Tls::start("", "");
    let out = Command::new("curl")
        .args(["-sS", "--http2", "--cacert"])
        .arg(&t.servers.pem)
        .args(["--resolve", &format!("a.test:{}:127.0.0.1", t.edge.port)])
        .args(["-H", "Content-Type: application/json", "-H", "Accept: application/json, text/event-stream"])
        .args(["-d", LIST, "-w", "\n%{http_version} %{http_code}"])
        .arg(format!("https://a.test:{}/mcp", t.edge.port))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with("\n2 200"), "curl over HTTP/2: {text} {}", String::from_utf8_lossy(&out.stderr));
    let got = t.backend.wait_count(1);
    assert_eq!(got[0].body, LIST, "the HTTP/2 request reached the backend");
}

#[test]
fn client_certificates_are_required_with_a_client_ca() {
    let t = Tls::start("client_ca_file = \"CLIENTS\"", "");
    let agent = t.clients.issue(t.dir.path(), "agent", "agent-7", &["agent.test"]);
    let mut ok = BufReader::new(
        tlsc::connect(t.edge.port, "a.test", t.servers.client(Some(&agent), &[b"http/1.1"])).expect("handshake"),
    );
    assert_eq!(tlsc::exchange(&mut ok, &tlsc::post("/mcp", LIST)).expect("response").status, 200);

    // TLS 1.3 reports the missing certificate after the client's handshake: at its first read.
    let anonymous = tlsc::connect(t.edge.port, "a.test", t.servers.client(None, &[b"http/1.1"]));
    assert!(anonymous.and_then(refused_read).is_err(), "a client without a certificate is refused");
    let stranger = t.servers.issue(t.dir.path(), "stranger", "stranger", &["stranger.test"]);
    let foreign = tlsc::connect(t.edge.port, "a.test", t.servers.client(Some(&stranger), &[b"http/1.1"]));
    assert!(foreign.and_then(refused_read).is_err(), "a certificate from another CA is refused");
    t.backend.assert_stays(1);
}

/// Sends a request and reads; Ok only if bytes came back.
fn refused_read(mut s: tlsc::TlsStream) -> std::io::Result<()> {
    s.write_all(&tlsc::post("/mcp", LIST))?;
    let mut buf = [0u8; 64];
    match s.read(&mut buf)? {
        0 => Err(std::io::ErrorKind::UnexpectedEof.into()),
        _ => Ok(()),
    }
}

#[test]
fn reload_swaps_certificates_for_new_connections_and_keeps_open_ones() {
    let t = Tls::start("", "");
    let mut open = t.connect("a.test");
    assert_eq!(tlsc::exchange(&mut open, &tlsc::post("/mcp", LIST)).expect("response").status, 200);
    let old = t.a.der.clone();

    let renewed = t.servers.issue(t.dir.path(), "a", "a.test", &["a.test", "127.0.0.1"]);
    let r = reload(&t.edge);
    assert_eq!(r.status, 200, "{}", r.text());
    let fresh = tlsc::connect(t.edge.port, "a.test", t.servers.client(None, &[])).expect("handshake");
    assert!(tlsc::presented(&fresh) == renewed.der && renewed.der != old, "new handshakes use the new certificate");
    let r = tlsc::exchange(&mut open, &tlsc::post("/mcp", LIST)).expect("the open connection survives the reload");
    assert_eq!(r.status, 200);

    std::fs::write(&renewed.key_file, "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
        .expect("break key");
    let r = reload(&t.edge);
    assert_eq!(r.status, 400, "a broken key fails the reload: {}", r.text());
    assert!(r.text().contains("proxy.tls.cert.key_file") && !r.text().contains("bm90IGEga2V5"), "{}", r.text());
    let still = tlsc::connect(t.edge.port, "a.test", t.servers.client(None, &[])).expect("handshake");
    assert!(tlsc::presented(&still) == renewed.der, "the running certificate stays");
}

fn reload(edge: &Edge) -> Resp {
    http::request(edge.admin, "POST", "/reload", &[], b"")
}

#[test]
fn a_client_that_stalls_the_handshake_is_closed_at_header_timeout() {
    let t = Tls::start("", "header_timeout = \"1s\"");
    let started = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", t.edge.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    s.write_all(&[0x16, 0x03, 0x01]).expect("the start of a ClientHello");
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    let waited = started.elapsed();
    assert_eq!(n, 0, "closed without an answer");
    assert!(waited >= Duration::from_millis(900) && waited < Duration::from_secs(5), "closed after {waited:?}");
    t.edge.wait_metric("mcp_edge_client_timeouts_total{phase=\"head\"} 1");
    t.edge.wait_metric("mcp_edge_tls_handshake_failures_total{reason=\"timeout\"} 1");
}

#[test]
fn a_slow_head_inside_tls_gets_408_over_tls() {
    let t = Tls::start("", "header_timeout = \"1s\"");
    let mut conn = t.connect("a.test");
    conn.get_mut().write_all(b"POST /mcp HTTP/1.1\r\nHost: localhost\r\n").expect("half a head");
    let started = Instant::now();
    let r = http::read_response(&mut conn);
    assert_eq!(r.status, 408, "{}", r.text());
    assert!(started.elapsed() < Duration::from_secs(5));
    t.backend.assert_nothing();
}

#[test]
fn a_request_rustls_already_decrypted_is_served_without_waiting_on_the_socket() {
    // Two requests in one TLS record. The first fills exactly the 4 KiB an idle connection
    // reads and is answered by the proxy itself (403), so Pingora never reads past it: the
    // second stays decrypted inside rustls while the socket has nothing more to read.
    let t = Tls::start("", "keepalive_timeout = \"10s\"");
    let mut conn = t.connect("a.test");
    let start = "GET /first HTTP/1.1\r\nHost: evil.example\r\nX-Pad: ";
    let pad = "x".repeat(4096 - start.len() - 4);
    let both = format!("{start}{pad}\r\n\r\nGET /second HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let started = Instant::now();
    conn.get_mut().write_all(both.as_bytes()).expect("write");
    assert_eq!(http::read_response(&mut conn).status, 403);
    let _second = http::read_response(&mut conn);
    assert!(started.elapsed() < Duration::from_secs(3), "the second waited {:?}", started.elapsed());
    assert_eq!(t.backend.wait_count(1)[0].target, "/second");
}

#[test]
fn plain_http_to_a_tls_listener_gets_a_readable_400() {
    let t = Tls::start("", "");
    let r = http::raw(t.edge.port, b"GET /mcp HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("TLS"), "{}", r.text());
    t.backend.assert_nothing();
    t.edge.wait_metric("mcp_edge_tls_handshake_failures_total{reason=\"plaintext\"} 1");
}

#[test]
fn check_names_a_bad_key_file_with_its_place_and_never_its_contents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new(dir.path(), "servers");
    let a = ca.issue(dir.path(), "a", "a.test", &["a.test"]);
    let other = ca.issue(dir.path(), "other", "other.test", &["other.test"]);
    let config = dir.path().join("edge.toml");
    let toml = format!(
        "[proxy]\nlisten = [\"127.0.0.1:8443\"]\n[[proxy.tls]]\nlisten = \"127.0.0.1:8443\"\n[[proxy.tls.cert]]\ncert_file = \"{}\"\nkey_file = \"{}\"\n\n[[pool]]\nname = \"p\"\nbackends = [\"127.0.0.1:1\"]\n[[route]]\nname = \"r\"\npath = \"/mcp\"\npool = \"p\"\n",
        a.cert_file.display(),
        other.key_file.display()
    );
    std::fs::write(&config, toml).expect("config");
    let out = Command::new(MCP_EDGE).args(["check", "--config"]).arg(&config).output().expect("check");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(text.contains("edge.toml:7:12: proxy.tls.cert.key_file: does not match the certificate"), "{text}");
    let key = std::fs::read_to_string(&other.key_file).expect("key");
    let body = key.lines().nth(1).expect("a base64 line");
    assert!(!text.contains(body), "the key is never echoed");
}

#[test]
fn a_binary_upgrade_hands_the_tls_listener_over() {
    let mut t = Tls::start("", "");
    let mut before = t.connect("a.test");
    assert_eq!(tlsc::exchange(&mut before, &tlsc::post("/mcp", LIST)).expect("response").status, 200);
    let log = std::fs::File::create(t.dir.path().join("new.log")).expect("log");
    let mut new = Proc::spawn(
        "mcp-edge (new)",
        Command::new(MCP_EDGE).arg("--upgrade").arg("--config").arg(&t.edge.config).stderr(log),
    );
    let upgrade_sock = t.edge.dir.path().join("upgrade.sock");
    wait_until("the new process on the upgrade socket", Duration::from_secs(10), || upgrade_sock.exists());
    t.edge.proc.signal("QUIT");
    let exited = t.edge.proc.wait_exit(Duration::from_secs(30)).expect("the old process exits after handing over");
    assert_eq!(exited.code(), Some(0));
    let mut after = t.connect("b.test");
    assert!(tlsc::presented(after.get_ref()) == t.b.der, "the new process serves the same certificates");
    assert_eq!(tlsc::exchange(&mut after, &tlsc::post("/mcp", LIST)).expect("response").status, 200);
    assert!(new.wait_exit(Duration::from_millis(10)).is_none(), "the new process keeps running");
}

/// A client certificate names the caller (`kind = "client_cert"`): its URI SAN (a SPIFFE
/// id) is the identity the backend is told about; a certificate outside `allow`, or none,
/// is not admitted.
#[test]
fn a_client_certificate_names_the_caller() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (servers, clients) = (Ca::new(dir.path(), "servers"), Ca::new(dir.path(), "clients"));
    let a = servers.issue(dir.path(), "a", "a.test", &["a.test", "127.0.0.1"]);
    let (mock, backend) = recording::mock("mtls-backend");
    let port = free_port();
    let listener = format!("client_ca_file = \"{}\"\nrequire_client_cert = false", clients.pem.display());
    let proxy = tlsc::listener_toml(port, &[&a], &listener);
    let body = format!(
        "[[authenticator]]\nname = \"agents\"\nkind = \"client_cert\"\nidentity = \"uri\"\nallow = [\"spiffe://acme.example/agent/*\"]\ntenant = \"acme\"\nroles = [\"agent\"]\n\n[[pool]]\nname = \"main\"\nbackends = [\"{}\"]\n\n[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"main\"\nauth = [\"agents\"]\nforward_identity = {{ id = \"X-MCP-Identity\", tenant = \"X-MCP-Tenant\" }}\n",
        mock.addr()
    );
    let edge = Edge::start_opts(&body, Opts { proxy: &proxy, port: Some(port), ..Opts::default() });
    let send = |cert: Option<&Issued>| {
        let stream = tlsc::connect(edge.port, "a.test", servers.client(cert, &[b"http/1.1"])).expect("handshake");
        tlsc::exchange(&mut BufReader::new(stream), &tlsc::post("/mcp", LIST)).expect("response")
    };
    let agent = clients.issue(dir.path(), "agent", "agent-7", &["spiffe://acme.example/agent/7"]);
    let r = send(Some(&agent));
    assert_eq!(r.status, 200, "{}", r.text());
    let got = backend.wait_count(1);
    assert_eq!(got[0].header("x-mcp-identity"), Some("spiffe://acme.example/agent/7"), "{got:#?}");
    assert_eq!(got[0].header("x-mcp-tenant"), Some("acme"));
    let other = clients.issue(dir.path(), "other", "other-1", &["spiffe://acme.example/other/1"]);
    assert_eq!(send(Some(&other)).status, 401, "outside allow");
    assert_eq!(send(None).status, 401, "no certificate");
    backend.assert_stays(1);
    drop(mock);
}
