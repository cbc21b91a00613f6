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
//!   client get ids that name the member (armed at the response head of any event stream of
//!   a call forwarded to a member), and the answer's resource URIs are offered as the route
//!   offers them (`federation::contents`).
//! - [`Transform::Contents`]: a federated call's JSON answer that can carry resource URIs
//!   (`resources/read`, `tools/call`, `prompts/get`), held whole and its URIs offered as the
//!   route offers them (`proxy::contents`).
//!
//! A request that armed nothing costs one `Option` test per hook.

use bytes::Bytes;
use http::header;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::Result;

use super::affinity;
use super::contents::{Contents, Pushed};
use super::ctx::Ctx;
use super::sse_event::{EndpointSniff, EventReader};
use crate::config::model::{PrefixMode, RouteConfig};
use crate::discovery::answer::{Answer, Head, Out, Refusal};
use crate::discovery::{self, ListKind};
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
    Contents(Contents),
}

/// A federated call's event stream, cut into events so that a member's request to the client
/// gets an id naming the member (`federation::relay`). Each event goes on once whole; only
/// an unfinished one is held, up to [`MAX_RELAYED_EVENT`] and within the budget all relayed
/// streams share (`federation::relay::HELD`). An event past either passes as it arrives
/// (a large answer, most often); a request in it keeps the member's own id, which leads
/// nowhere (the ids that lead to a member are sealed), and reading resumes after it.
#[derive(Debug)]
pub struct Relay {
    member: usize,
    events: EventReader,
    /// Passing an event too long to hold, up to its end.
    passing: bool,
    /// An event besides the answer and notifications came (`relay::Asked::eventful`), or one
    /// passed unread: the answer is not kept for the result cache.
    eventful: bool,
    /// The call's answer came (`relay::Asked::answered`).
    answered: bool,
    /// A copy of the answer for the result cache: kept only once the stream ended with
    /// nothing else in it (an event after the answer, a request to the client, a second
    /// answer, a cut-off event, could make the result not the arguments' alone).
    kept: Option<Vec<u8>>,
}

/// Longest event held whole on a federated call's stream. Small: what was held goes to the
/// client when the event turns out longer, and a client that does not read keeps it in the
/// proxy outside the shared budget (found by an attack: 250 stalled calls held 400 MB at 4 MiB).
const MAX_RELAYED_EVENT: usize = 256 << 10;

/// Arms filtered discovery when `call` asks for a list on a route with a policy.
pub fn arm(route: &RouteConfig, call: &Call) -> Option<Transform> {
    route.policy.as_ref()?;
    discovery::arm(call).map(|wanted| Transform::Discovery(Answer::new(wanted)))
}

