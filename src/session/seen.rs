//! Legacy sessions this replica served recently, for the admin API (`GET /sessions`,
//! `GET` and `DELETE /sessions/{fingerprint}`): where each lives (route, pool, backend), who
//! opened it (identity id), when it was opened and last used, how many requests it carried,
//! and the backend's own session id, which is never shown and only used to end the session
//! upstream. Bounded: at most [`CAP`] sessions; when full, the least recently used eighth is
//! dropped. Also the sessions an operator ended: their tokens are refused (404) for
//! [`REVOKED_FOR`] (tokens carry no expiry; by then the backend has long forgotten them too),
//! at most [`CAP`] of them.
//!
//! Per replica and not shared: a session served by several replicas shows on each. Not owned
//! here: the token (`token`), sending the DELETE upstream (`upstream::session_end`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use super::Fingerprint;

/// Most sessions remembered, and most revocations.
pub const CAP: usize = 10_000;
/// How long an ended session's token stays refused.
pub const REVOKED_FOR: Duration = Duration::from_secs(24 * 3600);

/// One session as the admin API shows it, plus the backend's id (kept out of `Serialize`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Session {
    pub fingerprint: String,
    pub route: String,
    pub pool: String,
    pub backend: SocketAddr,
    pub identity: Option<String>,
    /// Unix seconds.
    pub opened_at: u64,
    pub idle_seconds: u64,
    pub requests: u64,
    /// Upstream sessions the client's session stands for: 1, or a federated session's members
    /// that issued one.
    pub members: usize,
    #[serde(skip)]
    pub upstream_session: String,
    /// A federated session's other members' sessions, ended with it (`DELETE /sessions/{fp}`).
    #[serde(skip)]
    pub others: Vec<super::Member>,
}

struct Entry {
    session: Session,
    last: Instant,
}

/// Where a request's session lives and who uses it.
pub struct Use<'a> {
    pub route: &'a str,
    pub pool: &'a str,
    pub backend: SocketAddr,
    pub identity: Option<&'a str>,
    pub upstream_session: &'a str,
    /// A federated session's members (the one above among them); empty otherwise.
    pub members: &'a [super::Member],
}

#[derive(Default)]
pub struct Seen {
    sessions: Mutex<HashMap<Fingerprint, Entry>>,
    revoked: Mutex<HashMap<Fingerprint, Instant>>,
    /// Whether any token is revoked: requests skip that lock while none is.
    any_revoked: AtomicBool,
}

impl Seen {
    /// A request used (or opened) session `fp`.
    pub fn used(&self, fp: Fingerprint, at: Use<'_>) {
        let Ok(mut sessions) = self.sessions.lock() else { return };
        let now = Instant::now();
        if let Some(e) = sessions.get_mut(&fp) {
            e.last = now;
            e.session.requests = e.session.requests.saturating_add(1);
            return;
        }
        if sessions.len() >= CAP {
            evict(&mut sessions);
        }
        let opened_at = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let others: Vec<super::Member> = at
            .members
            .iter()
            .filter(|m| !(m.session.is_empty() || m.pool == at.pool && m.session == at.upstream_session))
            .cloned()
            .collect();
        let session = Session {
            fingerprint: fp.as_str().to_owned(),
            route: at.route.to_owned(),
            pool: at.pool.to_owned(),
            backend: at.backend,
            identity: at.identity.map(str::to_owned),
            opened_at,
            idle_seconds: 0,
            requests: 1,
            members: 1 + others.len(),
            upstream_session: at.upstream_session.to_owned(),
            others,
        };
        sessions.insert(fp, Entry { session, last: now });
    }

    /// Every remembered session, the most recently used first.
    pub fn list(&self) -> Vec<Session> {
        let Ok(sessions) = self.sessions.lock() else { return Vec::new() };
        let mut out: Vec<(Instant, Session)> = sessions.values().map(|e| (e.last, view(e))).collect();
        out.sort_by_key(|(last, _)| std::cmp::Reverse(*last));
        out.into_iter().map(|(_, s)| s).collect()
    }

