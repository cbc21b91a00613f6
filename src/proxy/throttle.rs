//! Applying `[[limit]]`s to a request: the route's limits, then its matching rule's. Builds
//! each limit's key from the request (client IP, route, method, tool, header values), charges
//! the tool's cost, and keeps concurrency guards in the context until the request ends.
//! Checked once, at the start: a stream already admitted is never cut by a limit. A
//! `backend = "redis"` limit checks its rate in the shared store and applies its
//! `on_redis_error` policy here when the store cannot answer.
//!
//! Two stages: limits whose key does not depend on the body (client, route, header) run
//! before the body is read, so a throttled client cannot make the proxy buffer a large body;
//! the rest run on the one reading of the request, once per message, so every element of a
//! batch is keyed and charged.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::OnceLock;

use pingora::proxy::Session;
use pingora_limits::inflight::Guard;
use sha2::{Digest, Sha256};

use super::ctx::Ctx;
use crate::auth::identity::Identity;
use crate::config::model::{KeyPart, LimitBackend, RedisFailure, RouteConfig};
use crate::limits::redis_store::RedisStore;
use crate::limits::{KeyHasher, Limiter, Refusal};
use crate::mcp::call::Element;
use crate::mcp::method::Method;
use crate::metrics::Reason;
use crate::router::{Msg, RouteExt};
use crate::state::State;

/// A limit refused the request.
pub struct Limited {
    pub limit: String,
    pub refusal: Refusal,
}

/// When limits are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before the body is read: limits that key on the client, route or headers only.
    Head,
    /// After classification: limits keyed by method or tool or with costs, and rule limits.
    Call,
}

pub async fn admit(
    state: &State,
    session: &Session,
    ctx: &mut Ctx,
    route: &RouteConfig,
    stage: Stage,
) -> Result<(), Limited> {
    let Ctx { snap, call, rule, guards, reason, identity, .. } = ctx;
    let identity = identity.as_deref();
    let mut held = Held { guards, reason };
    let version = session
        .req_header()
        .headers
        .get(crate::mcp::header::MCP_PROTOCOL_VERSION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(crate::router::ASSUMED_VERSION);
    for element in call.elements() {
        let route_limits = route.limits.iter().filter(|&&i| {
            let by_call = snap.limiters.get(i).is_some_and(|l| l.by_call());
            by_call == (stage == Stage::Call)
        });
        // A batch element's own rule; a single message's rule was found once already.
        let rule = match (stage, call.batch.is_empty()) {
            (Stage::Head, _) => None,
            (Stage::Call, true) => rule.and_then(|r| route.rules.get(r)),
            (Stage::Call, false) => route.rule(Msg { era: call.era, version, element }).map(|(_, r)| r),
        };
        let rule_limits = rule.map_or(&[][..], |r| &r.limits[..]);
        for &i in route_limits.chain(rule_limits) {
            let Some(limiter) = snap.limiters.get(i) else { continue };
            let request = Request { session, route, element, identity };
            check(state, &request, &mut held, limiter, snap).await?;
        }
        if stage == Stage::Head {
            break;
        }
    }
    Ok(())
}

/// What an admission leaves in the context: guards to hold, and why it refused.
struct Held<'c> {
    guards: &'c mut Vec<Guard>,
    reason: &'c mut Option<Reason>,
}

/// What a limit's key is read from.
struct Request<'r> {
    session: &'r Session,
    route: &'r RouteConfig,
    element: &'r Element,
    identity: Option<&'r Identity>,
}

