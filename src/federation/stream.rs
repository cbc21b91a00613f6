//! A federated route's merged streams: a legacy session's GET stream (every member's own GET
//! stream, opened in the member session the client's token carries) and a 2026-07-28
//! `subscriptions/listen` (every member's own listen, [`listen`]), each member's message
//! passed on as it arrives ([`relay`] and [`listen`] decide what it becomes). The merged stream
//! is the client's for as long as it stays: a member that ends its stream (or is quiet past its
//! pool's idle timeout) is asked again, a GET resuming with the last event id it sent, after
//! its `retry` or a backoff that doubles while its streams end within 30 s of opening (from
//! 0.25 to 30 s); a member that no longer knows the session (404), has no stream (405) or
//! refuses a listen is left out. The client cannot resume the merged stream itself (its
//! events carry no ids: there is no one position in several streams); what it missed while
//! away is gone, as on a server without an event store.
//!
//! Not owned here: writing to the client and refreshing the catalog (`proxy::reply::stream`),
//! the session token (`super::session`), the requests' framing (`fanout`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::fanout::{self, Era, Failed};
use super::kind::Kind;
use super::listen;
use super::names;
use super::relay::{self, Relayed};
use crate::config::model::PrefixMode;
use crate::proxy::sse_event::{self, EventReader};
use crate::session::KeyRing;
use crate::state::Snapshot;
use crate::upstream::{client, Pool};

/// Messages waiting for a slow client, all members together: past this, members wait.
const QUEUE: usize = 64;
/// Longest event read from a member (a sampling request may carry images).
const MAX_EVENT: usize = 4 << 20;
/// Shortest and longest wait before asking a member for its stream again.
const RETRY_MIN: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// How long a member's stream stays open before its end no longer counts against the
/// member: the next one is asked for after the shortest wait again.
const STEADY: Duration = Duration::from_secs(30);

/// A member's stream to follow.
pub struct Source {
    /// Its place in the route's members.
    pub member: usize,
    pub prefix: String,
    pub pool: Arc<Pool>,
    pub leg: Leg,
}

/// Which stream of the member.
pub enum Leg {
    /// A legacy session's GET stream, on the backend holding the member's session.
    Session { backend: SocketAddr, session: String },
    /// A 2026-07-28 `subscriptions/listen` sending this body, on any usable backend.
    Listen { body: Bytes },
}

/// One message for the client: an SSE event, and the lists it makes stale.
pub struct Message {
    pub event: Bytes,
    pub changed: &'static [Kind],
}

/// The merged stream. Dropping it stops following every member.
pub struct Merged {
    pub messages: mpsc::Receiver<Message>,
    /// Whose lists its changes are about: the 2026-07-28 era's (a listen) or the legacy's.
    pub modern: bool,
    /// Written when every member's stream ended for good (a listen's result).
    pub closing: Option<Bytes>,
    _follow: tokio::task::JoinSet<()>,
}

/// The client the stream is for.
#[derive(Clone)]
pub struct Client {
    /// Seal the ids of the members' requests ([`relay::Ids`]).
    pub keys: Arc<KeyRing>,
    /// The client's session (its token's fingerprint).
    pub session: String,
    /// The client's protocol version, sent to members.
    pub version: Option<String>,
    /// A listen's subscription id and what its client asked to hear (as offered).
    pub listen: Option<Arc<listen::Listening>>,
}

/// Opens every member's stream at once; None when none of them has one (each answered,
/// failed or timed out first).
pub async fn open(snap: &Arc<Snapshot>, route: usize, sources: Vec<Source>, client: Client) -> Option<Merged> {
    let (tx, messages) = mpsc::channel(QUEUE);
    let (follow, opened) = follow(snap, route, sources, &client, tx);
    let mut any = false;
    for heard in opened {
        any |= heard.await.unwrap_or(false);
    }
    any.then_some(Merged { messages, modern: false, closing: None, _follow: follow })
}

