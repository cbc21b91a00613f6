//! Legacy-era sessions of a federated route, ended at the proxy. The client's `initialize`
//! goes to every member at once, each with its own handshake (`initialize`, then
//! `notifications/initialized` in the session the member issued); the client gets one token
//! sealing every member's session, so any replica holding the session key serves it without
//! a store. The token's first entry names the route (an empty pool name, which no pool can
//! have, and the route's name), so a token of a plain route or of another federated route is
//! never read as this route's. Members that issued no session, or did not answer, have an
//! entry with an empty session: their tools are called without one.
//!
//! Not owned here: the token's format (`session::token`), pinning a request to a member's
//! backend (`proxy::affinity`), ending the member sessions (`upstream::session_end`).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::answer::{self, Offers};
use super::fanout::{self, Ask, Era, Failed};
use crate::config::model::{Federation, PrefixMode};
use crate::session::Member;
use crate::upstream::Pool;

/// Longest member `instructions` passed on (longer ones are left out).
const MAX_INSTRUCTIONS: usize = 16 << 10;
/// Longest wait for one member's handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// A member's side of a federated session.
#[derive(Debug, Clone)]
pub struct Handshake {
    pub backend: SocketAddr,
    /// The session the member issued, if it did.
    pub session: Option<String>,
    /// The protocol version it agreed to, when it is a legacy one the route knows.
    pub version: Option<String>,
    pub instructions: Option<String>,
    /// What it announced besides tools.
    pub offers: Offers,
}

/// A member's handshake: `body` (an `initialize` request) sent sessionless to a usable backend,
/// then `notifications/initialized` to the same backend in the session it issued.
pub async fn handshake(pool: &Arc<Pool>, body: Bytes, timeout: Duration) -> Result<Handshake, Failed> {
    #[derive(serde::Deserialize)]
    struct Init {
        #[serde(rename = "protocolVersion")]
        protocol_version: Option<String>,
        instructions: Option<String>,
        #[serde(default)]
        capabilities: serde_json::Value,
    }
    let era = Era::Legacy { session: None, version: None };
    let reply = fanout::ask(pool, Ask { method: "initialize", body, era, backend: None, timeout }).await?;
    let init: Init =
        reply.result.as_deref().and_then(|r| serde_json::from_str(r.get()).ok()).ok_or(Failed::Unreadable)?;
    // Only a legacy version the route knows is kept (and sealed in the client's token): the
    // member is then spoken to in it; after another (2026-07-28 has no sessions; junk), in
    // the client's.
    let version = init.protocol_version.filter(|v| super::LEGACY_VERSIONS.contains(&v.as_str()));
    // Every client's `initialize` answer carries them: kept to a size that answer can afford.
    let instructions = init.instructions.filter(|i| i.len() <= MAX_INSTRUCTIONS);
    let offers = Offers::of(&init.capabilities);
    let done = Handshake { backend: reply.backend, session: reply.session, version, instructions, offers };
    let initialized = Bytes::from_static(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    let era = Era::Legacy { session: done.session.as_deref(), version: done.version.as_deref() };
    let ask = Ask { method: "notifications/initialized", body: initialized, era, backend: Some(done.backend), timeout };
    if let Err(failed) = fanout::ask(pool, ask).await {
        // The member opened a session it will not be asked to use: ended, not left behind.
        if let Some(id) = done.session {
            let pool = Arc::clone(pool);
            tokio::spawn(async move { crate::upstream::session_end::end(&pool, done.backend, &id).await });
        }
        return Err(failed);
    }
    Ok(done)
}

/// The `initialize` the proxy sends for its own sessions (the catalog's lists).
pub fn own_initialize() -> Bytes {
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {
            "protocolVersion": super::LEGACY_VERSIONS[0],
            "capabilities": {},
            "clientInfo": { "name": "mcp-edge", "version": env!("CARGO_PKG_VERSION") },
        },
    });
    Bytes::from(body.to_string())
}

