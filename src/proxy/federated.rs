//! The proxy's side of a federated route (`crate::federation` decides): binding a call to the
//! member that owns its tool (and in a legacy session to the backend holding that member's
//! session), opening a federated session on `initialize` and ending it on DELETE. Not owned
//! here: the merged catalog and the members' handshakes (`federation`), the replies (`reply`).

use std::sync::Arc;

use bytes::Bytes;
use http::Method as HttpMethod;
use pingora::proxy::Session;

use super::ctx::Ctx;
use super::reply::Reject;
use super::request::Refused;
use crate::config::model::Federation;
use crate::federation::{self, Outcome};
use crate::mcp::method::{Era, Method};
use crate::session::seen::Use;
use crate::session::{self, Fingerprint};
use crate::state::{Snapshot, State};

/// A federated route's request: answered here, or bound to the member that owns its tool
/// (and, in a legacy session, to the backend holding that member's session).
pub(super) async fn request(
    state: &State,
    session: &Session,
    ctx: &mut Ctx,
    route: usize,
    fed: &Federation,
) -> Result<(), Refused> {
    let method = &session.req_header().method;
    if *method == HttpMethod::DELETE && ctx.pinned.is_some() {
        return Err(end_federated(state, ctx).await);
    }
    if *method == HttpMethod::GET {
        return Err(stream(&state.keys, session, ctx, route, fed));
    }
    if *method != HttpMethod::POST {
        return Err(Reject::FEDERATED_STREAM.into());
    }
    // The route is the server here: it judges what a server of each era must.
    if let Some(asked) = unspoken_version(session) {
        return Err(Refused::Version(asked));
    }
    let modern = ctx.call.era == Era::Modern;
    if modern && ctx.call.one.id.is_some() && !ctx.call.meta.complete() {
        return Err(Reject::META.into());
    }
    let not_found = if modern { Reject::FEDERATED_NOT_FOUND } else { Reject::FEDERATED_METHOD };
    if modern && ctx.call.one.method == Method::SubscriptionsListen && ctx.call.one.id.is_some() {
        return Err(listen(state, ctx, route, fed).await);
    }
    let snap = Arc::clone(&ctx.snap);
    let body = ctx.body.clone().unwrap_or_default();
    let keys = state.keys.load();
    let ids =
        federation::relay::Ids { keys: &keys, session: ctx.pinned.as_ref().map_or("", |p| p.fingerprint.as_str()) };
    match federation::decide(&snap, &state.metrics, &ids, route, fed, &ctx.call, &body).await {
        Outcome::Forward { member, pool, body: forwarded, name, cacheable } => {
            // The version the member is spoken to in the client's session (read before
            // binding: a member without a session of its own unpins the request).
            let agreed = ctx.pinned.as_ref().and_then(|p| p.federated.get(member)?.version.as_deref());
            let version = federation::spoken(legacy_version(session), agreed).map(str::to_owned);
            let cache = match cacheable
                .then(|| cached(&snap, ctx, route, (member, &name), version.as_deref(), &body))
                .flatten()
            {
                Some(Ok(result)) => return Err(Refused::Answer(Some(federation::Parts(vec![result])), None)),
                Some(Err(key)) => Some(key),
                None => None,
            };
            bind_member(&snap, ctx, member, pool)?;
            ctx.body = Some(forwarded);
            ctx.member = Some(super::ctx::Forwarded { index: member, name, version, cache });
            ctx.pool = Some(pool);
            // The body changed: a `_meta.traceparent` found in the client's is not where it was.
            if let Some(t) = ctx.trace.as_mut() {
                t.meta_at = None;
            }
            Ok(())
        }
        Outcome::Initialize => Err(open_federated(state, ctx, route, fed, &body).await),
        Outcome::SetLevel => {
            let members = ctx.pinned.as_ref().map_or(&[][..], |p| p.federated.as_slice());
            // No member took it: none offers logging, and neither does the route.
            match federation::session::set_level(&snap, fed, members, &body, legacy_version(session)).await {
                0 => Err(Reject::FEDERATED_METHOD.into()),
                _ => Err(Refused::Answer(Some(federation::Parts(vec![Bytes::from_static(b"{}")])), None)),
            }
        }
        Outcome::Cancelled => {
            // Awaited (at most the handshake timeout): a client sending many costs its own time.
            if let Some(pinned) = ctx.pinned.as_ref() {
                federation::session::cancelled(&snap, fed, &pinned.federated, &body, legacy_version(session)).await;
            }
            Err(Refused::Answer(None, None))
        }
        Outcome::Answer(result) => Err(Refused::Answer(Some(result), None)),
        Outcome::Accepted => Err(Refused::Answer(None, None)),
        Outcome::Unknown(element) => Err(Refused::Unknown(element)),
        Outcome::NotFound => Err(not_found.into()),
        Outcome::Incomplete => Err(Reject::FEDERATED_INCOMPLETE.into()),
        Outcome::Unreadable => Err(Reject::INVALID.into()),
        Outcome::BadReference => Err(Reject::COMPLETION_REFERENCE.into()),
        Outcome::BadCursor => Err(Reject::CURSOR.into()),
    }
}

