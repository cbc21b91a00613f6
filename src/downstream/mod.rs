//! The client side of every proxy connection, below HTTP: accepting ([`accept`]), admission
//! against `proxy.max_connections`, TLS ([`tls`]: after admission, under the head deadline;
//! ALPN `h2` goes to [`h2`]), the request deadlines `proxy.header_timeout` and
//! `proxy.body_timeout` ([`clock`], [`conn`]), and the keep-alive loop. It does not parse
//! HTTP (Pingora does) or choose replies beyond the two that only this layer can send (503 to
//! a refused connection, 408 to a slow head).
//!
//! Why this layer exists: Pingora 0.9.1 has no connection cap and no whole-head deadline (its
//! only head timeout is per read, restarted by every byte, so a client trickling one byte per
//! second holds a connection forever), and it keeps an idle keep-alive connection inside a
//! whole request future with its head buffer (about 18 KiB), which 10,000 idle clients turn
//! into most of the proxy's memory. Here each request is handed to the unchanged `HttpProxy`
//! (`process_new_http`), and between requests a connection waits on the bare socket. The
//! proxy phases move the connection's [`clock::Clock`] on through a task-local: head parsed
//! (`early_request_filter`), body read (`pre_read`, the last `request_body_filter`).

pub mod accept;
pub mod clock;
pub mod conn;
mod h2;
mod pipelined;
pub mod tls;
pub mod transport;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pingora::apps::{HttpPersistentSettings, HttpServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::Stream;
use pingora::proxy::HttpProxy;
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::proxy::{stream, Edge};
use crate::state::State;
use clock::Clock;
use conn::Conn;
use transport::Transport;

/// Written to a connection over `max_connections`.
const OVERLOADED_REPLY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nCache-Control: no-store\r\nRetry-After: 1\r\nConnection: close\r\n\r\n";

/// How long a refused connection may take to read its 503: closing a socket with unread
/// request bytes in it resets it, and a reset can destroy the 503 before the client reads it.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// How long a draining listener keeps reading request heads that are on their way.
const HANDOVER: Duration = Duration::from_millis(250);

/// The proxy's per-connection application: admission, deadlines and the keep-alive loop
/// around Pingora's `HttpProxy`.
pub struct Listener {
    proxy: Arc<HttpProxy<Edge>>,
    state: Arc<State>,
    open: AtomicUsize,
}

/// Why a connection waiting for its next request stops waiting.
enum Wake {
    Request,
    Closed,
    TimedOut,
    Draining,
}

impl Listener {
    pub fn new(proxy: HttpProxy<Edge>, state: Arc<State>) -> Listener {
        Listener { proxy: Arc::new(proxy), state, open: AtomicUsize::new(0) }
    }

    /// One client connection to the listener `listen`, from accept to close.
    pub async fn serve(
        self: Arc<Self>,
        tcp: TcpStream,
        peer: SocketAddr,
        listen: SocketAddr,
        mut shutdown: ShutdownWatch,
    ) {
        let (max, header_timeout, body_timeout, keepalive, send_timeout, tls) = {
            let snap = self.state.snapshot();
            let p = &snap.config.proxy;
            if !p.ips.admits(peer.ip()) {
                // Closed unanswered: an address that may not connect learns nothing more.
                self.state.metrics.connections_denied.inc();
                tracing::debug!(client = %peer.ip(), "connection refused by proxy.allow_ips / deny_ips");
                return;
            }
            // The snapshot's certificates: a reload changes those of new connections only.
            let tls = p.tls.iter().find(|t| t.listen == listen).map(|t| t.server.clone());
            (p.max_connections, p.header_timeout, p.body_timeout, p.keepalive_timeout, p.send_timeout, tls)
        };
        let Some(_slot) = Slot::take(&self, max) else {
            refuse(tcp, &self.state).await;
            return;
        };
        // As Pingora's own listener does: Nagle would hold a response's second write (a local
        // answer's body after its head, a stream's next event) until the client's delayed ACK,
        // 40 ms later.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set on a client connection");
        }
        let socket = std::os::fd::AsRawFd::as_raw_fd(&tcp);
        let clock = Arc::new(Clock::new(header_timeout, body_timeout).on_socket(socket));
        // The handshake and HTTP/2 futures are boxed: inline, their state would make every
        // connection's task larger for its whole life, plain HTTP/1 ones included.
        let due = clock.deadline().unwrap_or_else(tokio::time::Instant::now);
        let io = match tls {
            None => Transport::Tcp(tcp),
            Some(server) => match Box::pin(tls::accept(tcp, &server, due)).await {
                Ok(session) => Transport::Tls(session),
                Err(refused) => return self.refused_tls(&refused),
            },
        };
        let mut conn = Box::new(Conn::new(io, peer, Arc::clone(&clock), Arc::clone(&self.state), send_timeout));
        if conn.is_h2() {
            return Box::pin(h2::serve(&self.proxy, conn, due, keepalive, shutdown)).await;
        }
        let peer_cert = conn.peer_cert();
        let mut carried: Option<HttpPersistentSettings> = None;
        loop {
            if !carried.as_ref().is_some_and(pipelined::carries_request_bytes) {
                match idle(&mut conn, &clock, keepalive, &mut shutdown).await {
                    Wake::Request => {}
                    Wake::TimedOut if clock.deadline().is_some() => {
                        // A new connection that never sent a byte within header_timeout.
                        self.state
                            .metrics
                            .client_timeouts
                            .with_label_values(&[crate::metrics::Phase::Head.as_str()])
                            .inc();
                        tracing::debug!("client too slow: no request within proxy.header_timeout");
                        return;
                    }
                    Wake::Closed | Wake::TimedOut | Wake::Draining => return,
                }
            }
            let mut session = ServerSession::new_http1(conn);
            match carried.take() {
                Some(settings) => settings.apply_to_session(&mut session),
                // Reusable, with no Pingora timer on the head read (0: no timeout): the wait
                // for the next request ([`idle`]) and the head deadline ([`Conn`]) are ours,
                // and a timer per request costs a registration on Pingora's timer thread.
                None => session.set_keepalive(Some(0)),
            }
            if keepalive.is_zero() || *shutdown.borrow() {
                session.set_keepalive(None);
            }
            let request = clock::scope(Arc::clone(&clock), self.proxy.process_new_http(session, &shutdown));
            let (reused, detached) = stream::scope(tls::scope(peer_cert.clone(), request)).await;
            let Some((io, settings)) = reused.map(|r| r.consume()) else {
                if let Some(detached) = detached {
                    stream::dropped(detached);
                }
                return;
            };
            let Some(next) = into_conn(io) else { return };
            conn = next;
            // A merged flush (`Clock::merge_next_flush`) that no later flush of its response
            // took up: what it left is sent before the connection waits again (on TLS, sealed
            // records too).
            clock.forget_merges();
            if tokio::io::AsyncWriteExt::flush(&mut *conn).await.is_err() {
                return;
            }
            if let Some(detached) = detached {
                // Boxed: inline, its state would make every connection's task larger.
                return Box::pin(stream::relay(&mut *conn, detached)).await;
            }
            carried = settings;
        }
    }

