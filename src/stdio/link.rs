//! One running process as the bridge sees it: the writer to its stdin, the requests awaiting
//! an answer by the bridge's number, and the process's answer to the bridge's `initialize`
//! (what every client's `initialize` is answered with). A request whose client goes away
//! before the answer is cancelled at the process (`notifications/cancelled` under the
//! bridge's number): the only cancellation that can be mapped, as clients' ids collide.
//! A session's process (one client) also has the client's stream, when one is open: what the
//! process sends on its own (notifications, and requests to the client) goes there.
//! Not owned here: reading the process's output (`stdio::process`) or HTTP (`stdio::bridge`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::frame::{self, Outbound};

/// Progress notifications buffered per request for a slow client; more are dropped.
const PROGRESS_BUFFER: usize = 64;
/// Messages buffered for a session's client's stream, and their bytes: past either,
/// notifications are dropped and requests refused (a client that does not read must not make
/// mcp-edge hold them: 64 lines of 8 MiB held 512 MiB a session, found by an attack). A
/// message longer than the bytes still passes alone.
const STREAM_BUFFER: usize = 64;
const STREAM_BYTES: usize = 8 << 20;

/// A message on a session's stream, holding its share of [`STREAM_BYTES`] until taken.
pub struct Relayed {
    pub bytes: Vec<u8>,
    _queued: tokio::sync::OwnedSemaphorePermit,
}

/// A session's client's open stream.
struct Stream {
    tx: mpsc::Sender<Relayed>,
    queued: Arc<tokio::sync::Semaphore>,
}
/// Lines queued for the process's stdin before writers wait.
pub const STDIN_QUEUE: usize = 256;
/// Bytes queued for the process's stdin: a request that would queue more is refused at once
/// (a process that stopped reading must not make mcp-edge hold every body sent to it).
pub const MAX_QUEUED: usize = 16 << 20;

use super::frame::Msg;

struct Waiter {
    answer: oneshot::Sender<Msg>,
    progress: Option<mpsc::Sender<Msg>>,
}

/// Why a process gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum Gone {
    #[error("the stdio server exited")]
    Exited,
    #[error("the stdio server did not answer within {0:?}")]
    Slow(Duration),
    #[error("the stdio server refused initialize")]
    Refused,
    #[error("the stdio server is not reading its input")]
    Full,
}

/// One line for the process's stdin, holding its share of [`MAX_QUEUED`] until written.
pub struct Line {
    pub bytes: Vec<u8>,
    _queued: Option<tokio::sync::OwnedSemaphorePermit>,
}

pub struct Link {
    stdin: mpsc::Sender<Line>,
    queued: Arc<tokio::sync::Semaphore>,
    waiting: Mutex<HashMap<u64, Waiter>>,
    next: AtomicU64,
    /// The process's `initialize` result, once the handshake is done.
    init: std::sync::OnceLock<Value>,
    /// A session's client's open stream (the latest one opened), each message one line.
    stream: Mutex<Option<Stream>>,
}

/// A request in flight: its answer, its progress (when asked for), and on drop before the
/// answer, the cancellation.
pub struct Call {
    link: Arc<Link>,
    number: u64,
    pub answer: oneshot::Receiver<Msg>,
    pub progress: Option<mpsc::Receiver<Msg>>,
    /// The request reached the queue: only then is there something to cancel.
    sent: bool,
}

impl Drop for Call {
    fn drop(&mut self) {
        let unanswered = self.link.waiting.lock().map(|mut w| w.remove(&self.number).is_some()).unwrap_or(false);
        if unanswered && self.sent {
            let cancel = serde_json::json!({
                "jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": self.number, "reason": "the client went away"},
            });
            let mut line = serde_json::to_vec(&cancel).unwrap_or_default();
            line.push(b'\n');
            // Best effort: a full queue means the process is far behind anyway.
            let _ = self.link.stdin.try_send(Line { bytes: line, _queued: None });
        }
    }
}

impl Link {
    pub fn new(stdin: mpsc::Sender<Line>) -> Arc<Link> {
        Arc::new(Link {
            stdin,
            queued: Arc::new(tokio::sync::Semaphore::new(MAX_QUEUED)),
            waiting: Mutex::new(HashMap::new()),
            next: AtomicU64::new(frame::INIT_ID + 1),
            init: std::sync::OnceLock::new(),
            stream: Mutex::new(None),
        })
    }