/// A call to a cacheable tool: its result when the route's result cache holds one for this
/// caller, tool, owning member and its own name for the tool, arguments and version (`Ok`), else where to keep the answer (`Err`); none
/// when the call is not one to keep (`results::key`) or a notification (no answer).
fn cached(
    snap: &Snapshot,
    ctx: &Ctx,
    route: usize,
    (member, own): (usize, &str),
    version: Option<&str>,
    body: &[u8],
) -> Option<Result<Bytes, federation::results::Miss>> {
    ctx.call.one.id.as_ref()?;
    let results = snap.catalogs.get(route)?.as_ref()?.results.as_ref()?;
    let modern = ctx.call.era == Era::Modern;
    let asker = federation::results::Asker {
        identity: ctx.identity.as_deref().map(|i| (i.id.as_str(), i.tenant.as_deref())),
        version: if modern { crate::mcp::method::FIRST_MODERN_VERSION } else { version.unwrap_or("") },
        member,
        own,
    };
    let key = federation::results::key(&asker, ctx.call.one.target_str()?, body)?;
    Some(results.get(key))
}

/// A GET in a federated session: the members' streams merged (`federation::stream`); 405
/// when there is no session, the client does not take an event stream, or (found once they
/// answer, `reply::stream`) no member has one.
fn stream(
    keys: &arc_swap::ArcSwap<crate::session::KeyRing>,
    session: &Session,
    ctx: &Ctx,
    route: usize,
    fed: &Federation,
) -> Refused {
    let accept = session.req_header().headers.get(http::header::ACCEPT);
    let takes_events = accept.and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/event-stream"));
    let Some(pinned) = ctx.pinned.as_ref().filter(|_| takes_events) else { return Reject::FEDERATED_STREAM.into() };
    let sources = federation::session::sources(&ctx.snap, fed, &pinned.federated);
    let Some(places) = places(ctx, sources.len()) else { return Reject::MEMBER_STREAMS.into() };
    let client = federation::stream::Client {
        keys: keys.load_full(),
        session: pinned.fingerprint.as_str().to_owned(),
        version: legacy_version(session).map(str::to_owned),
        listen: None,
    };
    Refused::Stream(federation::stream::open(&ctx.snap, route, sources, client, places))
}

/// Longest requested version echoed back.
const MAX_ECHOED_VERSION: usize = 64;

/// The request's `MCP-Protocol-Version` when it names one the route does not speak (none
/// means 2025-03-26, which it does), as it is echoed: lossy UTF-8, bounded.
fn unspoken_version(session: &Session) -> Option<String> {
    let asked = session.req_header().headers.get(crate::mcp::header::MCP_PROTOCOL_VERSION)?.as_bytes();
    if federation::VERSIONS.iter().any(|v| v.as_bytes() == asked) {
        return None;
    }
    let mut echoed = String::from_utf8_lossy(asked.get(..MAX_ECHOED_VERSION).unwrap_or(asked)).into_owned();
    echoed.retain(|c| c != char::REPLACEMENT_CHARACTER);
    Some(echoed)
}

/// A 2026-07-28 `subscriptions/listen`: the members' listens, merged (`federation::listen`).
/// A URI the caller's policy would not let it read is not watched (nor acknowledged).
async fn listen(state: &State, ctx: &Ctx, route: usize, fed: &Federation) -> Refused {
    use federation::listen;
    let body = ctx.body.as_deref().unwrap_or_default();
    let Some(mut asked) = listen::read(body) else { return Reject::LISTEN.into() };
    if let Some(policy) = ctx.snap.router.routes().get(route).and_then(|r| r.policy.as_ref()) {
        let identity = ctx.identity.as_deref();
        asked
            .filter
            .uris
            .retain(|uri| crate::policy::check_target(policy, identity, Method::ResourcesRead, uri).is_ok());
    }
    let sources = listen::sources(&ctx.snap, &state.metrics, route, fed, &asked).await;
    let Some(places) = places(ctx, sources.len()) else { return Reject::MEMBER_STREAMS.into() };
    let (first, closing) = (listen::acknowledged(&asked.id, &asked.filter), listen::closing(&asked.id));
    let client = federation::stream::Client {
        keys: state.keys.load_full(),
        session: String::new(),
        version: None,
        listen: Some(Arc::new(listen::Listening { id: asked.id, filter: asked.filter })),
    };
    Refused::Stream(federation::stream::listen(&ctx.snap, route, sources, client, first, closing, places))
}

