//! The request phase, in order: read the head (`head`), OAuth metadata (answered here),
//! route, Host/Origin guard, authentication (`auth`: the identity), session,
//! limits that need no body, body and its one reading (`mcp::call`), policy (`policy`; with
//! `completion/complete` references, and the list filter armed: `discovery`), rules, limits on
//! the reading, pool. On a route with a policy the limits that need no body wait
//! until the policy allowed the call, so a denied call spends no limit budget (the caller is
//! authenticated by then, so the body read first is an authenticated caller's). Everything
//! that can be refused is refused here, before an upstream is chosen, through `reply`.

use std::sync::Arc;

use http::Method as HttpMethod;
use pingora::proxy::Session;
use pingora::Result;

use super::affinity::pin_session;
use super::body::{self, Framing};
use super::ctx::Ctx;
use super::head;
use super::reply::{self, Reject};
use super::throttle::{self, Stage};
use super::transform;
use crate::auth::challenge;
use crate::auth::Denied;
use crate::config::model::RouteConfig;
use crate::discovery::completion;
use crate::mcp::call::{self, Call, Element, Mirrored, Refusal, Why};
use crate::mcp::envelope;
use crate::mcp::error::UnknownStyle;
use crate::mcp::header::{MCP_METHOD, MCP_NAME, MCP_PROTOCOL_VERSION};
use crate::mcp::method::Era;
use crate::policy::Denial;
use crate::router::{Msg, RouteExt, ASSUMED_VERSION};
use crate::state::State;
use crate::trace;

pub async fn filter(state: &std::sync::Arc<State>, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
    ctx.request_id = super::request_id::of(session.req_header());
    if crate::fault::injected_path().is_some_and(|p| p == session.req_header().uri.path()) {
        panic!("injected fault (MCP_EDGE_FAULT_PATH)");
    }
    match decide(state, session, ctx).await? {
        Ok(()) => Ok(false),
        Err(Refused::Reject(reject)) => reply::send(session, ctx, reject).await,
        Err(Refused::Document(doc)) => reply::document(session, ctx, &doc).await,
        Err(Refused::Answer(result, token)) => reply::answer(state, session, ctx, result, token.as_deref()).await,
        Err(Refused::Ended) => reply::ended(session, ctx).await,
        Err(Refused::Version(asked)) => reply::unsupported_version(session, ctx, &asked).await,
        Err(Refused::Stream(merged)) => reply::stream(state, session, ctx, merged).await,
        Err(Refused::Unknown(element)) => {
            let element = element.unwrap_or_else(|| ctx.call.one.clone());
            // Not a policy's denial: the name is the client's mistake.
            ctx.reason = Some(crate::metrics::Reason::InvalidParams);
            reply::unknown(session, ctx, &element, UnknownStyle::Spec).await
        }
        Err(Refused::Denied(denial, element)) => denied(session, ctx, denial, element).await,
        Err(Refused::Unauthenticated(denied)) => {
            let client = session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip());
            crate::audit::unauthenticated(ctx.route_name(), denied, client);
            if session.req_header().method == HttpMethod::POST && ctx.body.is_none() {
                learn_id(session, ctx, &Framing::of(session)).await?;
            }
            let snap = Arc::clone(&ctx.snap);
            let challenge = ctx.route.and_then(|r| snap.gates.get(r)).map_or("Bearer", |g| g.challenge.header(denied));
            reply::unauthorized(session, ctx, denied, challenge).await
        }
        Err(Refused::Limited(limited)) => {
            // The refusal echoes the JSON-RPC id; read a small unread body to learn it.
            if session.req_header().method == HttpMethod::POST && ctx.body.is_none() {
                learn_id(session, ctx, &Framing::of(session)).await?;
            }
            reply::limited(session, ctx, &limited).await
        }
    }
}

pub(super) enum Refused {
    Reject(Reject),
    Limited(throttle::Limited),
    Unauthenticated(Denied),
    /// The route's policy denied the call; with the element to answer for when it is not the
    /// request's own (a `completion/complete` reference, judged as the call it names).
    Denied(Denial, Option<Element>),
    /// A document the proxy serves itself (OAuth protected resource metadata).
    Document(Arc<str>),
    /// A federated route's own answer: a JSON-RPC result (200), or None: 202, no body; with
    /// the token of the session it opened.
    Answer(Option<crate::federation::Parts>, Option<String>),
    /// A federated session ended: 204.
    Ended,
    /// A federated route does not speak the protocol version the request names (its
    /// `MCP-Protocol-Version`, bounded): 400 and the versions it speaks.
    Version(String),
    /// A federated session's GET stream: its members' streams, merged.
    Stream(crate::federation::stream::Merged),
    /// A federated route has no such tool, prompt or resource; answered for the request's own
    /// element, or for this one (a completion's reference, as the call it names).
    Unknown(Option<Element>),
}