    /// The session whose fingerprint is `fp` (16 hex digits).
    pub fn get(&self, fp: &str) -> Option<Session> {
        let sessions = self.sessions.lock().ok()?;
        sessions.values().find(|e| e.session.fingerprint == fp).map(view)
    }

    /// Forgets session `fp` and refuses its token from now on; the session as it was.
    pub fn revoke(&self, fp: &str) -> Option<Session> {
        let (key, entry) = {
            let mut sessions = self.sessions.lock().ok()?;
            let key = *sessions.iter().find(|(_, e)| e.session.fingerprint == fp)?.0;
            (key, sessions.remove(&key)?)
        };
        if let Ok(mut revoked) = self.revoked.lock() {
            let now = Instant::now();
            if revoked.len() >= CAP {
                revoked.retain(|_, until| *until > now);
            }
            if revoked.len() < CAP {
                revoked.insert(key, now + REVOKED_FOR);
                self.any_revoked.store(true, Ordering::Release);
            }
        }
        Some(view(&entry))
    }

    /// Whether the token with fingerprint `fp` was revoked (and not long ago).
    pub fn is_revoked(&self, fp: &Fingerprint) -> bool {
        if !self.any_revoked.load(Ordering::Acquire) {
            return false;
        }
        self.revoked.lock().is_ok_and(|r| r.get(fp).is_some_and(|until| *until > Instant::now()))
    }

    pub fn len(&self) -> usize {
        self.sessions.lock().map_or(0, |s| s.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn view(e: &Entry) -> Session {
    Session { idle_seconds: e.last.elapsed().as_secs(), ..e.session.clone() }
}

/// Drops the least recently used eighth.
fn evict(sessions: &mut HashMap<Fingerprint, Entry>) {
    let mut lasts: Vec<Instant> = sessions.values().map(|e| e.last).collect();
    let cut = lasts.len() / 8;
    let (_, &mut threshold, _) = lasts.select_nth_unstable(cut);
    sessions.retain(|_, e| e.last > threshold);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(backend: &str) -> Use<'_> {
        Use {
            route: "mcp",
            pool: "tools",
            backend: backend.parse().unwrap_or(SocketAddr::from(([127, 0, 0, 1], 1))),
            identity: Some("alice"),
            upstream_session: "upstream-secret-id",
            members: &[],
        }
    }

    #[test]
    fn a_session_is_listed_counted_and_revoked() {
        let seen = Seen::default();
        let fp = Fingerprint::of("e1.token-a");
        seen.used(fp, at("127.0.0.1:9001"));
        seen.used(fp, at("127.0.0.1:9001"));
        let list = seen.list();
        assert_eq!((list.len(), list[0].requests, list[0].identity.as_deref()), (1, 2, Some("alice")));
        let shown = serde_json::to_string(&list).unwrap_or_default();
        assert!(!shown.contains("upstream-secret-id"), "the backend's id is never shown: {shown}");
        assert!(!seen.is_revoked(&fp));
        let gone = seen.revoke(fp.as_str()).expect("known");
        assert_eq!(gone.upstream_session, "upstream-secret-id");
        assert!(seen.is_revoked(&fp) && seen.get(fp.as_str()).is_none() && seen.revoke(fp.as_str()).is_none());
    }

    #[test]
    fn memory_stays_bounded_and_the_recently_used_stay() {
        let seen = Seen::default();
        let keep = Fingerprint::of("e1.keep");
        seen.used(keep, at("127.0.0.1:9001"));
        for n in 0..CAP + 100 {
            seen.used(Fingerprint::of(&format!("e1.{n}")), at("127.0.0.1:9001"));
            if n % 1000 == 0 {
                seen.used(keep, at("127.0.0.1:9001"));
            }
        }
        assert!(seen.len() <= CAP, "{} kept", seen.len());
        assert!(seen.get(keep.as_str()).is_some(), "a session in use is not dropped");
    }
}
