//! One JSON-RPC request from the proxy itself to a member's pool, for what a federated route
//! answers on its members' behalf (their tool lists): a healthy backend of the pool, the pool's
//! path, `Host`, TLS settings and credentials (its `[pool.oauth]` token too), never the
//! caller's. The answer is read whole, bounded, as JSON or as the SSE event carrying the
//! response. Not owned here: what is asked (`catalog`) or how answers are merged.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use pingora::http::RequestHeader;
use pingora::upstreams::peer::Peer;
use serde_json::value::RawValue;

use crate::discovery::MAX_ANSWER;
use crate::mcp::method::FIRST_MODERN_VERSION;
use crate::proxy::sse_event::{self, EventReader};
use crate::upstream::{client, Pool};

/// Why a member gave no answer (value-free: logged and shown in `/status`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failed {
    #[error("no healthy backend")]
    NoBackend,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("connection or exchange failed: {0}")]
    Exchange(String),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("answer over 8 MiB")]
    TooLarge,
    #[error("answer holds no JSON-RPC response")]
    Unreadable,
    #[error("answered JSON-RPC error {0}")]
    Rpc(i64),
}

/// What a member answered: its JSON-RPC result, raw.
pub type Answer = Box<RawValue>;

/// How a request to a member is framed.
#[derive(Debug, Clone, Copy)]
pub enum Era<'a> {
    /// 2026-07-28: the version and method in headers, no session.
    Modern,
    /// Earlier: the member's session, when it issued one, and the version it negotiated.
    Legacy { session: Option<&'a str>, version: Option<&'a str> },
}

/// One request of the proxy's own to a member.
pub struct Ask<'a> {
    /// The JSON-RPC method `body` calls (`Mcp-Method` in the modern era).
    pub method: &'a str,
    pub body: Bytes,
    pub era: Era<'a>,
    /// The backend holding the member's session; else any usable one of the pool.
    pub backend: Option<SocketAddr>,
    pub timeout: Duration,
}

/// A member's answer: the result (None for an accepted notification), the session id it
/// issued (legacy `initialize`), and the backend that answered.
pub struct Reply {
    pub result: Option<Answer>,
    pub session: Option<String>,
    pub backend: SocketAddr,
}

/// Interim (1xx) answers skipped before a member's answer.
const MAX_INTERIM: usize = 8;
/// Longest member session id kept: a token must carry every member's.
const MAX_SESSION: usize = 1024;

/// Sends one request and reads its answer, within `ask.timeout`.
pub async fn ask(pool: &Pool, ask: Ask<'_>) -> Result<Reply, Failed> {
    let timeout = ask.timeout;
    match tokio::time::timeout(timeout, send(pool, ask)).await {
        Ok(answer) => answer,
        Err(_) => Err(Failed::Timeout(timeout)),
    }
}

