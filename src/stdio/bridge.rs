//! The bridge: a Streamable HTTP face on loopback for one slot's process, so a stdio pool is
//! a pool like any other (health checks, breakers, routes, federation). It answers only the
//! proxy: every request must carry the slot's random secret (`x-mcp-edge-bridge`, sent as a
//! pool credential); anything else on the machine gets 403. In front of a shared process it is
//! stateless: no `Mcp-Session-Id`, `initialize` answered from the process's own answer, POST
//! only. In front of a `per_session` pool, `initialize` opens a session with a process of its
//! own (`stdio::session`), requests name it in `Mcp-Session-Id`, DELETE ends it, and a GET
//! accepting `text/event-stream` is the session's stream: what the process sends on its own
//! (notifications, requests to the client, whose answers the client POSTs back). A request is
//! answered as JSON, or as SSE when the client accepts it and asked for progress.
//! Not owned here: the process (`stdio::process`), message rewriting (`stdio::frame`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::value::RawValue;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::answer::{Answer, Stream};
use super::frame::{self, Inbound};
use super::session::{NotOpened, Sessions};
use super::Slot;

/// The header carrying the slot's secret.
pub const HEADER: &str = "x-mcp-edge-bridge";
/// The secret again, in this header, marks mcp-edge's own health probe: a `per_session`
/// pool does not start a process for each (`Sessions::probe`). A client cannot send it: it
/// does not know the secret.
pub const PROBE: &str = "x-mcp-edge-probe";
const SESSION: &str = "mcp-session-id";
/// Largest request body relayed to a process.
const MAX_BODY: usize = 8 * 1024 * 1024;
/// Connections one bridge holds at once that have shown the secret: more than mcp-edge's pool
/// opens, and a bound on the descriptors a slot costs.
const MAX_CONNECTIONS: usize = 1024;
/// Connections that have not shown the secret yet, held at once. Anything on the machine may
/// open one, so a new one evicts the oldest: a local process that opens connections and sends
/// nothing cannot hold the proxy out (its own connections send their head at once).
const MAX_STRANGERS: usize = 256;
/// How long a connection may take to show the secret (a local slowloris). Once it has, it
/// stays open while idle: the proxy's pool decides when (no race between the two ends).
const HEAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// One connection: whether it showed the secret, and how to evict it while it has not.
#[derive(Default)]
struct Conn {
    id: u64,
    trusted: AtomicBool,
    evict: tokio::sync::Notify,
}

/// The connections that have not shown the secret yet, oldest first.
#[derive(Default)]
struct Strangers(Mutex<VecDeque<Arc<Conn>>>);

impl Strangers {
    /// Adds `conn`, evicting the oldest stranger when there are too many.
    fn admit(&self, conn: &Arc<Conn>) {
        let Ok(mut q) = self.0.lock() else { return };
        if q.len() >= MAX_STRANGERS {
            if let Some(oldest) = q.pop_front() {
                oldest.evict.notify_one();
            }
        }
        q.push_back(Arc::clone(conn));
    }

    /// `conn` is no stranger any more (it showed the secret, or it ended).
    fn forget(&self, conn: &Conn) {
        if let Ok(mut q) = self.0.lock() {
            q.retain(|c| c.id != conn.id);
        }
    }
}

/// Accepts connections until `stop` changes.
pub async fn serve(listener: TcpListener, slot: Arc<Slot>, mut stop: watch::Receiver<bool>) {
    let open = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS + MAX_STRANGERS));
    let strangers = Arc::new(Strangers::default());
    let mut next_id = 0u64;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // Over the bound: closed at once, unanswered.
                    let Ok(permit) = Arc::clone(&open).try_acquire_owned() else { continue };
                    next_id += 1;
                    let conn = Arc::new(Conn { id: next_id, ..Conn::default() });
                    strangers.admit(&conn);
                    let (slot, strangers) = (Arc::clone(&slot), Arc::clone(&strangers));
                    tokio::spawn(async move {
                        connection(stream, slot, &conn, &strangers).await;
                        strangers.forget(&conn);
                        drop(permit);
                    });
                }
                // Out of descriptors: wait a little instead of spinning on accept.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            },
            _ = stop.changed() => return,
        }
    }
}

