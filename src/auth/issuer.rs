//! The proxy as an HTTP client of an OAuth authorization server (the issuer): one request,
//! its status and a bounded body. Used to fetch key sets (`remote_keys`) and tokens for the
//! backends (`upstream::token`). Pingora's HTTP client, rustls for `https://`.
//!
//! Errors are value-free descriptions: nothing sent (a client secret in a form body or an
//! `Authorization` header) and nothing received can reach a log line through them.

use std::time::Duration;

use bytes::Bytes;
use pingora::http::RequestHeader;
use pingora::upstreams::peer::HttpPeer;

/// What the issuer answered.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One request to `url` with `headers` and `body` (none when empty); the answer's body is
/// read up to `max_body` bytes (more is an error). `timeout` bounds connecting and each read.
pub async fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    max_body: usize,
    timeout: Duration,
) -> Result<Answer, String> {
    let uri: http::Uri = url.parse().map_err(|_| "bad URL".to_owned())?;
    let tls = uri.scheme_str() == Some("https");
    let host = uri.host().ok_or("no host")?.trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let addr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| format!("cannot resolve: {}", e.kind()))?
        .next()
        .ok_or("no address")?;
    let mut peer = HttpPeer::new(addr, tls, host.clone());
    peer.options.connection_timeout = Some(timeout);
    peer.options.total_connection_timeout = Some(timeout);
    peer.options.read_timeout = Some(timeout);
    peer.options.write_timeout = Some(timeout);
    let err = |e: Box<pingora::Error>| e.to_string();
    let (mut s, _) = crate::upstream::client::connector().get_http_session(&peer).await.map_err(err)?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut req = RequestHeader::build(method, path.as_bytes(), None).map_err(err)?;
    req.insert_header("Host", uri.authority().map_or(host.as_str(), |a| a.as_str())).map_err(err)?;
    req.insert_header("Accept", "application/json").map_err(err)?;
    for (name, value) in headers {
        req.insert_header(name.to_string(), *value).map_err(err)?;
    }
    if !body.is_empty() {
        req.insert_header("Content-Length", body.len().to_string()).map_err(err)?;
    }
    s.write_request_header(Box::new(req)).await.map_err(err)?;
    if !body.is_empty() {
        s.write_request_body(Bytes::copy_from_slice(body), true).await.map_err(err)?;
    }
    s.finish_request_body().await.map_err(err)?;
    s.read_response_header().await.map_err(err)?;
    let status = s.response_header().map_or(0, |h| h.status.as_u16());
    let mut answer = Vec::new();
    while let Some(chunk) = s.read_response_body().await.map_err(err)? {
        answer.extend_from_slice(&chunk);
        if answer.len() > max_body {
            return Err(format!("answer over {max_body} bytes"));
        }
    }
    Ok(Answer { status, body: answer })
}
