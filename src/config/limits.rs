//! Validation of `[[limit]]` blocks: rates like `"100/s"` or `"6000/min"`, key parts, tiers,
//! tool costs, the counting backend, and the `[redis]` store. Part of the raw → model
//! pipeline (see `validate`).

use std::collections::HashMap;
use std::time::Duration;

use super::duration::{self, Zero};
use super::error::Collector;
use super::model::{KeyPart, LimitBackend, LimitConfig, Quota, RedisFailure, RedisSettings};
use super::raw::{RawLimit, RawRedis, S};

pub fn redis(raw: Option<&S<RawRedis>>, c: &mut Collector<'_>) -> Option<RedisSettings> {
    let r = raw?.get_ref();
    let url = r.url.get_ref();
    // Never echo the URL: it may carry a password.
    let scheme_ok = ["redis://", "redis+unix://", "unix://"].iter().any(|s| url.starts_with(s));
    if !scheme_ok || redis::IntoConnectionInfo::into_connection_info(url.as_str()).is_err() {
        c.push(
            r.url.span(),
            "redis.url",
            "is not a usable Redis URL; write it like \"redis://127.0.0.1:6379/0\" or \"redis+unix:///run/redis.sock\" (TLS `rediss://` is not built in)",
        );
    }
    let connections = match &r.connections {
        Some(n) if (1..=64).contains(n.get_ref()) => *n.get_ref() as usize,
        Some(n) => {
            c.push(n.span(), "redis.connections", "must be between 1 and 64");
            1
        }
        None => 2,
    };
    let timeout = duration::or(c, r.timeout.as_ref(), "redis.timeout", Duration::from_millis(50), Zero::Refused);
    let retry_interval =
        duration::or(c, r.retry_interval.as_ref(), "redis.retry_interval", Duration::from_secs(1), Zero::Refused);
    if let (Some(t), true) = (&r.timeout, timeout > Duration::from_secs(5)) {
        // Every request under a Redis-backed limit may wait this long.
        c.push(t.span(), "redis.timeout", "is over 5s; a limit check should take milliseconds, e.g. \"50ms\"");
    }
    let key_prefix = match &r.key_prefix {
        Some(p) if p.get_ref().is_empty() => {
            c.push(p.span(), "redis.key_prefix", "is empty; name the keys' prefix, e.g. \"mcp-edge\"");
            String::new()
        }
        Some(p) => p.get_ref().clone(),
        None => "mcp-edge".to_owned(),
    };
    Some(RedisSettings { url: url.clone(), connections, timeout, retry_interval, key_prefix })
}

pub fn limits(
    raw: &[S<RawLimit>],
    have_redis: bool,
    c: &mut Collector<'_>,
) -> (Vec<LimitConfig>, HashMap<String, usize>) {
    let mut out = Vec::with_capacity(raw.len());
    let mut index = HashMap::new();
    for l in raw {
        let l = l.get_ref();
        let name = l.name.get_ref().clone();
        if index.insert(name.clone(), out.len()).is_some() {
            c.push(l.name.span(), "limit.name", format!("limit `{name}` is defined twice; limit names must be unique"));
        }
        out.push(limit(l, &name, have_redis, c));
    }
    (out, index)
}

fn backend(l: &RawLimit, name: &str, have_redis: bool, c: &mut Collector<'_>) -> LimitBackend {
    let field = |f: &str| format!("limit.{name}.{f}");
    let on_error = match l.on_redis_error.as_ref().map(|s| (s.get_ref().as_str(), s.span())) {
        None | Some(("local", _)) => RedisFailure::Local,
        Some(("allow", _)) => RedisFailure::Allow,
        Some(("deny", _)) => RedisFailure::Deny,
        Some((_, span)) => {
            c.push(span, field("on_redis_error"), "unknown policy; use \"local\", \"allow\" or \"deny\"");
            RedisFailure::Local
        }
    };
    match l.backend.as_ref().map(|s| (s.get_ref().as_str(), s.span())) {
        None | Some(("local", _)) => {
            if let Some(p) = &l.on_redis_error {
                c.push(p.span(), field("on_redis_error"), "applies only with backend = \"redis\"");
            }
            LimitBackend::Local
        }
        Some(("redis", span)) => {
            if !have_redis {
                c.push(span.clone(), field("backend"), "needs a [redis] section with `url = \"redis://host:6379/0\"`");
            }
            if l.rate.is_none() && l.tiers.values().all(|t| t.get_ref().rate.is_none()) {
                c.push(
                    span,
                    field("backend"),
                    "Redis shares rates; this limit has none (concurrency caps count per replica)",
                );
            }
            LimitBackend::Redis { on_error }
        }
        Some((_, span)) => {
            c.push(span, field("backend"), "unknown backend; use \"local\" or \"redis\"");
            LimitBackend::Local
        }
    }
}

