//! The pieces every authentication story is built from: recording backends, API keys and
//! their digests, an ES256 issuer that signs tokens, routes with `auth`, and the shape of a
//! 401 with its challenge.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
use sha2::{Digest, Sha256};

use crate::common::raw::{self, RawResponse};
use crate::common::recording::{self, Recording};
use crate::common::{Edge, Mock};

pub const PUBLIC_URL: &str = "https://mcp.example.com/mcp";
pub const ISSUER: &str = "https://auth.example.com";

pub struct Backend {
    pub mock: Mock,
    pub rec: Recording,
}

pub fn backend(name: &str) -> Backend {
    let (mock, rec) = recording::mock(name);
    Backend { mock, rec }
}

pub fn pool(b: &Backend) -> String {
    format!("[[pool]]\nname = \"main\"\nbackends = [\"{}\"]\n\n", b.mock.addr())
}

/// A route on `/mcp` to the pool, with `extra` lines (such as `auth = ["keys"]`).
pub fn route(extra: &str) -> String {
    format!("[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"main\"\n{extra}\n")
}

pub fn sha256_hex(key: &str) -> String {
    Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// An inline `[[authenticator.key]]`.
pub fn key_entry(id: &str, tenant: &str, key: &str, extra: &str) -> String {
    format!("[[authenticator.key]]\nid = \"{id}\"\ntenant = \"{tenant}\"\nsha256 = \"{}\"\n{extra}\n", sha256_hex(key))
}

/// An `api_key` authenticator named `keys` with these key entries.
pub fn api_keys(header: &str, entries: &[String]) -> String {
    format!("[[authenticator]]\nname = \"keys\"\nkind = \"api_key\"\n{header}\n{}", entries.concat())
}

pub const CALL: &str =
    r#"{"jsonrpc":"2.0","id":"c-1","method":"tools/call","params":{"name":"search","arguments":{}}}"#;

pub fn post(edge: &Edge, extra: &[(&str, &str)]) -> RawResponse {
    raw::send(edge.port, &raw::post(edge.port, "/mcp", extra, CALL))
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Asserts a local 401 (or 400 for `invalid_request`) whose challenge is `challenge` and whose
/// JSON-RPC error echoes the request's id.
pub fn assert_challenged(r: &RawResponse, status: u16, challenge: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("www-authenticate"), Some(challenge), "challenge");
    assert_eq!(r.header("x-mock-backend"), None, "a backend answered");
    let body = r.json();
    assert_eq!(body["id"], "c-1", "the error echoes the id: {body}");
    assert!(body["error"]["code"].is_i64(), "a JSON-RPC error: {body}");
}

/// Asserts the backend answered and received the call without any credential.
pub fn assert_forwarded_without_credentials(r: &RawResponse, b: &Backend, n: usize) {
    assert_eq!((r.status, r.header("x-mock-backend")), (200, Some(b.rec.name.as_str())), "{}", r.text());
    let got = b.rec.wait_count(n);
    let last = got.last().expect("a request arrived");
    assert_eq!(last.header_all("authorization"), Vec::<&str>::new(), "Authorization reached the backend");
    assert_eq!(last.header_all("x-api-key"), Vec::<&str>::new(), "the API key reached the backend");
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs()
}

/// An ES256 signing key and its public JWK.
pub struct Issuer {
    pub kid: String,
    pkcs8: Vec<u8>,
    pub public: Vec<u8>,
}

impl Issuer {
    pub fn new(kid: &str) -> Issuer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("generate key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).expect("key pair");
        Issuer { kid: kid.to_owned(), pkcs8: pkcs8.as_ref().to_vec(), public: pair.public_key().as_ref().to_vec() }
    }

    pub fn jwk(&self) -> serde_json::Value {
        // An uncompressed P-256 point: 0x04, x (32 bytes), y (32 bytes).
        let (x, y) = self.public[1..].split_at(32);
        serde_json::json!({"kty": "EC", "crv": "P-256", "kid": self.kid, "use": "sig", "x": B64.encode(x), "y": B64.encode(y)})
    }

    /// A signed token with these claims (the `kid` header set).
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&self.pkcs8)).expect("sign")
    }

    /// Claims that pass: right issuer and audience, valid for an hour.
    pub fn claims(&self, sub: &str, tenant: &str) -> serde_json::Value {
        serde_json::json!({"iss": ISSUER, "aud": PUBLIC_URL, "sub": sub, "tenant": tenant, "scope": "tools:read tools:call", "exp": now() + 3600, "iat": now()})
    }
}

/// Writes a JWKS document of these keys into `dir`.
pub fn jwks_file(dir: &Path, keys: &[serde_json::Value]) -> PathBuf {
    let path = dir.join("jwks.json");
    std::fs::write(&path, serde_json::json!({"keys": keys}).to_string()).expect("write jwks");
    path
}

/// A `jwt` authenticator named `tokens` over a JWKS file (audience: the route's public URL).
pub fn jwt_authenticator(jwks: &Path, extra: &str) -> String {
    format!(
        "[[authenticator]]\nname = \"tokens\"\nkind = \"jwt\"\nissuer = \"{ISSUER}\"\njwks_file = \"{}\"\n{extra}\n",
        jwks.display()
    )
}

/// A JWKS endpoint of our own: answers every GET with the current (status, body), counting
/// requests. Stands in for an issuer that rotates keys or goes down.
pub struct JwksServer {
    pub port: u16,
    pub answer: std::sync::Arc<std::sync::Mutex<(u16, String)>>,
    pub hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl JwksServer {
    pub fn start(keys: &[serde_json::Value]) -> JwksServer {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let answer = std::sync::Arc::new(std::sync::Mutex::new((200, serde_json::json!({"keys": keys}).to_string())));
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (a, h) = (answer.clone(), hits.clone());
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let (status, body) = a.lock().expect("answer").clone();
                let _ = write!(conn, "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            }
        });
        JwksServer { port, answer, hits }
    }

    pub fn set(&self, status: u16, keys: &[serde_json::Value]) {
        *self.answer.lock().expect("answer") = (status, serde_json::json!({"keys": keys}).to_string());
    }

    pub fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}
