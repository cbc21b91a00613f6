//! Raw TOML structs to the validated model. Collects every error before failing (never stops
//! at the first) and names the field and the fix. Defaults live here and nowhere else.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::duration::{self, Zero};
use super::error::Collector;
use super::model::*;
use super::raw::*;
use super::timeouts::{self, RawTimeouts};

pub const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;
/// Each proxied connection holds two descriptors (client and backend): 10,000 stays far inside
/// the systemd unit's `LimitNOFILE` and is the load `loadtest/memory.sh` measures (about
/// 150 MiB of RSS as idle SSE streams).
const DEFAULT_MAX_CONNECTIONS: i64 = 10_000;
/// Pingora's weighted round robin keeps one slot per unit of weight: keep it small.
const MAX_WEIGHT: i64 = 1000;

pub fn validate(raw: RawConfig, c: &mut Collector<'_>) -> Option<Config> {
    let proxy = proxy_settings(&raw.proxy, c);
    let admin = super::admin::settings(&raw.admin, c);
    let sessions = SessionSettings {
        key_file: raw.sessions.key_file.as_ref().map(|k| PathBuf::from(k.get_ref())),
        rotation_overlap: duration::or(
            c,
            raw.sessions.rotation_overlap.as_ref(),
            "sessions.rotation_overlap",
            Duration::from_secs(600),
            Zero::Allowed,
        ),
        forward_foreign: match raw.sessions.foreign_ids.as_ref().map(|f| (f.get_ref().as_str(), f.span())) {
            None | Some(("refuse", _)) => false,
            Some(("forward", _)) => true,
            Some((_, span)) => {
                c.push(span, "sessions.foreign_ids", "unknown choice; use \"refuse\" (ids mcp-edge did not mint get 404) or \"forward\" (they reach the backend untouched on routes without auth)");
                false
            }
        },
    };
    let log = super::logging::settings(&raw.log, c);
    let tool_labels = raw.metrics.tools.iter().flatten().map(|t| t.get_ref().clone()).collect();

    let mut pools = Vec::with_capacity(raw.pools.len());
    let mut pool_index: HashMap<String, usize> = HashMap::new();
    for p in &raw.pools {
        let name = p.get_ref().name.get_ref();
        if pool_index.insert(name.clone(), pools.len()).is_some() {
            c.push(
                p.get_ref().name.span(),
                "pool.name",
                format!("pool `{name}` is defined twice; pool names must be unique"),
            );
        }
        pools.push(pool(p.get_ref(), c));
    }
    if proxy.listen.contains(&admin.listen) {
        let span = raw.admin.listen.as_ref().map_or(0..0, |l| l.span());
        c.push(span, "admin.listen", "is also a proxy listener; give the admin API its own port");
    }
    let redis = super::limits::redis(raw.redis.as_ref(), c);
    let traces = raw.traces.as_ref().map(|t| super::traces::settings(t.get_ref(), c));
    let (limits, limit_index) = super::limits::limits(&raw.limits, redis.is_some(), c);
    let (authenticators, auth_index) = super::authn::authenticators(&raw.authenticators, c);
    let mut routes = Vec::with_capacity(raw.routes.len());
    let mut route_names: HashMap<&str, ()> = HashMap::new();
    for r in &raw.routes {
        let name = r.get_ref().name.get_ref();
        if route_names.insert(name, ()).is_some() {
            c.push(
                r.get_ref().name.span(),
                "route.name",
                format!("route `{name}` is defined twice; route names must be unique"),
            );
        }
        let mut route = super::routes::route(r, &pool_index, &limit_index, &proxy.listen, c);
        route.auth = super::route_auth::route_auth(r.get_ref(), name, &auth_index, &authenticators, c);
        route.policy = super::policy::policy(r.get_ref(), &route, c);
        // A policy decides on the call: every POST is read and classified.
        route.needs_call |= route.policy.is_some();
        let raw_route = r.get_ref();
        route.headers = super::upstream_headers::rules(
            raw_route.headers.as_ref(),
            raw_route.forward_identity.as_ref(),
            &format!("route.{name}"),
            c,
        );
        routes.push(route);
    }
    for r in &mut routes {
        let attached = r.limits.iter().chain(r.rules.iter().flat_map(|x| x.limits.iter()));
        let by_call =
            |l: &LimitConfig| !l.costs.is_empty() || l.key.iter().any(|k| matches!(k, KeyPart::Tool | KeyPart::Method));
        let by_limits = attached.filter_map(|&i| limits.get(i)).any(by_call);
        if by_limits && r.inspect == Inspect::Never {
            let span = raw.routes.iter().find(|x| x.get_ref().name.get_ref() == &r.name).map_or(0..0, |x| x.span());
            c.push(span, format!("route.{}.limits", r.name), "a limit keyed by method or tool, or with costs, needs the body read; remove `inspect = \"never\"` or use limits keyed by client_ip, route or header");
        }
        r.needs_call |= by_limits;
    }
    if routes.is_empty() {
        c.push(0..0, "route", "no [[route]] is defined; add one with a `path` and a `pool`");
    }
    if !c.errors.is_empty() {
        return None;
    }
    Some(Config {
        source: None,
        digest: String::new(),
        proxy,
        admin,
        sessions,
        log,
        tool_labels,
        pools,
        routes,
        limits,
        redis,
        traces,
        authenticators,
    })
}

