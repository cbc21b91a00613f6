//! A federated route: one MCP endpoint over several members (pools). Each member's tools and
//! prompts are offered as `<prefix>_<name>`, its resources and resource templates as
//! `<prefix>+<uri>` ([`kind`], [`names`]); or under their own names, where `prefix_mode` says
//! so ([`merge`]). What the route answers itself: `initialize`
//! (sessionless in the 2026-07-28 era; in the legacy era it opens a federated [`session`]),
//! `server/discover`, `ping`, notifications, and the four lists (merged by [`catalog`]). What it
//! forwards, to the member that owns the name, with the member's own name in the body
//! ([`rewrite`]) and in `Mcp-Name`: `tools/call`, `prompts/get`, `resources/read`, and
//! `completion/complete` (by its reference); in a legacy session also `resources/subscribe`
//! and `unsubscribe`, `logging/setLevel` (to every member), and the client's answers to the
//! members' requests, which reach it on the session's merged GET [`stream`] ([`relay`]).
//! Every other method is "method not found".
//!
//! A route's `[route.policy]` judges the offered names before anything here runs, and its
//! merged lists are filtered per caller on their way out (`proxy::transform::local`); the
//! catalog itself is shared by every caller. A merged list is served `page_size` entries a
//! page ([`page`]), walked with the route's own sealed [`cursor`]s. Not owned here: the
//! request's reading
//! (`mcp::call`), the replies (`proxy::reply`), the members' config (`config::federation`).

pub mod answer;
pub mod catalog;
pub mod contents;
pub mod cursor;
pub mod entry;
pub mod fanout;
mod follower;
pub mod kind;
pub mod listen;
pub mod listing;
pub mod merge;
pub mod names;
pub mod object;
pub mod page;
pub mod passing;
pub mod relay;
pub mod results;
pub mod rewrite;
pub mod scanner;
pub mod session;
pub mod stats;
pub mod stream;

use std::sync::Arc;

use bytes::Bytes;

use crate::config::model::{Federation, PrefixMode};
use crate::mcp::call::{Call, Element};
use crate::mcp::method::{Era, Method};
use crate::metrics::Metrics;
use crate::state::Snapshot;
use catalog::{Lookup, Merged};
use kind::Kind;
use page::At;
use rewrite::Field;

/// Legacy protocol versions a federated route accepts in `initialize`, newest first.
pub(crate) const LEGACY_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// The version a member is spoken to in a client's legacy session: the client's
/// (`MCP-Protocol-Version`, when it is a legacy version the route knows), never newer than the
/// one the member agreed to in its handshake; the member's when the client named none (a server
/// may rely on the version it negotiated). A client naming an older version than it negotiated
/// asks for that version's behaviour, as it would of the server directly (the conformance
/// scenarios do); a newer one the member never agreed to would be refused. A member without an
/// agreed version (a token without one) gets the client's as sent.
pub(crate) fn spoken<'a>(client: Option<&'a str>, member: Option<&'a str>) -> Option<&'a str> {
    match (client, member) {
        (Some(c), Some(m)) if LEGACY_VERSIONS.contains(&c) && c <= m => Some(c),
        (client, None) => client,
        (_, member) => member,
    }
}