impl From<Reject> for Refused {
    fn from(r: Reject) -> Refused {
        Refused::Reject(r)
    }
}

async fn decide(state: &State, session: &mut Session, ctx: &mut Ctx) -> Result<Result<(), Refused>> {
    let snap = Arc::clone(&ctx.snap);
    let req = session.req_header();
    let local = session.server_addr().and_then(|a| a.as_inet()).copied();
    let head = match head::read(req) {
        Ok(head) => head,
        Err(reject) => return Ok(Err(reject.into())),
    };
    if req.method == HttpMethod::GET {
        if let Some(doc) = challenge::metadata(&snap.router, local, head.host, &head.path) {
            return Ok(Err(Refused::Document(doc)));
        }
    }
    let Some((ri, route)) = snap.router.find(local, head.host, &head.path) else {
        return Ok(Err(Reject::NO_ROUTE.into()));
    };
    ctx.route = Some(ri);
    if let Err(reject) = head::guard(route, req, head.host, local) {
        return Ok(Err(reject.into()));
    }
    if !route.ips.is_open() {
        let client = session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip());
        if !client.is_some_and(|ip| route.ips.admits(ip)) {
            return Ok(Err(Reject::IP_DENIED.into()));
        }
    }
    if head.absolute || matches!(head.path, std::borrow::Cow::Owned(_)) {
        ctx.path = Some(head.path.into_owned());
    }
    // Who the caller is, once, before any limit (limits may key on it).
    if let Some(gate) = snap.gates.get(ri).filter(|g| g.required()) {
        let (outcome, method) = gate.admit(&req.headers).await;
        if let Some(counters) = snap.route_auth.get(ri).and_then(Option::as_ref) {
            counters.count(method, outcome.as_ref().map(|_| ()).map_err(|d| *d));
        }
        match outcome {
            Ok(identity) => ctx.identity = Some(identity),
            Err(denied) => return Ok(Err(Refused::Unauthenticated(denied))),
        }
    }
    let version = req.headers.get(MCP_PROTOCOL_VERSION);
    if version.is_some_and(|v| Era::spoofed(v.as_bytes())) {
        return Ok(Err(Reject::VERSION_SUFFIX.into()));
    }
    let era = Era::from_version_header(version.map(|v| v.as_bytes()));
    ctx.call = Call::unread(era);
    // Every era's session ids are checked (a request claiming the modern era must not carry a
    // raw id to a legacy backend), but modern requests have no sessions, so nothing is pinned.
    // A bad session is refused after the body is classified, so the error can echo the id.
    let pin = pin_session(state, &snap, route, req, ctx.identity.as_deref())
        .map(|pinned| pinned.filter(|_| era != Era::Modern));
    let is_post = req.method == HttpMethod::POST;
    let framing = Framing::of(session);
    let max = snap.config.proxy.max_body_bytes;
    if framing.content_length.is_some_and(|n| n > max) {
        return Ok(Err(Reject::TOO_LARGE.into()));
    }
    if route.policy.is_none() {
        if let Err(limited) = throttle::admit(state, session, ctx, route, Stage::Head).await {
            return Ok(Err(Refused::Limited(limited)));
        }
    }

    if is_post && route.validates() {
        let body = match body::pre_read(session, &framing, max).await? {
            Ok(body) => body,
            Err(reject) => return Ok(Err(reject.into())),
        };
        let h = &session.req_header().headers;
        let mirrored = Mirrored {
            version: h.get(MCP_PROTOCOL_VERSION).map(|v| v.as_bytes()),
            method: h.get(MCP_METHOD).map(|v| v.as_bytes()),
            name: h.get(MCP_NAME).map(|v| v.as_bytes()),
        };
        match call::classify(era, mirrored, &body, route.batches) {
            Ok(call) => ctx.call = call,
            Err(refusal) => return Ok(Err(refused(ctx, refusal).into())),
        }
        ctx.body = Some(body);
    }
    if let Some(traces) = &snap.traces {
        let headers = &session.req_header().headers;
        ctx.trace = trace::decide(&traces.settings, route.trace_sample, headers, &ctx.call, ctx.start.elapsed());
        if let (Some(t), Some(body)) = (ctx.trace.as_mut(), &ctx.body) {
            t.meta_at = trace::meta_offset(body, &ctx.call);
        }
    }
    ctx.trace_decided = true;
    if let Some(policy) = &route.policy {
        if let Err(denial) = crate::policy::check(policy, ctx.identity.as_deref(), &ctx.call) {
            return Ok(Err(Refused::Denied(denial, None)));
        }
        let body = ctx.body.as_deref().unwrap_or_default();
        if let Err(denied) = completion::check(policy, ctx.identity.as_deref(), &ctx.call, body) {
            let (denial, element) = *denied;
            return Ok(Err(Refused::Denied(denial, Some(element))));
        }
        ctx.transform = transform::arm(route, &ctx.call);
        if let Err(limited) = throttle::admit(state, session, ctx, route, Stage::Head).await {
            return Ok(Err(Refused::Limited(limited)));
        }
    }
    let version = session.req_header().headers.get(MCP_PROTOCOL_VERSION);
    let version = version.and_then(|v| v.to_str().ok()).unwrap_or(ASSUMED_VERSION);
    ctx.rule = match rule_of(route, &ctx.call, version) {
        Ok(rule) => rule,
        Err(reject) => return Ok(Err(reject.into())),
    };
    if let Err(limited) = throttle::admit(state, session, ctx, route, Stage::Call).await {
        return Ok(Err(Refused::Limited(limited)));
    }

    match pin {
        Ok(pinned) => ctx.pinned = pinned,
        Err(reject) => {
            if is_post && ctx.body.is_none() {
                learn_id(session, ctx, &framing).await?;
            }
            return Ok(Err(reject.into()));
        }
    }
    if let Some(fed) = &route.federation {
        return Ok(super::federated::request(state, session, ctx, ri, fed).await);
    }
    let rule_pool = ctx.rule.and_then(|r| route.rules.get(r)).and_then(|r| r.pool);
    ctx.pool = match (&ctx.pinned, rule_pool) {
        (Some(p), rule) => {
            if rule.is_some_and(|r| r != p.pool) {
                state.metrics.session_overrides.with_label_values(&[&route.name]).inc();
            }
            Some(p.pool)
        }
        (None, Some(rule)) => Some(rule),
        (None, None) => route.pool,
    };
    Ok(if ctx.pool.is_some() { Ok(()) } else { Err(Reject::NO_POOL.into()) })
}

