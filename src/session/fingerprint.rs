//! A session's fingerprint: the first 64 bits of the SHA-256 of the client's session token, as
//! 16 hex digits. It names a session in logs (and later in the admin API) without revealing
//! the token or the backend's own session id: the token is a sealed, unguessable string, so its
//! digest can neither be reversed nor replayed. Plain (not keyed), so every replica and every
//! key generation gives one session the same fingerprint.

use sha2::{Digest, Sha256};

/// 16 lower-case hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 16]);

impl Fingerprint {
    pub fn of(token: &str) -> Fingerprint {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let digest = Sha256::digest(token.as_bytes());
        let mut out = [0u8; 16];
        for (pair, byte) in out.chunks_exact_mut(2).zip(digest.iter()) {
            if let [hi, lo] = pair {
                let digit = |n: u8| HEX.get(usize::from(n)).copied().unwrap_or(b'0');
                *hi = digit(byte >> 4);
                *lo = digit(byte & 0x0f);
            }
        }
        Fingerprint(out)
    }

    pub fn as_str(&self) -> &str {
        // Always ASCII hex digits.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::Fingerprint;

    #[test]
    fn a_fingerprint_is_the_digest_prefix_and_never_the_token() {
        // SHA-256("abc") = ba7816bf8f01cfea...
        assert_eq!(Fingerprint::of("abc").as_str(), "ba7816bf8f01cfea");
        let token = "e1.AAAAsecret-token";
        let fp = Fingerprint::of(token);
        assert_eq!(fp, Fingerprint::of(token), "stable");
        assert_ne!(fp, Fingerprint::of("e1.AAAAsecret-tokem"));
        assert!(!fp.as_str().contains("secret") && fp.as_str().len() == 16);
    }
}