/// Every protocol version a federated route speaks, newest first: what `server/discover`
/// names, and what a request naming another is told (`MCP-Protocol-Version`).
pub(crate) const VERSIONS: [&str; 5] =
    [crate::mcp::method::FIRST_MODERN_VERSION, "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// A JSON-RPC result the route answers itself, as pieces written one after another: a merged
/// list's entries are one piece, rendered once per list and shared by every answer, so a client
/// that reads slowly holds a reference, not a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts(pub Vec<Bytes>);

impl From<String> for Parts {
    fn from(s: String) -> Parts {
        Parts(vec![Bytes::from(s)])
    }
}

impl Parts {
    pub fn len(&self) -> usize {
        self.0.iter().map(Bytes::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a federated route does with a request.
#[derive(Debug)]
pub enum Outcome {
    /// Send to member `member` (route order), pool `pool`, with `body` (the member's own name
    /// in it); `name` is that name, for `Mcp-Name`.
    /// `cacheable`: a tool call whose result the route's result cache may keep.
    Forward { member: usize, pool: usize, body: Bytes, name: String, cacheable: bool },
    /// A legacy `initialize`: open a session with every member ([`open`]).
    Initialize,
    /// `logging/setLevel`: sent to every member of the session; answered `{}`.
    SetLevel,
    /// A legacy `notifications/cancelled`: told to every member of the session; 202.
    Cancelled,
    /// Answer 200 with this JSON-RPC result (the id is added by the reply).
    Answer(Parts),
    /// A notification or a response: 202, nothing forwarded.
    Accepted,
    /// No member offers the tool, prompt or resource; answered as the spec says for the
    /// request's own method and target, or for this element's (a completion's reference).
    Unknown(Option<Element>),
    /// A fail-closed route's list is missing a member's part.
    Incomplete,
    /// A method the merged capabilities do not offer.
    NotFound,
    /// The body could not be rewritten for the member (not an object with the named field).
    Unreadable,
    /// A `completion/complete` whose `params.ref` names no prompt or resource, or names it
    /// twice.
    BadReference,
    /// A list's `params.cursor` is not one this route issued for that list.
    BadCursor,
}

/// Where a federated request is known to be going, before its body is rewritten.
struct Owned<'a> {
    member: usize,
    own: std::borrow::Cow<'a, str>,
}

/// What the route does with `call`. `ids` hold the keys that seal and open the lists' cursors
/// and the ids of the members' requests, and the client's session.
pub async fn decide(
    snap: &Arc<Snapshot>,
    metrics: &Metrics,
    ids: &relay::Ids<'_>,
    route: usize,
    fed: &Federation,
    call: &Call,
    body: &Bytes,
) -> Outcome {
    let modern = call.era == Era::Modern;
    let route_name = snap.router.routes().get(route).map_or("", |r| r.name.as_str());
    let list = |kind| async move {
        // A cursor is read before any member is asked: a forged one costs no fan-out.
        // A route that pages nothing issued no cursor.
        let from = match &call.cursor {
            None => At::START,
            Some(_) if fed.page_size == 0 => return Outcome::BadCursor,
            Some(c) => match cursor::open(ids.keys, c, route_name, modern, kind) {
                Some(at) => at,
                None => return Outcome::BadCursor,
            },
        };
        match merged(snap, metrics, route, fed, modern, kind).await {
            Some(merged) if fed.fail_closed && !merged.failed.is_empty() => Outcome::Incomplete,
            Some(merged) => {
                let page = merged.page(from);
                let position = |at| cursor::Position { route: route_name, modern, kind, at };
                let next = page.next.and_then(|at| cursor::seal(ids.keys, position(at)));
                Outcome::Answer(answer::list(&merged, &page, next, fed, modern))
            }
            None => Outcome::NotFound,
        }
    };
    let target = call.one.target.as_ref();
    let answered_here = matches!(
        call.one.method,
        Method::Ping
            | Method::ServerDiscover
            | Method::ToolsList
            | Method::PromptsList
            | Method::ResourcesList
            | Method::ResourcesTemplatesList
    );
    // No id: a notification, which gets no answer (JSON-RPC); above all no list, whose filter
    // for the caller's policy picks the answers it filters by their ids.
    if call.one.id.is_none() && answered_here {
        return Outcome::Accepted;
    }
    match call.one.method {
        Method::Notification if !modern && call.one.method_name == "notifications/cancelled" => Outcome::Cancelled,
        Method::Notification => Outcome::Accepted,
        Method::Response => answer_of_client(ids, fed, call, body),
        Method::LoggingSetLevel if !modern => Outcome::SetLevel,
        // 2026-07-28 removed the handshake and `ping`: "method not found", as its servers say.
        Method::Ping if !modern => Outcome::Answer(Parts(vec![Bytes::from_static(b"{}")])),
        Method::Initialize if !modern => Outcome::Initialize,
        Method::ServerDiscover => Outcome::Answer(answer::discover(snap, route, fed).into()),
        Method::ToolsList => list(Kind::Tools).await,
        Method::PromptsList => list(Kind::Prompts).await,
        Method::ResourcesList => list(Kind::Resources).await,
        Method::ResourcesTemplatesList => list(Kind::Templates).await,
        Method::ToolsCall | Method::PromptsGet => {
            let kind = if call.one.method == Method::ToolsCall { Kind::Tools } else { Kind::Prompts };
            let Some(merged) = merged(snap, metrics, route, fed, modern, kind).await else { return Outcome::NotFound };
            let owned = call.one.target_str().and_then(|t| named(&merged, t).or_else(|| sole(fed, t)));
            let Some(owned) = owned else { return Outcome::Unknown(None) };
            let body = rewrite::renamed(body, target, Field::Name, &owned.own);
            let cacheable = kind == Kind::Tools && call.one.target_str().is_some_and(|t| cacheable(fed, &merged, t));
            forward(fed, owned, body, cacheable)
        }
        Method::ResourcesRead | Method::ResourcesSubscribe | Method::ResourcesUnsubscribe
            if call.one.method == Method::ResourcesRead || !modern =>
        {
            let owned = match call.one.target_str() {
                Some(uri) => by_uri(snap, metrics, route, fed, modern, uri).await,
                None => None,
            };
            let Some(owned) = owned else { return Outcome::Unknown(None) };
            let body = rewrite::renamed(body, target, Field::Uri, &owned.own);
            forward(fed, owned, body, false)
        }
        Method::CompletionComplete => {
            let Some(reference) = rewrite::reference(body) else { return Outcome::BadReference };
            let owned = if reference.prompt {
                let Some(merged) = merged(snap, metrics, route, fed, modern, Kind::Prompts).await else {
                    return Outcome::NotFound;
                };
                named(&merged, &reference.target).or_else(|| sole(fed, &reference.target))
            } else {
                by_uri(snap, metrics, route, fed, modern, &reference.target).await
            };
            let Some(owned) = owned else {
                let method = if reference.prompt { Method::PromptsGet } else { Method::ResourcesRead };
                let target = Some(Bytes::copy_from_slice(reference.target.as_bytes()));
                return Outcome::Unknown(Some(Element { method, target, ..call.one.clone() }));
            };
            let body = rewrite::complete(body, &reference, &owned.own);
            forward(fed, owned, body, false)
        }
        _ => Outcome::NotFound,
    }
}

/// A client's answer to a member's request: to the member its id names ([`relay`]), with the
/// member's own id; on a route with one member, any answer is that member's (its requests
/// on a call's stream reach the client unchanged). Else nobody asked: accepted, dropped.
fn answer_of_client(ids: &relay::Ids<'_>, fed: &Federation, call: &Call, body: &Bytes) -> Outcome {
    let restored = call.one.id.as_deref().and_then(|id| ids.restore(id));
    let (member, body) = match restored {
        Some((member, own)) if member < fed.members.len() => match relay::answered(body, &own) {
            Some(body) => (member, body),
            None => return Outcome::Unreadable,
        },
        None if fed.members.len() == 1 => (0, body.clone()),
        _ => {
            tracing::debug!("federation: a client's answer names no member's request; dropped");
            return Outcome::Accepted;
        }
    };
    forward(fed, Owned { member, own: "".into() }, Some(body), false)
}

/// The owner of an offered tool or prompt name, from the merged list.
fn named(merged: &Merged, offered: &str) -> Option<Owned<'static>> {
    let owner = merged.owners.get(offered)?;
    Some(Owned { member: owner.member, own: owner.name.clone().into() })
}

/// The owner of an offered resource URI. Under `prefix_mode = "always"` the prefix names the
/// member, ignoring case (URI schemes are, and clients lower-case them), with no list needed.
/// Otherwise the merged resource list names it (a URI several members offer is listed under
/// each prefix), or else the first member with an offered resource template it could have been
/// expanded from. Never the prefix alone: a URI offered bare is judged by policy as offered,
/// and its prefixed spelling must not reach the member past a rule on that form.
async fn by_uri<'a>(
    snap: &Arc<Snapshot>,
    metrics: &Metrics,
    route: usize,
    fed: &Federation,
    modern: bool,
    offered: &'a str,
) -> Option<Owned<'a>> {
    let prefixed = || {
        let (prefix, own) = names::split_uri(offered)?;
        let member = fed.members.iter().position(|m| m.prefix.eq_ignore_ascii_case(prefix))?;
        Some(Owned { member, own: own.into() })
    };
    if fed.prefix_mode == PrefixMode::Always {
        return prefixed();
    }
    let resources = merged(snap, metrics, route, fed, modern, Kind::Resources).await?;
    if let Some(owner) = resources.owners.get(offered) {
        return Some(Owned { member: owner.member, own: owner.own(offered).to_owned().into() });
    }
    if offered.len() > MAX_EXPANDED_URI {
        return sole(fed, offered);
    }
    let templates = merged(snap, metrics, route, fed, modern, Kind::Templates).await?;
    let Some((template, owner)) = templates.named().find(|(t, _)| names::expands(t, offered)) else {
        return sole(fed, offered);
    };
    let own = if templates.owners.get(template).is_some_and(|o| o.name.is_empty()) {
        names::split_uri(offered).map_or(offered, |(_, own)| own)
    } else {
        offered
    };
    Some(Owned { member: owner, own: own.into() })
}

