//! One client connection as Pingora reads and writes it: the TCP socket or the TLS session
//! over it ([`Transport`]; Pingora's `l4::Stream` is not used), with the request clock on every read, a write buffer that
//! exists only while a response is being written, and the digests Pingora asks for.
//!
//! Reads: bytes move the [`Clock`] on, and a read that would wait past the current deadline
//! fails instead, with [`DeadlineExpired`] inside the `io::Error` so the proxy can tell a slow
//! client from a vanished one. When the head deadline expires on a partly sent head, the
//! connection itself writes the 408: Pingora reads heads with no hook between reads, so
//! nothing else could answer. A client that gives up mid-head is counted here for the same
//! reason, and a head longer than [`HEAD_LIMIT`] is refused here (431) before Pingora parses
//! it again.
//!
//! Writes: a write that waits on a client that stopped reading fails after
//! `proxy.send_timeout` (Pingora 0.9.1 sets no downstream write timeout of its own), so such a
//! client gives back its connection slot, request task and upstream connection.
//!
//! Pingora writes a response head and its body separately; collecting them into one
//! segment (as Pingora's own L4 write buffer does) saves a syscall and a packet per response.
//! The buffer is freed on every flush, so an idle keep-alive connection or a silent SSE stream
//! holds none (Pingora's holds its 1460 bytes for the connection's whole life).
//!
//! On TLS everything above counts and times plaintext: the head limit is on request bytes,
//! and the 408 and 431 are sealed like any other answer.
//!
//! What it does not do: the TLS handshake ([`super::tls`]), HTTP, admission (see
//! [`super::Listener`]).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use pingora::protocols::tls::SslDigest;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, UniqueID, UniqueIDType,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::clock::{Clock, Stage};
use super::transport::Transport;
use crate::metrics::Phase;
use crate::state::State;

/// Written to a client whose request head missed `header_timeout`.
const HEAD_TIMEOUT_REPLY: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n";

/// The longest request head read (Pingora's own limit is 1 MiB). Pingora parses a head again
/// from its first byte after every read, so a head trickled in small pieces costs CPU
/// quadratic in its length: a 1 MiB head sent in 1 KiB writes took about 20 times the CPU of
/// the same head sent at once (one worker second in a debug build), from one client.
/// 64 KiB is twice nginx's default maximum (4 x 8 KiB) and far above what MCP clients send.
pub const HEAD_LIMIT: usize = 64 * 1024;

/// Written to a client whose request head grew past [`HEAD_LIMIT`].
const HEAD_TOO_LARGE_REPLY: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n";

/// The cause inside the `io::Error` a read returns once the head passed [`HEAD_LIMIT`].
#[derive(Debug, thiserror::Error)]
#[error("request head longer than {HEAD_LIMIT} bytes")]
pub struct HeadTooLarge;

/// The cause inside the `io::Error` a write returns once the client stopped reading for
/// `proxy.send_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("response not read by the client within proxy.send_timeout")]
pub struct SendTimeout;

/// How much of the next request an idle connection reads when it arrives (Pingora's own
/// first head buffer is as large).
const PREREAD: usize = 4096;

/// Writes smaller than this are collected until the next flush (one TCP segment's payload,
/// like Pingora's own L4 write buffer); larger ones go straight to the socket.
const WRITE_BUFFER: usize = 1460;

/// The cause inside the `io::Error` a read returns once its deadline has passed.
#[derive(Debug, thiserror::Error)]
#[error("request {} not received within proxy.{}", .0.as_str(), if matches!(.0, Phase::Head) { "header_timeout" } else { "body_timeout" })]
pub struct DeadlineExpired(pub Phase);

impl DeadlineExpired {
    /// Whether `e` (an I/O error somewhere in a Pingora error chain) is a missed deadline.
    pub fn is_cause_of(e: &(dyn std::error::Error + 'static)) -> bool {
        e.downcast_ref::<io::Error>().and_then(|io| io.get_ref()).is_some_and(|inner| inner.is::<DeadlineExpired>())
    }
}

pub struct Conn {
    io: Transport,
    /// HTTP/2: requests are streams the connection's clock does not see, so reads are not
    /// timed or counted here.
    multiplexed: bool,
    clock: Arc<Clock>,
    state: Arc<State>,
    /// Armed only while a read waits against a deadline (most connections idle without one).
    timer: Option<Pin<Box<Sleep>>>,
    expired: Option<Phase>,
    /// Bytes of the request head being read so far (counted while the stage is `Head`).
    head_bytes: usize,
    /// The head passed `HEAD_LIMIT`: refused, every later read fails.
    oversized: bool,
    /// Armed only while a write waits on a full socket.
    write_timer: Option<Pin<Box<Sleep>>>,
    send_timeout: Duration,
    /// The start of a request read while the connection was idle, not yet taken by Pingora
    /// (from `preread_at` on); no allocation between requests.
    preread: Vec<u8>,
    preread_at: usize,
    /// Unflushed response bytes; no allocation between responses.
    pending: Vec<u8>,
    digest: Arc<SocketDigest>,
    opened: SystemTime,
}

impl Conn {
    pub fn new(io: Transport, peer: SocketAddr, clock: Arc<Clock>, state: Arc<State>, send_timeout: Duration) -> Conn {
        let digest = SocketDigest::from_raw_fd(io.as_raw_fd());
        let _ = digest.peer_addr.set(Some(peer.into()));
        Conn {
            io,
            multiplexed: false,
            clock,
            state,
            timer: None,
            expired: None,
            head_bytes: 0,
            oversized: false,
            write_timer: None,
            send_timeout,
            preread: Vec::new(),
            preread_at: 0,
            pending: Vec::new(),
            digest: Arc::new(digest),
            opened: SystemTime::now(),
        }
    }