    /// A connection that did not complete its TLS handshake: counted like a head that did
    /// not arrive when it ran out of time, else logged at debug (it concerns that client only).
    fn refused_tls(&self, refused: &tls::Refused) {
        self.state.metrics.tls_handshake_failures.with_label_values(&[refused.as_str()]).inc();
        if matches!(refused, tls::Refused::TimedOut) {
            self.state.metrics.client_timeouts.with_label_values(&[crate::metrics::Phase::Head.as_str()]).inc();
        }
        tracing::debug!(reason = %refused, "TLS connection refused");
    }

    /// After the listeners closed: requests already on their way get [`HANDOVER`], then
    /// Pingora lets go of connections still inside it.
    pub async fn drain(&self) {
        tokio::time::sleep(HANDOVER).await;
        self.proxy.http_cleanup().await;
    }
}

/// Waits for the next request's first byte holding no request state: the head deadline on a
/// new connection, the keep-alive timeout on a used one, a short handover when the listener
/// drains.
async fn idle(conn: &mut Conn, clock: &Clock, keepalive: Duration, shutdown: &mut ShutdownWatch) -> Wake {
    let until = match clock.deadline() {
        Some(due) => due,
        None => tokio::time::Instant::now() + keepalive,
    };
    let mut draining = *shutdown.borrow();
    loop {
        let limit = if draining { (tokio::time::Instant::now() + HANDOVER).min(until) } else { until };
        tokio::select! {
            more = conn.next_request() => return if more { Wake::Request } else { Wake::Closed },
            () = tokio::time::sleep_until(limit) => return if draining { Wake::Draining } else { Wake::TimedOut },
            changed = shutdown.changed(), if !draining => draining = changed.is_err() || *shutdown.borrow(),
        }
    }
}

/// Pingora hands the connection back as its own stream type; it is the [`Conn`] it was given.
fn into_conn(stream: Stream) -> Option<Box<Conn>> {
    stream.into_any().downcast::<Conn>().ok()
}

/// One admitted connection; gives its place back when dropped.
struct Slot<'a>(&'a Listener);

impl<'a> Slot<'a> {
    fn take(listener: &'a Listener, max: usize) -> Option<Slot<'a>> {
        if listener.open.fetch_add(1, Ordering::AcqRel) >= max {
            listener.open.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        listener.state.metrics.connections_open.inc();
        Some(Slot(listener))
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        self.0.state.metrics.connections_open.dec();
    }
}

/// Answers 503 without reading the request, half-closes, and drains what the client sends
/// for at most [`REFUSAL_LINGER`].
async fn refuse(mut stream: TcpStream, state: &State) {
    state.metrics.connections_refused.inc();
    tracing::debug!("proxy.max_connections reached: connection refused with 503");
    let _ = tokio::time::timeout(REFUSAL_LINGER, async {
        stream.write_all(OVERLOADED_REPLY).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 512];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<(), std::io::Error>(())
    })
    .await;
}