/// Before the request goes upstream: a filtered answer must arrive uncompressed.
pub fn upstream_request(req: &mut RequestHeader, ctx: &Ctx) -> Result<()> {
    if matches!(ctx.transform, Some(Transform::Discovery(_))) {
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
    let places = crate::federation::contents::places(ctx.call.one.method);
    if let (Stream::No, Some(member), None, Some(places)) = (stream, &ctx.member, &ctx.transform, places) {
        // Held only for a reason: a URI to offer (never under the member's own names, nor
        // from a member that reads none) or a result to keep. Holding costs the answer its
        // length, and on HTTP/1.1 two writes.
        if json_as_is(resp) && (member.cache.is_some() || offers_uris(ctx, member.index)) {
            ctx.transform = Some(Transform::Contents(Contents::new(member.index, places)));
            return reframed(resp);
        }
    }
    if let (Stream::Events, Some(member), None) = (stream, &ctx.member, &ctx.transform) {
        let events = EventReader::with_budget(MAX_RELAYED_EVENT, &crate::federation::relay::HELD);
        ctx.transform = Some(Transform::Relay(Relay {
            member: member.index,
            events,
            passing: false,
            eventful: false,
            answered: false,
            kept: None,
        }));
        return reframed(resp);
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

/// A body whose length changes goes out chunked (HTTP/1.1) or framed by HTTP/2.
/// Whether a response is JSON as the member wrote it: `application/json` (any case, as media
/// types are), neither compressed nor in a transfer coding besides chunked.
fn json_as_is(resp: &ResponseHeader) -> bool {
    let json = resp.headers.get(header::CONTENT_TYPE).is_some_and(|v| json_utf8(v.as_bytes()));
    let coded = |name, allowed: &[u8]| {
        resp.headers
            .get_all(name)
            .iter()
            .any(|v| v.as_bytes().split(|&b| b == b',').any(|c| !c.trim_ascii().eq_ignore_ascii_case(allowed)))
    };
    json && !coded(header::CONTENT_ENCODING, b"identity") && !coded(header::TRANSFER_ENCODING, b"chunked")
}

/// Whether a `Content-Type` is `application/json` (any case) in UTF-8: no other media type
/// that starts alike (`application/jsonx`), and a `charset` parameter, if any, UTF-8 (what a
/// client decodes as UTF-16 is not what the proxy read).
fn json_utf8(content_type: &[u8]) -> bool {
    let mut parts = content_type.split(|&b| b == b';');
    let essence = parts.next().unwrap_or_default().trim_ascii();
    essence.eq_ignore_ascii_case(b"application/json")
        && parts.all(|param| {
            let (name, value) = param.split_at(param.iter().position(|&b| b == b'=').unwrap_or(param.len()));
            let value = value.get(1..).unwrap_or_default().trim_ascii();
            let value = value.strip_prefix(b"\"").and_then(|v| v.strip_suffix(b"\"")).unwrap_or(value);
            !name.trim_ascii().eq_ignore_ascii_case(b"charset")
                || value.eq_ignore_ascii_case(b"utf-8")
                || value.eq_ignore_ascii_case(b"utf8")
        })
}

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
pub fn body(state: &State, body: &mut Option<Bytes>, end: bool, ctx: &mut Ctx) {
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
            let out = relayed(state, ctx, &mut relay, &chunk, end);
            *body = (!out.is_empty()).then(|| Bytes::from(out));
            ctx.transform = Some(Transform::Relay(relay));
        }
        Some(Transform::Contents(mut contents)) => {
            let chunk = body.take().unwrap_or_default();
            let (member, prefix) = (contents.member, route_member_prefix(ctx, contents.member));
            let (snap, route) = (&ctx.snap, ctx.route.unwrap_or(usize::MAX));
            let uri = |own: &str| crate::federation::stream::offered_uri(snap, route, (member, prefix), own);
            match contents.push(chunk, end, uri) {
                Pushed::Held => ctx.transform = Some(Transform::Contents(contents)),
                Pushed::Whole(out) => {
                    keep_result(ctx, &out);
                    *body = (!out.is_empty()).then_some(out);
                }
                Pushed::Passed(out) => *body = (!out.is_empty()).then_some(out),
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
}

/// A chunk of a federated call's event stream, as the client gets it ([`Relay`]).
fn relayed(state: &State, ctx: &Ctx, relay: &mut Relay, chunk: &[u8], end: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(chunk.len());
    let mut rest = chunk;
    if relay.passing {
        match relay.events.skip(rest) {
            Some(n) => {
                out.extend_from_slice(rest.get(..n).unwrap_or_default());
                rest = rest.get(n..).unwrap_or_default();
                relay.passing = false;
            }
            None => {
                relay.eventful = true;
                return rest.to_vec();
            }
        }
    }
    let (snap, route) = (&ctx.snap, ctx.route.unwrap_or(usize::MAX));
    let prefix = route_member_prefix(ctx, relay.member);
    let keys = state.keys.load();
    let session = ctx.pinned.as_ref().map_or("", |p| p.fingerprint.as_str());
    let ids = crate::federation::relay::Ids { keys: &keys, session };
    let mut changed: &[crate::federation::kind::Kind] = &[];
    let member = relay.member;
    let mut call = crate::federation::relay::Asked {
        id: ctx.call.one.id.as_deref(),
        places: crate::federation::contents::places(ctx.call.one.method),
        keep: relay.kept.take().or_else(|| {
            ctx.member.as_ref().and_then(|m| m.cache).filter(|_| !relay.eventful && !relay.answered).map(|_| Vec::new())
        }),
        answered: relay.answered,
        eventful: false,
    };
    let fed = relay.events.feed(rest, |event| {
        let uri = |own: &str| crate::federation::stream::offered_uri(snap, route, (member, prefix), own);
        let kinds = crate::federation::relay::answer_event(&ids, &mut call, member, event, uri, &mut out);
        if !kinds.is_empty() {
            changed = kinds;
        }
    });
    relay.eventful |= call.eventful;
    relay.answered = call.answered;
    relay.kept = call.keep.filter(|_| !relay.eventful);
    if !changed.is_empty() {
        crate::federation::changed(&state.snapshot(), ctx.route_name(), changed);
    }
    match fed {
        Ok(()) if end => {
            let rest = relay.events.take_rest();
            relay.eventful |= !rest.trim_ascii().is_empty();
            out.extend_from_slice(&rest);
        }
        Ok(()) => {}
        Err(too_long) => {
            relay.eventful = true;
            out.extend_from_slice(&relay.events.take_rest());
            out.extend_from_slice(rest.get(too_long.at..).unwrap_or_default());
            relay.passing = true;
        }
    }
    if end {
        if let Some(answer) = relay.kept.take().filter(|a| !a.is_empty() && !relay.eventful) {
            keep_result(ctx, &answer);
        }
    }
    out
}

/// The whole answer to a call whose result the route's result cache may keep
/// (`federation::results`): kept, at most once per call.
fn keep_result(ctx: &Ctx, answer: &[u8]) {
    let Some(miss) = ctx.member.as_ref().and_then(|m| m.cache) else { return };
    let Some(id) = ctx.call.one.id.as_deref() else { return };
    let route = ctx.route.and_then(|r| ctx.snap.catalogs.get(r)).and_then(Option::as_ref);
    if let Some(results) = route.and_then(|c| c.results.as_ref()) {
        results.put(miss, id, answer);
    }
}

/// The prefix of member `i` of the request's route.
fn route_member_prefix(ctx: &Ctx, i: usize) -> &str {
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
    body(state, &mut whole, true, ctx);
    ctx.transform = None;
    Some(whole.unwrap_or_default())
}

/// A list answer that could not be filtered was replaced by an error: logged once and counted.
fn refused(state: &State, ctx: &Ctx, why: Refusal) {
    tracing::warn!(route = ctx.route_name(), why = why.as_str(), "list answer refused: not filterable");
    state.metrics.list_answers_refused.with_label_values(&[ctx.route_name(), why.label()]).inc();
}

#[cfg(test)]
mod tests {
    use super::json_utf8;

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
