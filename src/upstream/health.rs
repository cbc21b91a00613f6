//! The MCP-level health check: a backend is healthy when it answers a JSON-RPC `initialize`
//! (legacy servers) or `server/discover` (modern-only servers) with a JSON-RPC result. A
//! session the probe opened is closed again with DELETE so probes do not pile up sessions.
//! Also [`SwapCheck`]: a pool's HTTP or MCP check behind a swap, so a reload that rotates the
//! pool's credentials gives its probes the new ones without touching its health state.

use async_trait::async_trait;
use bytes::Bytes;
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType, Result};
use pingora_load_balancing::health_check::{HealthCheck, HttpHealthCheck};
use pingora_load_balancing::Backend;

use super::token::TokenSource;
use crate::config::model::{Credential, PoolConfig};

const INITIALIZE: &[u8] = br#"{"jsonrpc":"2.0","id":"mcp-edge-health","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"mcp-edge-health","version":"1"}}}"#;
const DISCOVER: &[u8] = br#"{"jsonrpc":"2.0","id":"mcp-edge-health","method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
/// A probe reads at most this much of a response looking for the result.
const MAX_PROBE_BODY: usize = 64 * 1024;

pub struct McpHealthCheck {
    connector: Connector,
    path: String,
    host: Option<String>,
    tls: bool,
    sni: String,
    upstream_tls: crate::config::upstream_tls::UpstreamTls,
    timeout: std::time::Duration,
    rise: usize,
    fall: usize,
    /// The pool's `[[pool.credential]]` headers, sent with every probe.
    credentials: Vec<Credential>,
    /// The pool's `[pool.oauth]` token, sent with every probe when there is one.
    token: Option<std::sync::Arc<TokenSource>>,
}

impl McpHealthCheck {
    pub fn new(pool: &PoolConfig, token: Option<std::sync::Arc<TokenSource>>) -> Self {
        McpHealthCheck {
            connector: Connector::new(None),
            path: pool.path.clone().unwrap_or_else(|| "/mcp".into()),
            host: pool.host.clone(),
            tls: pool.tls,
            sni: pool.sni.clone(),
            upstream_tls: pool.upstream_tls.clone(),
            timeout: pool.health.timeout,
            rise: pool.health.rise,
            fall: pool.health.fall,
            credentials: pool.credentials.clone(),
            token,
        }
    }

    fn peer(&self, target: &Backend) -> Result<HttpPeer> {
        let addr =
            target.addr.as_inet().ok_or_else(|| Error::explain(ErrorType::InternalError, "not an inet backend"))?;
        let mut peer = HttpPeer::new(*addr, self.tls, self.sni.clone());
        peer.options.connection_timeout = Some(self.timeout);
        peer.options.total_connection_timeout = Some(self.timeout);
        peer.options.read_timeout = Some(self.timeout);
        peer.options.write_timeout = Some(self.timeout);
        self.upstream_tls.apply(&mut peer);
        Ok(peer)
    }

    async fn request(&self, method: &str, target: &Backend, body_len: usize, modern: bool) -> Result<RequestHeader> {
        let mut req = RequestHeader::build(method, self.path.as_bytes(), None)?;
        let host = self.host.clone().unwrap_or_else(|| target.addr.to_string());
        req.insert_header("Host", host)?;
        req.insert_header("Accept", "application/json, text/event-stream")?;
        if body_len > 0 {
            req.insert_header("Content-Type", "application/json")?;
        }
        req.insert_header("Content-Length", body_len.to_string())?;
        if modern {
            req.insert_header("MCP-Protocol-Version", crate::mcp::method::FIRST_MODERN_VERSION)?;
            req.insert_header("Mcp-Method", "server/discover")?;
        }
        for c in &self.credentials {
            req.insert_header(&c.header, c.value.expose().clone())?;
            // A stdio bridge's secret marks the probe as mcp-edge's own too (a `per_session`
            // pool then starts no process for it).
            if matches!(c.source, crate::config::header_model::CredentialSource::Bridge) {
                req.insert_header(crate::stdio::bridge::PROBE, c.value.expose().clone())?;
            }
        }
        // Without a token the probe goes without one: the backend's answer decides.
        if let Some(token) = &self.token {
            if let Some(value) = token.header().await {
                req.insert_header(http::header::AUTHORIZATION, value)?;
            }
        }
        Ok(req)
    }

