//! Validation of a pool's TLS to its backends beyond `tls` and `sni`: the CA bundle that
//! verifies them (`ca_file`, instead of the system roots) and the client certificate the proxy
//! presents (`client_cert_file`, `client_key_file`). Files are read here, so `check` reports
//! them with their place and every reload re-reads them; messages never quote a file.
//! Everything Pingora would parse again per connection (and panic on if broken) is proven
//! parseable here first. Applying them to peers is `upstream::pool` and `upstream::health`.

use std::path::PathBuf;
use std::sync::Arc;

use pingora::protocols::tls::CaType;
use pingora::utils::tls::{parse_x509, CertKey, WrappedX509};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::error::Collector;
use super::raw::{RawPool, S};
use crate::downstream::tls::provider;

/// A pool's own CA bundle and client certificate; equal when built from equal files.
#[derive(Clone, Default)]
pub struct UpstreamTls {
    pub ca: Option<Arc<CaType>>,
    pub client: Option<Arc<CertKey>>,
    pub ca_file: Option<PathBuf>,
    pub client_cert_file: Option<PathBuf>,
    fingerprint: [u8; 32],
}

impl PartialEq for UpstreamTls {
    fn eq(&self, other: &UpstreamTls) -> bool {
        self.fingerprint == other.fingerprint
            && self.ca_file == other.ca_file
            && self.client_cert_file == other.client_cert_file
    }
}

impl std::fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTls")
            .field("ca_file", &self.ca_file)
            .field("client_cert_file", &self.client_cert_file)
            .finish_non_exhaustive()
    }
}

impl UpstreamTls {
    /// Puts the CA bundle and client certificate on a peer to one of the pool's backends.
    pub fn apply(&self, peer: &mut pingora::upstreams::peer::HttpPeer) {
        if self.ca.is_some() {
            peer.options.ca = self.ca.clone();
        }
        if self.client.is_some() {
            peer.client_cert_key = self.client.clone();
        }
    }
}

pub fn pool(p: &RawPool, name: &str, c: &mut Collector<'_>) -> UpstreamTls {
    let mut out = UpstreamTls::default();
    let mut fingerprint = Sha256::new();
    let field = |f: &str| format!("pool.{name}.{f}");
    if !p.tls.unwrap_or(false) {
        for s in [&p.ca_file, &p.client_cert_file, &p.client_key_file].into_iter().flatten() {
            c.push(s.span(), field("tls"), "must be true when ca_file or a client certificate is set");
        }
        return out;
    }
    if let Some(file) = &p.ca_file {
        let certs = read(file, &field("ca_file"), &mut fingerprint, c).and_then(|pem| certificates(&pem));
        match certs {
            Some(certs) => {
                out.ca = Some(Arc::from(certs.into_iter().map(wrapped).collect::<Vec<_>>()));
                out.ca_file = Some(PathBuf::from(file.get_ref()));
            }
            None => c.push(
                file.span(),
                field("ca_file"),
                "holds no CA certificate; give the CAs that issue the backends' certificates as PEM",
            ),
        }
    }
    match (&p.client_cert_file, &p.client_key_file) {
        (None, None) => {}
        (Some(cert), Some(key)) => {
            out.client = client(cert, key, &field, &mut fingerprint, c).map(Arc::new);
            out.client_cert_file = Some(PathBuf::from(cert.get_ref()));
        }
        (Some(s), None) | (None, Some(s)) => {
            c.push(s.span(), field("client_cert_file"), "client_cert_file and client_key_file go together; set both")
        }
    }
    out.fingerprint = fingerprint.finalize().into();
    out
}

fn client(
    cert: &S<String>,
    key: &S<String>,
    field: &dyn Fn(&str) -> String,
    fingerprint: &mut Sha256,
    c: &mut Collector<'_>,
) -> Option<CertKey> {
    let chain = read(cert, &field("client_cert_file"), fingerprint, c)?;
    let Some(chain) = certificates(&chain) else {
        c.push(cert.span(), field("client_cert_file"), "holds no certificate; give the chain as PEM, leaf first");
        return None;
    };
    let pem = read(key, &field("client_key_file"), fingerprint, c)?;
    let parsed = rustls_pemfile::private_key(&mut pem.as_slice()).ok().flatten();
    // Pingora turns the DER back into a key on every connection (unwrapping): prove it can.
    let der = parsed.map(|k| k.secret_der().to_vec()).filter(|d| PrivateKeyDer::try_from(d.clone()).is_ok());
    let Some(der) = der else {
        c.push(
            key.span(),
            field("client_key_file"),
            "holds no private key; give it as PEM (PKCS#8, PKCS#1 RSA or SEC1 EC)",
        );
        return None;
    };
    let key_der = PrivateKeyDer::try_from(der.clone()).ok()?;
    if CertifiedKey::from_der(chain.clone(), key_der, &provider()).is_err() {
        c.push(
            key.span(),
            field("client_key_file"),
            "does not match the certificate in client_cert_file; give the key it was issued for",
        );
        return None;
    }
    Some(CertKey::new(chain.into_iter().map(|d| d.to_vec()).collect(), der))
}

fn read(file: &S<String>, field: &str, fingerprint: &mut Sha256, c: &mut Collector<'_>) -> Option<Vec<u8>> {
    match std::fs::read(file.get_ref()) {
        Ok(bytes) => {
            fingerprint.update((bytes.len() as u64).to_le_bytes());
            fingerprint.update(&bytes);
            Some(bytes)
        }
        Err(e) => {
            c.push(file.span(), field, format!("cannot read the file: {e}"));
            None
        }
    }
}

/// The PEM file's certificates, each one parseable as X.509 (Pingora's parser panics on one
/// that is not); None when there are none.
fn certificates(pem: &[u8]) -> Option<Vec<CertificateDer<'static>>> {
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &pem[..]).collect::<Result<_, _>>().ok()?;
    let parseable = certs.iter().all(|d| X509Certificate::from_der(d).is_ok());
    (parseable && !certs.is_empty()).then_some(certs)
}

fn wrapped(der: CertificateDer<'static>) -> WrappedX509 {
    WrappedX509::new(der.to_vec(), parse_x509)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn errors(pool_lines: &str) -> Vec<String> {
        let text = format!("[[pool]]\nname = \"p\"\nbackends = [\"127.0.0.1:9001\"]\n{pool_lines}\n[[route]]\nname = \"r\"\npath = \"/mcp\"\npool = \"p\"\n");
        let refused = super::super::parse(Path::new("edge.toml"), &text).expect_err("refused");
        refused.0.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn backend_tls_files_need_tls_and_each_other() {
        let got = errors("ca_file = \"/nonexistent/ca.pem\"\n");
        assert!(got.iter().any(|e| e.starts_with("edge.toml:4:11: pool.p.tls: must be true")), "{got:#?}");
        let got = errors("tls = true\nclient_cert_file = \"/nonexistent/c.pem\"\nca_file = \"/nonexistent/ca.pem\"\n");
        assert!(
            got.iter().any(|e| e.contains("pool.p.client_cert_file: client_cert_file and client_key_file go together")),
            "{got:#?}"
        );
        assert!(got.iter().any(|e| e.starts_with("edge.toml:6:11: pool.p.ca_file: cannot read the file")), "{got:#?}");
    }
}
