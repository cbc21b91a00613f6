//! A federated route's merged streams: a legacy session's GET stream (every member's own GET
//! stream, opened in the member session the client's token carries) and a 2026-07-28
//! `subscriptions/listen` (every member's own listen, [`listen`]), each member's message
//! passed on as it arrives (each member followed by a [`super::follower`]). The merged stream
//! is the client's for as long as it stays: a member that ends its stream (or is quiet past its
//! pool's idle timeout) is asked again; a member that no longer knows the session (404), has
//! no stream (405) or refuses a listen is left out. The client cannot resume the merged stream itself (its
//! events carry no ids: there is no one position in several streams); what it missed while
//! away is gone, as on a server without an event store.
//!
//! Not owned here: writing to the client and refreshing the catalog (`proxy::reply::stream`),
//! the session token (`super::session`), the requests' framing (`super::fanout`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use super::follower::Follower;
use super::kind::Kind;
use super::listen;
use super::names;
use crate::config::model::PrefixMode;
use crate::session::KeyRing;
use crate::state::Snapshot;
use crate::upstream::Pool;

/// Messages waiting for a slow client, all members together, and their bytes: past either,
/// members wait (64 events of 4 MiB would hold 256 MiB a stream). A message longer than the
/// bytes still passes alone.
const QUEUE: usize = 64;
const QUEUE_BYTES: usize = 8 << 20;

/// Members' streams the merged streams hold open, all routes together (each merged stream
/// counts one per member it follows, whether that member's stream is up or being asked again).
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// A merged stream's share of `proxy.max_member_streams`, given back when it ends.
pub struct Places(usize);

impl Places {
    /// `n` places, unless that would hold more than `limit` open.
    pub fn take(n: usize, limit: usize) -> Option<Places> {
        let taken = OPEN.fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
            open.checked_add(n).filter(|total| *total <= limit)
        });
        taken.is_ok().then_some(Places(n))
    }
}

impl Drop for Places {
    fn drop(&mut self) {
        OPEN.fetch_sub(self.0, Ordering::AcqRel);
    }
}
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
    /// A legacy session's GET stream, on the backend holding the member's session, in the
    /// protocol version the member agreed to (the client's, when its token has none).
    Session { backend: SocketAddr, session: String, version: Option<String> },
    /// A 2026-07-28 `subscriptions/listen` sending this body, on any usable backend.
    Listen { body: Bytes },
}

/// One message for the client: an SSE event, and the lists it makes stale.
pub struct Message {
    pub event: Bytes,
    pub changed: &'static [Kind],
    /// Its share of [`QUEUE_BYTES`] while it waits.
    queued: Option<OwnedSemaphorePermit>,
}

impl Message {
    pub fn new(event: Bytes, changed: &'static [Kind]) -> Message {
        Message { event, changed, queued: None }
    }
}

/// The merged stream's queue, as its followers send to it.
#[derive(Clone)]
pub(super) struct Queue {
    tx: mpsc::Sender<Message>,
    bytes: Arc<Semaphore>,
}

impl Queue {
    fn new() -> (Queue, mpsc::Receiver<Message>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Queue { tx, bytes: Arc::new(Semaphore::new(QUEUE_BYTES)) }, rx)
    }

    /// Queues `message` once there is room for it; Err when the client left.
    pub async fn send(&self, mut message: Message) -> Result<(), ()> {
        let share = u32::try_from(message.event.len().min(QUEUE_BYTES)).unwrap_or(u32::MAX);
        let permit = Arc::clone(&self.bytes).acquire_many_owned(share).await.map_err(|_| ())?;
        message.queued = Some(permit);
        self.tx.send(message).await.map_err(|_| ())
    }

    /// Resolves when the client left.
    pub async fn closed(&self) {
        self.tx.closed().await
    }
}

