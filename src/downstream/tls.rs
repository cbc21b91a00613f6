//! TLS on proxy listeners: the rustls server configuration of one listener (certificates
//! chosen by SNI, optional client-certificate verification, ALPN `h2` and `http/1.1`), the
//! handshake of one accepted connection under its head deadline, and what a verified client
//! certificate says ([`PeerCert`]) for the proxy to read.
//!
//! Certificates live in the config snapshot ([`TlsServer`] inside `[[proxy.tls]]`): a reload
//! that loads new ones swaps the snapshot, so new handshakes use them while open connections
//! keep the session they have. Reading and checking the files is `config::tls`; the byte
//! stream after the handshake is [`super::transport`].

use std::sync::{Arc, OnceLock};

use pingora::protocols::tls::SslDigest;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio::time::Instant;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::transport::Tls;

/// The first byte of every TLS connection (a handshake record).
const HANDSHAKE_RECORD: u8 = 0x16;

/// Written to a client that speaks plain HTTP to a TLS listener (as nginx does), so it learns
/// why instead of seeing a reset.
const PLAINTEXT_REPLY: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 45\r\nCache-Control: no-store\r\nConnection: close\r\n\r\nThis listener speaks TLS: use https:// here.\n";

/// The crypto rustls uses here: ring, the provider Pingora's `rustls` feature builds.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    Arc::clone(PROVIDER.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())))
}

/// One certificate chain with its key and the server names it serves (from its SANs).
#[derive(Debug)]
pub struct ServerCert {
    pub names: Vec<String>,
    pub key: Arc<CertifiedKey>,
}

/// One TLS listener's rustls configuration, as loaded from its files.
#[derive(Clone)]
pub struct TlsServer {
    config: Arc<ServerConfig>,
    /// SHA-256 over every file it was built from: equal files, equal servers (for reload's
    /// change list); never shown.
    fingerprint: [u8; 32],
    names: Vec<String>,
}

impl TlsServer {
    /// `certs`: the first one is the default when no name matches. `client_roots`: verify
    /// client certificates against these (required unless `require_client_cert` is false).
    pub fn build(
        certs: Vec<ServerCert>,
        client_roots: Option<RootCertStore>,
        require_client_cert: bool,
        fingerprint: [u8; 32],
    ) -> Result<TlsServer, String> {
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let builder = match client_roots {
            None => builder.with_no_client_auth(),
            Some(roots) => {
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
                let verifier = if require_client_cert { verifier } else { verifier.allow_unauthenticated() };
                builder.with_client_cert_verifier(verifier.build().map_err(|e| e.to_string())?)
            }
        };
        let names = certs.iter().flat_map(|c| c.names.iter().cloned()).collect();
        let mut config = builder.with_cert_resolver(Arc::new(Sni(certs)));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsServer { config: Arc::new(config), fingerprint, names })
    }

    /// The server names its certificates cover (for `/config`).
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

impl PartialEq for TlsServer {
    fn eq(&self, other: &TlsServer) -> bool {
        self.fingerprint == other.fingerprint
    }
}

impl std::fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServer").field("names", &self.names).finish_non_exhaustive()
    }
}

/// Picks the certificate by SNI: an exact name, then a `*.` wildcard one label deep, else the
/// first certificate.
#[derive(Debug)]
struct Sni(Vec<ServerCert>);

impl ResolvesServerCert for Sni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let chosen = hello.server_name().and_then(|name| {
            let wildcard = name.split_once('.').map(|(_, parent)| parent);
            let covers = |n: &String| {
                n.eq_ignore_ascii_case(name)
                    || n.strip_prefix("*.").is_some_and(|p| wildcard.is_some_and(|w| p.eq_ignore_ascii_case(w)))
            };
            self.0
                .iter()
                .find(|c| c.names.iter().any(|n| n.eq_ignore_ascii_case(name)))
                .or_else(|| self.0.iter().find(|c| c.names.iter().any(covers)))
        });
        chosen.or(self.0.first()).map(|c| Arc::clone(&c.key))
    }
}

/// What a verified client certificate says, for identity and policy. Never logged whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCert {
    /// The subject as RFC 4514 text, e.g. `CN=agent-7,O=Acme`.
    pub subject: String,
    /// The subject's first common name.
    pub cn: Option<String>,
    /// Subject alternative names: `DNS:…`, `URI:…` (SPIFFE ids), `email:…`, `IP:…`.
    pub sans: Vec<String>,
}

/// Why a connection did not become a TLS session.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("TLS handshake not finished within proxy.header_timeout")]
    TimedOut,
    #[error("plain HTTP sent to a TLS listener: answered 400")]
    Plaintext,
    #[error("TLS handshake failed: {0}")]
    Failed(std::io::Error),
}

impl Refused {
    /// The metric label.
    pub fn as_str(&self) -> &'static str {
        match self {
            Refused::TimedOut => "timeout",
            Refused::Plaintext => "plaintext",
            Refused::Failed(_) => "failed",
        }
    }
}

