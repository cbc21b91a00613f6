//! The request phase: route, Origin, session, body, classification, pool. Everything that can
//! be refused is refused here, before an upstream is chosen, through `reply`.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method as HttpMethod};
use pingora::proxy::Session;
use pingora::Result;

use super::affinity::pin_session;
use super::body::{self, Framing};
use super::ctx::Ctx;
use super::reply::{self, Reject};
use super::throttle;
use crate::mcp::envelope::{self, EnvelopeError, Message};
use crate::mcp::method::{Era, Method, TargetKind};
use crate::router::{Call, RouteExt};
use crate::state::State;

pub async fn filter(state: &State, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
    if let Err(reject) = decide(state, session, ctx).await? {
        return reply::send(session, ctx, reject).await;
    }
    let snap = Arc::clone(&ctx.snap);
    let Some(route) = ctx.route.and_then(|r| snap.router.routes().get(r)) else { return Ok(false) };
    match throttle::admit(state, session, ctx, route).await {
        Ok(()) => Ok(false),
        Err(limited) => {
            // The refusal echoes the JSON-RPC id; read a small unread body to learn it.
            if session.req_header().method == HttpMethod::POST && ctx.body.is_none() {
                learn_id(session, ctx, &Framing::of(session)).await?;
            }
            reply::limited(session, ctx, &limited).await
        }
    }
}

async fn decide(state: &State, session: &mut Session, ctx: &mut Ctx) -> Result<Result<(), Reject>> {
    let snap = Arc::clone(&ctx.snap);
    let req = session.req_header();
    let listener = session.server_addr().and_then(|a| a.as_inet()).copied();
    let host = req.headers.get(header::HOST).and_then(|h| h.to_str().ok()).or(req.uri.host());
    let Some((ri, route)) = snap.router.find(listener, host, req.uri.path()) else {
        return Ok(Err(Reject::NO_ROUTE));
    };
    ctx.route = Some(ri);
    if !route.allowed_origins.is_empty() {
        if let Some(origin) = req.headers.get(header::ORIGIN) {
            if !route.allowed_origins.iter().any(|o| o.as_bytes() == origin.as_bytes()) {
                return Ok(Err(Reject::ORIGIN));
            }
        }
    }
    ctx.era = Era::from_version_header(req.headers.get("mcp-protocol-version").map(|v| v.as_bytes()));
    // Modern requests have no sessions (servers ignore the header), so nothing is pinned.
    // A bad legacy session is refused after the body is classified, so the error can echo the id.
    let pin = if ctx.era == Era::Modern { Ok(None) } else { pin_session(state, &snap, route, req) };
    let is_post = req.method == HttpMethod::POST;
    let framing = Framing::of(session);
    let max = snap.config.proxy.max_body_bytes;
    if framing.content_length.is_some_and(|n| n > max) {
        return Ok(Err(Reject::TOO_LARGE));
    }

    // Modern requests name their method and target in headers; legacy ones only in the body.
    let header_call = if ctx.era == Era::Modern { header_call(session) } else { Ok(None) };
    let header_call = match header_call {
        Ok(call) => call,
        Err(reject) => return Ok(Err(reject)),
    };
    let mut rule = None;
    if is_post && route.reads_body(header_call.is_some()) {
        let body = match body::pre_read(session, &framing, max).await? {
            Ok(body) => body,
            Err(reject) => return Ok(Err(reject)),
        };
        let call = match classify_body(ctx, &body) {
            Ok(call) => call,
            Err(reject) => return Ok(Err(reject)),
        };
        if let Some(h) = &header_call {
            let (bm, bt) = call.as_ref().map_or(("", None), |(m, t)| (&**m, t.as_deref()));
            if h.method() != bm || h.name() != bt {
                return Ok(Err(Reject::HEADER_MISMATCH));
            }
        }
        rule = call.as_ref().and_then(|(m, t)| route.rule(Call { method: m, target: t.as_deref() }));
        ctx.strip_expect = framing.expect_continue;
        ctx.body = Some(body);
    } else if let Some(h) = &header_call {
        ctx.method = Method::parse(h.method());
        ctx.target = h.name().map(|t| Bytes::copy_from_slice(t.as_bytes()));
        rule = route.rule(Call { method: h.method(), target: h.name() });
    }
    ctx.rule = rule.map(|(i, _)| i);

    match pin {
        Ok(pinned) => ctx.pinned = pinned,
        Err(reject) => {
            if is_post && ctx.body.is_none() {
                learn_id(session, ctx, &framing).await?;
            }
            return Ok(Err(reject));
        }
    }
    let rule_pool = rule.and_then(|(_, r)| r.pool);
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
    Ok(if ctx.pool.is_some() { Ok(()) } else { Err(Reject::NO_POOL) })
}

