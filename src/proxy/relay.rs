//! The second half of a detached stream ([`super::stream`]): after the request phase, on
//! the client connection's own task, the response head and then the backend's bytes go to
//! the client as they arrive, until either side closes, the backend stays silent past its
//! `idle_timeout`, or the client stops reading for `proxy.send_timeout` (the connection's own
//! write deadline). Then the request is counted and logged once, as any other.
//!
//! Nothing is buffered while the stream is quiet: each wait holds only the two sockets, and a
//! read lands in a buffer on the stack that lives for one poll. Bytes are copied to the heap
//! only when the client cannot take them at once.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::attempt;
use super::finish::{self, Exchange};
use super::stream::{Backend, Detached, Feed};
use crate::metrics::{ErrorType, Phase};

/// Most bytes taken from the backend per read.
const CHUNK: usize = 16 * 1024;

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The body was complete (its length reached, or the backend closed).
    Complete,
    ClientGone,
    /// Silent past `idle_timeout`.
    Idle,
    /// A read from the backend failed.
    Backend,
}

/// Relays one detached stream to `client` and records the request when it ends.
pub async fn relay<C: AsyncRead + AsyncWrite + Unpin>(client: &mut C, mut d: Box<Detached>) {
    let mut sent = 0u64;
    let end = run(client, &mut d, &mut sent).await;
    let state = Arc::clone(&d.state);
    let broke = match end {
        End::ClientGone => {
            state.metrics.client_aborts.with_label_values(&[Phase::Response.as_str()]).inc();
            tracing::debug!(route = d.ctx.route_name(), "client closed its event stream");
            Some(ErrorType::ClientGone)
        }
        End::Idle => {
            tracing::debug!(route = d.ctx.route_name(), "event stream idle past idle_timeout; closed");
            Some(ErrorType::Timeout)
        }
        End::Backend => {
            tracing::debug!(route = d.ctx.route_name(), backend = ?d.ctx.backend, "backend broke its event stream");
            Some(ErrorType::UpstreamError)
        }
        End::Complete => None,
    };
    if let Some(kind) = broke {
        attempt::stream_broke(&state, &mut d.ctx, kind);
    }
    let exchange = Exchange {
        status: d.status,
        http_method: d.http_method,
        path: &d.path,
        client: d.client,
        bytes_in: d.bytes_in,
        bytes_out: sent,
        headers: None,
    };
    finish::record(&state, &exchange, &d.ctx);
}

/// A detached stream whose client connection Pingora did not hand back (it could not be
/// flushed, or the client had pipelined more bytes): the client sees the connection close.
pub fn dropped(d: Box<Detached>) {
    d.state.metrics.client_aborts.with_label_values(&[Phase::Response.as_str()]).inc();
    let exchange = Exchange {
        status: 0,
        http_method: d.http_method,
        path: &d.path,
        client: d.client,
        bytes_in: d.bytes_in,
        bytes_out: 0,
        headers: None,
    };
    finish::record(&d.state, &exchange, &d.ctx);
}

async fn run<C: AsyncRead + AsyncWrite + Unpin>(client: &mut C, d: &mut Detached, sent: &mut u64) -> End {
    let head = std::mem::take(&mut d.head);
    if client.write_all(&head).await.is_err() {
        return End::ClientGone;
    }
    drop(head);
    match &mut d.feed {
        Feed::Backend(backend) => relay_backend(client, backend, sent).await,
        Feed::Merged(merged) => match super::merged_relay::run(client, merged, &d.state, sent).await {
            Ok(()) => End::Complete,
            Err(left) => {
                tracing::debug!(route = %merged.route, %left, "merged stream's client gone");
                End::ClientGone
            }
        },
    }
}

/// A backend's bytes after its head, as they arrive.
async fn relay_backend<C: AsyncRead + AsyncWrite + Unpin>(client: &mut C, d: &mut Backend, sent: &mut u64) -> End {
    let early = std::mem::take(&mut d.early);
    if !early.is_empty() && forward(client, early, &mut d.length, sent).await.is_err() {
        return End::ClientGone;
    }
    if client.flush().await.is_err() {
        return End::ClientGone;
    }
    let silence = tokio::time::sleep(d.idle);
    tokio::pin!(silence);
    loop {
        if d.length == Some(0) {
            return End::Complete;
        }
        tokio::select! {
            chunk = next_chunk(&mut d.upstream) => match chunk {
                Ok(Some(chunk)) => {
                    if forward(client, chunk, &mut d.length, sent).await.is_err() || client.flush().await.is_err() {
                        return End::ClientGone;
                    }
                    silence.as_mut().reset(tokio::time::Instant::now() + d.idle);
                }
                Ok(None) => return End::Complete,
                Err(_) => return End::Backend,
            },
            () = closed(client) => return End::ClientGone,
            () = &mut silence => return End::Idle,
        }
    }
}

/// Writes `chunk` to the client, no more than what is left of a known body length.
async fn forward<C: AsyncWrite + Unpin>(
    client: &mut C,
    chunk: Bytes,
    left: &mut Option<u64>,
    sent: &mut u64,
) -> io::Result<()> {
    let take = match *left {
        Some(n) => chunk.len().min(usize::try_from(n).unwrap_or(usize::MAX)),
        None => chunk.len(),
    };
    let part = chunk.get(..take).unwrap_or_default();
    client.write_all(part).await?;
    *sent = sent.saturating_add(take as u64);
    if let Some(n) = left.as_mut() {
        *n = n.saturating_sub(take as u64);
    }
    Ok(())
}

/// The backend's next bytes (None at its end), read into a stack buffer that lives for one
/// poll: a quiet stream holds no buffer.
async fn next_chunk<U: AsyncRead + Unpin>(upstream: &mut U) -> io::Result<Option<Bytes>> {
    std::future::poll_fn(|cx: &mut Context<'_>| {
        let mut scratch = [0u8; CHUNK];
        let mut buf = ReadBuf::new(&mut scratch);
        match Pin::new(&mut *upstream).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) if buf.filled().is_empty() => Poll::Ready(Ok(None)),
            Poll::Ready(Ok(())) => Poll::Ready(Ok(Some(Bytes::copy_from_slice(buf.filled())))),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Resolves when the client closes its connection (or it fails). Anything the client sends
/// on a stream's connection is read and dropped: the connection ends with the stream.
async fn closed<C: AsyncRead + Unpin>(client: &mut C) {
    std::future::poll_fn(|cx: &mut Context<'_>| loop {
        let mut scratch = [0u8; 512];
        let mut buf = ReadBuf::new(&mut scratch);
        match Pin::new(&mut *client).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) if !buf.filled().is_empty() => continue,
            Poll::Ready(_) => return Poll::Ready(()),
            Poll::Pending => return Poll::Pending,
        }
    })
    .await
}