    /// Sends one probe; Ok(session id the server opened, if any) when it answered a result.
    async fn probe(&self, target: &Backend, body: &'static [u8], modern: bool) -> Result<Option<String>> {
        let peer = self.peer(target)?;
        let (mut s, _) = self.connector.get_http_session(&peer).await?;
        s.write_request_header(Box::new(self.request("POST", target, body.len(), modern).await?)).await?;
        s.write_request_body(Bytes::from_static(body), true).await?;
        s.finish_request_body().await?;
        s.read_response_header().await?;
        let (status, session) = match s.response_header() {
            Some(h) => {
                (h.status.as_u16(), h.headers.get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned))
            }
            None => (0, None),
        };
        if status != 200 {
            return Error::e_explain(ErrorType::HTTPStatus(status), "MCP probe got a non-200 status");
        }
        let mut seen = Vec::new();
        while let Some(chunk) = s.read_response_body().await? {
            seen.extend_from_slice(&chunk);
            if contains(&seen, br#""result""#) || seen.len() > MAX_PROBE_BODY {
                break;
            }
        }
        if !contains(&seen, br#""result""#) {
            return Error::e_explain(ErrorType::InvalidHTTPHeader, "MCP probe answer holds no JSON-RPC result");
        }
        Ok(session)
    }

    async fn close_session(&self, target: &Backend, session: String) {
        let Ok(peer) = self.peer(target) else { return };
        let Ok((mut s, _)) = self.connector.get_http_session(&peer).await else {
            return;
        };
        let Ok(mut req) = self.request("DELETE", target, 0, false).await else {
            return;
        };
        if req.insert_header("Mcp-Session-Id", session).is_err() {
            return;
        }
        // Best effort: a server that cannot delete sessions lets them expire.
        let _ = s.write_request_header(Box::new(req)).await;
        let _ = s.finish_request_body().await;
        let _ = s.read_response_header().await;
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[async_trait]
impl HealthCheck for McpHealthCheck {
    async fn check(&self, target: &Backend) -> Result<()> {
        // Each probe gets one deadline in all: per-read timeouts alone would let an SSE answer
        // that trickles keep-alives hold the check open.
        let timed = |body, modern| async move {
            match tokio::time::timeout(self.timeout, self.probe(target, body, modern)).await {
                Ok(result) => result,
                Err(_) => Error::e_explain(ErrorType::ConnectTimedout, "MCP probe timed out"),
            }
        };
        let session = match timed(INITIALIZE, false).await {
            Ok(session) => session,
            Err(_) => timed(DISCOVER, true).await?,
        };
        if let Some(session) = session {
            self.close_session(target, session).await;
        }
        Ok(())
    }

    fn health_threshold(&self, success: bool) -> usize {
        if success {
            self.rise
        } else {
            self.fall
        }
    }
}

/// Pingora's HTTP check for `pool`, sending its credentials and `auth` as `Authorization`.
pub fn http_check(pool: &PoolConfig, auth: Option<http::HeaderValue>) -> HttpHealthCheck {
    let h = &pool.health;
    let host = pool.host.clone().unwrap_or_else(|| "localhost".into());
    let mut c = HttpHealthCheck::new(&host, pool.tls);
    c.consecutive_success = h.rise;
    c.consecutive_failure = h.fall;
    c.peer_template.options.connection_timeout = Some(h.timeout);
    c.peer_template.options.total_connection_timeout = Some(h.timeout);
    c.peer_template.options.read_timeout = Some(h.timeout);
    pool.upstream_tls.apply(&mut c.peer_template);
    if let Ok(mut req) = RequestHeader::build("GET", h.path.as_bytes(), None) {
        let _ = req.insert_header("Host", host.as_str());
        for cred in &pool.credentials {
            let _ = req.insert_header(&cred.header, cred.value.expose().clone());
        }
        if let Some(auth) = auth {
            let _ = req.insert_header(http::header::AUTHORIZATION, auth);
        }
        c.req = req;
    }
    c
}

/// The HTTP check of a pool with `[pool.oauth]`: Pingora's check sends a request fixed when
/// it is built, so each probe builds one with the current token.
pub struct TokenHttpCheck {
    pool: PoolConfig,
    token: std::sync::Arc<TokenSource>,
}

impl TokenHttpCheck {
    pub fn new(pool: &PoolConfig, token: std::sync::Arc<TokenSource>) -> TokenHttpCheck {
        TokenHttpCheck { pool: pool.clone(), token }
    }
}

#[async_trait]
impl HealthCheck for TokenHttpCheck {
    async fn check(&self, target: &Backend) -> Result<()> {
        http_check(&self.pool, self.token.header().await).check(target).await
    }

    fn health_threshold(&self, success: bool) -> usize {
        if success {
            self.pool.health.rise
        } else {
            self.pool.health.fall
        }
    }
}

/// The health check a pool's `Backends` runs, replaceable while they keep running: the pool
/// and its check share it, and `Pool::carry` stores a check built with the new credentials.
/// The health state lives in `Backends`, not in the check, so nothing is reset.
#[derive(Clone)]
pub struct SwapCheck(std::sync::Arc<arc_swap::ArcSwap<Box<dyn HealthCheck + Send + Sync>>>);

impl SwapCheck {
    pub fn new(check: Box<dyn HealthCheck + Send + Sync>) -> SwapCheck {
        SwapCheck(std::sync::Arc::new(arc_swap::ArcSwap::from_pointee(check)))
    }

    pub fn store(&self, check: Box<dyn HealthCheck + Send + Sync>) {
        self.0.store(std::sync::Arc::new(check));
    }
}

#[async_trait]
impl HealthCheck for SwapCheck {
    async fn check(&self, target: &Backend) -> Result<()> {
        let current = self.0.load_full();
        current.check(target).await
    }

    fn health_threshold(&self, success: bool) -> usize {
        self.0.load().health_threshold(success)
    }
}

/// Counts and times every probe of a pool's check, whatever its kind
/// (`health_checks_total`, `health_check_duration_seconds`).
pub struct Observed {
    inner: Box<dyn HealthCheck + Send + Sync>,
    ok: prometheus::IntCounter,
    failed: prometheus::IntCounter,
    latency: prometheus::Histogram,
}

impl Observed {
    pub fn wrap(inner: Box<dyn HealthCheck + Send + Sync>, pool: &str, m: &crate::metrics::Metrics) -> Box<Observed> {
        Box::new(Observed {
            inner,
            ok: m.health_checks.with_label_values(&[pool, "ok"]),
            failed: m.health_checks.with_label_values(&[pool, "failed"]),
            latency: m.health_check_duration.with_label_values(&[pool]),
        })
    }
}

#[async_trait]
impl HealthCheck for Observed {
    async fn check(&self, target: &Backend) -> Result<()> {
        let started = std::time::Instant::now();
        let result = self.inner.check(target).await;
        self.latency.observe(started.elapsed().as_secs_f64());
        if result.is_ok() { &self.ok } else { &self.failed }.inc();
        result
    }

    fn health_threshold(&self, success: bool) -> usize {
        self.inner.health_threshold(success)
    }
}
