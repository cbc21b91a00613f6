//! The session-token HMAC key: from `[sessions] key_file`, or random per process.

use std::path::Path;

use rand::RngCore;

/// Keys shorter than this are refused: HMAC-SHA256 wants at least its output size.
pub const MIN_KEY_BYTES: usize = 32;

#[derive(Clone)]
pub struct SessionKey {
    bytes: Vec<u8>,
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
        SessionKey { bytes, shared: false }
    }

    /// Reads a key file; surrounding whitespace is ignored so `base64 > file` works.
    pub fn from_file(path: &Path) -> Result<SessionKey, KeyError> {
        let display = path.display().to_string();
        let raw = std::fs::read(path).map_err(|source| KeyError::Read { path: display.clone(), source })?;
        let bytes = raw.trim_ascii().to_vec();
        if bytes.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort { path: display, len: bytes.len() });
        }
        Ok(SessionKey { bytes, shared: true })
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}