async fn check(
    state: &State,
    request: &Request<'_>,
    held: &mut Held<'_>,
    limiter: &Limiter,
    snap: &crate::state::Snapshot,
) -> Result<(), Limited> {
    let Request { route, element, .. } = *request;
    let tool = (element.method == Method::ToolsCall).then(|| element.target_str()).flatten();
    let redis = match (limiter.config.backend, snap.redis.as_deref()) {
        (LimitBackend::Redis { on_error }, Some(store)) => Some((on_error, store)),
        _ => None,
    };
    // Redis keys must read the same in every replica and every build: SHA-256, not the
    // process-local hash the estimators use.
    let mut stable = redis.map(|_| Sha256::new());
    let (key, tier_value) = key_of(limiter, request, stable.as_mut());
    let label = || label_of(limiter, request);
    let outcome = match (redis, stable) {
        (Some((on_error, store)), Some(stable)) => {
            let shared_key = SharedKey { local: key, stable: stable.finalize().into() };
            let cost = limiter.cost(tool);
            shared(state, store, limiter, on_error, &shared_key, tier_value.as_deref(), cost, &label).await
        }
        _ => limiter.admit(key, tier_value.as_deref(), limiter.cost(tool), &label),
    };
    if outcome.is_ok() {
        limiter.count_admitted(&state.metrics.limit_admitted);
    }
    match outcome {
        Ok(Some(guard)) => held.guards.push(guard),
        Ok(None) => {}
        Err(refusal) => {
            let reason = match refusal {
                Refusal::Rate { .. } => Reason::RateLimited,
                Refusal::Concurrency => Reason::ConcurrencyLimited,
                Refusal::Unavailable { .. } => Reason::LimiterUnavailable,
            };
            state.metrics.limited.with_label_values(&[&route.name, limiter.name(), reason.as_str()]).inc();
            held.guards.clear();
            *held.reason = Some(reason);
            return Err(Limited { limit: limiter.name().to_owned(), refusal });
        }
    }
    Ok(())
}

/// A key as the local estimators know it, and as Redis does.
struct SharedKey {
    local: u64,
    stable: [u8; 32],
}

/// A Redis-backed limit: the in-flight cap counts here, the rate in Redis; while Redis
/// cannot answer, `on_error` decides.
#[allow(clippy::too_many_arguments)]
async fn shared(
    state: &State,
    store: &RedisStore,
    limiter: &Limiter,
    on_error: RedisFailure,
    key: &SharedKey,
    tier_value: Option<&str>,
    cost: u64,
    label: &(dyn Fn() -> String + Sync),
) -> Result<Option<Guard>, Refusal> {
    let (tier, quota) = limiter.tier(tier_value);
    let guard = limiter.hold(tier, quota, key.local, cost, label)?;
    let Some((limit, per)) = quota.rate else { return Ok(guard) };
    let err = match store.check(&store.key(limiter.name(), tier, &key.stable), limit, per, quota.burst, cost).await {
        Ok((refused, used)) => {
            limiter.note_rate(key.local, tier, used, limit, label);
            return match refused {
                None => Ok(guard),
                Some(retry_after) => Err(Refusal::Rate { retry_after }),
            };
        }
        Err(e) => e,
    };
    state.metrics.redis_errors.with_label_values(&[limiter.name(), err.kind()]).inc();
    tracing::debug!(limit = limiter.name(), error = %err, "redis limit check failed; applying on_redis_error");
    state.metrics.redis_fallbacks.with_label_values(&[limiter.name(), on_error.as_str()]).inc();
    match on_error {
        RedisFailure::Local => limiter.check_local_rate(tier, quota, key.local, cost, label).map(|()| guard),

        RedisFailure::Allow => Ok(guard),
        RedisFailure::Deny => Err(Refusal::Unavailable {
            retry_after: store.settings.retry_interval.as_secs_f64().ceil().max(1.0) as u64,
        }),
    }
}