fn limit(l: &RawLimit, name: &str, have_redis: bool, c: &mut Collector<'_>) -> LimitConfig {
    let field = |f: &str| format!("limit.{name}.{f}");
    let mut key = Vec::new();
    for part in l.key.get_ref() {
        let p = part.get_ref();
        match p.as_str() {
            "client_ip" => key.push(KeyPart::ClientIp),
            "route" => key.push(KeyPart::Route),
            "method" => key.push(KeyPart::Method),
            "tool" => key.push(KeyPart::Tool),
            "identity" => key.push(KeyPart::Identity),
            "claim:tenant" => key.push(KeyPart::Tenant),
            h if h.starts_with("header:") && http::HeaderName::from_bytes(&h.as_bytes()[7..]).is_ok() => {
                key.push(KeyPart::Header(h[7..].to_ascii_lowercase()))
            }
            _ => c.push(
                part.span(),
                field("key"),
                "unknown key part; use client_ip, route, method, tool, identity, claim:tenant or header:<name> (a valid header name)",
            ),
        }
    }
    if l.key.get_ref().is_empty() {
        c.push(l.key.span(), field("key"), "is empty; name what to count by, e.g. [\"client_ip\"]");
    }
    let mut tiers = Vec::new();
    for (tier, q) in &l.tiers {
        let q = q.get_ref();
        tiers.push((tier.clone(), quota(&q.rate, &q.burst, &q.concurrency, &field(&format!("tiers.{tier}")), c)));
    }
    let own = quota(&l.rate, &l.burst, &l.concurrency, &field("rate"), c);
    let quota = match &l.default_tier {
        Some(t) => match tiers.iter().find(|(n, _)| n == t.get_ref()) {
            Some((_, q)) => q.clone(),
            None => {
                c.push(t.span(), field("default_tier"), format!("no tier named `{}`", t.get_ref()));
                own
            }
        },
        None => own,
    };
    if quota.rate.is_none() && quota.concurrency.is_none() && tiers.is_empty() {
        c.push(l.name.span(), field("rate"), "limits nothing; set `rate` (e.g. \"100/s\") and/or `concurrency`");
    }
    let mut assign = Vec::new();
    for (value, tier) in &l.assign {
        match tiers.iter().position(|(n, _)| n == tier.get_ref()) {
            Some(i) => assign.push((value.clone(), i)),
            // The value may be a secret (an API key): name the tier, never the value.
            None => c.push(tier.span(), field("assign"), format!("no tier named `{}`", tier.get_ref())),
        }
    }
    let mut costs = Vec::new();
    for (tool, cost) in &l.costs {
        match u64::try_from(*cost.get_ref()) {
            Ok(n) if n >= 1 => costs.push((tool.clone(), n)),
            _ => c.push(cost.span(), field("costs"), "a cost must be 1 or more"),
        }
    }
    LimitConfig { name: name.to_owned(), key, quota, tiers, assign, costs, backend: backend(l, name, have_redis, c) }
}

fn quota(
    rate: &Option<S<String>>,
    burst: &Option<S<i64>>,
    concurrency: &Option<S<i64>>,
    field: &str,
    c: &mut Collector<'_>,
) -> Quota {
    let rate = rate.as_ref().and_then(|r| match parse_rate(r.get_ref()) {
        Ok(rate) => Some(rate),
        Err(msg) => {
            c.push(r.span(), field, msg);
            None
        }
    });
    let mut count = |v: &Option<S<i64>>, what: &str, min: i64| -> Option<u64> {
        let v = v.as_ref()?;
        if *v.get_ref() < min {
            c.push(v.span(), format!("{field}.{what}"), format!("must be {min} or more"));
            return None;
        }
        Some(*v.get_ref() as u64)
    };
    Quota { rate, burst: count(burst, "burst", 0).unwrap_or(0), concurrency: count(concurrency, "concurrency", 1) }
}

/// `"100/s"`, `"6000/min"`, `"10/h"` → (count, window).
pub fn parse_rate(text: &str) -> Result<(u64, Duration), String> {
    let fix = "write it like \"100/s\", \"6000/min\" or \"10/h\"";
    let (n, unit) = text.split_once('/').ok_or_else(|| format!("is not a rate; {fix}"))?;
    let n: u64 = n.trim().parse().map_err(|_| format!("does not start with a whole number; {fix}"))?;
    let per = match unit.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        _ => return Err(format!("has an unknown unit; {fix}")),
    };
    if n == 0 {
        return Err("allows nothing; use at least 1, or remove the limit".to_owned());
    }
    Ok((n, per))
}

#[cfg(test)]
mod tests {
    use super::parse_rate;
    use std::time::Duration;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("100/s"), Ok((100, Duration::from_secs(1))));
        assert_eq!(parse_rate("6000/min"), Ok((6000, Duration::from_secs(60))));
        assert_eq!(parse_rate("10/h"), Ok((10, Duration::from_secs(3600))));
        assert!(parse_rate("100").unwrap_err().contains("not a rate"));
        assert!(parse_rate("x/s").unwrap_err().contains("whole number"));
        assert!(parse_rate("5/d").unwrap_err().contains("unknown unit"));
        assert!(parse_rate("0/s").unwrap_err().contains("allows nothing"));
    }
}
