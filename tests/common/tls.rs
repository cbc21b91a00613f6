//! TLS for the tests: a throwaway CA that issues server and client certificates (written as
//! PEM files for the config), and a blocking rustls client that says which certificate the
//! server presented and speaks HTTP/1.1 through the `http` helpers.

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::http::{read_response, Resp};

pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// A certificate authority living in `dir`.
pub struct Ca {
    cert: Certificate,
    key: KeyPair,
    pub pem: PathBuf,
}

/// A certificate the CA issued, with its files.
pub struct Issued {
    pub der: CertificateDer<'static>,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    key_der: Vec<u8>,
}

impl Ca {
    pub fn new(dir: &Path, name: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("CA cert");
        let pem = dir.join(format!("{name}.pem"));
        std::fs::write(&pem, cert.pem()).expect("write CA");
        Ca { cert, key, pem }
    }

    /// A certificate for `names` (DNS names, IP addresses or `scheme://` URIs), files named
    /// after `file`.
    pub fn issue(&self, dir: &Path, file: &str, common_name: &str, names: &[&str]) -> Issued {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.subject_alt_names = names
            .iter()
            .map(|n| match n.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) if n.contains("://") => SanType::URI((*n).try_into().expect("uri")),
                Err(_) => SanType::DnsName((*n).try_into().expect("dns name")),
            })
            .collect();
        params.distinguished_name.push(DnType::CommonName, common_name);
        let cert = params.signed_by(&key, &self.cert, &self.key).expect("issue");
        let (cert_file, key_file) = (dir.join(format!("{file}.pem")), dir.join(format!("{file}.key")));
        std::fs::write(&cert_file, cert.pem()).expect("write cert");
        std::fs::write(&key_file, key.serialize_pem()).expect("write key");
        Issued { der: cert.der().clone(), cert_file, key_file, key_der: key.serialize_der() }
    }

    /// A client trusting this CA only, offering `alpn`, with `client` as its certificate.
    pub fn client(&self, client: Option<&Issued>, alpn: &[&[u8]]) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert.der().clone()).expect("root");
        let builder = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots);
        let mut config = match client {
            None => builder.with_no_client_auth(),
            Some(c) => builder
                .with_client_auth_cert(vec![c.der.clone()], PrivateKeyDer::try_from(c.key_der.clone()).expect("key"))
                .expect("client cert"),
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

/// `[[proxy.tls]]` for the listener on `port` with `certs` (the first is the default).
pub fn listener_toml(port: u16, certs: &[&Issued], extra: &str) -> String {
    let mut out = format!("[[proxy.tls]]\nlisten = \"127.0.0.1:{port}\"\n{extra}\n");
    for c in certs {
        out.push_str(&format!(
            "[[proxy.tls.cert]]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            c.cert_file.display(),
            c.key_file.display()
        ));
    }
    out
}

/// Connects and completes the handshake for `name` (an IP address sends no SNI).
pub fn connect(port: u16, name: &str, config: Arc<ClientConfig>) -> std::io::Result<TlsStream> {
    let server_name = ServerName::try_from(name.to_owned()).expect("server name");
    let conn = ClientConnection::new(config, server_name).map_err(std::io::Error::other)?;
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut stream = StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// The leaf certificate the server presented.
pub fn presented(stream: &TlsStream) -> CertificateDer<'static> {
    stream.conn.peer_certificates().and_then(|c| c.first()).expect("a server certificate").clone()
}

/// One request on a kept-alive TLS connection, and its response.
pub fn exchange(reader: &mut BufReader<TlsStream>, request: &[u8]) -> std::io::Result<Resp> {
    reader.get_mut().write_all(request)?;
    reader.get_mut().flush()?;
    Ok(read_response(reader))
}

/// A keep-alive POST of `body` to `path` with `Host: localhost`.
pub fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
