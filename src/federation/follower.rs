//! Following one member's stream for a merged stream ([`super::stream`]): opening it (its
//! GET in the member session, or its own listen), passing each message on as it arrives
//! ([`relay`] and [`listen`] decide what it becomes), and asking again when it ends: after its
//! `retry` or a backoff that doubles while its streams end within 30 s of opening (from 0.25
//! to 30 s). A GET resumes with the last event id the member sent.
//!
//! Not owned here: the merged queue and who follows what (`super::stream`), writing to the
//! client (`proxy::reply::stream`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::fanout::{self, Era, Failed};
use super::listen;
use super::relay::{self, Relayed};
use super::stream::{offered_uri, Client, Leg, Message, Queue, Source};
use crate::proxy::sse_event::{self, EventReader};
use crate::state::Snapshot;
use crate::upstream::client;

/// Longest event read from a member (a sampling request may carry images).
const MAX_EVENT: usize = 4 << 20;
/// Shortest and longest wait before asking a member for its stream again.
const RETRY_MIN: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// How long a member's stream stays open before its end no longer counts against the
/// member: the next one is asked for after the shortest wait again.
const STEADY: Duration = Duration::from_secs(30);

pub(super) struct Follower {
    pub snap: Arc<Snapshot>,
    pub route: usize,
    pub source: Source,
    pub client: Client,
    pub tx: Queue,
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
    pub async fn run(self, opened: oneshot::Sender<bool>) {
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
            if self.tx.send(Message::new(event, changed)).await.is_err() {
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
                Leg::Session { session, version, .. } => {
                    let version = super::spoken(self.client.version.as_deref(), version.as_deref());
                    let era = Era::Legacy { session: Some(session), version };
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
                listen::Heard::Relay(event, changed) => Heard::Message(Message::new(event, changed)),
                listen::Heard::Ended { refused } => Heard::Over { refused },
                listen::Heard::Nothing => Heard::Nothing,
            };
        }
        let ids = relay::Ids { keys: &self.client.keys, session: &self.client.session };
        let (event, changed) = match relay::relay(&ids, self.source.member, data, |uri| self.offered_uri(uri)) {
            Relayed::AsIs => (Bytes::from(relay::event(None, data)), &[][..]),
            Relayed::Rewritten(text) => (Bytes::from(relay::event(None, text.as_bytes())), &[][..]),
            Relayed::Changed(kinds) => (Bytes::from(relay::event(None, data)), kinds),
            Relayed::Dropped | Relayed::Response(_) => {
                tracing::debug!(member = %self.source.prefix, "federation: a member's stream message was not relayed");
                return Heard::Nothing;
            }
        };
        Heard::Message(Message::new(event, changed))
    }

    fn offered_uri(&self, own: &str) -> String {
        offered_uri(&self.snap, self.route, (self.source.member, &self.source.prefix), own)
    }
}
