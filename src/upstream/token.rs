//! The proxy's own OAuth token for a pool's backends (`[pool.oauth]`, the client credentials
//! grant of RFC 6749 4.4): requested from the token endpoint when first needed, kept until it
//! expires, and renewed in the background once three quarters of its life have passed, so a
//! request normally never waits for it. While the endpoint fails, the current token serves
//! until it expires; fetches are then at most one per [`RETRY_AFTER`], a request waits for at
//! most one ([`FETCH_TIMEOUT`]), and a request with no valid token is refused (503) rather
//! than sent without one. Shared by a pool and its health checks; a reload keeps it while the
//! `[pool.oauth]` table is unchanged, so the token survives reloads.
//!
//! With `grant = "token_exchange"` (RFC 8693) the token is per caller instead: the caller's
//! verified bearer token is exchanged for one meant for the backend ([`super::exchange`]
//! keeps them), and a caller without one (an API key) is refused (403). Health probes then go
//! without a token.
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

use super::exchange;
use crate::auth::identity::Identity;
use crate::config::model::{ClientAuth, Grant, OAuthClient};

/// The error type of a request whose pool has no valid token (answered 503, no backend blamed).
pub const UNAVAILABLE: &str = "upstream token unavailable";

/// The error for a request whose pool has no valid token.
pub fn unavailable() -> Box<pingora::Error> {
    pingora::Error::explain(pingora::ErrorType::Custom(UNAVAILABLE), "no valid [pool.oauth] token")
}

/// The refusal an error from [`Refusal::error`] stands for.
pub fn refusal_of(e: &pingora::Error) -> Option<Refusal> {
    match e.etype() {
        pingora::ErrorType::Custom(UNAVAILABLE) => Some(Refusal::Unavailable),
        pingora::ErrorType::Custom(NO_SUBJECT) => Some(Refusal::NoSubject),
        _ => None,
    }
}

/// The error type of a request to a token-exchange pool from a caller without a bearer token.
pub const NO_SUBJECT: &str = "no subject token to exchange";

/// Why a request gets no token for the pool's backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The token endpoint failed (and no valid token is left): 503.
    Unavailable,
    /// Token exchange, and the caller did not come with a verified bearer token: 403.
    NoSubject,
}

impl Refusal {
    pub fn error(self) -> Box<pingora::Error> {
        match self {
            Refusal::Unavailable => unavailable(),
            Refusal::NoSubject => {
                pingora::Error::explain(pingora::ErrorType::Custom(NO_SUBJECT), "token exchange needs a bearer token")
            }
        }
    }
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
    /// Per-caller tokens, for `grant = "token_exchange"`.
    exchanged: exchange::Cache,
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
            exchanged: exchange::Cache::default(),
        })
    }

    /// The `Authorization` value for a request from `identity` that came with bearer token
    /// `subject`: the pool's own token, or (token exchange) the one exchanged for the caller's.
    pub async fn header_for(
        self: &Arc<Self>,
        identity: Option<&Identity>,
        subject: Option<&str>,
    ) -> Result<HeaderValue, Refusal> {
        let Grant::TokenExchange { .. } = self.config.grant else {
            return self.header().await.ok_or(Refusal::Unavailable);
        };
        let (Some(exp), Some(subject)) = (identity.and_then(|i| i.token_exp), subject) else {
            return Err(Refusal::NoSubject);
        };
        // Never used past the caller's own token.
        let left = Duration::from_secs(exp.saturating_sub(crate::auth::unix_now()));
        self.exchanged
            .get(subject, || async {
                let (value, lifetime) = self.request(Some(subject)).await?;
                Some((value, Instant::now() + usable(lifetime).min(left)))
            })
            .await
            .ok_or(Refusal::Unavailable)
    }

    /// One request to the token endpoint, counted and (failed) logged once.
    async fn request(&self, subject: Option<&str>) -> Option<(HeaderValue, Duration)> {
        let result = match tokio::time::timeout(FETCH_TIMEOUT, fetch(&self.config, subject)).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Unreachable("timed out".to_owned())),
        };
        match result {
            Ok(token) => {
                self.fetches.with_label_values(&[&self.pool, "ok"]).inc();
                Some(token)
            }
            Err(failure) => {
                self.fetches.with_label_values(&[&self.pool, failure.label()]).inc();
                tracing::warn!(pool = %self.pool, grant = self.config.grant.as_str(), why = %failure, "[pool.oauth] token request failed");
                None
            }
        }
    }

    /// The `Authorization` value for the pool's backends: the current token (renewal started
    /// in the background when it is due), else the one a fetch brings within
    /// [`FETCH_TIMEOUT`]; None when there is no valid token.
    pub async fn header(self: &Arc<Self>) -> Option<HeaderValue> {
        if let Grant::TokenExchange { .. } = self.config.grant {
            // A token per caller: nothing to send for the proxy itself (health probes).
            return None;
        }
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
            let fetched = me.request(None).await;
            if let Ok(mut failed) = me.failed.lock() {
                *failed = if fetched.is_some() { None } else { Some(Instant::now()) };
            }
            if let Some((value, lifetime)) = fetched {
                let now = Instant::now();
                // Renew at three quarters of its life.
                me.current.store(Some(Arc::new(Token {
                    value,
                    renew_at: now + lifetime * 3 / 4,
                    expires_at: now + usable(lifetime),
                })));
            }
            me.fetching.store(false, Ordering::Release);
            me.fetched.notify_waiters();
        });
        true
    }
}

/// How long a token of `lifetime` is used: a little less, for the time a request takes to
/// reach the backend.
fn usable(lifetime: Duration) -> Duration {
    lifetime - (lifetime / 10).min(Duration::from_secs(30))
}

#[derive(Deserialize)]
struct Answer {
    access_token: String,
    token_type: String,
    expires_in: Option<f64>,
}

/// One token request (exchanging `subject` with token exchange): the value to send and how
/// long it lives.
async fn fetch(c: &OAuthClient, subject: Option<&str>) -> Result<(HeaderValue, Duration), Failure> {
    let (form, basic) = request_of(c, subject);
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
fn request_of(c: &OAuthClient, subject: Option<&str>) -> (String, Option<String>) {
    let mut form = form_urlencoded::Serializer::new(String::new());
    match (c.grant, subject) {
        (Grant::TokenExchange { subject_token_type }, Some(subject)) => {
            form.append_pair("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange");
            form.append_pair("subject_token", subject);
            form.append_pair("subject_token_type", subject_token_type);
            form.append_pair("requested_token_type", "urn:ietf:params:oauth:token-type:access_token");
        }
        _ => {
            form.append_pair("grant_type", "client_credentials");
        }
    }
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
            grant: crate::config::model::Grant::ClientCredentials,
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
        let (form, basic) = request_of(&client(ClientAuth::Basic), None);
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
        let (form, basic) = request_of(&client(ClientAuth::Post), None);
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
