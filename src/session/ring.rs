//! The keys that open session tokens: the current one (which also seals) and, after a
//! rotation, the previous one for a configured overlap, so sessions minted before the rotation
//! keep working while clients move on.

use std::time::{Duration, Instant};

use super::token::{self, Member, Opened, Owner, TokenError};
use super::SessionKey;

#[derive(Debug, Clone)]
pub struct KeyRing {
    pub current: SessionKey,
    previous: Option<(SessionKey, Instant)>,
}

impl KeyRing {
    pub fn new(current: SessionKey) -> KeyRing {
        KeyRing { current, previous: None }
    }

    /// The ring after `next` replaces the current key; the old one stays valid for `overlap`.
    /// An unchanged key keeps the ring as it is.
    pub fn rotate(&self, next: SessionKey, overlap: Duration) -> KeyRing {
        if next.bytes() == self.current.bytes() {
            return self.clone();
        }
        KeyRing { current: next, previous: Some((self.current.clone(), Instant::now() + overlap)) }
    }

    /// Seals `members` into a token, bound to `owner` when the session has one.
    pub fn seal(&self, members: &[Member], owner: Option<&Owner>) -> Option<String> {
        token::seal(&self.current, members, owner)
    }

    pub fn open(&self, token: &str) -> Result<Opened, TokenError> {
        match token::open(&self.current, token) {
            Err(TokenError::BadSignature) => match &self.previous {
                Some((key, until)) if Instant::now() < *until => token::open(key, token),
                _ => Err(TokenError::BadSignature),
            },
            other => other,
        }
    }

    /// `plain` sealed for a client to hand back ([`super::sealed`]).
    pub fn seal_opaque(&self, plain: &[u8]) -> Option<String> {
        super::sealed::seal(&self.current, plain)
    }

    /// What [`KeyRing::seal_opaque`] sealed, under the current key or, in the overlap, the
    /// previous one.
    pub fn open_opaque(&self, sealed: &str) -> Option<Vec<u8>> {
        super::sealed::open(&self.current, sealed).or_else(|| match &self.previous {
            Some((key, until)) if Instant::now() < *until => super::sealed::open(key, sealed),
            _ => None,
        })
    }

    /// Whether a previous key is still accepted (for `/status`).
    pub fn in_overlap(&self) -> bool {
        self.previous.as_ref().is_some_and(|(_, until)| Instant::now() < *until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member() -> Member {
        Member { pool: "p".into(), backend: "127.0.0.1:1".parse().expect("addr"), session: "s".into(), version: None }
    }

    #[test]
    fn tokens_of_the_previous_key_open_during_the_overlap_only() {
        let old = KeyRing::new(SessionKey::random());
        let token = old.seal(&[member()], None).expect("fits");
        let rotated = old.rotate(SessionKey::random(), Duration::from_secs(60));
        assert_eq!(rotated.open(&token).map(|o| o.members), Ok(vec![member()]));
        assert!(rotated.in_overlap());
        let expired = old.rotate(SessionKey::random(), Duration::ZERO);
        assert_eq!(expired.open(&token), Err(TokenError::BadSignature));
        let fresh = rotated.seal(&[member()], None).expect("fits");
        assert_eq!(old.open(&fresh), Err(TokenError::BadSignature), "new tokens use the new key");
    }

    #[test]
    fn replicas_with_the_same_key_file_open_each_others_tokens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("key");
        std::fs::write(&file, "shared-session-key-material-0123456789abcdef\n").expect("write key");
        let (a, b) = (SessionKey::from_file(&file).expect("key"), SessionKey::from_file(&file).expect("key"));
        let (replica_a, replica_b) = (KeyRing::new(a), KeyRing::new(b));
        let token = replica_a.seal(&[member()], None).expect("fits");
        assert_eq!(replica_b.open(&token).map(|o| o.members), Ok(vec![member()]));
        let stranger = KeyRing::new(SessionKey::random());
        assert_eq!(stranger.open(&token), Err(TokenError::BadSignature));
    }

    #[test]
    fn rotating_to_the_same_key_changes_nothing() {
        let ring = KeyRing::new(SessionKey::random());
        let same = ring.rotate(ring.current.clone(), Duration::from_secs(60));
        assert!(!same.in_overlap());
    }
}
