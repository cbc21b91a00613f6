//! The admin listener (loopback by default), separate from the proxy listeners:
//!
//! | endpoint        | answer                                                              |
//! |-----------------|---------------------------------------------------------------------|
//! | `GET /`         | the live status page ([`page`]): HTML that polls `/status` every 2 s, under a strict CSP |
//! | `GET /metrics`  | Prometheus text, from the owned registry                            |
//! | `GET /livez`    | 200 while the process runs                                          |
//! | `GET /readyz`   | 200 once listeners are up and the first health pass is done, else 503 |
//! | `GET /status`   | JSON ([`status::Status`]): version, uptime, config digest and generation, reloads, connections, routes with request and error rates and p50/p99, top tools, refusals by reason, pools and each backend's health, weight and circuit, limits and their busiest keys, Redis state |
//! | `GET /config`   | the effective config as JSON, secrets redacted                      |
//! | `GET /servers`  | federated routes' members ([`servers`]): pool, usable backends, tools listed per era, list age, last error |
//! | `POST /reload`  | reload the config file; 200 with the new generation, or 400 with the errors |
//!
//! Every endpoint but `/livez` and `/readyz` first passes [`guard`]: an allowed `Host`, no
//! foreign `Origin`, and the bearer token when `admin.token_file` is set (403, or 401).
//! The guard reads the running snapshot's `[admin]`, so allowed hosts and the token change
//! on reload. No answer may be cached or sniffed (`Cache-Control: no-store`, `nosniff`).

mod guard;
pub mod page;
pub mod servers;
pub mod status;
pub mod traffic;

use std::sync::Arc;

use async_trait::async_trait;
use http::{Method, Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::json;

use crate::config::render;
use crate::state::State;

pub struct Admin {
    pub state: Arc<State>,
    /// The counter samples `/status` takes its rates from.
    traffic: traffic::Sampler,
}

impl Admin {
    pub fn new(state: Arc<State>) -> Admin {
        Admin { state, traffic: traffic::Sampler::default() }
    }

    /// The status of the running proxy, with rates over the last few polls.
    pub fn status(&self) -> status::Status {
        status::build(&self.state, &self.traffic.observe(&self.state.metrics))
    }

    /// Gauges read from state rather than kept current on the request path: legacy sessions
    /// seen, and each limit's busiest key's usage (limits a reload removed disappear).
    fn refresh_gauges(&self) {
        let metrics = &self.state.metrics;
        metrics.sessions_seen.set(self.state.sessions.len() as i64);
        metrics.limit_usage.reset();
        for limiter in &self.state.snapshot().limiters {
            metrics.limit_usage.with_label_values(&[limiter.name()]).set(limiter.hot.usage());
        }
    }
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let (method, path) = (req.method.clone(), req.uri.path().to_owned());
        let req_query = req.uri.query().map(str::to_owned);
        let refused = match path.as_str() {
            "/livez" | "/readyz" => None,
            _ => guard::check(&self.state.snapshot().config.admin, req).err(),
        };
        // Admin requests carry no meaningful body; drain what there is so keep-alive works.
        let _ = session.drain_request_body().await;
        if let Some(refusal) = refused {
            tracing::debug!(%method, path, why = refusal.as_str(), "admin request refused");
            return refuse(refusal);
        }
        match (method, path.as_str()) {
            (Method::GET, "/") => status_page(),
            (Method::GET, "/metrics") => {
                self.refresh_gauges();
                respond(StatusCode::OK, "text/plain; version=0.0.4", self.state.metrics.render())
            }
            (Method::GET, "/livez") => respond(StatusCode::OK, "text/plain", b"ok\n".to_vec()),
            (Method::GET, "/readyz") if self.state.is_ready() => {
                respond(StatusCode::OK, "text/plain", b"ready\n".to_vec())
            }
            (Method::GET, "/readyz") => respond(StatusCode::SERVICE_UNAVAILABLE, "text/plain", b"not ready\n".to_vec()),
            (Method::GET, "/status") => json_response(StatusCode::OK, &self.status()),
            (Method::GET, "/servers") => json_response(StatusCode::OK, &servers::build(&self.state)),
            (Method::GET, "/config") => json_response(StatusCode::OK, &render::to_json(&self.state.snapshot().config)),
            (Method::POST, "/reload") => reload(&self.state).await,
            (Method::POST, "/cache/invalidate") => invalidate(&self.state, req_query.as_deref()),
            (Method::GET, "/sessions") => {
                let sessions = self.state.sessions.list();
                let shown: Vec<_> = sessions.iter().take(SESSIONS_SHOWN).collect();
                json_response(StatusCode::OK, &json!({"count": sessions.len(), "sessions": shown}))
            }
            (Method::GET, p) if session_path(p).is_some() => match session_path(p)
                .and_then(|fp| self.state.sessions.get(fp))
            {
                Some(s) => json_response(StatusCode::OK, &s),
                None => json_response(StatusCode::NOT_FOUND, &json!({"error": "no such session seen by this replica"})),
            },
            (Method::DELETE, p) if session_path(p).is_some() => {
                end_session(&self.state, session_path(p).unwrap_or_default()).await
            }

            (
                _,
                "/" | "/metrics" | "/livez" | "/readyz" | "/status" | "/config" | "/reload" | "/sessions" | "/servers"
                | "/cache/invalidate",
            ) => respond(StatusCode::METHOD_NOT_ALLOWED, "text/plain", b"method not allowed\n".to_vec()),
            _ => respond(
                StatusCode::NOT_FOUND,
                "text/plain",
                b"not found; try / /metrics /livez /readyz /status /config /reload /sessions /servers /cache/invalidate\n".to_vec(),
            ),
        }
    }
}