fn proxy_settings(p: &RawProxy, c: &mut Collector<'_>) -> ProxySettings {
    let listen = match &p.listen {
        None => vec![SocketAddr::from(([127, 0, 0, 1], 8080))],
        Some(list) if list.get_ref().is_empty() => {
            c.push(list.span(), "proxy.listen", "is empty; list at least one address such as \"127.0.0.1:8080\"");
            vec![]
        }
        Some(list) => {
            let mut out: Vec<SocketAddr> = Vec::new();
            for a in list.get_ref() {
                match parse_addr(c, a, "proxy.listen") {
                    Some(addr) if out.contains(&addr) => {
                        c.push(a.span(), "proxy.listen", "lists the same address twice; remove the repeat")
                    }
                    Some(addr) => out.push(addr),
                    None => {}
                }
            }
            out
        }
    };
    let threads = positive(c, p.threads.as_ref(), "proxy.threads", 1);
    let max_body_bytes = positive(c, p.max_body_bytes.as_ref(), "proxy.max_body_bytes", DEFAULT_MAX_BODY as i64);
    ProxySettings {
        threads,
        max_body_bytes,
        // Zero: stop at once, without draining.
        grace_period: duration::or(
            c,
            p.grace_period.as_ref(),
            "proxy.grace_period",
            Duration::from_secs(30),
            Zero::Allowed,
        ),
        shutdown_timeout: duration::or(
            c,
            p.shutdown_timeout.as_ref(),
            "proxy.shutdown_timeout",
            Duration::from_secs(10),
            Zero::Allowed,
        ),
        pid_file: p.pid_file.as_ref().map_or("/tmp/mcp-edge.pid".into(), |s| s.get_ref().clone()),
        upgrade_sock: p.upgrade_sock.as_ref().map_or("/tmp/mcp-edge-upgrade.sock".into(), |s| s.get_ref().clone()),
        watch_config: p.watch_config.unwrap_or(false),
        // Zero would close every connection before its first byte.
        header_timeout: duration::or(
            c,
            p.header_timeout.as_ref(),
            "proxy.header_timeout",
            Duration::from_secs(10),
            Zero::Refused,
        ),
        body_timeout: duration::or(
            c,
            p.body_timeout.as_ref(),
            "proxy.body_timeout",
            Duration::from_secs(60),
            Zero::Refused,
        ),
        keepalive_timeout: duration::or(
            c,
            p.keepalive_timeout.as_ref(),
            "proxy.keepalive_timeout",
            Duration::from_secs(60),
            Zero::Allowed,
        ),
        // Zero would fail every write that has to wait at all.
        send_timeout: duration::or(
            c,
            p.send_timeout.as_ref(),
            "proxy.send_timeout",
            Duration::from_secs(60),
            Zero::Refused,
        ),
        max_connections: positive(c, p.max_connections.as_ref(), "proxy.max_connections", DEFAULT_MAX_CONNECTIONS),
        max_member_streams: positive(c, p.max_member_streams.as_ref(), "proxy.max_member_streams", 4096),
        ips: super::ip_filter::ip_filter(p.allow_ips.as_deref(), p.deny_ips.as_deref(), "proxy", c),
        tls: super::tls::listeners(&p.tls, &listen, c),
        listen,
    }
}