/// Serves one connection until it ends, is evicted as a stranger, or shows no secret within
/// [`HEAD_TIMEOUT`].
async fn connection(stream: tokio::net::TcpStream, slot: Arc<Slot>, conn: &Arc<Conn>, strangers: &Arc<Strangers>) {
    let service = {
        let (conn, strangers) = (Arc::clone(conn), Arc::clone(strangers));
        hyper::service::service_fn(move |req| {
            let trusted =
                req.headers().get(HEADER).is_some_and(|v| bool::from(v.as_bytes().ct_eq(slot.secret.as_bytes())));
            if trusted && !conn.trusted.swap(true, Ordering::AcqRel) {
                strangers.forget(&conn);
            }
            handle(Arc::clone(&slot), req, trusted)
        })
    };
    let serving = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(serving);
    let deadline = tokio::time::sleep(HEAD_TIMEOUT);
    tokio::pin!(deadline);
    let mut timed = false;
    loop {
        tokio::select! {
            _ = &mut serving => return,
            _ = conn.evict.notified() => return,
            _ = &mut deadline, if !timed => {
                timed = true;
                if !conn.trusted.load(Ordering::Acquire) {
                    return;
                }
            }
        }
    }
}

async fn handle(slot: Arc<Slot>, req: Request<Incoming>, trusted: bool) -> Result<Response<Answer>, Infallible> {
    if !trusted {
        // And the connection is closed: nothing else of a stranger's is read or kept.
        let mut r = plain(StatusCode::FORBIDDEN, "this port answers mcp-edge only\n");
        r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Ok(r);
    }
    let session = req.headers().get(SESSION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if let (Some(sessions), &Method::DELETE) = (&slot.sessions, req.method()) {
        return Ok(match session.is_some_and(|id| sessions.end(&id)) {
            true => status(StatusCode::OK),
            false => plain(StatusCode::NOT_FOUND, "no such session\n"),
        });
    }
    let sse = req
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.to_ascii_lowercase().contains("text/event-stream")));
    if let (Some(sessions), &Method::GET, true) = (&slot.sessions, req.method(), sse) {
        return Ok(match session.and_then(|id| sessions.get(&id)) {
            Some(link) => events(link.listen()),
            None => plain(StatusCode::NOT_FOUND, "no such session\n"),
        });
    }
    if req.method() != Method::POST {
        let (allow, text) = match slot.sessions {
            Some(_) => ("GET, POST, DELETE", "a stdio session's stream is a GET accepting text/event-stream\n"),
            None => ("POST", "a stdio server has no stream or session; POST only\n"),
        };
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, text);
        r.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
        return Ok(r);
    }
    let probe = req.headers().get(PROBE).is_some_and(|v| bool::from(v.as_bytes().ct_eq(slot.secret.as_bytes())));
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Ok(plain(StatusCode::PAYLOAD_TOO_LARGE, "body too large or cut short\n")),
    };
    let link = match (&slot.sessions, &session) {
        (None, _) => slot.link.load_full(),
        (Some(sessions), Some(id)) => sessions.get(id),
        (Some(_), None) => None,
    };
    let number = link.as_ref().map_or(0, |l| l.number());
    let inbound = match frame::inbound(&body, number) {
        Ok(inbound) => inbound,
        Err(refused) => return Ok(rpc_error(StatusCode::BAD_REQUEST, RawValue::NULL, -32600, &refused.to_string())),
    };
    if let (Some(_), Some(_), None) = (&slot.sessions, &session, &link) {
        // The session ended (its process with it): the client starts a new one. The error
        // answers the request it came for, under that request's id.
        let id = match &inbound {
            Inbound::Request { id, .. } | Inbound::Initialize { id, .. } => &**id,
            _ => RawValue::NULL,
        };
        return Ok(rpc_error(StatusCode::NOT_FOUND, id, -32001, "no such session"));
    }
    if let (Some(sessions), Inbound::Initialize { id, line }) = (&slot.sessions, &inbound) {
        return Ok(open(sessions, id, line.clone(), session.is_some(), probe).await);
    }
    let Some(link) = link else {
        return Ok(match slot.sessions {
            Some(_) => rpc_error(StatusCode::BAD_REQUEST, RawValue::NULL, -32000, "Mcp-Session-Id required"),
            None => {
                rpc_error(StatusCode::SERVICE_UNAVAILABLE, RawValue::NULL, -32603, "the stdio server is not running")
            }
        });
    };
    match inbound {
        Inbound::Kept => Ok(status(StatusCode::ACCEPTED)),
        // Only a session's process asked its client anything (a shared one's requests are
        // refused by the bridge), so only it is told the answer.
        Inbound::Answer(_) if slot.sessions.is_none() => Ok(status(StatusCode::ACCEPTED)),
        Inbound::Answer(line) | Inbound::Notification(line) => Ok(match link.send(line).await {
            Ok(()) => status(StatusCode::ACCEPTED),
            Err(gone) => refused(&gone, RawValue::NULL),
        }),
        Inbound::Initialize { id, .. } => Ok(match link.init() {
            Some(result) => json(StatusCode::OK, frame::initialized(&id, result)),
            None => rpc_error(StatusCode::SERVICE_UNAVAILABLE, &id, -32603, "the stdio server is starting"),
        }),
        Inbound::Request { id, progress, line } => {
            let streamed = sse && progress.is_some();
            let mut call = match link.call(number, line, streamed).await {
                Ok(call) => call,
                Err(gone) => return Ok(refused(&gone, &id)),
            };
            if let (true, Some(token)) = (streamed, progress) {
                let mut r = Response::new(Answer::Stream(Stream { call, id, token, done: false }));
                r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
                r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                return Ok(r);
            }
            Ok(match (&mut call.answer).await {
                Ok(msg) => json(StatusCode::OK, frame::answer(msg, id)),
                Err(_) => rpc_error(StatusCode::BAD_GATEWAY, &id, -32603, "the stdio server exited"),
            })
        }
    }
}