/// `POST /cache/invalidate[?route=NAME]`: every merged list of the federated routes (or of the
/// one named) is asked of the members again by the next client that needs it, and their tool
/// results are forgotten. Reload does the
/// same for every route (a new snapshot starts with empty catalogs).
fn invalidate(state: &State, query: Option<&str>) -> Response<Vec<u8>> {
    let asked = query.and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("route=")));
    let snap = state.snapshot();
    let mut invalidated = Vec::new();
    for (route, catalog) in snap.router.routes().iter().zip(&snap.catalogs) {
        let Some(catalog) = catalog else { continue };
        if asked.is_none_or(|name| name == route.name) {
            catalog.invalidate();
            if let Some(results) = &catalog.results {
                results.clear();
            }
            invalidated.push(route.name.as_str());
        }
    }
    if asked.is_some() && invalidated.is_empty() {
        // The name is the caller's: not echoed.
        return json_response(StatusCode::NOT_FOUND, &json!({"error": "no federated route of that name"}));
    }
    tracing::info!(routes = ?invalidated, "federation: catalogs invalidated");
    json_response(StatusCode::OK, &json!({ "invalidated": invalidated }))
}

/// Most sessions `GET /sessions` lists (the most recently used); `count` has them all.
const SESSIONS_SHOWN: usize = 1000;

/// The fingerprint in `/sessions/{fingerprint}`: 16 lower-case hex digits.
fn session_path(path: &str) -> Option<&str> {
    path.strip_prefix("/sessions/")
        .filter(|fp| fp.len() == 16 && fp.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// `DELETE /sessions/{fingerprint}`: the token is refused from now on, and the backend is
/// asked to end its session (for a federated session, every member's).
async fn end_session(state: &Arc<State>, fp: &str) -> Response<Vec<u8>> {
    let Some(session) = state.sessions.revoke(fp) else {
        return json_response(StatusCode::NOT_FOUND, &json!({"error": "no such session seen by this replica"}));
    };
    let snap = state.snapshot();
    let upstream = match snap.pool_index(&session.pool).and_then(|i| snap.pools.get(i)) {
        Some(pool) => crate::upstream::session_end::end(pool, session.backend, &session.upstream_session).await,
        None => Err("the pool is no longer configured".to_owned()),
    };
    // A federated session: every other member's session ends with it.
    crate::federation::session::end_members(&snap, &session.others).await;
    tracing::info!(fingerprint = fp, pool = %session.pool, backend = %session.backend, upstream = ?upstream.as_ref().ok(), members = session.members, "session ended by the admin API");
    let (status, error) = match upstream {
        Ok(status) => (Some(status), None),
        Err(e) => (None, Some(e)),
    };
    json_response(
        StatusCode::OK,
        &json!({"ended": true, "session": session, "upstream_status": status, "upstream_error": error}),
    )
}

async fn reload(state: &Arc<State>) -> Response<Vec<u8>> {
    let Some(path) = state.snapshot().config.source.clone() else {
        return json_response(
            StatusCode::CONFLICT,
            &json!({"ok": false, "error": "running on an embedded config; nothing to reload"}),
        );
    };
    match state.reload(&path).await {
        Ok(generation) => json_response(StatusCode::OK, &json!({"ok": true, "generation": generation})),
        Err(e) => json_response(StatusCode::BAD_REQUEST, &json!({"ok": false, "error": e.to_string()})),
    }
}

fn status_page() -> Response<Vec<u8>> {
    let page = page::page();
    let mut resp = respond(StatusCode::OK, "text/html; charset=utf-8", page.html.clone().into_bytes());
    let headers = resp.headers_mut();
    if let Ok(csp) = http::HeaderValue::from_str(&page.csp) {
        headers.insert(http::header::CONTENT_SECURITY_POLICY, csp);
    }
    for (name, value) in page::HEADERS {
        headers.insert(name, http::HeaderValue::from_static(value));
    }
    resp
}

fn refuse(refusal: guard::Refusal) -> Response<Vec<u8>> {
    if refusal == guard::Refusal::Token {
        let mut resp = respond(
            StatusCode::UNAUTHORIZED,
            "text/plain",
            b"unauthorized: send `Authorization: Bearer <token>` with the token in admin.token_file\n".to_vec(),
        );
        resp.headers_mut()
            .insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer realm=\"mcp-edge admin\""));
        return resp;
    }
    let body = format!(
        "forbidden: {}; the admin API answers only to its own Host (see admin.allowed_hosts)\n",
        refusal.as_str()
    );
    respond(StatusCode::FORBIDDEN, "text/plain", body.into_bytes())
}

fn json_response(status: StatusCode, value: &impl serde::Serialize) -> Response<Vec<u8>> {
    let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
    body.push(b'\n');
    respond(status, "application/json", body)
}

fn respond(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    let len = resp.body().len();
    let headers = resp.headers_mut();
    headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
    headers.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    headers.insert(http::header::X_CONTENT_TYPE_OPTIONS, http::HeaderValue::from_static("nosniff"));
    resp
}