/// The limit's key for this request, and the first part's raw value (for tier assignment,
/// only when the limit assigns tiers). Hashes borrowed bytes: no allocation per part.
fn key_of(limiter: &Limiter, request: &Request<'_>, mut stable: Option<&mut Sha256>) -> (u64, Option<String>) {
    let Request { session, route, element, identity } = *request;
    let mut h = KeyHasher::new();
    let mut first = None;
    for (n, part) in limiter.config.key.iter().enumerate() {
        let ip_bytes;
        let value: &[u8] = match part {
            KeyPart::ClientIp => {
                ip_bytes = match session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip()) {
                    Some(std::net::IpAddr::V4(ip)) => ip.to_ipv6_mapped().octets(),
                    Some(std::net::IpAddr::V6(ip)) => ip.octets(),
                    None => [0; 16],
                };
                &ip_bytes
            }
            KeyPart::Route => route.name.as_bytes(),
            KeyPart::Method => element.method.as_str().as_bytes(),
            KeyPart::Tool => element.target.as_deref().unwrap_or_default(),
            KeyPart::Header(name) => session.req_header().headers.get(name.as_str()).map_or(&[][..], |v| v.as_bytes()),
            KeyPart::Identity => identity.map_or(&[][..], |i| i.id.as_bytes()),
            KeyPart::Tenant => identity.and_then(|i| i.tenant.as_deref()).map_or(&[][..], str::as_bytes),
        };
        if n == 0 && !limiter.config.assign.is_empty() {
            first = match part {
                // Tiers are assigned to client addresses as written ("10.0.0.7"), not octets.
                // Canonical: an IPv4 client of a dual-stack listener is `10.0.0.7`, not
                // `::ffff:10.0.0.7`.
                KeyPart::ClientIp => {
                    session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip().to_canonical().to_string())
                }
                _ => std::str::from_utf8(value).ok().map(str::to_owned),
            };
        }
        h.part(value);
        if let Some(s) = stable.as_deref_mut() {
            s.update((value.len() as u64).to_le_bytes());
            s.update(value);
        }
    }
    (h.finish(), first)
}

/// How a busy key reads in `/status`: `client_ip=10.0.0.7 tool=search`. Header values (often
/// API keys) and resource URIs (which may carry credentials) appear only as a hash keyed with
/// a random per-process secret, so they cannot be confirmed by guessing; long names are cut.
fn label_of(limiter: &Limiter, request: &Request<'_>) -> String {
    let Request { session, route, element, identity } = *request;
    let cut = |s: &str| s.chars().take(64).collect::<String>();
    let mut out = String::new();
    for part in &limiter.config.key {
        if !out.is_empty() {
            out.push(' ');
        }
        match part {
            KeyPart::ClientIp => {
                let ip = session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip().to_canonical().to_string());
                out.push_str(&format!("client_ip={}", ip.as_deref().unwrap_or("-")));
            }
            KeyPart::Route => out.push_str(&format!("route={}", route.name)),
            KeyPart::Method => out.push_str(&format!("method={}", element.method.as_str())),
            KeyPart::Tool => match (element.method, element.target.as_deref()) {
                (Method::ToolsCall | Method::PromptsGet, Some(name)) => {
                    let name = String::from_utf8_lossy(name);
                    out.push_str(&format!("tool={}", name.chars().take(64).collect::<String>()));
                }
                (_, target) => out.push_str(&format!("tool=#{}", fingerprint(target.unwrap_or_default()))),
            },
            KeyPart::Header(name) => {
                let value = session.req_header().headers.get(name.as_str()).map_or(&[][..], |v| v.as_bytes());
                out.push_str(&format!("header:{name}=#{}", fingerprint(value)));
            }
            // Identity ids and tenants are names, not credentials.
            KeyPart::Identity => out.push_str(&format!("identity={}", cut(identity.map_or("-", |i| i.id.as_str())))),
            KeyPart::Tenant => {
                out.push_str(&format!("tenant={}", cut(identity.and_then(|i| i.tenant.as_deref()).unwrap_or("-"))))
            }
        }
    }
    out
}

/// 32 bits of a hash keyed with a random secret of this process: tells keys apart in
/// `/status` without revealing or confirming them.
fn fingerprint(value: &[u8]) -> String {
    static SECRET: OnceLock<RandomState> = OnceLock::new();
    format!("{:08x}", SECRET.get_or_init(RandomState::new).hash_one(value) >> 32)
}
