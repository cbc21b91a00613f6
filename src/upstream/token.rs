//! The proxy's own OAuth token for a pool's backends (`[pool.oauth]`, the client credentials
//! grant of RFC 6749 4.4): requested from the token endpoint when first needed, kept until it
//! expires, and renewed in the background once three quarters of its life have passed, so a
//! request normally never waits for it. While the endpoint fails, the current token serves
//! until it expires; fetches are then at most one per [`RETRY_AFTER`], a request waits for at
//! most one ([`FETCH_TIMEOUT`]), and a request with no valid token is refused (503) rather
//! than sent without one. Shared by a pool and its health checks; a reload keeps it while the
//! `[pool.oauth]` table is unchanged, so the token survives reloads.
//!
//! Not owned here: removing the caller's `Authorization` (`proxy::headers`), the 503
//! (`proxy::reply`). Nothing here logs or returns the secret or the token.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use base64::Engine;
use http::HeaderValue;
use prometheus::IntCounterVec;
use serde::Deserialize;
use tokio::sync::Notify;

use crate::config::model::{ClientAuth, OAuthClient};

/// The error type of a request whose pool has no valid token (answered 503, no backend blamed).
pub const UNAVAILABLE: &str = "upstream token unavailable";

/// The error for a request whose pool has no valid token.
pub fn unavailable() -> Box<pingora::Error> {
    pingora::Error::explain(pingora::ErrorType::Custom(UNAVAILABLE), "no valid [pool.oauth] token")
}

pub fn is_unavailable(e: &pingora::Error) -> bool {
    e.etype() == &pingora::ErrorType::Custom(UNAVAILABLE)
}

/// How long one token request may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Least time between two token requests after one failed.
pub const RETRY_AFTER: Duration = Duration::from_secs(2);
/// A token's life when the endpoint does not say (`expires_in` is only RECOMMENDED).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
/// Longest life believed: a token is renewed at least this often.
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// A token endpoint's answer larger than this is refused.
const MAX_ANSWER: usize = 64 * 1024;

struct Token {
    /// `Bearer <access_token>`, marked sensitive.
    value: HeaderValue,
    renew_at: Instant,
    expires_at: Instant,
}

pub struct TokenSource {
    pub config: OAuthClient,
    pool: String,
    current: ArcSwapOption<Token>,
    fetching: AtomicBool,
    fetched: Notify,
    /// When the last fetch failed; cleared by a success.
    failed: Mutex<Option<Instant>>,
    fetches: IntCounterVec,
}

/// Why a token request failed; the metric's `result` label and the log line.
#[derive(Debug)]
enum Failure {
    /// The endpoint answered with another status than 200.
    Refused(u16),
    /// A 200 whose body is not a bearer token answer.
    Invalid(&'static str),
    /// No answer: connect, TLS or read failed, or the request timed out.
    Unreachable(String),
}

impl Failure {
    fn label(&self) -> &'static str {
        match self {
            Failure::Refused(_) => "refused",
            Failure::Invalid(_) => "invalid",
            Failure::Unreachable(_) => "unreachable",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Refused(status) => write!(f, "the token endpoint answered {status}"),
            Failure::Invalid(why) => write!(f, "the token endpoint's answer {why}"),
            Failure::Unreachable(why) => write!(f, "the token endpoint is unreachable: {why}"),
        }
    }
}

impl TokenSource {
    pub fn new(config: OAuthClient, pool: &str, fetches: IntCounterVec) -> Arc<TokenSource> {
        Arc::new(TokenSource {
            config,
            pool: pool.to_owned(),
            current: ArcSwapOption::empty(),
            fetching: AtomicBool::new(false),
            fetched: Notify::new(),
            failed: Mutex::new(None),
            fetches,
        })
    }