/// A name or URI no list names, on a route with one member and its own names: the member's
/// to judge, as it would be on a plain route (a server may serve what it does not list).
fn sole<'a>(fed: &Federation, own: &'a str) -> Option<Owned<'a>> {
    (fed.members.len() == 1 && fed.prefix_mode != PrefixMode::Always).then(|| Owned { member: 0, own: own.into() })
}

/// Longest URI matched against the members' resource templates (each match is linear in it).
const MAX_EXPANDED_URI: usize = 8 << 10;

/// Whether the route's result cache keeps the results of the tool offered as `offered`: it
/// names the tool, or trusts its member's `readOnlyHint`.
fn cacheable(fed: &Federation, merged: &Merged, offered: &str) -> bool {
    let Some(results) = &fed.results else { return false };
    results.tools.iter().any(|g| g.is_match(offered))
        || (results.read_only_hint && merged.owners.get(offered).is_some_and(|o| o.read_only))
}

fn forward(fed: &Federation, owned: Owned<'_>, body: Option<Bytes>, cacheable: bool) -> Outcome {
    let Some(member) = fed.members.get(owned.member) else { return Outcome::Unknown(None) };
    match body {
        Some(body) => {
            Outcome::Forward { member: owned.member, pool: member.pool, body, name: owned.own.into_owned(), cacheable }
        }
        None => Outcome::Unreadable,
    }
}

