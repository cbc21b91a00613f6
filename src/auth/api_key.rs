//! API-key authentication: the presented key's SHA-256 looked up among the configured
//! digests and confirmed in constant time (`subtle`), so neither a key nor how much of it
//! matched shows in timing. A key past its `not_after` no longer admits. Owns only the check; where the key
//! is read from is `auth`'s business.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::identity::Identity;
use crate::config::model::ApiKey;

/// A route's keys, indexed by digest so the check costs the same for 10 keys or 10,000.
/// Looking a digest up reveals nothing usable: finding a stored digest needs a SHA-256
/// preimage. The match is then confirmed with a constant-time comparison.
pub struct KeyIndex {
    keys: Arc<[ApiKey]>,
    by_digest: HashMap<[u8; 32], Vec<usize>>,
}

impl KeyIndex {
    pub fn new(keys: &Arc<[ApiKey]>) -> KeyIndex {
        let mut by_digest: HashMap<[u8; 32], Vec<usize>> = HashMap::with_capacity(keys.len());
        for (i, k) in keys.iter().enumerate() {
            by_digest.entry(*k.digest.expose()).or_default().push(i);
        }
        KeyIndex { keys: Arc::clone(keys), by_digest }
    }

    /// The identity of the key `presented`, if it is a configured, unexpired key (the first
    /// such when one key is listed twice, as during a rotation that extends it).
    pub fn check(&self, presented: &[u8], now: SystemTime) -> Option<Arc<Identity>> {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        let found = self.by_digest.get(&digest)?.iter().filter_map(|&i| self.keys.get(i)).find(|k| {
            let same: bool = k.digest.expose().ct_eq(&digest).into();
            same && k.not_after.is_none_or(|t| now < t)
        });
        found.map(|k| Arc::clone(&k.identity))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::identity::Secret;
    use std::time::Duration;

    fn key(id: &str, secret: &str, not_after: Option<SystemTime>) -> ApiKey {
        let identity = Arc::new(Identity { id: id.into(), ..Identity::default() });
        ApiKey { identity, digest: Secret::new(Sha256::digest(secret.as_bytes()).into()), not_after }
    }

    #[test]
    fn only_the_exact_unexpired_key_admits() {
        let now = SystemTime::now();
        let keys: Arc<[ApiKey]> = Arc::new([
            key("old", "old-key-0123456789", Some(now - Duration::from_secs(1))),
            key("new", "new-key-0123456789", Some(now + Duration::from_secs(60))),
            key("forever", "forever-key-012345", None),
            key("renewed", "old-key-0123456789", None),
        ]);
        let index = KeyIndex::new(&keys);
        let id = |k: &str| index.check(k.as_bytes(), now).map(|i| i.id.clone());
        assert_eq!(id("new-key-0123456789").as_deref(), Some("new"));
        assert_eq!(id("forever-key-012345").as_deref(), Some("forever"));
        assert_eq!(id("old-key-0123456789").as_deref(), Some("renewed"), "the expired entry is skipped");
        for variant in ["NEW-KEY-0123456789", "new-key-0123456789 ", " new-key-0123456789", "new-key-012345678", ""] {
            assert_eq!(id(variant), None, "{variant:?}");
        }
    }
}
