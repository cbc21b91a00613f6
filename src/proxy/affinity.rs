//! Session affinity on the wire: finding a session token in a request (the `Mcp-Session-Id`
//! header, or the legacy HTTP+SSE `session_id`/`sessionId` query parameter), unwrapping it
//! for the backend, and wrapping backend-issued ids for the client (the response header here;
//! the legacy `endpoint` event's bytes in `sse_event`).

use percent_encoding::percent_decode_str;
use pingora::http::RequestHeader;

use super::ctx::{Ctx, Pinned};
use super::reply::Reject;
use crate::auth::identity::Identity;
use crate::config::model::RouteConfig;
use crate::session::seen::Use;
use crate::session::{self, token, Fingerprint, Member};
use crate::state::{Snapshot, State};

pub const SESSION_HEADER: http::HeaderName = crate::mcp::header::MCP_SESSION_ID;
/// Query parameters the Python (`session_id`) and TypeScript (`sessionId`) SDKs use.
const QUERY_KEYS: [&str; 2] = ["session_id", "sessionId"];

/// The backend a request's session lives on; `Err` for a token that is not (or no longer)
/// valid: forged, signed by another key, or naming a pool or backend that is gone.
pub fn pin_session(
    state: &State,
    snap: &Snapshot,
    route: &RouteConfig,
    req: &RequestHeader,
    caller: Option<&Identity>,
) -> Result<Option<Pinned>, Reject> {
    let query = req.uri.query().unwrap_or_default();
    let mut in_query = session_params(query);
    let first = in_query.next();
    // Backends read one session id; which one differs (Starlette takes the last parameter,
    // a header beats nothing or everything): a request naming two is refused, so the proxy
    // can never pin one session while the backend serves another.
    if in_query.next().is_some() || (first.is_some() && req.headers.contains_key(SESSION_HEADER)) {
        return Err(Reject::AMBIGUOUS_SESSION);
    }
    let (token, via_query) = match req.headers.get(SESSION_HEADER) {
        Some(v) => (v.to_str().map_err(|_| Reject::UNKNOWN_SESSION)?, false),
        None => match first {
            // A parameter without a value is never a token; and where it is a `;`-split piece
            // of a longer key (`sessionId[;]=x`), a backend splitting on `&` alone reads a
            // value the proxy never saw. Refused in every mode.
            Some((_, "")) => {
                tracing::debug!("session parameter without a value refused");
                return Err(Reject::UNKNOWN_SESSION);
            }
            Some((_, t)) => (t, true),
            None => return Ok(None),
        },
    };
    // Only ids this proxy minted go on: a raw backend id (leaked, guessed, or spelled so a
    // backend decodes it) would skip the identity binding, the route check and revocation.
    // `foreign_ids = "forward"` lets them through where there is no identity to bind.
    let opened = match state.keys.load().open(token) {
        Ok(opened) => opened,
        // Never on a federated route: its members' sessions are the proxy's to open.
        Err(token::TokenError::Foreign)
            if snap.config.sessions.forward_foreign && route.auth.accept.is_empty() && route.federation.is_none() =>
        {
            return Ok(None)
        }
        Err(e) => {
            tracing::debug!(error = %e, "session id refused");
            return Err(Reject::UNKNOWN_SESSION);
        }
    };
    // A session opened by an identity is that identity's alone: another caller (or none)
    // gets the same 404 as for a session that does not exist.
    if let Some(owner) = opened.owner {
        if caller.map(|c| session::owner_of(&c.id, c.tenant.as_deref())) != Some(owner) {
            tracing::debug!("session token refused: opened by another identity");
            return Err(Reject::UNKNOWN_SESSION);
        }
    }
    if let Some(fed) = &route.federation {
        return pin_federated(state, snap, route, fed, opened.members, token, via_query, caller);
    }
    let member = opened.members.into_iter().next().ok_or(Reject::UNKNOWN_SESSION)?;
    let refuse = |why: &str| {
        tracing::debug!(pool = %member.pool, why, "session token refused");
        Reject::UNKNOWN_SESSION
    };
    let pool = snap.pool_index(&member.pool).ok_or_else(|| refuse("pool no longer configured"))?;
    if !snap.pools[pool].contains(member.backend) {
        return Err(refuse("backend no longer in the pool"));
    }
    // A token only works on a route that can reach its pool (fallbacks included: sessions
    // opened during a failover stay valid): no hopping across tenants.
    if !route.serves(pool) {
        return Err(refuse("route does not serve the session's pool"));
    }
    // A backend the health check took out has lost (or cannot serve) its sessions: 404 makes
    // the client re-initialize on a healthy one.
    if !snap.pools[pool].usable(member.backend) {
        return Err(refuse("backend unhealthy"));
    }
    let fingerprint = Fingerprint::of(token);
    // Ended by an operator (`DELETE /sessions/{fingerprint}`): gone, as on the backend.
    if state.sessions.is_revoked(&fingerprint) {
        return Err(refuse("ended by an operator"));
    }
    state.sessions.used(
        fingerprint,
        Use {
            route: &route.name,
            pool: &member.pool,
            backend: member.backend,
            identity: caller.map(|c| c.id.as_str()),
            upstream_session: &member.session,
            members: &[],
        },
    );
    Ok(Some(Pinned { pool, member, token: token.to_owned(), via_query, fingerprint, federated: Vec::new() }))
}

