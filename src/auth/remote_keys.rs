//! A JWT key set fetched from `jwks_url`: fetched on first need, refetched when older than
//! `jwks_refresh` or when a token names an unknown `kid` (at most every [`MIN_REFETCH`], so
//! forged `kid`s cannot make the proxy hammer the issuer), and the last good set kept while
//! the issuer is down or answers garbage. Fetches run in their own task ([`super::issuer`]);
//! requests never wait on more than one fetch, bounded by [`FETCH_TIMEOUT`]. Shared by every route using the URL and carried over reloads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use tokio::sync::Notify;

use crate::config::jwt_keys::parse_jwks;
use crate::config::model::{RemoteJwks, VerifyKey};

/// Least time between two fetches caused by unknown `kid`s (forged `kid`s, an issuer that is
/// down).
pub const MIN_REFETCH: Duration = Duration::from_secs(10);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// A key set larger than this is refused (a real one is a few KiB).
const MAX_BODY: usize = 1 << 20;

#[derive(Default)]
struct Times {
    /// When the current set was fetched.
    fetched: Option<Instant>,
    /// When a fetch was last started, and one for an unknown `kid`.
    started: Option<Instant>,
    for_kid: Option<Instant>,
}

pub struct RemoteKeys {
    pub config: RemoteJwks,
    keys: ArcSwapOption<Vec<VerifyKey>>,
    times: Mutex<Times>,
    fetching: AtomicBool,
    fetched: Notify,
}

impl RemoteKeys {
    pub fn new(config: RemoteJwks) -> Arc<RemoteKeys> {
        Arc::new(RemoteKeys {
            config,
            keys: ArcSwapOption::empty(),
            times: Mutex::default(),
            fetching: AtomicBool::new(false),
            fetched: Notify::new(),
        })
    }

    /// The current set; starts a refresh in the background when it is older than `refresh`.
    pub fn current(self: &Arc<Self>) -> Option<Arc<Vec<VerifyKey>>> {
        let stale = self.times.lock().is_ok_and(|t| t.fetched.is_none_or(|at| at.elapsed() >= self.config.refresh));
        if stale {
            self.start(false);
        }
        self.keys.load_full()
    }

    /// Waits (bounded) for a set when there is none yet, or for a refetch after an unknown
    /// `kid` when the last fetch started more than [`MIN_REFETCH`] ago. Returns whether a new
    /// fetch completed.
    pub async fn refetch(self: &Arc<Self>, unknown_kid: bool) -> bool {
        let notified = self.fetched.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let started = if unknown_kid || self.keys.load().is_none() { self.start(unknown_kid) } else { false };
        if !started && !self.fetching.load(Ordering::Acquire) {
            return false;
        }
        tokio::time::timeout(FETCH_TIMEOUT + Duration::from_secs(1), notified).await.is_ok()
    }

    /// Starts a fetch unless one runs, or one of the same cause started too recently: for an
    /// unknown `kid`, [`MIN_REFETCH`] since the last such fetch (the first one after a
    /// rotation goes at once); else the lesser of that and `refresh` since any fetch.
    fn start(self: &Arc<Self>, for_kid: bool) -> bool {
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return false };
        {
            let Ok(mut t) = self.times.lock() else { return false };
            let (last, debounce) = match for_kid {
                true => (t.for_kid, MIN_REFETCH),
                false => (t.started, MIN_REFETCH.min(self.config.refresh)),
            };
            if last.is_some_and(|at| at.elapsed() < debounce) {
                return false;
            }
            if self.fetching.swap(true, Ordering::AcqRel) {
                return false;
            }
            let now = Instant::now();
            t.started = Some(now);
            if for_kid {
                t.for_kid = Some(now);
            }
        }
        let me = Arc::clone(self);
        handle.spawn(async move {
            match tokio::time::timeout(FETCH_TIMEOUT, fetch(&me.config.url)).await {
                Ok(Ok(keys)) => {
                    me.keys.store(Some(Arc::new(keys)));
                    if let Ok(mut t) = me.times.lock() {
                        t.fetched = Some(Instant::now());
                    }
                }
                Ok(Err(why)) => {
                    tracing::warn!(url = %me.config.url, why, "JWKS fetch failed; keeping the last good key set")
                }
                Err(_) => tracing::warn!(url = %me.config.url, "JWKS fetch timed out; keeping the last good key set"),
            }
            me.fetching.store(false, Ordering::Release);
            me.fetched.notify_waiters();
        });
        true
    }
}

/// GETs `url` and compiles its key set. Errors are value-free descriptions.
async fn fetch(url: &str) -> Result<Vec<VerifyKey>, String> {
    let answer = super::issuer::request("GET", url, &[], &[], MAX_BODY, FETCH_TIMEOUT).await?;
    if answer.status != 200 {
        return Err(format!("status {}", answer.status));
    }
    let (keys, problems) = parse_jwks(&answer.body);
    if keys.is_empty() {
        return Err(problems.join("; "));
    }
    Ok(keys)
}