async fn send(pool: &Pool, ask: Ask<'_>) -> Result<Reply, Failed> {
    let err = |e: Box<pingora::Error>| Failed::Exchange(e.etype().as_str().to_owned());
    let backend = match ask.backend {
        Some(b) if pool.usable(b) => b,
        Some(_) => return Err(Failed::NoBackend),
        None => usable_backend(pool).ok_or(Failed::NoBackend)?,
    };
    let peer = pool.peer(backend, &pool.config.timeouts);
    let (mut s, _) = client::connector().get_http_session(&peer).await.map_err(err)?;
    let mut req = head(pool, backend, "POST", ask.era, ask.method).await?;
    req.insert_header(http::header::CONTENT_TYPE, "application/json").map_err(err)?;
    req.insert_header(http::header::CONTENT_LENGTH, ask.body.len().to_string()).map_err(err)?;
    s.write_request_header(Box::new(req)).await.map_err(err)?;
    let id = request_id(&ask.body);
    s.write_request_body(ask.body, true).await.map_err(err)?;
    s.finish_request_body().await.map_err(err)?;
    answer_head(&mut s).await?;
    let (status, sse, session) = match s.response_header() {
        Some(h) => {
            let sse = h
                .headers
                .get(http::header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
            // Bytes, not text: an id that is not visible ASCII is refused below, not dropped.
            let session = h.headers.get("Mcp-Session-Id").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            (h.status.as_u16(), sse, session)
        }
        None => (0, false, None),
    };
    // Only visible ASCII, as the spec requires, and short enough to travel in a token.
    if session.as_deref().is_some_and(|s| s.len() > MAX_SESSION || !s.bytes().all(|b| (0x21..=0x7e).contains(&b))) {
        return Err(Failed::Unreadable);
    }
    let notification = ask.method.starts_with("notifications/");
    if notification && (status == 202 || status == 200) {
        // Nothing to wait for; the connection is reused only when the answer is read whole.
        return Ok(Reply { result: None, session, backend });
    }
    if status != 200 {
        return Err(Failed::Status(status));
    }
    let mut events = EventReader::new(MAX_ANSWER);
    let mut whole = Vec::new();
    // Every byte read counts against one bound, SSE too: a stream of comments or of other
    // messages ends at it, not at the timeout.
    let mut read = 0usize;
    let mut found: Option<Result<Answer, Failed>> = None;
    while let Some(chunk) = s.read_response_body().await.map_err(err)? {
        read = read.saturating_add(chunk.len());
        if read > MAX_ANSWER {
            return Err(Failed::TooLarge);
        }
        if !sse {
            whole.extend_from_slice(&chunk);
            continue;
        }
        let fed = events.feed(&chunk, |event| {
            if found.is_none() {
                found = sse_event::data(event).and_then(|(data, _)| response(&data, &id));
            }
        });
        fed.map_err(|_| Failed::TooLarge)?;
        if let Some(answer) = found.take() {
            return answer.map(|result| Reply { result: Some(result), session, backend });
        }
    }
    if sse {
        return Err(Failed::Unreadable);
    }
    // Read to its end: the connection can carry the next page or the next refresh.
    client::connector().release_http_session(s, &peer, peer.idle_timeout()).await;
    let result = response(&whole, &id).unwrap_or(Err(Failed::Unreadable))?;
    Ok(Reply { result: Some(result), session, backend })
}

/// The head of a request of the proxy's own to `backend` of `pool` (`verb`: POST for a
/// message, GET for a stream): the pool's path and `Host`, the era's headers (`method` is the
/// message's, for `Mcp-Method`), and the pool's credentials, never a caller's.
pub(super) async fn head(
    pool: &Pool,
    backend: SocketAddr,
    verb: &str,
    era: Era<'_>,
    method: &str,
) -> Result<RequestHeader, Failed> {
    let err = |e: Box<pingora::Error>| Failed::Exchange(e.etype().as_str().to_owned());
    let path = pool.config.path.as_deref().unwrap_or("/mcp");
    let mut req = RequestHeader::build(verb, path.as_bytes(), None).map_err(err)?;
    let host = pool.config.host.clone().unwrap_or_else(|| backend.to_string());
    req.insert_header(http::header::HOST, host).map_err(err)?;
    let accept = if verb == "GET" { "text/event-stream" } else { "application/json, text/event-stream" };
    req.insert_header(http::header::ACCEPT, accept).map_err(err)?;
    match era {
        Era::Modern => {
            req.insert_header("MCP-Protocol-Version", FIRST_MODERN_VERSION).map_err(err)?;
            req.insert_header("Mcp-Method", method).map_err(err)?;
        }
        Era::Legacy { session, version } => {
            if let Some(session) = session {
                req.insert_header("Mcp-Session-Id", session).map_err(err)?;
            }
            if let Some(version) = version {
                req.insert_header("MCP-Protocol-Version", version).map_err(err)?;
            }
        }
    }
    pool.own_credentials(&mut req).await.map_err(err)?;
    Ok(req)
}

/// Reads the answer's head, past interim answers (100 Continue, 103 Early Hints; a few at
/// most).
pub(super) async fn answer_head(s: &mut pingora::protocols::http::client::HttpSession) -> Result<(), Failed> {
    let err = |e: Box<pingora::Error>| Failed::Exchange(e.etype().as_str().to_owned());
    for _ in 0..=MAX_INTERIM {
        s.read_response_header().await.map_err(err)?;
        if !s.response_header().is_some_and(|h| h.status.is_informational() && h.status.as_u16() != 101) {
            break;
        }
    }
    Ok(())
}

/// A usable backend of the pool, starting the search at a random one so lists spread over the
/// pool. Unlike `Pool::select`, it never claims a half-open circuit's one probe: this request's
/// outcome is not reported to the breaker.
pub(super) fn usable_backend(pool: &Pool) -> Option<std::net::SocketAddr> {
    let backends = &pool.config.backends;
    let start = rand::random::<usize>() % backends.len().max(1);
    (0..backends.len())
        .filter_map(|i| backends.get((start + i) % backends.len()))
        .map(|b| b.addr)
        .find(|a| pool.usable(*a))
}

/// The id of the proxy's own request (None for a notification).
fn request_id(body: &[u8]) -> Option<serde_json::Value> {
    #[derive(serde::Deserialize)]
    struct Request {
        id: Option<serde_json::Value>,
    }
    serde_json::from_slice::<Request>(body).ok().and_then(|r| r.id)
}

/// The result of the JSON-RPC response to request `id`, its error, or None when `json` is not
/// that response (another message, or an answer to another id: a member's stray or leftover
/// answer is never taken for this one).
fn response(json: &[u8], id: &Option<serde_json::Value>) -> Option<Result<Answer, Failed>> {
    #[derive(serde::Deserialize)]
    struct Response {
        id: Option<serde_json::Value>,
        result: Option<Box<RawValue>>,
        error: Option<ErrorObject>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorObject {
        code: i64,
    }
    let r: Response = serde_json::from_slice(json).ok()?;
    if r.id != *id {
        return None;
    }
    match (r.result, r.error) {
        (Some(result), _) => Some(Ok(result)),
        (None, Some(e)) => Some(Err(Failed::Rpc(e.code))),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_is_its_result_or_its_error_when_it_answers_this_request() {
        let one = Some(serde_json::json!(1));
        let read = |json: &[u8]| response(json, &one).map(|r| r.map(|a| a.get().to_owned()));
        assert_eq!(read(br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#), Some(Ok(r#"{"tools":[]}"#.to_owned())));
        assert_eq!(
            read(br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"x"}}"#),
            Some(Err(Failed::Rpc(-32601)))
        );
        // An answer to another request, a notification (progress) or junk is not the answer.
        assert!(read(br#"{"jsonrpc":"2.0","id":2,"result":{"tools":[]}}"#).is_none());
        assert!(read(br#"{"jsonrpc":"2.0","id":"1","result":{"tools":[]}}"#).is_none());
        assert!(read(br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#).is_none());
        assert!(read(b"not json").is_none());
        assert_eq!(request_id(br#"{"jsonrpc":"2.0","id":"x","method":"initialize"}"#), Some(serde_json::json!("x")));
    }
}