fn pool(p: &RawPool, c: &mut Collector<'_>) -> PoolConfig {
    let name = p.name.get_ref().clone();
    if name.is_empty() {
        c.push(p.name.span(), "pool.name", "is empty; give the pool a name that routes can refer to");
    }
    let mut backends = Vec::new();
    let stdio = p.stdio.as_ref().and_then(|s| super::stdio::stdio(s, &name, c));
    match (&p.backends, &p.stdio) {
        (Some(b), None) if b.get_ref().is_empty() => {
            c.push(b.span(), format!("pool.{name}.backends"), "is empty; list at least one \"host:port\"")
        }
        (Some(b), Some(_)) => c.push(
            b.span(),
            format!("pool.{name}.backends"),
            "is set with [pool.stdio]; a pool either reaches servers at addresses or runs them, not both",
        ),
        (None, None) => c.push(
            p.name.span(),
            format!("pool.{name}.backends"),
            "is missing; list at least one \"host:port\", or run local servers with [pool.stdio]",
        ),
        _ => {}
    }
    for b in p.backends.iter().flat_map(|b| b.get_ref()) {
        let (addr, weight) = match b.get_ref() {
            RawBackend::Addr(a) => (a.as_str(), 1),
            RawBackend::Table(t) => (t.addr.as_str(), t.weight.unwrap_or(1)),
        };
        let field = format!("pool.{name}.backends");
        match addr.parse::<SocketAddr>() {
            Ok(addr) if (1..=MAX_WEIGHT).contains(&weight) => {
                backends.push(BackendConfig { addr, weight: weight as usize })
            }
            Ok(_) => c.push(b.span(), field, format!("a weight must be between 1 and {MAX_WEIGHT}")),
            Err(_) => c.push(b.span(), field, "is not an ip:port address such as \"127.0.0.1:9001\""),
        }
    }
    let path = p.path.as_ref().map(|s| absolute_path(c, s, &format!("pool.{name}.path")));
    // Both end up in the upstream request line or Host header: refuse what could not (or
    // would smuggle another header) at load, not per request.
    if let Some(h) = &p.host {
        if http::HeaderValue::from_str(h.get_ref()).is_err() || h.get_ref().is_empty() {
            c.push(
                h.span(),
                format!("pool.{name}.host"),
                "is not a valid Host header value; write a host name, optionally with :port",
            );
        }
    }
    for (s, f) in p
        .path
        .iter()
        .map(|s| (s, "path"))
        .chain(p.health.iter().filter_map(|h| h.get_ref().path.as_ref()).map(|s| (s, "health.path")))
    {
        if s.get_ref().parse::<http::uri::PathAndQuery>().is_err() {
            c.push(
                s.span(),
                format!("pool.{name}.{f}"),
                "is not a valid request path; use plain /segments (percent-encode anything else)",
            );
        }
    }
    let mut health = health(p.health.as_ref(), &name, c);
    // A stdio bridge always accepts connections: only an MCP probe sees its process down.
    if p.stdio.is_some() && p.health.as_ref().and_then(|h| h.get_ref().check.as_ref()).is_none() {
        health.kind = HealthKind::Mcp;
    }
    let breaker = breaker(p.breaker.as_ref().map(|b| b.get_ref()), &name, c);
    let retry = retry(p.retry.as_ref().map(|r| r.get_ref()), &name, c);
    PoolConfig {
        credentials: super::upstream_headers::credentials(&p.credential, &name, c),
        oauth: p.oauth.as_ref().and_then(|o| super::oauth_client::oauth(o, &p.credential, &name, c)),
        headers: super::upstream_headers::rules(
            p.headers.as_ref(),
            p.forward_identity.as_ref(),
            &format!("pool.{name}"),
            c,
        ),
        upstream_tls: super::upstream_tls::pool(p, &name, c),
        tls: p.tls.unwrap_or(false),
        sni: p.sni.as_ref().or(p.host.as_ref()).map_or(String::new(), |s| s.get_ref().clone()),
        host: p.host.as_ref().map(|s| s.get_ref().clone()),
        timeouts: timeouts::pool(
            RawTimeouts {
                connect: p.connect_timeout.as_ref(),
                first_byte: p.first_byte_timeout.as_ref(),
                idle: p.idle_timeout.as_ref(),
            },
            &format!("pool.{name}"),
            c,
        ),
        name,
        backends,
        stdio,
        path,
        health,
        breaker,
        retry,
    }
}

fn health(h: Option<&S<RawHealth>>, pool: &str, c: &mut Collector<'_>) -> HealthConfig {
    let field = |f: &str| format!("pool.{pool}.health.{f}");
    let Some(h) = h.map(|h| h.get_ref()) else {
        return HealthConfig {
            kind: HealthKind::Tcp,
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            path: "/".into(),
            rise: 1,
            fall: 1,
        };
    };
    let kind = match h.check.as_ref().map(|k| (k.get_ref().as_str(), k.span())) {
        None | Some(("tcp", _)) => HealthKind::Tcp,
        Some(("mcp", _)) => HealthKind::Mcp,
        Some(("http", _)) => HealthKind::Http,
        Some(("none", _)) => HealthKind::None,
        Some((_, span)) => {
            c.push(span, field("check"), "unknown check; use \"mcp\", \"http\", \"tcp\" or \"none\"");
            HealthKind::None
        }
    };
    HealthConfig {
        kind,
        interval: duration::or(c, h.interval.as_ref(), &field("interval"), Duration::from_secs(5), Zero::Refused),
        timeout: duration::or(c, h.timeout.as_ref(), &field("timeout"), Duration::from_secs(2), Zero::Refused),
        path: h.path.as_ref().map_or("/".into(), |p| absolute_path(c, p, &field("path"))),
        rise: positive(c, h.rise.as_ref(), &field("rise"), 1),
        fall: positive(c, h.fall.as_ref(), &field("fall"), 1),
    }
}

