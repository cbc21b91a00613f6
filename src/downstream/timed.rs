//! The client stream with the request clock on it. Every read passes through [`Timed`]: bytes
//! move the [`Clock`] on, and a read that would wait past the current deadline fails instead,
//! with [`DeadlineExpired`] inside the `io::Error` so the proxy can tell a slow client from a
//! vanished one. When the head deadline expires on a partly sent head, the stream itself writes
//! the 408: Pingora reads heads with no hook between reads, so nothing else could answer.
//! A client that gives up mid-head is counted here for the same reason, and a head longer
//! than [`HEAD_LIMIT`] is refused here (431) before Pingora parses it again.
//!
//! Everything else (writes, digests, shutdown) is passed through untouched.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, Ssl, Stream, UniqueID, UniqueIDType, ALPN,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::clock::{Clock, Stage};
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

pub struct Timed {
    inner: Stream,
    clock: Arc<Clock>,
    state: Arc<State>,
    /// Armed only while a read waits against a deadline (most connections idle without one).
    timer: Option<Pin<Box<Sleep>>>,
    expired: Option<Phase>,
    /// Bytes of the request head being read so far (counted while the stage is `Head`).
    head_bytes: usize,
    /// The head passed `HEAD_LIMIT`: refused, every later read fails.
    oversized: bool,
}

impl Timed {
    pub fn new(inner: Stream, clock: Arc<Clock>, state: Arc<State>) -> Timed {
        Timed { inner, clock, state, timer: None, expired: None, head_bytes: 0, oversized: false }
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
    fn refuse_head(&mut self, cx: &mut Context<'_>) -> io::Error {
        if !self.oversized {
            self.oversized = true;
            if let Poll::Ready(Ok(_)) = Pin::new(&mut self.inner).poll_write(cx, HEAD_TOO_LARGE_REPLY) {
                let _ = Pin::new(&mut self.inner).poll_flush(cx);
            }
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
            if let Poll::Ready(Ok(_)) = Pin::new(&mut self.inner).poll_write(cx, HEAD_TIMEOUT_REPLY) {
                let _ = Pin::new(&mut self.inner).poll_flush(cx);
            }
        }
        tracing::debug!(phase = phase.as_str(), "client too slow: request deadline expired");
        self.expired = Some(phase);
        Poll::Ready(Err(expired(phase)))
    }
}

fn expired(phase: Phase) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, DeadlineExpired(phase))
}

impl AsyncRead for Timed {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(phase) = this.expired {
            return Poll::Ready(Err(expired(phase)));
        }
        let stage = this.clock.stage();
        if this.oversized || (stage == Stage::Head && this.head_bytes >= HEAD_LIMIT) {
            return Poll::Ready(Err(this.refuse_head(cx)));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
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

impl AsyncWrite for Timed {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.clock.proxy_wrote();
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.clock.proxy_wrote();
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl std::fmt::Debug for Timed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timed").field("inner", &self.inner).field("stage", &self.clock.stage()).finish()
    }
}

#[async_trait]
impl Shutdown for Timed {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for Timed {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for Timed {
    fn get_ssl(&self) -> Option<&pingora::protocols::tls::TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<pingora::protocols::tls::SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for Timed {
    fn get_timing_digest(&self) -> Vec<Option<pingora::protocols::TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> std::time::Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> std::time::Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for Timed {
    fn get_proxy_digest(&self) -> Option<Arc<pingora::protocols::raw_connect::ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: pingora::protocols::raw_connect::ProxyDigest) {
        self.inner.set_proxy_digest(digest)
    }
}

impl GetSocketDigest for Timed {
    fn get_socket_digest(&self) -> Option<Arc<pingora::protocols::SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: pingora::protocols::SocketDigest) {
        self.inner.set_socket_digest(digest)
    }
}

#[async_trait]
impl Peek for Timed {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}