/// A federated route's session: its token must name this route and carry one entry per
/// member. Which member the request goes to is decided later (`request::federated`), so
/// nothing is pinned to a backend yet, and a member's unhealthy backend fails only the calls
/// of that member's tools.
#[allow(clippy::too_many_arguments)]
fn pin_federated(
    state: &State,
    snap: &Snapshot,
    route: &RouteConfig,
    fed: &crate::config::model::Federation,
    sealed: Vec<Member>,
    token: &str,
    via_query: bool,
    caller: Option<&Identity>,
) -> Result<Option<Pinned>, Reject> {
    // The legacy HTTP+SSE transport (tokens in the query) is not federated.
    let members = crate::federation::session::opened(&route.name, fed, &snap.pools, sealed)
        .filter(|_| !via_query)
        .ok_or_else(|| {
            tracing::debug!("session token refused: not a session of this federated route");
            Reject::UNKNOWN_SESSION
        })?;
    let fingerprint = Fingerprint::of(token);
    if state.sessions.is_revoked(&fingerprint) {
        tracing::debug!("session token refused: ended");
        return Err(Reject::UNKNOWN_SESSION);
    }
    let first = fed.members.first().map_or(usize::MAX, |m| m.pool);
    let shown = members.iter().find(|m| !m.session.is_empty()).or(members.first());
    if let Some(m) = shown {
        let at = Use {
            route: &route.name,
            pool: &m.pool,
            backend: m.backend,
            identity: caller.map(|c| c.id.as_str()),
            upstream_session: &m.session,
            members: &members,
        };
        state.sessions.used(fingerprint, at);
    }
    let member = members.first().cloned().ok_or(Reject::UNKNOWN_SESSION)?;
    Ok(Some(Pinned { pool: first, member, token: token.to_owned(), via_query, fingerprint, federated: members }))
}

/// Every session parameter of a query (value range, value), spelled any way a backend may
/// read it: either key (`session_id`, `sessionId`) in any case, percent-encoded
/// (`session%5Fid`), with a bracket suffix (`sessionId[]`), as PHP mangles names (see
/// [`names_session`]), with or without a value, after `&` or `;` (older query parsers split
/// on both).
pub fn session_params(query: &str) -> impl Iterator<Item = ((usize, usize), &str)> {
    let mut offset = 0;
    query.split(['&', ';']).filter_map(move |pair| {
        let at = offset;
        offset += pair.len() + 1;
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        names_session(key).then(|| {
            let start = at + pair.len() - value.len();
            ((start, start + value.len()), value)
        })
    })
}

/// Whether a raw query key names the session for some backend. Percent-decoded; the name ends
/// at `[` (`qs` and PHP read `sessionId[]=x`, `sessionId[0]=x` as the parameter); compared
/// in any case; and as PHP reads names: leading spaces dropped, a space (`+`), `.` or an
/// unmatched first `[` read as `_` (`session.id`, `session+id`, `session[id`). Matching more
/// spellings than one backend reads only refuses more requests; matching fewer would let a
/// raw id through.
fn names_session(raw: &str) -> bool {
    let decoded = percent_decode_str(raw).decode_utf8_lossy();
    let key = decoded.trim_start_matches([' ', '+']);
    let is = |name: &str| QUERY_KEYS.iter().any(|k| php_eq(k, name));
    if is(key.split('[').next().unwrap_or_default()) {
        return true;
    }
    // PHP: a `[` with no `]` after it is an `_`, and the name goes on.
    match key.split_once('[') {
        Some((head, tail)) if !tail.contains(']') => {
            is(&format!("{head}_{}", tail.split('[').next().unwrap_or_default()))
        }
        _ => false,
    }
}

