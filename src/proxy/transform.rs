//! Response transforms: the few answers the proxy rewrites on their way to the client, each
//! armed for one request and driven by the response phase (`response::headers`/`body`) through
//! one place here, so adding one is a variant, not a special case in the hooks.
//!
//! - [`Transform::Endpoint`]: the first event of a legacy HTTP+SSE stream, whose session id
//!   becomes a token (armed at the response head of a session-less GET stream).
//! - [`Transform::Discovery`]: list answers filtered per caller (armed in the request phase
//!   for a list request on a route with a policy; see `crate::discovery`). The backend is asked
//!   for an uncompressed answer; the body changes length, so `Content-Length` is dropped and the
//!   answer goes out chunked (HTTP/1.1) or framed by HTTP/2.
//!
//! - [`Transform::Relay`]: a federated call's event stream, where a member's requests to the
//!   client get ids that name the member, the answer's resource URIs are offered as the route
//!   offers them, and nothing but the call's own answer, requests and notifications passes
//!   (armed at the response head of any event stream of a call forwarded to a member;
//!   `proxy::call_stream`).
//! - [`Transform::Json`]: a member's JSON answer to a federated call, read as it passes
//!   (the call's own answer only), and held whole where it can carry resource URIs to offer
//!   (`resources/read`, `tools/call`, `prompts/get`) or a result to keep (`proxy::member_json`).
//!
//! A member message that may not pass cuts the response ([`cut`]).
//! A request that armed nothing costs one `Option` test per hook.

use bytes::Bytes;
use http::header;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::Result;

use super::affinity;
use super::call_stream::{self, Relay};
use super::contents::{Contents, Pushed};
use super::ctx::Ctx;
use super::member_json::MemberJson;
use super::sse_event::EndpointSniff;
use crate::config::model::{PrefixMode, RouteConfig};
use crate::discovery::answer::{Answer, Head, Out, Refusal};
use crate::discovery::{self, ListKind};
use crate::federation::scanner;
use crate::mcp::call::Call;
use crate::mcp::header::LAST_EVENT_ID;
use crate::policy::Viewer;
use crate::session::Fingerprint;
use crate::state::State;

#[derive(Debug)]
pub enum Transform {
    Endpoint(EndpointSniff),
    Discovery(Answer),
    Relay(Relay),
    Json(MemberJson),
}

/// Arms filtered discovery when `call` asks for a list on a route with a policy.
pub fn arm(route: &RouteConfig, call: &Call) -> Option<Transform> {
    route.policy.as_ref()?;
    discovery::arm(call).map(|wanted| Transform::Discovery(Answer::new(wanted)))
}

/// Before the request goes upstream: a filtered answer, and a member's answer to a federated
/// call (read as it passes), must arrive uncompressed.
pub fn upstream_request(req: &mut RequestHeader, ctx: &Ctx) -> Result<()> {
    if matches!(ctx.transform, Some(Transform::Discovery(_))) || ctx.member.is_some() {
        req.insert_header(header::ACCEPT_ENCODING, "identity")?;
    }
    // A resumed GET stream replays past events, list answers included, and GET streams are
    // not filtered: on a route with a policy the stream starts afresh instead, so an answer
    // the caller's policy filtered can never come back whole. (Resumption is lost there.)
    if req.method == http::Method::GET && req.headers.contains_key(&LAST_EVENT_ID) && has_policy(ctx) {
        req.remove_header(&LAST_EVENT_ID);
        tracing::debug!(route = ctx.route_name(), "Last-Event-ID dropped on a route with a policy");
    }
    Ok(())
}

/// Whether a member's answer with this head may be kept for the result cache.
fn keepable(resp: &ResponseHeader) -> bool {
    resp.status == http::StatusCode::OK && !resp.headers.contains_key(header::CONTENT_ENCODING)
}