/// Every member's handshake, concurrently, each within [`HANDSHAKE_TIMEOUT`]; in member order,
/// a failed one logged and None.
pub async fn handshakes(fed: &Federation, pools: &[Arc<Pool>], body: &Bytes) -> Vec<Option<Handshake>> {
    let mut asks = tokio::task::JoinSet::new();
    for (i, member) in fed.members.iter().enumerate() {
        let Some(pool) = pools.get(member.pool).cloned() else { continue };
        let body = body.clone();
        asks.spawn(async move { (i, handshake(&pool, body, HANDSHAKE_TIMEOUT).await) });
    }
    let mut out: Vec<Option<Handshake>> = vec![None; fed.members.len()];
    while let Some(joined) = asks.join_next().await {
        let Ok((i, done)) = joined else { continue };
        match done {
            Ok(done) => {
                if let Some(slot) = out.get_mut(i) {
                    *slot = Some(done);
                }
            }
            Err(failed) => {
                let prefix = fed.members.get(i).map_or("-", |m| m.prefix.as_str());
                tracing::warn!(member = %prefix, error = %failed, "federation: a member's session did not open; its tools are called without one");
            }
        }
    }
    out
}

/// The members a federated session's token carries: the route's entry first, then one per
/// member in the route's order.
pub fn members(route: &str, fed: &Federation, pools: &[Arc<Pool>], done: &[Option<Handshake>]) -> Vec<Member> {
    let unspecified = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
    let mut out = Vec::with_capacity(fed.members.len() + 1);
    out.push(Member { pool: String::new(), backend: unspecified, session: route.to_owned(), version: None });
    for (member, done) in fed.members.iter().zip(done) {
        let pool = pools.get(member.pool).map_or("", |p| p.name()).to_owned();
        let (backend, session, version) = match done {
            Some(h) => (h.backend, h.session.clone().unwrap_or_default(), h.version.clone()),
            None => (unspecified, String::new(), None),
        };
        out.push(Member { pool, backend, session, version });
    }
    out
}

/// A token's members when they are a session of this federated route (its entry first, one
/// per member, each naming the member's pool): the members, in the route's order.
pub fn opened(route: &str, fed: &Federation, pools: &[Arc<Pool>], mut sealed: Vec<Member>) -> Option<Vec<Member>> {
    let first = sealed.first()?;
    if !first.pool.is_empty() || first.session != route || sealed.len() != fed.members.len() + 1 {
        return None;
    }
    sealed.remove(0);
    let same = sealed.iter().zip(&fed.members).all(|(s, m)| pools.get(m.pool).is_some_and(|p| p.name() == s.pool));
    same.then_some(sealed)
}

/// The merged `initialize` result: the version the route speaks, tools and what any member
/// offers besides (everything when no member answered: what they offer is unknown), and the
/// members' instructions, each under its prefix.
pub fn result(version: &str, server_info: serde_json::Value, fed: &Federation, done: &[Option<Handshake>]) -> String {
    let offers = done.iter().flatten().map(|d| d.offers).reduce(Offers::or).unwrap_or(Offers::ALL);
    let offers = if done.iter().flatten().any(|d| d.session.is_some()) { offers } else { offers.streamless() };
    let mut result = serde_json::json!({
        "protocolVersion": version,
        "capabilities": answer::capabilities(offers),
        "serverInfo": server_info,
    });
    let instructions: Vec<String> = fed
        .members
        .iter()
        .zip(done)
        .filter_map(|(m, d)| {
            let text = d.as_ref()?.instructions.as_deref()?;
            // With one member and its own names, its instructions are the route's as written.
            Some(match fed.prefix_mode {
                PrefixMode::Always => format!("Tools and prompts prefixed `{0}_`, resources `{0}+`: {text}", m.prefix),
                PrefixMode::Conflicts | PrefixMode::Never if fed.members.len() == 1 => text.to_owned(),
                PrefixMode::Conflicts | PrefixMode::Never => format!("From `{}`: {text}", m.prefix),
            })
        })
        .collect();
    if !instructions.is_empty() {
        result["instructions"] = instructions.join("\n\n").into();
    }
    result.to_string()
}