    /// The number the next client request is sent under.
    pub fn number(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    pub fn init(&self) -> Option<&Value> {
        self.init.get()
    }

    /// Sends a request already numbered `number` and returns what awaits its answer.
    pub async fn call(self: &Arc<Self>, number: u64, line: Vec<u8>, progress: bool) -> Result<Call, Gone> {
        let (answer_tx, answer) = oneshot::channel();
        let (progress_tx, progress) = match progress {
            true => {
                let (tx, rx) = mpsc::channel(PROGRESS_BUFFER);
                (Some(tx), Some(rx))
            }
            false => (None, None),
        };
        self.waiting
            .lock()
            .map_err(|_| Gone::Exited)?
            .insert(number, Waiter { answer: answer_tx, progress: progress_tx });
        // Made before the line is queued: if this future is dropped while it waits, `Drop`
        // still takes the waiter out.
        let mut call = Call { link: Arc::clone(self), number, answer, progress, sent: false };
        self.send(line).await?;
        call.sent = true;
        Ok(call)
    }

    /// Queues one line (a notification, or a request `call` registered), or refuses it when
    /// the bytes already queued leave no room.
    pub async fn send(&self, line: Vec<u8>) -> Result<(), Gone> {
        let share = share(line.len().min(MAX_QUEUED));
        let permit = Arc::clone(&self.queued).try_acquire_many_owned(share).map_err(|_| Gone::Full)?;
        self.stdin.send(Line { bytes: line, _queued: Some(permit) }).await.map_err(|_| Gone::Exited)
    }

    /// Asks the process for a `ping` under `number` and waits at most `within` for its answer:
    /// the supervisor's check that the process still reads and answers.
    pub async fn ping(self: &Arc<Self>, within: Duration) -> Result<(), Gone> {
        let number = self.number();
        let mut line = format!(r#"{{"jsonrpc":"2.0","id":{number},"method":"ping"}}"#).into_bytes();
        line.push(b'\n');
        let mut call = self.call(number, line, false).await?;
        match tokio::time::timeout(within, &mut call.answer).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(Gone::Exited),
            Err(_) => Err(Gone::Slow(within)),
        }
    }

    /// `initialize` (numbered [`frame::INIT_ID`]) and `notifications/initialized`; the process
    /// serves clients only after it answered.
    pub async fn handshake(self: &Arc<Self>, lines: (Vec<u8>, Vec<u8>), within: Duration) -> Result<(), Gone> {
        let (init, initialized) = lines;
        let mut call = self.call(frame::INIT_ID, init, false).await?;
        let answer = match tokio::time::timeout(within, &mut call.answer).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => return Err(Gone::Exited),
            Err(_) => return Err(Gone::Slow(within)),
        };
        let result = answer.get("result").and_then(|r| serde_json::from_str::<Value>(r.get()).ok());
        let Some(result) = result.filter(Value::is_object) else {
            return Err(Gone::Refused);
        };
        let _ = self.init.set(result);
        self.send(initialized).await
    }

    /// The process is gone: every waiting request gets "exited" now, and the client's stream
    /// ends.
    pub fn close(&self) {
        if let Ok(mut w) = self.waiting.lock() {
            w.clear();
        }
        if let Ok(mut stream) = self.stream.lock() {
            *stream = None;
        }
    }

    /// A session's client opened its stream: what the process sends on its own goes to it
    /// from now on. A newer stream takes over (its client reconnected); the older one ends.
    pub fn listen(&self) -> mpsc::Receiver<Relayed> {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let queued = Arc::new(tokio::sync::Semaphore::new(STREAM_BYTES));
        if let Ok(mut stream) = self.stream.lock() {
            *stream = Some(Stream { tx, queued });
        }
        rx
    }

    /// Whether the client has a stream open (a session with one is not idle).
    pub fn listened(&self) -> bool {
        self.stream.lock().is_ok_and(|s| s.as_ref().is_some_and(|s| !s.tx.is_closed()))
    }

    /// Puts `msg` on the client's stream; false when none is open or it is full.
    fn relay(&self, msg: &frame::Msg) -> bool {
        let Ok(stream) = self.stream.lock() else { return false };
        let Some(stream) = stream.as_ref() else { return false };
        let bytes = frame::relayed(msg);
        let Ok(permit) = Arc::clone(&stream.queued).try_acquire_many_owned(share(bytes.len().min(STREAM_BYTES))) else {
            return false;
        };
        stream.tx.try_send(Relayed { bytes, _queued: permit }).is_ok()
    }

    /// Queues a line the bridge writes on its own (an answer to the process's request), if
    /// the bytes queued leave room: a process that stopped reading must not make mcp-edge hold
    /// every answer it asked for (each echoes its id: 7 MB ids held 1.8 GB, found by an attack).
    fn answer(&self, bytes: Vec<u8>) {
        if let Ok(permit) = Arc::clone(&self.queued).try_acquire_many_owned(share(bytes.len().min(MAX_QUEUED))) {
            let _ = self.stdin.try_send(Line { bytes, _queued: Some(permit) });
        }
    }

    /// Hands one line the process wrote to whoever waits for it.
    pub fn dispatch(&self, out: Outbound) {
        match out {
            Outbound::Response { number, msg } => {
                let waiter = self.waiting.lock().ok().and_then(|mut w| w.remove(&number));
                if let Some(w) = waiter {
                    let _ = w.answer.send(msg);
                }
            }
            Outbound::Progress { number, msg } => {
                if let Ok(w) = self.waiting.lock() {
                    if let Some(tx) = w.get(&number).and_then(|w| w.progress.as_ref()) {
                        let _ = tx.try_send(msg);
                    }
                }
            }
            // `ping` is the bridge's to answer: the process asks whether its peer lives.
            // A client answers only a plain id (a string, an integer): others are refused here.
            Outbound::Request { id, method, msg } => {
                if method == "ping" || !frame::plain_id(&id) || !self.relay(&msg) {
                    self.answer(frame::refusal(&id, &method));
                }
            }
            Outbound::Notification(msg) | Outbound::Changed { msg, .. } => {
                self.relay(&msg);
            }
            Outbound::Other | Outbound::Unreadable => {}
        }
    }
}

/// `bytes` as a number of semaphore permits.
fn share(bytes: usize) -> u32 {
    u32::try_from(bytes).unwrap_or(u32::MAX)
}