/// Whether the request's federated route offers member `i`'s URIs under other names than its
/// own: not under `prefix_mode = "never"`, and not for a member known to read no resources
/// (its latest resources list said "method not found": a URI it names leads nowhere, so it is
/// left as sent).
fn offers_uris(ctx: &Ctx, i: usize) -> bool {
    let route = ctx.route.and_then(|r| ctx.snap.router.routes().get(r));
    let renames = route.and_then(|r| r.federation.as_ref()).is_some_and(|f| f.prefix_mode != PrefixMode::Never);
    let catalog = ctx.route.and_then(|r| ctx.snap.catalogs.get(r)).and_then(Option::as_ref);
    renames && !catalog.is_some_and(|c| c.reads_no_resources(i))
}

fn has_policy(ctx: &Ctx) -> bool {
    ctx.route.and_then(|r| ctx.snap.router.routes().get(r)).is_some_and(|r| r.policy.is_some())
}

/// The response head: arms the endpoint sniff for a legacy stream (`legacy_stream`), and
/// reframes (or refuses) an armed discovery answer.
pub fn headers(state: &State, resp: &mut ResponseHeader, ctx: &mut Ctx, stream: Stream) -> Result<()> {
    // Only a 200's result is kept for the result cache, as the client reads it (not encoded).
    // `Cache-Control` is not read: SDKs send `no-store` or `no-cache` on every event stream
    // (about the stream, not the result); what a member says of its result is its `ttlMs`.
    if let Some(member) = ctx.member.as_mut().filter(|_| !keepable(resp)) {
        member.cache = None;
    }
    if stream == Stream::Legacy && ctx.transform.is_none() {
        ctx.transform = Some(Transform::Endpoint(EndpointSniff::default()));
        resp.remove_header(&header::CONTENT_LENGTH);
        return Ok(());
    }
    if let (Some(member), None) = (&ctx.member, &ctx.transform) {
        return member_head(state, resp, ctx, member.index, stream);
    }
    let Some(Transform::Discovery(answer)) = &mut ctx.transform else { return Ok(()) };
    let raw = |name| resp.headers.get(name).map(|v: &http::HeaderValue| v.as_bytes());
    match answer.head(resp.status.as_u16(), raw(header::CONTENT_TYPE), raw(header::CONTENT_ENCODING)) {
        Head::Untouched => {
            ctx.transform = None;
            return Ok(());
        }
        Head::Reframe => {}
        Head::Refuse(why) => {
            refused(state, ctx, why);
            resp.remove_header(&header::CONTENT_ENCODING);
            resp.insert_header(header::CONTENT_TYPE, "application/json")?;
        }
    }
    reframed(resp)
}

/// A member's answer to a federated call: its event stream relayed ([`Relay`]), its JSON
/// answer read as it passes and held where it has URIs to offer or a result to keep
/// ([`MemberJson`]). A success the proxy cannot read (compressed, though asked for identity)
/// is refused: what it says could be anything.
fn member_head(state: &State, resp: &mut ResponseHeader, ctx: &mut Ctx, member: usize, stream: Stream) -> Result<()> {
    let success = resp.status.is_success();
    let reads = Reads::of(resp);
    if success && coded(resp) {
        return Err(cut(state, ctx, scanner::Refusal::Encoded));
    }
    if success && reads == Reads::Ambiguous {
        return Err(cut(state, ctx, scanner::Refusal::ContentType));
    }
    if stream == Stream::Events || (success && reads == Reads::Events) {
        let charset = resp.headers.get_all(header::CONTENT_TYPE).iter().all(|v| in_utf8(v.as_bytes()));
        if !charset {
            return Err(cut(state, ctx, scanner::Refusal::ContentType));
        }
        ctx.transform = Some(Transform::Relay(Relay::new(member)));
        return reframed(resp);
    }
    // Held only for a reason: a URI to offer (never under the member's own names, nor from a
    // member that reads none) or a result to keep. Holding costs the answer its length: it
    // goes out chunked (HTTP/1.1) or framed by HTTP/2.
    let places = crate::federation::contents::places(ctx.call.one.method);
    let keeps = ctx.member.as_ref().is_some_and(|m| m.cache.is_some());
    let hold = places
        .filter(|_| json_as_is(resp) && (keeps || offers_uris(ctx, member)))
        .map(|places| Contents::new(member, places));
    let checked = success && reads == Reads::Json;
    if !checked && hold.is_none() {
        return Ok(());
    }
    let answer = MemberJson::new(member, checked, hold);
    let holds = answer.holds();
    ctx.transform = Some(Transform::Json(answer));
    if !holds {
        return Ok(());
    }
    // Nothing of a held answer reaches the client before all of it: its head waits in the
    // connection's buffer for the answer (one write instead of three, `Clock::merge_next_flush`).
    crate::downstream::clock::with(|c| c.merge_next_flush());
    reframed(resp)
}

