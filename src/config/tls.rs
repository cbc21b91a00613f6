//! Validation of `[[proxy.tls]]`: which listeners speak TLS, and their certificate files,
//! read and checked here so `check` reports a missing file, a key that does not match its
//! certificate or an empty CA bundle with its place, and every reload re-reads them (a bad
//! file on reload fails the reload and the running certificates stay). Messages name the
//! file's field and the fix; they never quote the files (a key file is a secret).
//! Part of the raw → model pipeline (see `validate`); the TLS server itself is
//! `crate::downstream::tls`.

use std::net::SocketAddr;
use std::path::PathBuf;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::error::Collector;
use super::model::TlsListener;
use super::raw::{RawCert, RawTls, S};
use super::validate::parse_addr;
use crate::downstream::tls::{provider, ServerCert, TlsServer};

const CERT_FIX: &str = "give the certificate chain as PEM (`-----BEGIN CERTIFICATE-----`), leaf first";
const KEY_FIX: &str = "give the private key as PEM (PKCS#8, PKCS#1 RSA or SEC1 EC)";

pub fn listeners(raw: &[S<RawTls>], listen: &[SocketAddr], c: &mut Collector<'_>) -> Vec<TlsListener> {
    let mut out: Vec<TlsListener> = Vec::with_capacity(raw.len());
    for entry in raw {
        let t = entry.get_ref();
        let Some(addr) = parse_addr(c, &t.listen, "proxy.tls.listen") else { continue };
        if !listen.contains(&addr) {
            c.push(t.listen.span(), "proxy.tls.listen", "is not one of proxy.listen; add it there or fix the address");
        }
        if out.iter().any(|l| l.listen == addr) {
            c.push(
                t.listen.span(),
                "proxy.tls.listen",
                "has a second [[proxy.tls]] entry; list all its [[proxy.tls.cert]] under one",
            );
        }
        if let Some(l) = listener(entry, addr, c) {
            out.push(l);
        }
    }
    out
}

fn listener(entry: &S<RawTls>, listen: SocketAddr, c: &mut Collector<'_>) -> Option<TlsListener> {
    let t = entry.get_ref();
    let mut fingerprint = Sha256::new();
    if t.cert.is_empty() {
        c.push(entry.span(), "proxy.tls.cert", "is missing; add a [[proxy.tls.cert]] with cert_file and key_file");
    }
    let certs: Vec<ServerCert> =
        t.cert.iter().filter_map(|cert| server_cert(cert.get_ref(), &mut fingerprint, c)).collect();
    let require_client_cert = t.require_client_cert.as_ref().is_none_or(|r| *r.get_ref());
    if let (Some(r), None) = (&t.require_client_cert, &t.client_ca_file) {
        c.push(
            r.span(),
            "proxy.tls.require_client_cert",
            "needs client_ca_file (the CAs client certificates are checked against)",
        );
    }
    let roots = match &t.client_ca_file {
        Some(file) => Some(client_roots(file, &mut fingerprint, c)?),
        None => None,
    };
    if certs.len() != t.cert.len() {
        return None;
    }
    let server = match TlsServer::build(certs, roots, require_client_cert, fingerprint.finalize().into()) {
        Ok(server) => server,
        Err(e) => {
            c.push(entry.span(), "proxy.tls", format!("cannot build the TLS server: {e}"));
            return None;
        }
    };
    Some(TlsListener {
        listen,
        cert_files: t.cert.iter().map(|x| PathBuf::from(x.get_ref().cert_file.get_ref())).collect(),
        client_ca_file: t.client_ca_file.as_ref().map(|f| PathBuf::from(f.get_ref())),
        require_client_cert: require_client_cert && t.client_ca_file.is_some(),
        server,
    })
}