/// A listen's stream: `first` (the route's acknowledgement), then what the members' listens
/// carry. Members that cannot be reached yet are asked again; the stream ends with `closing`
/// once every member refused it for good.
pub fn listen(
    snap: &Arc<Snapshot>,
    route: usize,
    sources: Vec<Source>,
    client: Client,
    first: Bytes,
    closing: Bytes,
) -> Merged {
    let (tx, messages) = mpsc::channel(QUEUE);
    // The queue is empty: the acknowledgement is the first message, whatever members send.
    let _ = tx.try_send(Message { event: first, changed: &[] });
    let (follow, _) = follow(snap, route, sources, &client, tx);
    Merged { messages, modern: true, closing: Some(closing), _follow: follow }
}

/// One task per member, each saying whether its first attempt opened a stream.
fn follow(
    snap: &Arc<Snapshot>,
    route: usize,
    sources: Vec<Source>,
    client: &Client,
    tx: mpsc::Sender<Message>,
) -> (tokio::task::JoinSet<()>, Vec<oneshot::Receiver<bool>>) {
    let mut follow = tokio::task::JoinSet::new();
    let mut opened = Vec::with_capacity(sources.len());
    for source in sources {
        let (said, heard) = oneshot::channel();
        opened.push(heard);
        let follower = Follower { snap: Arc::clone(snap), route, source, client: client.clone(), tx: tx.clone() };
        follow.spawn(follower.run(said));
    }
    (follow, opened)
}

struct Follower {
    snap: Arc<Snapshot>,
    route: usize,
    source: Source,
    client: Client,
    tx: mpsc::Sender<Message>,
}

/// What a member's message is for the client.
enum Heard {
    Message(Message),
    /// The member answered its listen: the stream is over (`refused`: for good).
    Over {
        refused: bool,
    },
    Nothing,
}

/// How a member's stream ended.
enum Ended {
    /// Ask again, after its `retry` or the backoff, whichever is longer; `lost`: not ended by
    /// the proxy's own idle timeout, so messages may have been missed.
    Again { retry: Option<Duration>, lost: bool },
    /// The client left, or the member refused the stream for good.
    Gone,
}

impl Follower {
    async fn run(self, opened: oneshot::Sender<bool>) {
        let mut opened = Some(opened);
        let mut last_id: Option<String> = None;
        let mut backoff = RETRY_MIN;
        // An oversized event is logged once per stream, not at every retry.
        let mut logged = false;
        // A listen's member keeps being asked while it cannot be reached (a GET's is left out).
        let patient = self.client.listen.is_some();
        let mut lost = false;
        loop {
            let wait = match self.connect(last_id.as_deref()).await {
                Ok(s) => {
                    let began = std::time::Instant::now();
                    if let Some(o) = opened.take() {
                        let _ = o.send(true);
                    }
                    if std::mem::take(&mut lost) && !self.resumed().await {
                        return;
                    }
                    match self.read(s, &mut last_id, &mut logged).await {
                        Ended::Gone => return,
                        Ended::Again { retry, lost: l } => {
                            lost = l;
                            // A stream the member ends soon after it opened, whatever it
                            // carried, is asked again later each time: a member cannot make the
                            // proxy reconnect (and tell the client its lists changed) four
                            // times a second. One ended by the proxy's idle timeout is not the
                            // member's doing.
                            backoff = match began.elapsed() >= STEADY || !l {
                                true => RETRY_MIN,
                                false => (backoff * 2).min(RETRY_MAX),
                            };
                            retry.unwrap_or(RETRY_MIN).max(backoff)
                        }
                    }
                }
                Err(failed) => {
                    let permanent = matches!(failed, Failed::Status(404 | 405 | 400))
                        || (patient && matches!(failed, Failed::Unreadable));
                    if let Some(o) = opened.take().filter(|_| !patient || permanent) {
                        tracing::debug!(member = %self.source.prefix, error = %failed, "federation: a member has no stream for the client");
                        let _ = o.send(false);
                        return;
                    }
                    if permanent {
                        tracing::info!(member = %self.source.prefix, error = %failed, "federation: a member's stream ended for good");
                        return;
                    }
                    lost = true;
                    backoff = (backoff * 2).min(RETRY_MAX);
                    backoff
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait.clamp(RETRY_MIN, RETRY_MAX)) => {}
                _ = self.tx.closed() => return,
            }
        }
    }