    /// The `Authorization` value for the pool's backends: the current token (renewal started
    /// in the background when it is due), else the one a fetch brings within
    /// [`FETCH_TIMEOUT`]; None when there is no valid token.
    pub async fn header(self: &Arc<Self>) -> Option<HeaderValue> {
        let now = Instant::now();
        if let Some(token) = self.current.load().as_deref() {
            if now < token.renew_at {
                return Some(token.value.clone());
            }
            if now < token.expires_at {
                self.start();
                return Some(token.value.clone());
            }
        }
        let notified = self.fetched.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.start() || self.fetching.load(Ordering::Acquire) {
            let _ = tokio::time::timeout(FETCH_TIMEOUT + Duration::from_secs(1), notified).await;
        }
        self.current.load().as_deref().filter(|t| Instant::now() < t.expires_at).map(|t| t.value.clone())
    }

    /// Starts a fetch unless one runs or the last one failed less than [`RETRY_AFTER`] ago.
    fn start(self: &Arc<Self>) -> bool {
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return false };
        {
            let Ok(failed) = self.failed.lock() else { return false };
            if failed.is_some_and(|at| at.elapsed() < RETRY_AFTER) || self.fetching.swap(true, Ordering::AcqRel) {
                return false;
            }
        }
        let me = Arc::clone(self);
        handle.spawn(async move {
            let result = match tokio::time::timeout(FETCH_TIMEOUT, fetch(&me.config)).await {
                Ok(result) => result,
                Err(_) => Err(Failure::Unreachable("timed out".to_owned())),
            };
            match result {
                Ok((value, lifetime)) => {
                    let now = Instant::now();
                    // Renew at three quarters of its life; count it expired a little early,
                    // for the time a request takes to reach the backend.
                    let margin = (lifetime / 10).min(Duration::from_secs(30));
                    me.current.store(Some(Arc::new(Token {
                        value,
                        renew_at: now + lifetime * 3 / 4,
                        expires_at: now + lifetime - margin,
                    })));
                    me.fetches.with_label_values(&[&me.pool, "ok"]).inc();
                    if let Ok(mut failed) = me.failed.lock() {
                        *failed = None;
                    }
                }
                Err(failure) => {
                    if let Ok(mut failed) = me.failed.lock() {
                        *failed = Some(Instant::now());
                    }
                    me.fetches.with_label_values(&[&me.pool, failure.label()]).inc();
                    tracing::warn!(pool = %me.pool, why = %failure, "[pool.oauth] token request failed; the current token (if any) serves until it expires");
                }
            }
            me.fetching.store(false, Ordering::Release);
            me.fetched.notify_waiters();
        });
        true
    }
}

#[derive(Deserialize)]
struct Answer {
    access_token: String,
    token_type: String,
    expires_in: Option<f64>,
}

/// One token request: the value to send and how long it lives.
async fn fetch(c: &OAuthClient) -> Result<(HeaderValue, Duration), Failure> {
    let (form, basic) = request_of(c);
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if let Some(basic) = &basic {
        headers.push(("Authorization", basic.as_str()));
    }
    let answer =
        crate::auth::issuer::request("POST", &c.token_url, &headers, form.as_bytes(), MAX_ANSWER, FETCH_TIMEOUT)
            .await
            .map_err(Failure::Unreachable)?;
    if answer.status != 200 {
        return Err(Failure::Refused(answer.status));
    }
    token_of(&answer.body)
}

/// The form body and, for `client_secret_basic`, the `Authorization` value (RFC 6749 2.3.1:
/// id and secret form-encoded, then joined and base64-encoded).
fn request_of(c: &OAuthClient) -> (String, Option<String>) {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials");
    for (name, value) in [("scope", &c.scope), ("resource", &c.resource), ("audience", &c.audience)] {
        if let Some(v) = value {
            form.append_pair(name, v);
        }
    }
    let basic = match c.client_auth {
        ClientAuth::Post => {
            form.append_pair("client_id", &c.client_id);
            form.append_pair("client_secret", c.secret.expose());
            None
        }
        ClientAuth::Basic => {
            let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!("{}:{}", enc(&c.client_id), enc(c.secret.expose()));
            Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair)))
        }
    };
    (form.finish(), basic)
}