/// Ends members' sessions upstream, concurrently; best effort (a member that does not answer
/// forgets the session on its own).
pub async fn end_members(snap: &crate::state::Snapshot, members: &[Member]) {
    let mut ends = tokio::task::JoinSet::new();
    for m in members.iter().filter(|m| !m.session.is_empty()) {
        let Some(pool) = snap.pool_index(&m.pool).and_then(|i| snap.pools.get(i)).cloned() else { continue };
        let (backend, id) = (m.backend, m.session.clone());
        ends.spawn(async move { crate::upstream::session_end::end(&pool, backend, &id).await });
    }
    while let Some(ended) = ends.join_next().await {
        if let Ok(Err(why)) = ended {
            tracing::debug!(why, "federation: a member session did not end");
        }
    }
}

/// The members' streams a session's GET stream follows: each member that issued a session,
/// on the backend holding it.
pub fn sources(snap: &crate::state::Snapshot, fed: &Federation, members: &[Member]) -> Vec<super::stream::Source> {
    let own = fed.members.iter().zip(members).enumerate().filter(|(_, (_, m))| !m.session.is_empty());
    own.filter_map(|(i, (member, m))| {
        let pool = snap.pools.get(member.pool).filter(|p| p.name() == m.pool)?;
        Some(super::stream::Source {
            member: i,
            prefix: member.prefix.clone(),
            pool: Arc::clone(pool),
            leg: super::stream::Leg::Session {
                backend: m.backend,
                session: m.session.clone(),
                version: m.version.clone(),
            },
        })
    })
    .collect()
}

/// `logging/setLevel` (`body`, as the client sent it) to every member of the session,
/// concurrently, each in its own session (or without one, when it issued none or the client
/// has no session); best effort: a member without logging answers an error, which is its
/// own business. Returns how many members took it.
pub async fn set_level(
    snap: &crate::state::Snapshot,
    fed: &Federation,
    members: &[Member],
    body: &Bytes,
    version: Option<&str>,
) -> usize {
    tell(snap, fed, members, body, version, "logging/setLevel", false).await
}

/// A client's `notifications/cancelled` (`body`, as sent) to every member that issued a session
/// in the client's: the client's request ids reach members as the client wrote them, so the
/// member running the cancelled request knows its id, and the others ignore it (as the spec
/// lets a receiver ignore an unknown request). A member without a session cannot tell whose
/// request it is: not told.
pub async fn cancelled(
    snap: &crate::state::Snapshot,
    fed: &Federation,
    members: &[Member],
    body: &Bytes,
    version: Option<&str>,
) {
    tell(snap, fed, members, body, version, "notifications/cancelled", true).await;
}

/// `body` (a `method` message) to the members at once, each in its own session (only those
/// with one when `sessions_only`). Returns how many answered it without an error.
async fn tell(
    snap: &crate::state::Snapshot,
    fed: &Federation,
    members: &[Member],
    body: &Bytes,
    version: Option<&str>,
    method: &'static str,
    sessions_only: bool,
) -> usize {
    let mut asks = tokio::task::JoinSet::new();
    for (i, member) in fed.members.iter().enumerate() {
        let Some(pool) = snap.pools.get(member.pool).cloned() else { continue };
        let own = members.get(i).filter(|m| !m.session.is_empty()).map(|m| (m.backend, m.session.clone()));
        if sessions_only && own.is_none() {
            continue;
        }
        let version = super::spoken(version, members.get(i).and_then(|m| m.version.as_deref())).map(str::to_owned);
        let body = body.clone();
        asks.spawn(async move {
            let (backend, session) = own.map_or((None, None), |(b, s)| (Some(b), Some(s)));
            let era = Era::Legacy { session: session.as_deref(), version: version.as_deref() };
            let ask = Ask { method, body, era, backend, timeout: HANDSHAKE_TIMEOUT };
            fanout::ask(&pool, ask).await
        });
    }
    let mut took = 0;
    while let Some(done) = asks.join_next().await {
        match done {
            Ok(Ok(_)) => took += 1,
            Ok(Err(failed)) => tracing::debug!(error = %failed, method, "federation: a member did not take a message"),
            Err(_) => {}
        }
    }
    took
}