/// Audits a policy denial and answers it as its rule says: the denied element's id, the
/// rule's insufficient-scope challenge when scopes would help, the route's unknown style.
async fn denied(session: &mut Session, ctx: &mut Ctx, denial: Denial, element: Option<Element>) -> Result<bool> {
    let snap = Arc::clone(&ctx.snap);
    let policy = ctx.route.and_then(|r| snap.router.routes().get(r)).and_then(|r| r.policy.as_ref());
    let rule = denial.rule.and_then(|i| policy.and_then(|p| p.rules.get(i)));
    let challenge = rule.filter(|_| denial.insufficient_scope).and_then(|r| r.challenge.as_deref());
    let element = element.or_else(|| ctx.call.elements().get(denial.element).cloned()).unwrap_or(Element::UNREAD);
    let identity = ctx.identity.as_deref().map_or("", |i| i.id.as_str());
    crate::audit::denied(identity, ctx.route_name(), &element, &denial);
    let style = policy.map_or(UnknownStyle::Spec, |p| p.unknown_style);
    reply::denied(session, ctx, &element, denial.deny_as, style, challenge).await
}

/// The matching rule of the request. A batch's elements must all land on one pool (the
/// first element's rule then speaks for timeouts and fallbacks; each element's own rule is
/// still charged by the limits).
fn rule_of(route: &RouteConfig, call: &Call, version: &str) -> Result<Option<usize>, Reject> {
    let rule = |element| route.rule(Msg { era: call.era, version, element }).map(|(i, _)| i);
    let mut elements = call.elements().iter();
    let first = elements.next().and_then(rule);
    if !call.batch.is_empty() {
        let pool_of = |r: Option<usize>| r.and_then(|i| route.rules.get(i)).and_then(|r| r.pool).or(route.pool);
        let pool = pool_of(first);
        if elements.any(|e| pool_of(rule(e)) != pool) {
            return Err(Reject::BATCH_SPLIT);
        }
    }
    Ok(first)
}

/// The local reply for a body the proxy will not forward; keeps the id to echo.
fn refused(ctx: &mut Ctx, refusal: Refusal) -> Reject {
    tracing::debug!(why = ?refusal.why, "request body refused");
    ctx.call.one.id = refusal.id;
    match refusal.why {
        Why::Parse => Reject::PARSE,
        Why::Invalid(_) => Reject::INVALID,
        Why::Batch => Reject::BATCH,
        Why::MissingTarget => Reject::MISSING_TARGET,
        Why::Mismatch(_) => Reject::HEADER_MISMATCH,
    }
}

/// On the way to refusing a small POST that was not read, reads it anyway so the error can
/// echo its id (and the connection stays reusable). Large bodies are left unread.
async fn learn_id(session: &mut Session, ctx: &mut Ctx, framing: &Framing) -> Result<()> {
    if framing.content_length.is_none_or(|n| n > body::REPLAY_LIMIT) {
        return Ok(());
    }
    if let Ok(body) = body::pre_read(session, framing, body::REPLAY_LIMIT).await? {
        if let Ok(envelope::Body::One(m)) = envelope::parse(&body) {
            ctx.call.one.id = m.id.map(|id| call::slice_of(&body, id));
        }
    }
    Ok(())
}
