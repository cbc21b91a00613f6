//! Ending a legacy session on its backend, for the admin API (`DELETE /sessions/{fingerprint}`):
//! the DELETE a client ending its session sends (the 2025-11-25 Streamable HTTP transport),
//! with the backend's own session id, to the pool's path, with the pool's TLS settings, `Host`
//! and credentials (its `[pool.oauth]` token too, when it has its own). Not owned here: which
//! session (`session::seen`) or the answer to the operator (`admin`).

use std::net::SocketAddr;
use std::time::Duration;

use pingora::http::RequestHeader;

use super::Pool;

/// Longest an operator waits for the backend.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Sends the DELETE; the backend's status, or why there is none (value-free).
pub async fn end(pool: &Pool, backend: SocketAddr, session: &str) -> Result<u16, String> {
    match tokio::time::timeout(TIMEOUT, send(pool, backend, session)).await {
        Ok(result) => result,
        Err(_) => Err("the backend did not answer within 5 s".to_owned()),
    }
}

async fn send(pool: &Pool, backend: SocketAddr, session: &str) -> Result<u16, String> {
    let err = |e: Box<pingora::Error>| e.to_string();
    let mut peer = pool.peer(backend, &pool.config.timeouts);
    peer.options.read_timeout = Some(TIMEOUT);
    let (mut s, _) = crate::upstream::client::connector().get_http_session(&peer).await.map_err(err)?;
    let path = pool.config.path.as_deref().unwrap_or("/mcp");
    let mut req = RequestHeader::build("DELETE", path.as_bytes(), None).map_err(err)?;
    let host = pool.config.host.clone().unwrap_or_else(|| backend.to_string());
    req.insert_header(http::header::HOST, host).map_err(err)?;
    req.insert_header("Mcp-Session-Id", session).map_err(err)?;
    req.insert_header(http::header::CONTENT_LENGTH, "0").map_err(err)?;
    pool.own_credentials(&mut req).await.map_err(err)?;
    s.write_request_header(Box::new(req)).await.map_err(err)?;
    s.finish_request_body().await.map_err(err)?;
    s.read_response_header().await.map_err(err)?;
    Ok(s.response_header().map_or(0, |h| h.status.as_u16()))
}
