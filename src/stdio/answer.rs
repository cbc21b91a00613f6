//! The bodies the stdio bridge answers with: a whole JSON body, or an SSE stream that
//! relays a request's progress notifications as the process writes them and ends with the
//! answer (never buffered: each event is one frame, sent when it arrives), or a session's
//! stream of what its process sends on its own.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use serde_json::value::RawValue;

use super::frame;
use super::link::Call;

pub enum Answer {
    Whole(Option<Bytes>),
    Stream(Stream),
    Events(Events),
}

/// How often a quiet session stream carries a comment: a proxy connection that is gone is
/// found by the write (and the stream given up), and no idle timer on the way closes it.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// A session's stream: the process's own messages, one event each, until the process ends or
/// a newer stream of the session takes over.
pub struct Events {
    messages: tokio::sync::mpsc::Receiver<super::link::Relayed>,
    tick: tokio::time::Interval,
}

impl Events {
    pub fn new(messages: tokio::sync::mpsc::Receiver<super::link::Relayed>) -> Events {
        let start = tokio::time::Instant::now() + KEEP_ALIVE;
        Events { messages, tick: tokio::time::interval_at(start, KEEP_ALIVE) }
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Frame<Bytes>>> {
        match self.messages.poll_recv(cx) {
            Poll::Ready(Some(message)) => {
                self.tick.reset();
                Poll::Ready(Some(event(&message.bytes)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.tick.poll_tick(cx) {
                Poll::Ready(_) => Poll::Ready(Some(Frame::data(Bytes::from_static(b": keep-alive\n\n")))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// A request answered as SSE: its progress, then its answer.
pub struct Stream {
    pub call: Call,
    /// The client's request id and progress token, put back on what the process wrote.
    pub id: Box<RawValue>,
    pub token: Box<RawValue>,
    pub done: bool,
}

impl Answer {
    pub fn empty() -> Answer {
        Answer::Whole(None)
    }

    pub fn json(body: Vec<u8>) -> Answer {
        Answer::Whole(Some(Bytes::from(body)))
    }
}

fn event(data: &[u8]) -> Frame<Bytes> {
    let mut out = Vec::with_capacity(data.len() + 24);
    out.extend_from_slice(b"event: message\ndata: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
    Frame::data(Bytes::from(out))
}

impl Body for Answer {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            Answer::Whole(body) => Poll::Ready(body.take().map(|b| Ok(Frame::data(b)))),
            Answer::Stream(s) => s.poll_event(cx).map(|e| e.map(Ok)),
            Answer::Events(e) => e.poll_event(cx).map(|e| e.map(Ok)),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Answer::Whole(body) => body.is_none(),
            Answer::Stream(s) => s.done,
            Answer::Events(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Answer::Whole(body) => SizeHint::with_exact(body.as_ref().map_or(0, |b| b.len() as u64)),
            Answer::Stream(_) | Answer::Events(_) => SizeHint::default(),
        }
    }
}

impl Stream {
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Frame<Bytes>>> {
        if self.done {
            return Poll::Ready(None);
        }
        // Progress first: the process wrote it before the answer, and the reader queued it
        // before handing the answer over.
        if let Some(progress) = self.call.progress.as_mut() {
            match progress.poll_recv(cx) {
                Poll::Ready(Some(msg)) => return Poll::Ready(Some(event(&frame::progress(msg, self.token.clone())))),
                Poll::Ready(None) => self.call.progress = None,
                Poll::Pending => {}
            }
        }
        match Pin::new(&mut self.call.answer).poll(cx) {
            Poll::Ready(answer) => {
                self.done = true;
                let data = match answer {
                    Ok(msg) => frame::answer(msg, self.id.clone()),
                    Err(_) => frame::error(&self.id, -32603, "the stdio server exited"),
                };
                Poll::Ready(Some(event(&data)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