/// How clients read a member's answer by its `Content-Type`: the Python SDK lower-cases it and
/// tests prefixes, TypeScript SDKs before 1.24 test whether it contains each type, events
/// first (`text/plain; a=application/json` was read as JSON and passed here unread: found by
/// an attack). A type naming both, or two `Content-Type` fields, is read two ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reads {
    Events,
    Json,
    Neither,
    Ambiguous,
}

impl Reads {
    fn of(resp: &ResponseHeader) -> Reads {
        let mut values = resp.headers.get_all(header::CONTENT_TYPE).iter();
        let Some(value) = values.next().map(|v| v.as_bytes()) else { return Reads::Neither };
        if values.next().is_some() {
            return Reads::Ambiguous;
        }
        let has = |needle: &[u8]| value.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle));
        match (has(b"text/event-stream"), has(b"application/json")) {
            (true, true) => Reads::Ambiguous,
            (true, false) => Reads::Events,
            (false, true) => Reads::Json,
            (false, false) => Reads::Neither,
        }
    }
}

/// Whether the response's `Content-Type` starts with `prefix`, ignoring ASCII case.
pub fn content_type_starts(resp: &ResponseHeader, prefix: &[u8]) -> bool {
    let value = resp.headers.get(header::CONTENT_TYPE).map_or(&b""[..], |v| v.as_bytes());
    value.get(..prefix.len()).is_some_and(|v| v.eq_ignore_ascii_case(prefix))
}

/// A member's message that may not pass: counted, and its response cut (or, before the
/// head went out, answered 502). Logged once, by `fail_to_proxy`, from the error's context.
pub fn cut(state: &State, ctx: &Ctx, refusal: scanner::Refusal) -> Box<pingora::Error> {
    let member = ctx.member.as_ref().map_or("", |m| route_member_prefix(ctx, m.index));
    state.metrics.member_messages_cut.with_label_values(&[ctx.route_name(), member, refusal.label()]).inc();
    pingora::Error::create(
        pingora::ErrorType::Custom("member message cut"),
        pingora::ErrorSource::Upstream,
        Some(format!("a member's message may not pass ({refusal}); its response was cut").into()),
        None,
    )
}

/// Whether a response is JSON as the member wrote it: `application/json` (any case, as media
/// types are), neither compressed nor in a transfer coding besides chunked.
fn json_as_is(resp: &ResponseHeader) -> bool {
    let json = resp.headers.get(header::CONTENT_TYPE).is_some_and(|v| json_utf8(v.as_bytes()));
    json && !coded(resp)
}

/// Whether a response is compressed, or in a transfer coding besides chunked: not as written.
fn coded(resp: &ResponseHeader) -> bool {
    let coded = |name, allowed: &[u8]| {
        resp.headers
            .get_all(name)
            .iter()
            .any(|v| v.as_bytes().split(|&b| b == b',').any(|c| !c.trim_ascii().eq_ignore_ascii_case(allowed)))
    };
    coded(header::CONTENT_ENCODING, b"identity") || coded(header::TRANSFER_ENCODING, b"chunked")
}

/// Whether a `Content-Type` is `application/json` (any case) in UTF-8: no other media type
/// that starts alike (`application/jsonx`), and a `charset` parameter, if any, UTF-8.
fn json_utf8(content_type: &[u8]) -> bool {
    let essence = content_type.split(|&b| b == b';').next().unwrap_or_default().trim_ascii();
    essence.eq_ignore_ascii_case(b"application/json") && in_utf8(content_type)
}

