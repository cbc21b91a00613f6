//! A federated call's event stream on its way to the client ([`Relay`]), armed at the
//! response head of any event stream of a call forwarded to a member (`transform`): cut into
//! events so that a member's request to the client gets an id naming the member, its
//! answer's resource URIs are offered as the route offers them, and nothing but the call's
//! own answer, requests and notifications reaches the client (`federation::relay`). An event
//! too long to hold is read as it passes (`federation::passing`) and the stream cut before
//! the byte that would complete one that may not pass.
//!
//! Not here: what a message becomes (`federation`), the result cache (`transform::keep_result`).

use crate::federation::passing::PassingEvent;
use crate::federation::scanner::Refusal;
use crate::proxy::ctx::Ctx;
use crate::proxy::preamble::Preamble;
use crate::proxy::sse_event::EventReader;
use crate::state::State;

/// A federated call's event stream. Each event goes on once whole; only an unfinished one is
/// held, up to [`MAX_RELAYED_EVENT`] and within the budget all relayed streams share
/// (`federation::relay::HELD`). An event past either passes as it arrives (a large answer,
/// most often), read as it goes; a request in it keeps the member's own id, which leads
/// nowhere (the ids that lead to a member are sealed), and reading resumes after it.
#[derive(Debug)]
pub struct Relay {
    member: usize,
    events: EventReader,
    /// Passing an event too long to hold, up to its end.
    passing: Option<Box<PassingEvent>>,
    /// An event besides the answer and notifications came (`relay::Asked::eventful`), or one
    /// passed unread: the answer is not kept for the result cache.
    eventful: bool,
    /// The call's answer came (`relay::Asked::answered`).
    answered: bool,
    /// A copy of the answer for the result cache: kept only once the stream ended with
    /// nothing else in it (an event after the answer, a request to the client, a second
    /// answer, a cut-off event, could make the result not the arguments' alone).
    kept: Option<Vec<u8>>,
    /// The stream's start, where clients drop byte order marks (`super::preamble`).
    preamble: Preamble,
}

/// Longest event held whole on a federated call's stream. Small: what was held goes to the
/// client when the event turns out longer, and a client that does not read keeps it in the
/// proxy outside the shared budget (found by an attack: 250 stalled calls held 400 MB at 4 MiB).
const MAX_RELAYED_EVENT: usize = 256 << 10;

impl Relay {
    pub fn new(member: usize) -> Relay {
        let events = EventReader::with_budget(MAX_RELAYED_EVENT, &crate::federation::relay::HELD);
        Relay {
            member,
            events,
            passing: None,
            eventful: false,
            answered: false,
            kept: None,
            preamble: Preamble::default(),
        }
    }

    pub fn member(&self) -> usize {
        self.member
    }
}

/// A chunk of a federated call's event stream, as the client gets it. Err: the chunk holds the
/// byte that would complete a message that may not pass; nothing of it goes on.
pub fn relayed(state: &State, ctx: &Ctx, relay: &mut Relay, chunk: &[u8], end: bool) -> Result<Vec<u8>, Refusal> {
    let chunk = relay.preamble.strip(chunk);
    let mut out = Vec::with_capacity(chunk.len());
    let mut rest = &chunk[..];
    let call_id = ctx.call.one.id.as_deref();
    if let Some(passing) = relay.passing.as_mut() {
        match passing.feed(rest, call_id, &mut relay.answered)? {
            Some(n) => {
                out.extend_from_slice(rest.get(..n).unwrap_or_default());
                rest = rest.get(n..).unwrap_or_default();
                relay.passing = None;
                relay.events.restart();
            }
            None => return Ok(rest.to_vec()),
        }
    }
    let (snap, route) = (&ctx.snap, ctx.route.unwrap_or(usize::MAX));
    let prefix = super::transform::route_member_prefix(ctx, relay.member);
    let keys = state.keys.load();
    let session = ctx.pinned.as_ref().map_or("", |p| p.fingerprint.as_str());
    let ids = crate::federation::relay::Ids { keys: &keys, session };
    let mut changed: &[crate::federation::kind::Kind] = &[];
    let member = relay.member;
    let mut call = crate::federation::relay::Asked {
        id: call_id,
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
            // A cut-off event is not passed: it was never read whole, and a client may act on
            // it all the same (the Python SDK 2.x dispatches one ended by a lone CR at the
            // stream's end; found by an attack).
            let rest = relay.events.take_rest();
            relay.eventful |= !rest.trim_ascii().is_empty();
        }
        Ok(()) => {}
        Err(too_long) => {
            // Too long to hold: read from its start as it passes. The reader found no end
            // in it, and neither may this (they end events alike; a disagreement is cut).
            relay.eventful = true;
            let mut passing = Box::<PassingEvent>::default();
            let held = relay.events.take_rest();
            let tail = rest.get(too_long.at..).unwrap_or_default();
            for part in [&held[..], tail] {
                if passing.feed(part, call_id, &mut relay.answered)?.is_some() {
                    return Err(Refusal::NotJson);
                }
            }
            out.extend_from_slice(&held);
            out.extend_from_slice(tail);
            relay.passing = Some(passing);
        }
    }
    if end {
        if let Some(answer) = relay.kept.take().filter(|a| !a.is_empty() && !relay.eventful) {
            super::transform::keep_result(ctx, &answer);
        }
    }
    Ok(out)
}
