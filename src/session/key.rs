//! The session-token key: from `[sessions] key_file`, or random per process. The configured
//! bytes are never used directly: the token cipher gets a key derived from them with a fixed
//! label, so the same file could key another purpose without the two ever sharing a key.

use std::path::Path;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Keys shorter than this are refused: the derived 256-bit cipher key needs as much entropy.
pub const MIN_KEY_BYTES: usize = 32;

/// Domain separation for the derived key; a new token format takes a new label.
const AEAD_LABEL: &[u8] = b"mcp-edge session token v2 xchacha20poly1305";
/// The list cursors' key (`super::sealed`): never the tokens'.
const CURSOR_LABEL: &[u8] = b"mcp-edge list cursor v1 xchacha20poly1305";

#[derive(Clone)]
pub struct SessionKey {
    bytes: Vec<u8>,
    /// HMAC-SHA256(bytes, AEAD_LABEL), derived once so sealing and opening do not pay for it.
    aead: [u8; 32],
    /// HMAC-SHA256(bytes, CURSOR_LABEL), for list cursors.
    cursor: [u8; 32],
    /// Whether replicas can share it (false: random, this process only).
    pub shared: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: cannot read session key file: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: session key is {len} bytes; it needs at least {MIN_KEY_BYTES} (generate one with `head -c 32 /dev/urandom | base64 > {path}`)")]
    TooShort { path: String, len: usize },
}

impl SessionKey {
    pub fn random() -> SessionKey {
        let mut bytes = vec![0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        SessionKey::new(bytes, false)
    }

    /// Reads a key file; surrounding whitespace is ignored so `base64 > file` works.
    pub fn from_file(path: &Path) -> Result<SessionKey, KeyError> {
        let display = path.display().to_string();
        let raw = std::fs::read(path).map_err(|source| KeyError::Read { path: display.clone(), source })?;
        let bytes = raw.trim_ascii().to_vec();
        if bytes.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort { path: display, len: bytes.len() });
        }
        Ok(SessionKey::new(bytes, true))
    }

    fn new(bytes: Vec<u8>, shared: bool) -> SessionKey {
        let derive = |label: &[u8]| -> [u8; 32] {
            // HMAC accepts keys of any length, so this cannot fail.
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&bytes).unwrap_or_else(|_| unreachable!());
            mac.update(label);
            mac.finalize().into_bytes().into()
        };
        let (aead, cursor) = (derive(AEAD_LABEL), derive(CURSOR_LABEL));
        SessionKey { bytes, aead, cursor, shared }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The key the token cipher uses.
    pub(super) fn aead_key(&self) -> &[u8; 32] {
        &self.aead
    }

    /// The key list cursors are sealed with.
    pub(super) fn cursor_key(&self) -> &[u8; 32] {
        &self.cursor
    }
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}
