//! Tokens exchanged per caller (RFC 8693), for a pool with `[pool.oauth] grant =
//! "token_exchange"`: kept by the SHA-256 of the caller's token until the exchanged token
//! expires (never past the caller's own), so a caller's requests cost one exchange. Callers
//! with the same token share one exchange in flight; a failed exchange is remembered for
//! [`super::token::RETRY_AFTER`], so a burst of requests during an outage costs one request to
//! the token endpoint, not one each. At most [`CAP`] callers are kept (expired ones are
//! dropped first, then all). Not owned here: the request to the token endpoint
//! (`super::token`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use http::HeaderValue;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::token::RETRY_AFTER;

/// Most callers whose exchanged tokens are kept.
pub const CAP: usize = 10_000;

#[derive(Default)]
pub struct Cache {
    entries: Mutex<HashMap<[u8; 32], Arc<Entry>>>,
}

struct Entry {
    made: Instant,
    /// The exchanged token and when it stops being used; None when the exchange failed.
    outcome: OnceCell<Option<(HeaderValue, Instant)>>,
}

impl Entry {
    /// Whether a new exchange should replace this one. One in flight is waited for.
    fn stale(&self, now: Instant) -> bool {
        match self.outcome.get() {
            None => false,
            Some(Some((_, expires))) => now >= *expires,
            Some(None) => now.duration_since(self.made) >= RETRY_AFTER,
        }
    }
}

impl Cache {
    /// The token exchanged for `subject`: a kept one, the one an exchange in flight brings,
    /// or the one `exchange` brings (its value and when it stops being used); None when the
    /// exchange failed (now, or less than `RETRY_AFTER` ago).
    pub async fn get<F, Fut>(&self, subject: &str, exchange: F) -> Option<HeaderValue>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Option<(HeaderValue, Instant)>>,
    {
        let key: [u8; 32] = Sha256::digest(subject.as_bytes()).into();
        let entry = {
            let mut entries = self.entries.lock().ok()?;
            let now = Instant::now();
            match entries.get(&key) {
                Some(e) if !e.stale(now) => Arc::clone(e),
                _ => {
                    if entries.len() >= CAP {
                        entries.retain(|_, e| !e.stale(now));
                        if entries.len() >= CAP {
                            entries.clear();
                        }
                    }
                    let e = Arc::new(Entry { made: now, outcome: OnceCell::new() });
                    entries.insert(key, Arc::clone(&e));
                    e
                }
            }
        };
        match entry.outcome.get_or_init(exchange).await {
            Some((value, expires)) if Instant::now() < *expires => Some(value.clone()),
            _ => None,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn token(n: usize, life: Duration) -> Option<(HeaderValue, Instant)> {
        Some((HeaderValue::from_str(&format!("Bearer x-{n}")).ok()?, Instant::now() + life))
    }

    #[tokio::test]
    async fn one_exchange_per_caller_until_it_expires() {
        let cache = Cache::default();
        let calls = AtomicUsize::new(0);
        let exchange = || async { token(calls.fetch_add(1, Ordering::SeqCst), Duration::from_millis(300)) };
        let a = cache.get("alice-token", exchange).await;
        let again = cache.get("alice-token", exchange).await;
        let b = cache.get("bob-token", exchange).await;
        assert_eq!((a.clone(), again), (a, cache.get("alice-token", exchange).await));
        assert_eq!(calls.load(Ordering::SeqCst), 2, "alice once, bob once");
        assert_ne!(b, cache.get("alice-token", exchange).await);
        tokio::time::sleep(Duration::from_millis(350)).await;
        cache.get("alice-token", exchange).await;
        assert_eq!(calls.load(Ordering::SeqCst), 3, "an expired token is exchanged again");
    }

    #[tokio::test]
    async fn callers_with_one_token_share_the_exchange_in_flight_and_its_failure() {
        let cache = Arc::new(Cache::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let mut waiting = Vec::new();
        for _ in 0..20 {
            let (cache, calls) = (Arc::clone(&cache), Arc::clone(&calls));
            waiting.push(tokio::spawn(async move {
                cache
                    .get("carol-token", || async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        None
                    })
                    .await
            }));
        }
        for w in waiting {
            assert_eq!(w.await.ok().flatten(), None);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one failed exchange for twenty requests");
    }

    #[tokio::test]
    async fn the_cache_stays_bounded() {
        let cache = Cache::default();
        for n in 0..CAP + 5 {
            cache.get(&format!("caller-{n}"), || async move { token(n, Duration::from_secs(60)) }).await;
        }
        assert!(cache.len() <= CAP, "{} kept", cache.len());
    }
}
