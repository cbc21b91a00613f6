//! The admin listener (loopback by default), separate from the proxy listeners:
//!
//! | endpoint        | answer                                                              |
//! |-----------------|---------------------------------------------------------------------|
//! | `GET /metrics`  | Prometheus text, from the owned registry                            |
//! | `GET /livez`    | 200 while the process runs                                          |
//! | `GET /readyz`   | 200 once listeners are up and the first health pass is done, else 503 |
//! | `GET /status`   | JSON: version, config digest and generation, last reload, routes, pools and each backend's health and circuit, limits and their busiest keys, Redis state |
//! | `GET /config`   | the effective config as JSON, secrets redacted                      |
//! | `POST /reload`  | reload the config file; 200 with the new generation, or 400 with the errors |
//!
//! Every endpoint but `/livez` and `/readyz` first passes [`guard`]: an allowed `Host`, no
//! foreign `Origin`, and the bearer token when `admin.token_file` is set (403, or 401).
//! The guard reads the running snapshot's `[admin]`, so allowed hosts and the token change
//! on reload.

mod guard;

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use async_trait::async_trait;
use http::{Method, Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::json;

use crate::config::model::LimitBackend;
use crate::config::render;
use crate::limits::hot::Kind;
use crate::state::State;

pub struct Admin {
    pub state: Arc<State>,
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let (method, path) = (req.method.clone(), req.uri.path().to_owned());
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
            (Method::GET, "/metrics") => {
                respond(StatusCode::OK, "text/plain; version=0.0.4", self.state.metrics.render())
            }
            (Method::GET, "/livez") => respond(StatusCode::OK, "text/plain", b"ok\n".to_vec()),
            (Method::GET, "/readyz") if self.state.is_ready() => {
                respond(StatusCode::OK, "text/plain", b"ready\n".to_vec())
            }
            (Method::GET, "/readyz") => respond(StatusCode::SERVICE_UNAVAILABLE, "text/plain", b"not ready\n".to_vec()),
            (Method::GET, "/status") => json_response(StatusCode::OK, &status(&self.state)),
            (Method::GET, "/config") => json_response(StatusCode::OK, &render::to_json(&self.state.snapshot().config)),
            (Method::POST, "/reload") => reload(&self.state).await,

            (_, "/metrics" | "/livez" | "/readyz" | "/status" | "/config" | "/reload") => {
                respond(StatusCode::METHOD_NOT_ALLOWED, "text/plain", b"method not allowed\n".to_vec())
            }
            _ => respond(
                StatusCode::NOT_FOUND,
                "text/plain",
                b"not found; try /metrics /livez /readyz /status /config /reload\n".to_vec(),
            ),
        }
    }
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

fn status(state: &State) -> serde_json::Value {
    let snap = state.snapshot();
    let last = state.last_reload.lock().map(|l| l.clone()).unwrap_or_default();
    let secs = |t: std::time::SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "ready": state.is_ready(),
        "started_at": secs(state.started),
        "config": {
            "source": snap.config.source.as_ref().map(|p| p.display().to_string()),
            "digest": snap.config.digest,
            "generation": snap.generation,
            "last_reload": last.at.map(secs),
            "last_reload_ok": last.at.map(|_| last.ok),
            "last_error": last.error,
            "last_success": last.last_success.map(secs),
            "last_changes": last.changes,
        },
        "sessions": {
            "shared_key": state.keys.load().current.shared,
            "previous_key_accepted": state.keys.load().in_overlap(),
        },
        "routes": snap.router.routes().iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        "limits": snap.limiters.iter().map(|l| json!({
            "name": l.name(),
            "backend": if matches!(l.config.backend, LimitBackend::Local) { "local" } else { "redis" },
            // Keys seen at half their quota or more in the last minute, busiest first.
            "busiest": l.hot.busiest().iter().map(|h| json!({
                "key": h.label,
                "tier": l.tier_name(h.tier),
                "kind": match h.kind { Kind::Rate => "rate", Kind::Concurrency => "concurrency" },
                "used": (h.used * 10.0).round() / 10.0,
                "quota": h.quota,
                "seen_ms_ago": h.seen.elapsed().as_millis() as u64,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "redis": snap.redis.as_ref().map(|r| json!({ "url": r.settings.display_url(), "up": r.is_up() })),
        "pools": snap.pools.iter().map(|p| json!({
            "name": p.name(),
            "checked": p.checked_once(),
            "backends": p.config.backends.iter().map(|b| json!({
                "addr": b.addr.to_string(),
                "weight": b.weight,
                "healthy": p.is_healthy(b.addr),
                "circuit": p.breaker(b.addr).map(|br| br.state().as_str()),
                "ejections": p.breaker(b.addr).map(|br| br.ejections.load(std::sync::atomic::Ordering::Relaxed)),
                "usable": p.usable(b.addr),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
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

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Vec<u8>> {
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
    resp.headers_mut().insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
    resp
}