/// Whether every `charset` a `Content-Type` names is UTF-8: what a client decodes in another
/// (httpx, under the Python SDK, decodes an event stream in the charset it is given: UTF-16,
/// or UTF-7, which carves a second message out of what reads as one in UTF-8; found by an
/// attack) is not what the proxy read. Any parameter whose name starts with `charset`
/// (`charset*=` too), quoted or not.
fn in_utf8(content_type: &[u8]) -> bool {
    content_type.split(|&b| b == b';').skip(1).all(|param| {
        let (name, value) = param.split_at(param.iter().position(|&b| b == b'=').unwrap_or(param.len()));
        let value = value.get(1..).unwrap_or_default().trim_ascii();
        let value = value.strip_prefix(b"\"").and_then(|v| v.strip_suffix(b"\"")).unwrap_or(value);
        let name = name.trim_ascii();
        !name.get(..7).is_some_and(|n| n.eq_ignore_ascii_case(b"charset"))
            || value.eq_ignore_ascii_case(b"utf-8")
            || value.eq_ignore_ascii_case(b"utf8")
    })
}

/// A body whose length changes goes out chunked (HTTP/1.1) or framed by HTTP/2.
fn reframed(resp: &mut ResponseHeader) -> Result<()> {
    if resp.remove_header(&header::CONTENT_LENGTH).is_some() && !resp.headers.contains_key(header::TRANSFER_ENCODING) {
        // Without a length an HTTP/1.1 body would be close-delimited; HTTP/2 drops this header.
        resp.insert_header(header::TRANSFER_ENCODING, "chunked")?;
    }
    Ok(())
}

/// What kind of response head [`headers`] sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Not an event stream.
    No,
    /// A session-less GET stream: maybe the legacy HTTP+SSE transport.
    Legacy,
    /// Any other event stream.
    Events,
}

/// A chunk of the response body on its way to the client.
pub fn body(state: &State, body: &mut Option<Bytes>, end: bool, ctx: &mut Ctx) -> Result<()> {
    match ctx.transform.take() {
        None => {}
        Some(Transform::Endpoint(mut sniff)) => {
            let chunk = body.take().unwrap_or_default();
            let mut minted = None;
            let wrap = |sid: &str| {
                let token = affinity::wrap(state, ctx, sid);
                // Once per legacy stream: its access line names the session it opened.
                minted = token.as_deref().map(Fingerprint::of);
                token
            };
            match sniff.push(&chunk, end, wrap) {
                Some(out) => *body = Some(Bytes::from(out)),
                None => ctx.transform = Some(Transform::Endpoint(sniff)),
            }
            if minted.is_some() {
                ctx.new_session = minted;
            }
        }
        Some(Transform::Relay(mut relay)) => {
            let chunk = body.take().unwrap_or_default();
            let out = call_stream::relayed(state, ctx, &mut relay, &chunk, end).map_err(|r| cut(state, ctx, r))?;
            *body = (!out.is_empty()).then(|| Bytes::from(out));
            ctx.transform = Some(Transform::Relay(relay));
        }
        Some(Transform::Json(mut answer)) => {
            let chunk = body.take().unwrap_or_default();
            let (member, prefix) = (answer.member, route_member_prefix(ctx, answer.member));
            let (snap, route) = (&ctx.snap, ctx.route.unwrap_or(usize::MAX));
            let uri = |own: &str| crate::federation::stream::offered_uri(snap, route, (member, prefix), own);
            let pushed = answer.push(chunk, end, ctx.call.one.id.as_deref(), uri);
            match pushed.map_err(|r| cut(state, ctx, r))? {
                Pushed::Held => {}
                Pushed::Whole(out) => {
                    keep_result(ctx, &out);
                    if !out.is_empty() {
                        // Its last chunk follows at once: one flush for both.
                        crate::downstream::clock::with(|c| c.merge_next_flush());
                    }
                    *body = (!out.is_empty()).then_some(out);
                }
                Pushed::Passed(out) => *body = (!out.is_empty()).then_some(out),
            }
            if !end {
                ctx.transform = Some(Transform::Json(answer));
            }
        }
        Some(Transform::Discovery(mut answer)) => {
            let policy = ctx.route.and_then(|r| ctx.snap.router.routes().get(r)).and_then(|r| r.policy.as_ref());
            let viewer = policy.map(|p| Viewer::new(p, ctx.identity.as_deref()));
            let allows = |kind: ListKind, name: &str| viewer.as_ref().is_some_and(|v| v.allows(kind.call(), name));
            let chunk = body.as_deref().unwrap_or_default();
            let (out, refused) = answer.push(chunk, end, &allows);
            if let Some(why) = refused {
                self::refused(state, ctx, why);
            }
            if let Out::Bytes(out) = out {
                *body = (!out.is_empty()).then(|| Bytes::from(out));
            }
            ctx.transform = Some(Transform::Discovery(answer));
        }
    }
    Ok(())
}