/// `name` is `key` in any case, reading a space, `+` or `.` in `name` as the `_` of `key`.
fn php_eq(key: &str, name: &str) -> bool {
    key.len() == name.len()
        && key
            .bytes()
            .zip(name.bytes())
            .all(|(k, n)| k.eq_ignore_ascii_case(&n) || (k == b'_' && matches!(n, b' ' | b'+' | b'.')))
}

/// The (first) session parameter of a query: value range, value.
pub fn session_param(query: &str) -> Option<((usize, usize), &str)> {
    session_params(query).next()
}

/// Replaces the client's token by the backend's own session id before forwarding.
pub fn unwrap_for_upstream(req: &mut RequestHeader, pinned: &Pinned) -> pingora::Result<()> {
    if !pinned.via_query {
        return req.insert_header(SESSION_HEADER, pinned.member.session.as_str());
    }
    let Some(pq) = req.uri.path_and_query() else {
        return Ok(());
    };
    let Some(query) = pq.query() else {
        return Ok(());
    };
    let Some(((start, end), _)) = session_param(query) else {
        return Ok(());
    };
    let rewritten = format!("{}?{}{}{}", pq.path(), &query[..start], pinned.member.session, &query[end..]);
    match rewritten.parse::<http::Uri>() {
        Ok(uri) => req.set_uri(uri),
        Err(_) => tracing::debug!("backend session id does not fit a URI; forwarding unchanged"),
    }
    Ok(())
}

/// The token for a backend-issued session id: the client's own token when the backend echoes
/// the session it already has (no new HMAC per response), else a freshly sealed one.
pub fn wrap(state: &State, ctx: &Ctx, backend_session: &str) -> Option<String> {
    if let Some(p) = &ctx.pinned {
        if p.member.session == backend_session {
            return Some(p.token.clone());
        }
    }
    let pool = ctx.snap.pools.get(ctx.pool?)?;
    let member = Member {
        pool: pool.name().to_owned(),
        backend: ctx.backend?,
        session: backend_session.to_owned(),
        version: None,
    };
    let owner = ctx.identity.as_deref().map(|i| session::owner_of(&i.id, i.tenant.as_deref()));
    let sealed = state.keys.load().seal(std::slice::from_ref(&member), owner.as_ref())?;
    state.metrics.sessions_opened.with_label_values(&[pool.name()]).inc();
    state.sessions.used(
        Fingerprint::of(&sealed),
        Use {
            route: ctx.route_name(),
            pool: &member.pool,
            backend: member.backend,
            identity: ctx.identity.as_deref().map(|i| i.id.as_str()),
            upstream_session: backend_session,
            members: &[],
        },
    );
    Some(sealed)
}

#[cfg(test)]
mod tests {
    use super::{session_param, session_params};

    fn count(query: &str) -> usize {
        session_params(query).count()
    }

    #[test]
    fn session_parameters_are_counted_however_spelled() {
        assert_eq!(count("session_id=e1.a"), 1);
        assert_eq!(count("session_id=e1.a&session_id=raw"), 2);
        assert_eq!(count("sessionId=e1.a&SESSION_ID=raw"), 2);
        assert_eq!(count("session_id=e1.a&session%5Fid=raw"), 2);
        assert_eq!(count("session_id=e1.a;session_%69d=raw"), 2);
        assert_eq!(count("x=1;session_id"), 1);
        assert_eq!(count("sessionId[]=raw&session_id%5B0%5D=raw"), 2);
        assert_eq!(count("session_id=e1.a&x=session_id"), 1);
        // As PHP reads names.
        for php in
            ["session.id", "session+id", "session%20id", "%20session_id", "+session_id", "session[id", "session[id[x"]
        {
            assert_eq!(count(&format!("{php}=raw")), 1, "{php}");
        }
        for other in ["session_idx", "session[id]", "xsession_id", "session__id", "session[]id"] {
            assert_eq!(count(&format!("{other}=raw")), 0, "{other}");
        }
        assert_eq!(count(""), 0);
    }

    #[test]
    fn finds_the_value_of_the_session_parameter() {
        assert_eq!(session_param("session_id=e1.abc"), Some(((11, 17), "e1.abc")));
        assert_eq!(session_param("SessionId=e1.q"), Some(((10, 14), "e1.q")));
        assert_eq!(session_param("x=1&sessionId=e1.zz&y=2"), Some(((14, 19), "e1.zz")));
        assert_eq!(session_param("x=1;session%5Fid=e1.zz"), Some(((17, 22), "e1.zz")));
        assert_eq!(session_param("a=b&session_id"), Some(((14, 14), "")));
        assert_eq!(session_param("session_id=raw123"), Some(((11, 17), "raw123")));
        assert_eq!(session_param("foo=bar"), None);
    }
}