    /// A listen's member stream open again after it was lost: the client is told the lists
    /// it listens to changed. False when the client left.
    async fn resumed(&self) -> bool {
        let Some(listening) = &self.client.listen else { return true };
        for (event, changed) in listen::resumed(&listening.id, &listening.filter) {
            if self.tx.send(Message { event, changed }).await.is_err() {
                return false;
            }
        }
        true
    }

    /// The member's stream (its GET, or its listen's answer), its head read (200 and
    /// `text/event-stream`).
    async fn connect(&self, last_id: Option<&str>) -> Result<pingora::protocols::http::client::HttpSession, Failed> {
        let err = |e: Box<pingora::Error>| Failed::Exchange(e.etype().as_str().to_owned());
        let pool = &self.source.pool;
        let backend = match &self.source.leg {
            Leg::Session { backend, .. } if pool.usable(*backend) => *backend,
            Leg::Session { .. } => return Err(Failed::NoBackend),
            Leg::Listen { .. } => fanout::usable_backend(pool).ok_or(Failed::NoBackend)?,
        };
        let peer = pool.peer(backend, &pool.config.timeouts);
        let exchange = async {
            let (mut s, _) = client::connector().get_http_session(&peer).await.map_err(err)?;
            match &self.source.leg {
                Leg::Session { session, .. } => {
                    let era = Era::Legacy { session: Some(session), version: self.client.version.as_deref() };
                    let mut req = fanout::head(pool, backend, "GET", era, "").await?;
                    if let Some(id) = last_id {
                        req.insert_header("Last-Event-ID", id).map_err(err)?;
                    }
                    s.write_request_header(Box::new(req)).await.map_err(err)?;
                }
                Leg::Listen { body } => {
                    let mut req = fanout::head(pool, backend, "POST", Era::Modern, "subscriptions/listen").await?;
                    req.insert_header(http::header::CONTENT_TYPE, "application/json").map_err(err)?;
                    req.insert_header(http::header::CONTENT_LENGTH, body.len().to_string()).map_err(err)?;
                    s.write_request_header(Box::new(req)).await.map_err(err)?;
                    s.write_request_body(body.clone(), true).await.map_err(err)?;
                }
            }
            s.finish_request_body().await.map_err(err)?;
            fanout::answer_head(&mut s).await?;
            Ok::<_, Failed>(s)
        };
        let timeout = super::session::HANDSHAKE_TIMEOUT;
        let s = tokio::time::timeout(timeout, exchange).await.map_err(|_| Failed::Timeout(timeout))??;
        let head = s.response_header().ok_or(Failed::Unreadable)?;
        let sse = head
            .headers
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        match head.status.as_u16() {
            200 if sse => Ok(s),
            200 => Err(Failed::Unreadable),
            status => Err(Failed::Status(status)),
        }
    }