    /// The TLS session's verified client certificate, if any.
    pub fn peer_cert(&self) -> Option<Arc<super::tls::PeerCert>> {
        self.io.tls().and_then(|tls| tls.peer.clone())
    }

    /// Whether ALPN chose HTTP/2.
    pub fn is_h2(&self) -> bool {
        self.io.tls().is_some_and(|tls| tls.h2)
    }

    /// Served as HTTP/2 from now on: its reads are no longer timed or counted here.
    pub fn multiplex(&mut self) {
        self.multiplexed = true;
    }

    /// Waits, holding nothing but the socket, until the client sends the next request (true)
    /// or closes the connection (false). What arrived is kept for Pingora's first read: reading
    /// it here costs no more system calls than Pingora's own wait would (a peek would add one
    /// per request).
    pub async fn next_request(&mut self) -> bool {
        loop {
            if self.io.readable().await.is_err() {
                return false;
            }
            let mut arrived = Vec::with_capacity(PREREAD);
            // One read attempt through `poll_read`, which (unlike `try_read`) also forgets a
            // readiness that a short read proved stale; `Pending` means it was stale, and the
            // next wait again holds nothing.
            let io = &mut self.io;
            let attempt = std::future::poll_fn(|cx| {
                Poll::Ready(tokio_util::io::poll_read_buf(Pin::new(&mut *io), cx, &mut arrived))
            });
            match attempt.await {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return false,
                Poll::Ready(Ok(_)) => {
                    self.preread = arrived;
                    self.preread_at = 0;
                    return true;
                }
                Poll::Pending => continue,
            }
        }
    }

    /// Hands Pingora what [`Conn::next_request`] read; frees it once all of it is taken.
    fn take_preread(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        let Some(rest) = self.preread.get(self.preread_at..).filter(|r| !r.is_empty()) else { return false };
        let n = rest.len().min(buf.remaining());
        buf.put_slice(rest.get(..n).unwrap_or_default());
        self.preread_at += n;
        if self.preread_at >= self.preread.len() {
            self.preread = Vec::new();
            self.preread_at = 0;
        }
        true
    }

    /// Counts `n` bytes that arrived while the stage was `before` (a new head starts from zero).
    fn count_head(&mut self, before: Stage, n: usize) {
        if before != Stage::Head {
            self.head_bytes = 0;
        }
        if self.clock.stage() == Stage::Head {
            self.head_bytes = self.head_bytes.saturating_add(n);
        }
    }

    /// Pingora wants more of a head that already passed the limit: answer 431 (best effort,
    /// as for a missed deadline) and fail this read and every later one.
    fn refuse_head(&mut self) -> io::Error {
        if !self.oversized {
            self.oversized = true;
            self.io.try_send(HEAD_TOO_LARGE_REPLY);
            tracing::debug!(limit = HEAD_LIMIT, "request head too large: refused");
        }
        io::Error::new(io::ErrorKind::InvalidData, HeadTooLarge)
    }

    /// The inner read would wait: fail when the deadline has passed, else wake up at it.
    fn wait(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(due) = self.clock.deadline() else {
            self.timer = None;
            return Poll::Pending;
        };
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        if timer.deadline() != due {
            timer.as_mut().reset(due);
        }
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.timer = None;
        let phase = if self.clock.stage() == Stage::Body { Phase::Body } else { Phase::Head };
        self.state.metrics.client_timeouts.with_label_values(&[phase.as_str()]).inc();
        if self.clock.stage() == Stage::Head {
            // Best effort: a fresh socket's send buffer takes these few bytes at once.
            self.io.try_send(HEAD_TIMEOUT_REPLY);
        }
        tracing::debug!(phase = phase.as_str(), "client too slow: request deadline expired");
        self.expired = Some(phase);
        Poll::Ready(Err(expired(phase)))
    }

    /// One write to the socket, failing once it has waited `send_timeout` for the client to
    /// read (the clock restarts whenever bytes move).
    fn poll_send(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let sent = Pin::new(&mut self.io).poll_write(cx, buf);
        self.timed_write(cx, sent)
    }