/// The route's merged list of `kind` for the era: fresh; or stale while one refresh runs in the
/// background (a slow member delays no caller once a list exists); or, the first time, the
/// list the caller waits for.
async fn merged(
    snap: &Arc<Snapshot>,
    metrics: &Metrics,
    route: usize,
    fed: &Federation,
    modern: bool,
    kind: Kind,
) -> Option<Arc<Merged>> {
    let catalog = snap.catalogs.get(route).and_then(Option::as_ref)?;
    let counted = || catalog::Counted {
        lists: metrics.member_lists.clone(),
        route: snap.router.routes().get(route).map_or("-", |r| r.name.as_str()).to_owned(),
    };
    let found = catalog.lookup(modern, kind, fed.catalog_ttl);
    catalog.stats.looked_up(kind, &found);
    Some(match found {
        Lookup::Fresh(m) => m,
        Lookup::Stale(m) => {
            if !catalog.refreshing(modern, kind) {
                let (snap, counted) = (Arc::clone(snap), counted());
                tokio::spawn(async move { background(&snap, route, modern, kind, &counted).await });
            }
            m
        }
        Lookup::Cold => catalog.refresh(fed, &snap.pools, modern, kind, &counted()).await,
    })
}

/// Refreshes a stale list, unless another refresh claimed it first.
async fn background(snap: &Snapshot, route: usize, modern: bool, kind: Kind, counted: &catalog::Counted) {
    let Some(fed) = snap.router.routes().get(route).and_then(|r| r.federation.as_ref()) else { return };
    let Some(catalog) = snap.catalogs.get(route).and_then(Option::as_ref) else { return };
    let Some(_claim) = catalog.claim(modern, kind) else { return };
    catalog.refresh(fed, &snap.pools, modern, kind, counted).await;
}

/// A federated session being opened: the merged `initialize` result, and the token's members
/// (see [`session`]); `sessions` is how many members issued a session, `failed` how many
/// did not answer the handshake.
pub struct Opening {
    pub result: String,
    pub members: Vec<crate::session::Member>,
    pub sessions: usize,
    pub failed: usize,
}

/// A legacy `initialize`: the client's request sent to every member (each keeps the client's
/// capabilities and info), and the merged answer.
pub async fn open(snap: &Snapshot, route: usize, fed: &Federation, body: &Bytes) -> Opening {
    let done = session::handshakes(fed, &snap.pools, body).await;
    // What each member announced tells the catalog whether it reads resources (a route
    // over tools-only members announces none, so its clients never list them to find out).
    if let Some(catalog) = snap.catalogs.get(route).and_then(Option::as_ref) {
        for (i, done) in done.iter().enumerate() {
            if let Some(done) = done {
                catalog.learned(i, done.offers.resources);
            }
        }
    }
    let name = snap.router.routes().get(route).map_or("", |r| r.name.as_str());
    Opening {
        result: session::result(answer::version_asked(body), answer::server_info(snap, route), fed, &done),
        members: session::members(name, fed, &snap.pools, &done),
        sessions: done.iter().flatten().filter(|d| d.session.is_some()).count(),
        failed: done.iter().filter(|d| d.is_none()).count(),
    }
}

