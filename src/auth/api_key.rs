//! API-key authentication: the presented key's SHA-256 compared with every configured
//! digest in constant time (`subtle`), so neither a key nor how much of it matched shows in
//! timing. A key past its `not_after` no longer admits. Owns only the check; where the key
//! is read from is `auth`'s business.

use std::sync::Arc;
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::identity::Identity;
use crate::config::model::ApiKey;

/// The identity of the key `presented`, if it is a configured, unexpired key. Every digest is
/// compared (no early exit), so the time does not depend on which key matched.
pub fn check(keys: &[ApiKey], presented: &[u8], now: SystemTime) -> Option<Arc<Identity>> {
    let digest: [u8; 32] = Sha256::digest(presented).into();
    let mut found: Option<&ApiKey> = None;
    for key in keys {
        let same: bool = key.digest.expose().ct_eq(&digest).into();
        if same && found.is_none() && key.not_after.is_none_or(|t| now < t) {
            found = Some(key);
        }
    }
    found.map(|k| Arc::clone(&k.identity))
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
        let keys = [
            key("old", "old-key-0123456789", Some(now - Duration::from_secs(1))),
            key("new", "new-key-0123456789", Some(now + Duration::from_secs(60))),
            key("forever", "forever-key-012345", None),
        ];
        let id = |k: &str| check(&keys, k.as_bytes(), now).map(|i| i.id.clone());
        assert_eq!(id("new-key-0123456789").as_deref(), Some("new"));
        assert_eq!(id("forever-key-012345").as_deref(), Some("forever"));
        assert_eq!(id("old-key-0123456789"), None, "expired");
        for variant in ["NEW-KEY-0123456789", "new-key-0123456789 ", " new-key-0123456789", "new-key-012345678", ""] {
            assert_eq!(id(variant), None, "{variant:?}");
        }
    }
}