    /// `attempt` (a write or flush) under `send_timeout`: pending, it arms the timer, and the
    /// timer's expiry fails it; done, it disarms the timer.
    fn timed_write<T>(&mut self, cx: &mut Context<'_>, attempt: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if let Poll::Ready(done) = attempt {
            self.write_timer = None;
            return Poll::Ready(done);
        }
        let timeout = self.send_timeout;
        let timer = self.write_timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.write_timer = None;
        self.state.metrics.client_timeouts.with_label_values(&[Phase::Response.as_str()]).inc();
        tracing::debug!("client not reading its response: proxy.send_timeout expired");
        Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, SendTimeout)))
    }

    /// Writes out what is buffered; frees the buffer once it is empty.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut pending = std::mem::take(&mut self.pending);
        let mut sent = 0;
        let result = loop {
            let Some(rest) = pending.get(sent..).filter(|r| !r.is_empty()) else { break Ok(()) };
            match self.poll_send(cx, rest) {
                Poll::Ready(Ok(0)) => break Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => sent += n,
                Poll::Ready(Err(e)) => break Err(e),
                Poll::Pending => {
                    pending.drain(..sent);
                    self.pending = pending;
                    return Poll::Pending;
                }
            }
        };
        Poll::Ready(result)
    }
}

fn expired(phase: Phase) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, DeadlineExpired(phase))
}

impl AsyncRead for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.multiplexed {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        if let Some(phase) = this.expired {
            return Poll::Ready(Err(expired(phase)));
        }
        let stage = this.clock.stage();
        if this.oversized || (stage == Stage::Head && this.head_bytes >= HEAD_LIMIT) {
            return Poll::Ready(Err(this.refuse_head()));
        }
        let before = buf.filled().len();
        let read = if this.take_preread(buf) { Poll::Ready(Ok(())) } else { Pin::new(&mut this.io).poll_read(cx, buf) };
        match read {
            Poll::Pending => this.wait(cx),
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                this.clock.bytes_arrived();
                this.count_head(stage, buf.filled().len().saturating_sub(before));
                Poll::Ready(Ok(()))
            }
            ready => {
                // End of stream or a reset. Mid-head, Pingora gives up without a hook we
                // could count or log in; later phases reach `fail_to_proxy`.
                if this.clock.stage() == Stage::Head {
                    this.state.metrics.client_aborts.with_label_values(&[Phase::Head.as_str()]).inc();
                    tracing::debug!("client closed the connection mid-head");
                }
                ready
            }
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.clock.proxy_wrote();
        if this.pending.len() + buf.len() > WRITE_BUFFER {
            ready!(this.poll_drain(cx))?;
        }
        if buf.len() >= WRITE_BUFFER {
            return this.poll_send(cx, buf);
        }
        if this.pending.capacity() == 0 {
            this.pending.reserve_exact(WRITE_BUFFER);
        }
        this.pending.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.multiplexed && this.clock.take_merge() {
            // The proxy knows another flush of this response follows (`Clock::merge_next_flush`).
            return Poll::Ready(Ok(()));
        }
        ready!(this.poll_drain(cx))?;
        // On TLS the flush is what moves sealed records to the socket: it waits on the client too.
        let flushed = Pin::new(&mut this.io).poll_flush(cx);
        this.timed_write(cx, flushed)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        let closed = Pin::new(&mut this.io).poll_shutdown(cx);
        this.timed_write(cx, closed)
    }
}

/// Pingora drops a connection it will not reuse without flushing it (`finish` after a failed
/// request). What a merged flush (`Clock::merge_next_flush`) left, a held answer's head when
/// its member failed mid-body, is sent as it was before: the head, then the cut (best effort,
/// without waiting).
impl Drop for Conn {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            self.io.try_send(&self.pending);
        }
    }
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("io", &self.io).field("stage", &self.clock.stage()).finish()
    }
}

#[async_trait]
impl Shutdown for Conn {
    async fn shutdown(&mut self) {
        if let Err(e) = tokio::io::AsyncWriteExt::shutdown(self).await {
            tracing::debug!(error = %e, "closing a client connection");
        }
    }
}

impl UniqueID for Conn {
    fn id(&self) -> UniqueIDType {
        self.io.as_raw_fd()
    }
}

impl Ssl for Conn {
    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.io.tls().map(|tls| Arc::clone(&tls.digest))
    }

    fn selected_alpn_proto(&self) -> Option<pingora::protocols::ALPN> {
        use pingora::protocols::ALPN;
        self.io.tls().map(|tls| if tls.h2 { ALPN::H2 } else { ALPN::H1 })
    }
}

impl GetTimingDigest for Conn {
    fn get_timing_digest(&self) -> Vec<Option<pingora::protocols::TimingDigest>> {
        vec![Some(pingora::protocols::TimingDigest {
            established_ts: self.opened,
            establishment_duration: None,
            offload_wait_duration: None,
        })]
    }
}

impl GetProxyDigest for Conn {
    fn get_proxy_digest(&self) -> Option<Arc<pingora::protocols::raw_connect::ProxyDigest>> {
        None
    }
}

impl GetSocketDigest for Conn {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        Some(Arc::clone(&self.digest))
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.digest = Arc::new(digest);
    }
}

/// Pingora peeks only for an h2c preface, which this listener does not offer.
#[async_trait]
impl Peek for Conn {}