fn server_cert(raw: &RawCert, fingerprint: &mut Sha256, c: &mut Collector<'_>) -> Option<ServerCert> {
    let chain = read(&raw.cert_file, "proxy.tls.cert.cert_file", fingerprint, c).map(|pem| certificates(&pem));
    let chain = match chain? {
        Some(chain) => chain,
        None => {
            c.push(raw.cert_file.span(), "proxy.tls.cert.cert_file", format!("holds no certificate; {CERT_FIX}"));
            return None;
        }
    };
    let pem = read(&raw.key_file, "proxy.tls.cert.key_file", fingerprint, c)?;
    let key = match rustls_pemfile::private_key(&mut pem.as_slice()) {
        Ok(Some(key)) => key,
        _ => {
            c.push(raw.key_file.span(), "proxy.tls.cert.key_file", format!("holds no private key; {KEY_FIX}"));
            return None;
        }
    };
    let names = chain.first().map(dns_names).unwrap_or_default();
    match CertifiedKey::from_der(chain, PrivateKeyDer::clone_key(&key), &provider()) {
        Ok(key) => Some(ServerCert { names, key: std::sync::Arc::new(key) }),
        Err(_) => {
            c.push(
                raw.key_file.span(),
                "proxy.tls.cert.key_file",
                "does not match the certificate in cert_file, or is not an RSA, ECDSA (P-256, P-384) or Ed25519 key; give the key the certificate was issued for",
            );
            None
        }
    }
}

fn client_roots(file: &S<String>, fingerprint: &mut Sha256, c: &mut Collector<'_>) -> Option<RootCertStore> {
    let field = "proxy.tls.client_ca_file";
    let pem = read(file, field, fingerprint, c)?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certificates(&pem).unwrap_or_default());
    if added == 0 {
        c.push(
            file.span(),
            field,
            "holds no usable CA certificate; give the CAs that issue client certificates as PEM",
        );
        return None;
    }
    Some(roots)
}

/// The file's bytes, folded into `fingerprint`; a read error (not found, permission) is
/// reported with the io error, which never carries the contents.
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

/// Every certificate in a PEM file; None when it holds none (or broken PEM).
fn certificates(pem: &[u8]) -> Option<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut &pem[..]).collect::<Result<_, _>>().ok()?;
    (!certs.is_empty()).then_some(certs)
}

/// The DNS names a certificate serves (its subject alternative names), for SNI.
fn dns_names(der: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, cert)) = X509Certificate::from_der(der) else { return Vec::new() };
    let Ok(Some(san)) = cert.subject_alternative_name() else { return Vec::new() };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    const ROUTE: &str = "[[pool]]\nname = \"p\"\nbackends = [\"127.0.0.1:9001\"]\n[[route]]\nname = \"r\"\npath = \"/mcp\"\npool = \"p\"\n";

    fn errors(tls: &str) -> Vec<String> {
        let text = format!("[proxy]\nlisten = [\"127.0.0.1:8443\"]\n{tls}\n{ROUTE}");
        let refused = super::super::parse(Path::new("edge.toml"), &text).expect_err("refused");
        refused.0.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn tls_entries_are_checked_with_their_place_and_fix() {
        let got = errors(
            "[[proxy.tls]]\nlisten = \"127.0.0.1:9443\"\nrequire_client_cert = false\n[[proxy.tls.cert]]\ncert_file = \"/nonexistent/a.pem\"\nkey_file = \"/nonexistent/a.key\"\n",
        );
        let want = [
            "edge.toml:4:10: proxy.tls.listen: is not one of proxy.listen",
            "edge.toml:7:13: proxy.tls.cert.cert_file: cannot read the file",
            "edge.toml:5:23: proxy.tls.require_client_cert: needs client_ca_file",
        ];
        for w in want {
            assert!(got.iter().any(|e| e.starts_with(w)), "missing {w:?} in {got:#?}");
        }
        let got = errors("[[proxy.tls]]\nlisten = \"127.0.0.1:8443\"\n");
        assert!(got.iter().any(|e| e.contains("proxy.tls.cert: is missing; add a [[proxy.tls.cert]]")), "{got:#?}");
    }
}