fn breaker(b: Option<&RawBreaker>, pool: &str, c: &mut Collector<'_>) -> BreakerConfig {
    let field = |f: &str| format!("pool.{pool}.breaker.{f}");
    let failures = b.and_then(|b| b.failures.as_ref());
    // A zero cool-down would make every request a half-open probe.
    let cooldown =
        duration::or(c, b.and_then(|b| b.cooldown.as_ref()), &field("cooldown"), Duration::from_secs(5), Zero::Refused);
    // Zero (or anything under `cooldown`) means no back-off: every ejection lasts `cooldown`.
    let max_cooldown = duration::or(
        c,
        b.and_then(|b| b.max_cooldown.as_ref()),
        &field("max_cooldown"),
        Duration::from_secs(120),
        Zero::Allowed,
    );
    BreakerConfig {
        failures: positive(c, failures, &field("failures"), 5).min(u32::MAX as usize) as u32,
        cooldown,
        max_cooldown: max_cooldown.max(cooldown),
    }
}

fn retry(r: Option<&RawRetry>, pool: &str, c: &mut Collector<'_>) -> RetryConfig {
    let field = |f: &str| format!("pool.{pool}.retry.{f}");
    let budget = match r.and_then(|r| r.budget.as_ref()) {
        Some(b) if (0.0..=1.0).contains(b.get_ref()) => *b.get_ref(),
        Some(b) => {
            c.push(b.span(), field("budget"), "is not a ratio; use 0.0 to 1.0 (0.2 = retries up to 20 % of requests)");
            0.2
        }
        None => 0.2,
    };
    let min_per_window = match r.and_then(|r| r.min_per_window.as_ref()) {
        Some(n) if *n.get_ref() >= 0 => *n.get_ref() as u64,
        Some(n) => {
            c.push(n.span(), field("min_per_window"), "must be 0 or more");
            10
        }
        None => 10,
    };
    // Zero: retry at once.
    let backoff = duration::or(
        c,
        r.and_then(|r| r.backoff.as_ref()),
        &field("backoff"),
        Duration::from_millis(10),
        Zero::Allowed,
    );
    let max_backoff = duration::or(
        c,
        r.and_then(|r| r.max_backoff.as_ref()),
        &field("max_backoff"),
        Duration::from_millis(200),
        Zero::Allowed,
    );
    RetryConfig { budget, min_per_window, backoff, max_backoff: max_backoff.max(backoff) }
}

pub(super) fn pool_ref(
    p: &S<String>,
    pools: &HashMap<String, usize>,
    field: &str,
    c: &mut Collector<'_>,
) -> Option<usize> {
    let found = pools.get(p.get_ref()).copied();
    if found.is_none() {
        let mut known: Vec<_> = pools.keys().map(String::as_str).collect();
        known.sort_unstable();
        c.push(p.span(), field, format!("no pool named `{}`; defined pools: [{}]", p.get_ref(), known.join(", ")));
    }
    found
}

pub(super) fn parse_addr(c: &mut Collector<'_>, s: &S<String>, field: &str) -> Option<SocketAddr> {
    let parsed = s.get_ref().parse().ok();
    if parsed.is_none() {
        c.push(s.span(), field, "is not an ip:port address such as \"127.0.0.1:8080\"");
    }
    parsed
}

pub(super) fn addr_or(c: &mut Collector<'_>, s: Option<&S<String>>, field: &str, default: &str) -> SocketAddr {
    let fallback = default.parse().unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)));
    s.and_then(|s| parse_addr(c, s, field)).unwrap_or(fallback)
}

fn positive(c: &mut Collector<'_>, v: Option<&S<i64>>, field: &str, default: i64) -> usize {
    match v {
        None => default as usize,
        Some(n) if *n.get_ref() >= 1 => *n.get_ref() as usize,
        Some(n) => {
            c.push(n.span(), field, "must be 1 or more");
            default as usize
        }
    }
}

pub(super) fn absolute_path(c: &mut Collector<'_>, s: &S<String>, field: &str) -> String {
    if !s.get_ref().starts_with('/') {
        c.push(s.span(), field, "must start with `/`, e.g. \"/mcp\"");
    }
    s.get_ref().clone()
}