/// A `per_session` pool's `initialize`: a new process and session (or, for mcp-edge's health
/// probe, whether processes start: see `Sessions::probe`).
async fn open(
    sessions: &Arc<Sessions>,
    id: &RawValue,
    line: Vec<u8>,
    in_session: bool,
    probe: bool,
) -> Response<Answer> {
    if in_session {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            id,
            -32600,
            "initialize opens a session: send it without Mcp-Session-Id",
        );
    }
    let opened = match probe {
        true => sessions.probe().map(|result| (None, result)),
        false => {
            sessions.open(line).await.map(|(session, link)| (Some(session), link.init().cloned().unwrap_or_default()))
        }
    };
    match opened {
        Ok((session, result)) => {
            let mut r = json(StatusCode::OK, frame::initialized(id, &result));
            if let Some(value) = session.and_then(|s| HeaderValue::from_str(&s).ok()) {
                r.headers_mut().insert(SESSION, value);
            }
            r
        }
        Err(NotOpened::Trying) => {
            rpc_error(StatusCode::SERVICE_UNAVAILABLE, id, -32603, &NotOpened::Trying.to_string())
        }
        Err(NotOpened::Full) => {
            let mut r = rpc_error(StatusCode::SERVICE_UNAVAILABLE, id, -32603, &NotOpened::Full.to_string());
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        // The server refused the client's own initialize: the client's to mend.
        Err(NotOpened::Start(super::process::Failed::Start(super::link::Gone::Refused))) => {
            rpc_error(StatusCode::BAD_REQUEST, id, -32600, "the stdio server refused this initialize")
        }
        Err(failed) => rpc_error(StatusCode::BAD_GATEWAY, id, -32603, &failed.to_string()),
    }
}

/// A request the process could not take: 429 (`Retry-After: 1`) for a process too far behind
/// to take more, which is the clients' load, not a failure of the process, so no circuit
/// breaker counts it (one client's large bodies would otherwise eject the process for
/// everyone); else 502.
fn refused(gone: &super::link::Gone, id: &RawValue) -> Response<Answer> {
    match gone {
        super::link::Gone::Full => {
            let mut r = rpc_error(StatusCode::TOO_MANY_REQUESTS, id, -32603, &gone.to_string());
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        _ => rpc_error(StatusCode::BAD_GATEWAY, id, -32603, &gone.to_string()),
    }
}

/// A session's stream: what its process sends on its own, as events.
fn events(messages: tokio::sync::mpsc::Receiver<super::link::Relayed>) -> Response<Answer> {
    let mut r = Response::new(Answer::Events(super::answer::Events::new(messages)));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn status(code: StatusCode) -> Response<Answer> {
    let mut r = Response::new(Answer::empty());
    *r.status_mut() = code;
    r
}

fn plain(code: StatusCode, text: &'static str) -> Response<Answer> {
    let mut r = Response::new(Answer::Whole(Some(Bytes::from_static(text.as_bytes()))));
    *r.status_mut() = code;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

fn json(code: StatusCode, body: Vec<u8>) -> Response<Answer> {
    let mut r = Response::new(Answer::json(body));
    *r.status_mut() = code;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn rpc_error(code: StatusCode, id: &RawValue, rpc: i64, message: &str) -> Response<Answer> {
    json(code, frame::error(id, rpc, message))
}