/// The TLS handshake of an accepted connection, finished by `deadline` (the head deadline:
/// the handshake is part of what a client owes before its first request).
pub async fn accept(tcp: TcpStream, server: &TlsServer, deadline: Instant) -> Result<Box<Tls>, Refused> {
    let handshake = async {
        let mut first = [0u8; 1];
        // One peek per connection: a plain HTTP request gets an answer it can read.
        if tcp.peek(&mut first).await.map_err(Refused::Failed)? == 1 && first[0] != HANDSHAKE_RECORD {
            let _ = tcp.try_write(PLAINTEXT_REPLY);
            return Err(Refused::Plaintext);
        }
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&server.config));
        acceptor.accept(tcp).await.map_err(Refused::Failed)
    };
    let stream = tokio::time::timeout_at(deadline, handshake).await.map_err(|_| Refused::TimedOut)??;
    let (_, session) = stream.get_ref();
    let h2 = session.alpn_protocol() == Some(b"h2");
    let leaf = session.peer_certificates().and_then(|certs| certs.first());
    let parsed = leaf.and_then(|der| X509Certificate::from_der(der).ok().map(|(_, cert)| cert));
    let cipher = session.negotiated_cipher_suite().and_then(|s| s.suite().as_str()).unwrap_or_default();
    let version = session.protocol_version().and_then(|v| v.as_str()).unwrap_or_default();
    let organization = parsed
        .as_ref()
        .and_then(|c| c.subject().iter_organization().next().and_then(|o| o.as_str().ok()).map(str::to_owned));
    let serial = parsed.as_ref().map(|c| c.raw_serial_as_string());
    let cert_digest = leaf.map(|der| Sha256::digest(der).to_vec()).unwrap_or_default();
    let digest = Arc::new(SslDigest::new(cipher, version, organization, serial, cert_digest));
    let peer = parsed.as_ref().map(|c| Arc::new(peer_cert(c)));
    Ok(Box::new(Tls { stream, digest, h2, peer }))
}

fn peer_cert(cert: &X509Certificate<'_>) -> PeerCert {
    let sans = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|ext| ext.value.general_names.iter().filter_map(san).collect())
        .unwrap_or_default();
    let cn = cert.subject().iter_common_name().next().and_then(|n| n.as_str().ok()).map(str::to_owned);
    PeerCert { subject: cert.subject().to_string(), cn, sans }
}

fn san(name: &GeneralName<'_>) -> Option<String> {
    match name {
        GeneralName::DNSName(n) => Some(format!("DNS:{n}")),
        GeneralName::URI(u) => Some(format!("URI:{u}")),
        GeneralName::RFC822Name(e) => Some(format!("email:{e}")),
        GeneralName::IPAddress(ip) => match ip.len() {
            4 => <[u8; 4]>::try_from(*ip).ok().map(|b| format!("IP:{}", std::net::Ipv4Addr::from(b))),
            16 => <[u8; 16]>::try_from(*ip).ok().map(|b| format!("IP:{}", std::net::Ipv6Addr::from(b))),
            _ => None,
        },
        _ => None,
    }
}

tokio::task_local! {
    static PEER: Option<Arc<PeerCert>>;
}

/// Runs `f` (one request, HTTP/1 or one HTTP/2 stream) with the connection's client
/// certificate readable through [`peer`].
pub async fn scope<F: std::future::Future>(peer: Option<Arc<PeerCert>>, f: F) -> F::Output {
    PEER.scope(peer, f).await
}

/// The verified client certificate of the connection the current request came on (mTLS);
/// None on plain listeners, without `client_ca_file`, or when the client sent none.
pub fn peer() -> Option<Arc<PeerCert>> {
    PEER.try_with(Clone::clone).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use std::time::Duration;

    fn issue(
        name: &str,
        sans: Vec<SanType>,
        ca: Option<(&rcgen::Certificate, &KeyPair)>,
    ) -> (rcgen::Certificate, KeyPair) {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.distinguished_name.push(DnType::OrganizationName, "Acme");
        params.subject_alt_names = sans;
        let cert = match ca {
            None => {
                params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                params.self_signed(&key)
            }
            Some((ca, ca_key)) => params.signed_by(&key, ca, ca_key),
        };
        (cert.expect("cert"), key)
    }

    fn der_key(key: &KeyPair) -> PrivateKeyDer<'static> {
        PrivateKeyDer::try_from(key.serialize_der()).expect("key der")
    }

    #[tokio::test]
    async fn a_verified_client_certificate_names_its_subject_and_sans() {
        let (ca, ca_key) = issue("ca", vec![], None);
        let (server, server_key) =
            issue("edge", vec![SanType::DnsName("edge.test".try_into().expect("name"))], Some((&ca, &ca_key)));
        let spiffe = SanType::URI("spiffe://acme/agent-7".try_into().expect("uri"));
        let (client, client_key) = issue("agent-7", vec![spiffe], Some((&ca, &ca_key)));
        let key = CertifiedKey::from_der(vec![server.der().clone()], der_key(&server_key), &provider()).expect("key");
        let mut roots = RootCertStore::empty();
        roots.add(ca.der().clone()).expect("root");
        let certs = vec![ServerCert { names: vec!["edge.test".into()], key: Arc::new(key) }];
        let tls = TlsServer::build(certs, Some(roots.clone()), true, [0; 32]).expect("server");

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client_config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_client_auth_cert(vec![CertificateDer::clone(client.der())], der_key(&client_key))
            .expect("client auth");
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
        let dial = tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.expect("connect");
            connector.connect(ServerName::try_from("edge.test").expect("name"), tcp).await.map(|_| ())
        });
        let (tcp, _) = listener.accept().await.expect("accept");
        let session = accept(tcp, &tls, Instant::now() + Duration::from_secs(5)).await.expect("handshake");
        dial.await.expect("client task").expect("client handshake");

        let peer = session.peer.as_ref().expect("a peer certificate");
        assert!(peer.subject.contains("CN=agent-7"), "{}", peer.subject);
        assert_eq!(peer.sans, vec!["URI:spiffe://acme/agent-7".to_owned()]);
        assert_eq!(session.digest.organization.as_deref(), Some("Acme"));
        assert_eq!(session.digest.cert_digest.len(), 32, "SHA-256 of the client certificate");
        assert!(!session.h2, "no ALPN offered: HTTP/1.1");
    }
}
