//! The second half of a detached merged stream (a federated session's GET stream, or a
//! 2026-07-28 listen's answer: `crate::federation::stream`), on the client connection's own
//! task after the request phase ([`super::stream`]): each member's message goes to the client
//! as a chunk of the response as it arrives, a comment after 15 s of quiet, until every
//! member's stream ended for good (a listen's closing result written last), the client's
//! session was ended (by its DELETE or an operator), or the client left or sent anything
//! more (found by an attack on the undetached stream: bytes kept as a next request blinded the
//! watch). Outside Pingora's request a quiet stream holds its members' followers and the two
//! sockets, not a request future and its buffers.
//!
//! Not owned here: what a member's message becomes (`federation`), the undetached stream
//! (HTTP/2, or a connection that cannot be handed back: `super::reply::stream`), counting and
//! logging the request when it ends (`super::relay`).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::federation::stream::Merged as Members;
use crate::session::Fingerprint;
use crate::state::State;

/// How often a quiet merged stream is written to: a client that left is noticed, and
/// intermediaries keep the connection.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How often an open merged stream looks whether its session was ended: it ends with it.
pub const WATCH: Duration = Duration::from_secs(1);

/// A merged stream waiting for its client connection.
pub struct Merged {
    pub members: Members,
    /// The route's name (logs, the catalog's refresh).
    pub route: String,
    /// The client's session, when it has one (a legacy GET stream).
    pub session: Option<Fingerprint>,
}

/// Why a detached merged stream stopped early.
#[derive(Debug, thiserror::Error)]
pub enum Left {
    /// The client closed, reset or half-closed its connection, or sent more on it.
    #[error("the client closed its connection or sent more on it")]
    Client,
    /// A write to the client failed (or outlasted `proxy.send_timeout`).
    #[error("writing to the client: {0}")]
    Write(io::Error),
}

/// What a merged stream waits for.
enum Next {
    Message(Option<crate::federation::stream::Message>),
    Tick,
    Left,
}

/// Relays `m` to `client` (its head already written); `sent` counts the body's bytes.
pub async fn run<C: AsyncRead + AsyncWrite + Unpin>(
    client: &mut C,
    m: &mut Merged,
    state: &State,
    sent: &mut u64,
) -> Result<(), Left> {
    client.flush().await.map_err(Left::Write)?;
    let ended = |m: &Merged| m.session.as_ref().is_some_and(|f| state.sessions.is_revoked(f));
    let mut watch = tokio::time::interval_at(tokio::time::Instant::now() + WATCH, WATCH);
    let mut written = std::time::Instant::now();
    loop {
        let next = tokio::select! {
            message = m.members.messages.recv() => Next::Message(message),
            _ = watch.tick() => Next::Tick,
            () = spoke_or_left(client) => Next::Left,
        };
        let event = match next {
            Next::Message(Some(message)) => {
                if !message.changed.is_empty() {
                    // Relayed once the lists are new: the client's next list shows the change.
                    let lists = &state.metrics.member_lists;
                    let snap = state.snapshot();
                    crate::federation::refreshed(&snap, lists, &m.route, message.changed, m.members.modern).await;
                }
                message.event
            }
            Next::Message(None) => {
                // Every member's stream ended for good: a listen says so with its result.
                if let Some(closing) = m.members.closing.take() {
                    chunk(client, &closing, sent).await?;
                }
                break;
            }
            Next::Tick if ended(m) => break,
            Next::Tick if written.elapsed() < KEEP_ALIVE => continue,
            Next::Tick => Bytes::from_static(b": keep-alive\n\n"),
            Next::Left => return Err(Left::Client),
        };
        if ended(m) {
            break;
        }
        chunk(client, &event, sent).await?;
        client.flush().await.map_err(Left::Write)?;
        written = std::time::Instant::now();
    }
    client.write_all(b"0\r\n\r\n").await.map_err(Left::Write)?;
    client.flush().await.map_err(Left::Write)
}

/// Writes `data` as one chunk of a chunked body.
async fn chunk<C: AsyncWrite + Unpin>(client: &mut C, data: &[u8], sent: &mut u64) -> Result<(), Left> {
    if data.is_empty() {
        return Ok(());
    }
    let size = format!("{:x}\r\n", data.len());
    client.write_all(size.as_bytes()).await.map_err(Left::Write)?;
    client.write_all(data).await.map_err(Left::Write)?;
    client.write_all(b"\r\n").await.map_err(Left::Write)?;
    *sent = sent.saturating_add(data.len() as u64);
    Ok(())
}

/// Resolves when the client closes, resets or half-closes its connection, or sends anything
/// on it: nothing may follow an endless stream on its connection.
async fn spoke_or_left<C: AsyncRead + Unpin>(client: &mut C) {
    std::future::poll_fn(|cx: &mut Context<'_>| {
        let mut scratch = [0u8; 64];
        let mut buf = ReadBuf::new(&mut scratch);
        match Pin::new(&mut *client).poll_read(cx, &mut buf) {
            Poll::Ready(_) => Poll::Ready(()),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}