/// The whole answer to a call whose result the route's result cache may keep
/// (`federation::results`): kept, at most once per call.
pub(super) fn keep_result(ctx: &Ctx, answer: &[u8]) {
    let Some(miss) = ctx.member.as_ref().and_then(|m| m.cache) else { return };
    let Some(id) = ctx.call.one.id.as_deref() else { return };
    let route = ctx.route.and_then(|r| ctx.snap.catalogs.get(r)).and_then(Option::as_ref);
    if let Some(results) = route.and_then(|c| c.results.as_ref()) {
        results.put(miss, id, answer);
    }
}

/// The prefix of member `i` of the request's route.
pub(super) fn route_member_prefix(ctx: &Ctx, i: usize) -> &str {
    let route = ctx.route.and_then(|r| ctx.snap.router.routes().get(r));
    let member = route.and_then(|r| r.federation.as_ref()).and_then(|f| f.members.get(i));
    member.map_or("", |m| m.prefix.as_str())
}

/// A JSON answer the proxy makes itself (a federated route's merged list, in `pieces`) when
/// discovery is armed: driven through the very filter a backend's answer gets, in one piece.
/// None when nothing is armed (the answer goes as it is).
pub fn local(state: &State, ctx: &mut Ctx, pieces: &[Bytes]) -> Option<Bytes> {
    let Some(Transform::Discovery(answer)) = &mut ctx.transform else { return None };
    // 200 and JSON: always read whole and filtered (`Head::Reframe`), never passed as it is.
    answer.head(200, Some(b"application/json"), None);
    let mut whole = Some(Bytes::from(pieces.concat()));
    let filtered = body(state, &mut whole, true, ctx);
    ctx.transform = None;
    filtered.ok()?;
    Some(whole.unwrap_or_default())
}

/// A list answer that could not be filtered was replaced by an error: logged once and counted.
fn refused(state: &State, ctx: &Ctx, why: Refusal) {
    tracing::warn!(route = ctx.route_name(), why = why.as_str(), "list answer refused: not filterable");
    state.metrics.list_answers_refused.with_label_values(&[ctx.route_name(), why.label()]).inc();
}

#[cfg(test)]
mod tests {
    use super::{in_utf8, json_utf8};

    #[test]
    fn an_event_stream_is_read_only_in_utf8() {
        for utf8 in
            [&b"text/event-stream"[..], b"text/event-stream; charset=UTF-8", b"text/event-stream;charset=\"utf8\""]
        {
            assert!(in_utf8(utf8), "{}", String::from_utf8_lossy(utf8));
        }
        // Found by an attack: httpx decodes a stream in its charset.
        for other in [
            &b"text/event-stream; charset=utf-16le"[..],
            b"text/event-stream; CHARSET=\"UTF-7\"",
            b"text/event-stream; charset*=utf-16''",
            b"text/event-stream; charset=utf-8; charset=latin-1",
            b"text/event-stream; charset=",
        ] {
            assert!(!in_utf8(other), "{}", String::from_utf8_lossy(other));
        }
    }

    #[test]
    fn only_utf8_json_is_read_as_json() {
        for json in [
            &b"application/json"[..],
            b"Application/JSON",
            b"application/json; charset=UTF-8",
            b" application/json ;charset=\"utf-8\"",
        ] {
            assert!(json_utf8(json), "{}", String::from_utf8_lossy(json));
        }
        // Found by an attack: each was read (and its result kept) as JSON.
        for other in
            [&b"application/jsonx"[..], b"application/json; charset=utf-16", b"application/json-seq", b"text/json", b""]
        {
            assert!(!json_utf8(other), "{}", String::from_utf8_lossy(other));
        }
    }
}