/// On the way to refusing a small POST that was not read, reads it anyway so the error can
/// echo its id (and the connection stays reusable). Large bodies are left unread.
async fn learn_id(session: &mut Session, ctx: &mut Ctx, framing: &Framing) -> Result<()> {
    if framing.content_length.is_none_or(|n| n > body::REPLAY_LIMIT) {
        return Ok(());
    }
    if let Ok(body) = body::pre_read(session, framing, body::REPLAY_LIMIT).await? {
        if let Ok(Message::Request { id, .. } | Message::Response { id }) = envelope::parse(&body) {
            ctx.id = Some(body.slice_ref(id.as_bytes()));
        }
    }
    Ok(())
}

/// `Mcp-Method` and `Mcp-Name` as the client sent them (cheap clones of the header values),
/// with `Mcp-Name` decoded when it uses the spec's `=?base64?...?=` form for non-ASCII names.
struct HeaderCall {
    method: HeaderValue,
    name: Option<HeaderValue>,
    decoded: Option<String>,
}

impl HeaderCall {
    fn method(&self) -> &str {
        self.method.to_str().unwrap_or("")
    }

    fn name(&self) -> Option<&str> {
        self.decoded.as_deref().or_else(|| self.name.as_ref().map(|v| v.to_str().unwrap_or("")))
    }
}

fn header_call(session: &Session) -> Result<Option<HeaderCall>, Reject> {
    let h = &session.req_header().headers;
    let Some(method) = h.get("mcp-method").cloned() else { return Ok(None) };
    let name = h.get("mcp-name").cloned();
    let decoded = match name.as_ref().map(HeaderValue::as_bytes) {
        Some(raw) if raw.starts_with(b"=?base64?") => Some(decode_name(raw).ok_or(Reject::BAD_HEADER)?),
        _ => None,
    };
    Ok(Some(HeaderCall { method, name, decoded }))
}

/// `=?base64?<standard base64 of UTF-8>?=` (the sentinel is case-sensitive).
fn decode_name(raw: &[u8]) -> Option<String> {
    use base64::Engine;
    let inner = raw.strip_prefix(b"=?base64?")?.strip_suffix(b"?=")?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(inner).ok()?;
    String::from_utf8(bytes).ok()
}

/// What a body said, for rules: the method and its target (tool, prompt or resource URI).
type BodyCall<'a> = Option<(Cow<'a, str>, Option<Cow<'a, str>>)>;

/// Parses the envelope and fills `ctx` (method, id, target).
fn classify_body<'a>(ctx: &mut Ctx, body: &'a Bytes) -> Result<BodyCall<'a>, Reject> {
    let slice = |s: &str| body.slice_ref(s.as_bytes());
    match envelope::parse(body) {
        Err(EnvelopeError::Parse) => Err(Reject::PARSE),
        Err(EnvelopeError::Invalid { id }) => {
            ctx.id = id.map(slice);
            Err(Reject::INVALID)
        }
        Ok(Message::Batch) => {
            ctx.method = Method::Batch;
            Ok(None)
        }
        Ok(Message::Response { id }) => {
            ctx.method = Method::Response;
            ctx.id = Some(slice(id));
            Ok(None)
        }
        Ok(Message::Notification { method }) => {
            ctx.method = Method::parse(&method);
            Ok(Some((method, None)))
        }
        Ok(Message::Request { id, method, name, uri }) => {
            ctx.id = Some(slice(id));
            ctx.method = Method::parse(&method);
            let target = match ctx.method.target_kind() {
                Some(TargetKind::Tool | TargetKind::Prompt) => name,
                Some(TargetKind::Resource) => uri,
                None => None,
            };
            ctx.target = target.as_ref().map(|t| match t {
                Cow::Borrowed(s) => slice(s),
                Cow::Owned(s) => Bytes::copy_from_slice(s.as_bytes()),
            });
            Ok(Some((method, target)))
        }
    }
}