/// The merged stream. Dropping it stops following every member.
pub struct Merged {
    pub messages: mpsc::Receiver<Message>,
    /// Whose lists its changes are about: the 2026-07-28 era's (a listen) or the legacy's.
    pub modern: bool,
    /// Written when every member's stream ended for good (a listen's result).
    pub closing: Option<Bytes>,
    /// The members' first attempts, not yet heard ([`Merged::opened`]).
    opening: Vec<oneshot::Receiver<bool>>,
    _follow: tokio::task::JoinSet<()>,
    _places: Places,
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

/// Opens every member's stream at once. The stream is the client's once a member's opened
/// ([`Merged::opened`]).
pub fn open(snap: &Arc<Snapshot>, route: usize, sources: Vec<Source>, client: Client, places: Places) -> Merged {
    let (tx, messages) = Queue::new();
    let (follow, opening) = follow(snap, route, sources, &client, tx);
    Merged { messages, modern: false, closing: None, opening, _follow: follow, _places: places }
}

impl Merged {
    /// Whether any member's stream opened, once every member's first attempt answered, failed
    /// or timed out (a listen's is open at once). The caller watches its client meanwhile:
    /// dropping the merged stream stops every attempt.
    pub async fn opened(&mut self) -> bool {
        if self.opening.is_empty() {
            return true;
        }
        let mut any = false;
        for heard in self.opening.drain(..) {
            any |= heard.await.unwrap_or(false);
        }
        any
    }
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
    places: Places,
) -> Merged {
    let (tx, messages) = Queue::new();
    // The queue is empty: the acknowledgement is the first message, whatever members send.
    let _ = tx.tx.try_send(Message::new(first, &[]));
    let (follow, _) = follow(snap, route, sources, &client, tx);
    Merged { messages, modern: true, closing: Some(closing), opening: Vec::new(), _follow: follow, _places: places }
}

/// One task per member, each saying whether its first attempt opened a stream.
fn follow(
    snap: &Arc<Snapshot>,
    route: usize,
    sources: Vec<Source>,
    client: &Client,
    tx: Queue,
) -> (tokio::task::JoinSet<()>, Vec<oneshot::Receiver<bool>>) {
    let mut follow = tokio::task::JoinSet::new();
    let mut opened = Vec::with_capacity(sources.len());
    for source in sources {
        let (said, heard) = oneshot::channel();
        opened.push(heard);
        let follower = Follower { snap: Arc::clone(snap), route, source, client: client.clone(), tx: tx.clone() };
        follow.spawn(follower.run(said));
    }
    // A member with no stream of its own that can say its lists changed (a shared stdio
    // process) is followed through the catalog: the merged stream lasts while it does (a
    // route without one still ends its stream once every member's ended for good).
    let fed = snap.router.routes().get(route).and_then(|r| r.federation.as_ref());
    let announcing = |m: &crate::config::model::Member| {
        let stdio = snap.pools.get(m.pool).and_then(|p| p.config.stdio.as_ref());
        stdio.is_some_and(|s| s.sessions.is_none())
    };
    let catalog = snap.catalogs.get(route).and_then(Option::as_ref);
    if let (Some(catalog), true) = (catalog, fed.is_some_and(|f| f.members.iter().any(announcing))) {
        follow.spawn(announce(catalog.announcements(), client.listen.clone(), tx));
    }
    (follow, opened)
}

/// Tells the client what the route's catalog announces (`Catalog::announce`: a member with no
/// stream of its own said its lists changed), until the client leaves.
async fn announce(
    mut heard: tokio::sync::broadcast::Receiver<&'static [Kind]>,
    listen: Option<Arc<listen::Listening>>,
    tx: Queue,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let kinds = tokio::select! {
            kinds = heard.recv() => kinds,
            () = tx.closed() => return,
        };
        let said: &[&'static [Kind]] = match &kinds {
            Ok(kinds) => std::slice::from_ref(kinds),
            // Fell behind (a server that says so without pause): every list may have changed.
            Err(RecvError::Lagged(_)) => &listen::LIST_KINDS,
            Err(RecvError::Closed) => return,
        };
        for kinds in said {
            let event = match &listen {
                Some(l) => listen::announced(&l.id, &l.filter, kinds),
                None => listen::announced_legacy(kinds),
            };
            if let Some(event) = event {
                if tx.send(Message::new(event, kinds)).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// A member's resource URI as route `route` offers it: under the member's `prefix`, bare, or
/// (prefix mode `conflicts`) under its prefix only when the merged list has it so. Bare too
/// from a member known to read no resources (`Catalog::reads_no_resources`): renamed, it would
/// lead back to a member that cannot read it.
pub fn offered_uri(snap: &Snapshot, route: usize, (member, prefix): (usize, &str), own: &str) -> String {
    let prefixed = || names::offered_uri(prefix, own);
    let fed = snap.router.routes().get(route).and_then(|r| r.federation.as_ref());
    let catalog = snap.catalogs.get(route).and_then(Option::as_ref);
    if catalog.is_some_and(|c| c.reads_no_resources(member)) {
        return own.to_owned();
    }
    match fed.map(|f| f.prefix_mode) {
        Some(PrefixMode::Never) => own.to_owned(),
        Some(PrefixMode::Conflicts) => {
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
