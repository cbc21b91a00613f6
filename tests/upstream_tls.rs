//! TLS from the proxy to its backends: a pool's own CA bundle verifies the backend, and its
//! client certificate gets it past a backend that requires one. The backend here is a second
//! mcp-edge with a TLS listener that requires client certificates, in front of a recording mock.

mod common;

use common::http::{post_mcp, Resp};
use common::recording::{self, Recording};
use common::tls::{listener_toml, Ca, Issued};
use common::{free_port, Edge, Mock, Opts};

const LIST: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;

struct Backend {
    edge: Edge,
    recording: Recording,
    _mock: Mock,
}

/// A TLS backend for `a.test` that only lets in clients with a certificate from `clients`.
fn backend(server: &Issued, clients: &Ca) -> Backend {
    let (mock, recording) = recording::mock("behind-tls");
    let port = free_port();
    let proxy = listener_toml(port, &[server], &format!("client_ca_file = \"{}\"", clients.pem.display()));
    let body = format!(
        "[[pool]]\nname = \"mock\"\nbackends = [\"{}\"]\n\n[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"mock\"\n",
        mock.addr()
    );
    let edge = Edge::start_opts(&body, Opts { proxy: &proxy, port: Some(port), ..Opts::default() });
    Backend { edge, recording, _mock: mock }
}

/// A plain front proxy whose pool reaches `to` over TLS with `tls_lines` (ca_file, client cert).
fn front(to: &Backend, tls_lines: &str) -> Edge {
    let body = format!(
        "[[pool]]\nname = \"up\"\nbackends = [\"127.0.0.1:{}\"]\ntls = true\nsni = \"a.test\"\n{tls_lines}\n[pool.health]\ncheck = \"none\"\n\n[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"up\"\n",
        to.edge.port
    );
    Edge::start(&body)
}

fn call(edge: &Edge) -> Resp {
    post_mcp(edge.port, "/mcp", &[], LIST)
}

#[test]
fn a_pool_verifies_its_backend_with_its_ca_and_presents_its_client_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (servers, clients) = (Ca::new(dir.path(), "servers"), Ca::new(dir.path(), "clients"));
    let server = servers.issue(dir.path(), "a", "a.test", &["a.test"]);
    let proxy_cert = clients.issue(dir.path(), "front", "front-proxy", &["front.test"]);
    let back = backend(&server, &clients);
    let with = |ca: &Ca, cert: Option<&Issued>| {
        let mut lines = format!("ca_file = \"{}\"\n", ca.pem.display());
        if let Some(c) = cert {
            lines += &format!(
                "client_cert_file = \"{}\"\nclient_key_file = \"{}\"\n",
                c.cert_file.display(),
                c.key_file.display()
            );
        }
        lines
    };

    let good = front(&back, &with(&servers, Some(&proxy_cert)));
    let r = call(&good);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(back.recording.wait_count(1)[0].body, LIST);

    let no_client_cert = front(&back, &with(&servers, None));
    assert_eq!(call(&no_client_cert).status, 502, "the backend refuses a proxy without a client certificate");
    let wrong_ca = front(&back, &with(&clients, Some(&proxy_cert)));
    assert_eq!(call(&wrong_ca).status, 502, "a backend certificate from a CA the pool does not trust is refused");
    back.recording.assert_stays(1);
}