/// A successful answer's bearer token (RFC 6749 5.1) as a header value, and its life.
fn token_of(body: &[u8]) -> Result<(HeaderValue, Duration), Failure> {
    let a: Answer = serde_json::from_slice(body).map_err(|_| Failure::Invalid("is not a token answer"))?;
    if !a.token_type.eq_ignore_ascii_case("bearer") {
        return Err(Failure::Invalid("is not a bearer token"));
    }
    if a.access_token.is_empty() || !a.access_token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Failure::Invalid("holds an access token that cannot be sent in a header"));
    }
    let mut value = HeaderValue::try_from(format!("Bearer {}", a.access_token))
        .map_err(|_| Failure::Invalid("holds an access token that cannot be sent in a header"))?;
    value.set_sensitive(true);
    let lifetime = match a.expires_in {
        Some(s) if s.is_finite() && s >= 1.0 => Duration::from_secs_f64(s.min(MAX_LIFETIME.as_secs_f64())),
        Some(_) => return Err(Failure::Invalid("says the token expires at once")),
        None => DEFAULT_LIFETIME,
    };
    Ok((value, lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::identity::Secret;
    use crate::config::model::CredentialSource;

    fn client(auth: ClientAuth) -> OAuthClient {
        OAuthClient {
            token_url: "http://127.0.0.1:1/token".into(),
            client_id: "edge one".into(),
            secret: Secret::new("s3cr&t:x".into()),
            secret_source: CredentialSource::Env("X".into()),
            client_auth: auth,
            scope: Some("tools:read tools:call".into()),
            resource: Some("https://tools.example/mcp".into()),
            audience: None,
        }
    }

    #[test]
    fn basic_client_authentication_form_encodes_id_and_secret_before_base64() {
        let (form, basic) = request_of(&client(ClientAuth::Basic));
        assert_eq!(
            form,
            "grant_type=client_credentials&scope=tools%3Aread+tools%3Acall&resource=https%3A%2F%2Ftools.example%2Fmcp"
        );
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic.as_deref().and_then(|b| b.strip_prefix("Basic ")).unwrap_or_default())
            .unwrap_or_default();
        assert_eq!(String::from_utf8_lossy(&decoded), "edge+one:s3cr%26t%3Ax");
    }

    #[test]
    fn post_client_authentication_puts_the_credentials_in_the_form() {
        let (form, basic) = request_of(&client(ClientAuth::Post));
        assert!(basic.is_none());
        assert!(form.ends_with("&client_id=edge+one&client_secret=s3cr%26t%3Ax"), "{form}");
    }

    #[test]
    fn an_answer_is_a_bearer_token_with_a_life() {
        let (value, life) =
            token_of(br#"{"access_token":"abc.def","token_type":"bearer","expires_in":60}"#).expect("token");
        assert_eq!(
            (value.to_str().unwrap_or_default(), life, value.is_sensitive()),
            ("Bearer abc.def", Duration::from_secs(60), true)
        );
        let (_, life) = token_of(br#"{"access_token":"a","token_type":"Bearer"}"#).expect("token");
        assert_eq!(life, DEFAULT_LIFETIME, "no expires_in: the default life");
    }

    #[test]
    fn answers_that_are_not_usable_bearer_tokens_are_refused() {
        for body in [
            &br#"{"access_token":"a","token_type":"mac","expires_in":60}"#[..],
            br#"{"access_token":"a b","token_type":"bearer"}"#,
            br#"{"access_token":"a\r\nX-Injected: 1","token_type":"bearer"}"#,
            br#"{"access_token":"","token_type":"bearer"}"#,
            br#"{"access_token":"a","token_type":"bearer","expires_in":0}"#,
            br#"{"access_token":"a","token_type":"bearer","expires_in":-5}"#,
            br#"{"token_type":"bearer"}"#,
            b"<html>",
        ] {
            assert!(token_of(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
    }
}