/// A member said its `kinds` lists changed: route `route`'s merged lists of them are stale
/// in the running config `snap`, and the era's lists clients have are asked for again now. Returns when they are, so a session's stream can relay the notification then and
/// the client's next list is the new one. A route gone or no longer federated has nothing
/// to refresh.
pub async fn refreshed(snap: &Snapshot, lists: &prometheus::IntCounterVec, route: &str, kinds: &[Kind], modern: bool) {
    let routes = snap.router.routes();
    let Some(i) = routes.iter().position(|r| r.name == route) else { return };
    let Some(fed) = routes.get(i).and_then(|r| r.federation.as_ref()) else { return };
    let Some(catalog) = snap.catalogs.get(i).and_then(Option::as_ref) else { return };
    catalog.changed(kinds);
    tracing::debug!(route, lists = ?kinds, "federation: a member's lists changed");
    for kind in kinds {
        // A list no client asked for yet is asked for by its first caller.
        if !matches!(catalog.lookup(modern, *kind, fed.catalog_ttl), Lookup::Cold) {
            let counted = catalog::Counted { lists: lists.clone(), route: route.to_owned() };
            catalog.refresh(fed, &snap.pools, modern, *kind, &counted).await;
        }
    }
}

/// A process mcp-edge runs for stdio pool `pool` (one every client shares) said its `lists`
/// changed: every federated route with the pool as a member has those lists stale, and its
/// open merged streams (legacy sessions' GET streams, listens that asked for the list) tell
/// their clients once the lists are new, as for a member's own notification.
pub fn pool_changed(snap: &Snapshot, pool: &str, lists: crate::stdio::frame::Lists) {
    use crate::stdio::frame::Lists;
    let kinds: &'static [Kind] = match lists {
        Lists::Tools => &[Kind::Tools],
        Lists::Prompts => &[Kind::Prompts],
        Lists::Resources => &[Kind::Resources, Kind::Templates],
    };
    let is_pool = |i: usize| snap.pools.get(i).is_some_and(|p| p.name() == pool);
    for (route, catalog) in snap.router.routes().iter().zip(snap.catalogs.iter()) {
        let (Some(fed), Some(catalog)) = (route.federation.as_ref(), catalog.as_ref()) else { continue };
        if fed.members.iter().any(|m| is_pool(m.pool)) {
            catalog.announce(kinds);
        }
    }
}

/// A member said so on a call's stream, where nothing may wait: the lists are only marked
/// stale, and their next caller refreshes them in the background (one refresh at a time), so
/// a member that says so on every answer starts no task per notification.
pub fn changed(snap: &Snapshot, route: &str, kinds: &[Kind]) {
    let routes = snap.router.routes();
    let Some(i) = routes.iter().position(|r| r.name == route && r.federation.is_some()) else { return };
    if let Some(catalog) = snap.catalogs.get(i).and_then(Option::as_ref) {
        catalog.changed(kinds);
    }
}

#[cfg(test)]
mod tests {
    use super::spoken;

    #[test]
    fn a_member_is_spoken_to_in_the_clients_version_never_newer_than_its_own() {
        let agreed = Some("2025-06-18");
        assert_eq!(spoken(Some("2025-11-25"), agreed), agreed, "newer than agreed: the member's");
        assert_eq!(spoken(Some("2025-03-26"), agreed), Some("2025-03-26"), "older: the client's");
        assert_eq!(spoken(Some("2025-06-18"), agreed), agreed);
        assert_eq!(spoken(None, agreed), agreed, "none named: the member's");
        assert_eq!(spoken(Some("2026-07-28"), agreed), agreed, "not a legacy version: the member's");
        assert_eq!(spoken(Some("1999-01-01"), agreed), agreed, "unknown: the member's");
        assert_eq!(spoken(Some("2025-11-25"), None), Some("2025-11-25"), "no agreed version: as sent");
        assert_eq!(spoken(None, None), None);
    }
}