    /// Passes the stream's messages on until it ends (or the client leaves). Keeps the last
    /// event id a request header can carry back.
    async fn read(
        &self,
        mut s: pingora::protocols::http::client::HttpSession,
        last_id: &mut Option<String>,
        logged: &mut bool,
    ) -> Ended {
        let mut events = EventReader::with_budget(MAX_EVENT, &relay::HELD);
        let mut retry = None;
        loop {
            let chunk = tokio::select! {
                chunk = s.read_response_body() => chunk,
                _ = self.tx.closed() => return Ended::Gone,
            };
            let chunk = match chunk {
                Ok(Some(chunk)) => chunk,
                Ok(None) => return Ended::Again { retry, lost: true },
                Err(e) => {
                    let lost = *e.etype() != pingora::ErrorType::ReadTimedout;
                    return Ended::Again { retry, lost };
                }
            };
            let mut out = Vec::new();
            let mut over = None;
            let fed = events.feed(&chunk, |event| {
                if let Some(id) = sse_event::id(event).filter(|id| id.bytes().all(|b| (0x20..0x7f).contains(&b))) {
                    *last_id = Some(id.to_owned());
                }
                if let Some(ms) = sse_event::retry(event) {
                    retry = Some(Duration::from_millis(ms));
                }
                match sse_event::data(event).map(|(data, _)| self.message(&data)) {
                    Some(Heard::Message(message)) => out.push(message),
                    Some(Heard::Over { refused }) => over = over.or(Some(refused)),
                    Some(Heard::Nothing) | None => {}
                }
            });
            for message in out {
                if self.tx.send(message).await.is_err() {
                    return Ended::Gone;
                }
            }
            match over {
                Some(true) => {
                    tracing::info!(member = %self.source.prefix, "federation: a member refused the listen");
                    return Ended::Gone;
                }
                Some(false) => return Ended::Again { retry, lost: true },
                None => {}
            }
            if fed.is_err() {
                if !std::mem::replace(logged, true) {
                    tracing::info!(member = %self.source.prefix, "federation: a member's stream event was too long to hold (4 MiB, or the relays' 64 MiB together); dropped, and the stream asked for again");
                }
                return Ended::Again { retry, lost: true };
            }
        }
    }

    /// What one event's data becomes for the client.
    fn message(&self, data: &[u8]) -> Heard {
        if let Some(listening) = &self.client.listen {
            return match listen::heard(data, &listening.id, &listening.filter, |uri| self.offered_uri(uri)) {
                listen::Heard::Relay(event, changed) => Heard::Message(Message { event, changed }),
                listen::Heard::Ended { refused } => Heard::Over { refused },
                listen::Heard::Nothing => Heard::Nothing,
            };
        }
        let ids = relay::Ids { keys: &self.client.keys, session: &self.client.session };
        let (event, changed) = match relay::relay(&ids, self.source.member, data, |uri| self.offered_uri(uri)) {
            Relayed::AsIs => (Bytes::from(relay::event(None, data)), &[][..]),
            Relayed::Rewritten(text) => (Bytes::from(relay::event(None, text.as_bytes())), &[][..]),
            Relayed::Changed(kinds) => (Bytes::from(relay::event(None, data)), kinds),
            Relayed::Dropped | Relayed::Response => {
                tracing::debug!(member = %self.source.prefix, "federation: a member's stream message was not relayed");
                return Heard::Nothing;
            }
        };
        Heard::Message(Message { event, changed })
    }

    fn offered_uri(&self, own: &str) -> String {
        offered_uri(&self.snap, self.route, &self.source.prefix, own)
    }
}

/// A member's resource URI as route `route` offers it: under the member's `prefix`, bare, or
/// (prefix mode `conflicts`) under its prefix only when the merged list has it so.
pub fn offered_uri(snap: &Snapshot, route: usize, prefix: &str, own: &str) -> String {
    let prefixed = || names::offered_uri(prefix, own);
    let fed = snap.router.routes().get(route).and_then(|r| r.federation.as_ref());
    match fed.map(|f| f.prefix_mode) {
        Some(PrefixMode::Never) => own.to_owned(),
        Some(PrefixMode::Conflicts) => {
            let catalog = snap.catalogs.get(route).and_then(Option::as_ref);
            let listed = catalog.and_then(|c| c.latest(Kind::Resources)[0].clone());
            let offered = prefixed();
            if listed.is_some_and(|m| m.owners.contains_key(&offered)) {
                offered
            } else {
                own.to_owned()
            }
        }
        Some(PrefixMode::Always) | None => prefixed(),
    }
}