/// A merged stream's places for its `n` members' streams within `proxy.max_member_streams`
/// (a client's one request opens a stream at every member: without a bound of their own,
/// members' streams would be bounded only by client connections times members).
fn places(ctx: &Ctx, n: usize) -> Option<federation::stream::Places> {
    let places = federation::stream::Places::take(n, ctx.snap.config.proxy.max_member_streams);
    if places.is_none() {
        tracing::debug!(route = ctx.route_name(), "proxy.max_member_streams reached: a merged stream refused");
    }
    places
}

/// The client's `MCP-Protocol-Version` when it is one the route speaks in a legacy session,
/// passed to members on the proxy's own requests in that session.
fn legacy_version(session: &Session) -> Option<&'static str> {
    let asked = session.req_header().headers.get(crate::mcp::header::MCP_PROTOCOL_VERSION)?;
    federation::LEGACY_VERSIONS.iter().find(|v| v.as_bytes() == asked.as_bytes()).copied()
}

/// In a federated session, the call goes to the backend holding the member's session; a
/// member that issued none is called without one (any usable backend).
fn bind_member(snap: &Snapshot, ctx: &mut Ctx, member: usize, pool: usize) -> Result<(), Reject> {
    let Some(pinned) = ctx.pinned.as_mut() else { return Ok(()) };
    let Some(own) = pinned.federated.get(member).filter(|m| !m.session.is_empty()).cloned() else {
        ctx.pinned = None;
        return Ok(());
    };
    // The member's backend left the pool or failed its checks: its session is gone with it.
    // Only this member's calls fail; the client re-initializes to open a new one.
    if !snap.pools.get(pool).is_some_and(|p| p.contains(own.backend) && p.usable(own.backend)) {
        return Err(Reject::MEMBER_SESSION_GONE);
    }
    pinned.pool = pool;
    pinned.member = own;
    Ok(())
}

/// A legacy `initialize` on a federated route: every member's session opened, one token
/// sealing them all (none when no member issued a session).
async fn open_federated(state: &State, ctx: &mut Ctx, route: usize, fed: &Federation, body: &Bytes) -> Refused {
    let snap = Arc::clone(&ctx.snap);
    let opening = federation::open(&snap, route, fed, body).await;
    if fed.fail_closed && opening.failed > 0 {
        tracing::warn!(
            route = ctx.route_name(),
            failed = opening.failed,
            "federation: a member did not join the session; the route is fail-closed"
        );
        federation::session::end_members(&snap, &opening.members).await;
        return Reject::FEDERATED_INCOMPLETE.into();
    }
    if opening.sessions == 0 {
        return Refused::Answer(Some(opening.result.into()), None);
    }
    let owner = ctx.identity.as_deref().map(|i| session::owner_of(&i.id, i.tenant.as_deref()));
    let Some(token) = state.keys.load().seal(&opening.members, owner.as_ref()) else {
        tracing::warn!(
            route = ctx.route_name(),
            "federation: the members' session ids do not fit in one session token"
        );
        federation::session::end_members(&snap, &opening.members).await;
        return Reject::FEDERATED_SESSION.into();
    };
    // The first entry is the route's own, not a member's.
    let members = opening.members.get(1..).unwrap_or_default();
    for m in members.iter().filter(|m| !m.session.is_empty()) {
        state.metrics.sessions_opened.with_label_values(&[m.pool.as_str()]).inc();
    }
    let fingerprint = Fingerprint::of(&token);
    ctx.new_session = Some(fingerprint);
    if let Some(m) = members.iter().find(|m| !m.session.is_empty()) {
        let at = Use {
            route: ctx.route_name(),
            pool: &m.pool,
            backend: m.backend,
            identity: ctx.identity.as_deref().map(|i| i.id.as_str()),
            upstream_session: &m.session,
            members,
        };
        state.sessions.used(fingerprint, at);
    }
    Refused::Answer(Some(opening.result.into()), Some(token))
}

/// The client ends its federated session: every member's session ended upstream, the token
/// refused from now on.
async fn end_federated(state: &State, ctx: &mut Ctx) -> Refused {
    let Some(pinned) = ctx.pinned.take() else { return Reject::UNKNOWN_SESSION.into() };
    federation::session::end_members(&ctx.snap, &pinned.federated).await;
    state.sessions.revoke(pinned.fingerprint.as_str());
    Refused::Ended
}
