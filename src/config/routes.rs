//! Validation of `[[route]]` blocks and their `[[route.rule]]`s: paths, hosts, listeners, and
//! references to pools and limits, resolved to indexes. Part of the raw → model pipeline.

use std::collections::HashMap;

use super::error::Collector;
use super::model::*;
use super::raw::*;
use super::timeouts::{self, RawTimeouts};
use super::validate::{absolute_path, parse_addr, pool_ref};
use crate::glob::Glob;

pub fn route(
    r: &S<RawRoute>,
    pools: &HashMap<String, usize>,
    limits: &HashMap<String, usize>,
    listen: &[std::net::SocketAddr],
    c: &mut Collector<'_>,
) -> RouteConfig {
    let raw = r.get_ref();
    let name = raw.name.get_ref().clone();
    let field = |f: &str| format!("route.{name}.{f}");
    let path = match (&raw.path, &raw.path_prefix) {
        (Some(p), None) => PathMatch::Exact(absolute_path(c, p, &field("path"))),
        (None, Some(p)) => PathMatch::Prefix(absolute_path(c, p, &field("path_prefix"))),
        (None, None) => PathMatch::Prefix("/".into()),
        (Some(p), Some(_)) => {
            c.push(p.span(), field("path"), "set either `path` (exact) or `path_prefix`, not both");
            PathMatch::Prefix("/".into())
        }
    };
    let pool = raw.pool.as_ref().and_then(|p| pool_ref(p, pools, &field("pool"), c));
    // "auto" is kept as a spelling of the default: every POST body is read and validated.
    let inspect = match raw.inspect.as_ref().map(|i| (i.get_ref().as_str(), i.span())) {
        None | Some(("auto" | "always", _)) => Inspect::Always,
        Some(("never", _)) => Inspect::Never,
        Some((_, span)) => {
            c.push(
                span,
                field("inspect"),
                "unknown mode; use \"always\" (the default) or \"never\" (opaque pass-through)",
            );
            Inspect::Always
        }
    };
    let mut rules = Vec::new();
    for rule in &raw.rule {
        let rr = rule.get_ref();
        let pool = rr.pool.as_ref().and_then(|p| pool_ref(p, pools, &field("rule.pool"), c));
        let rule_limits = limit_refs(&rr.limits, limits, &field("rule.limits"), c);
        let rule_fallback = rr.fallback.iter().filter_map(|p| pool_ref(p, pools, &field("rule.fallback"), c)).collect();
        let glob = |g: &Option<S<String>>| g.as_ref().map(|s| Glob::new(s.get_ref()));
        let m = RuleConfig {
            era: rr.era.as_ref().and_then(|e| era(e, &field("rule.era"), c)),
            protocol_version: glob(&rr.protocol_version),
            method: glob(&rr.method),
            tool: glob(&rr.tool),
            prompt: glob(&rr.prompt),
            resource: rr.resource.as_ref().map(|s| Glob::new_prefix(s.get_ref())),
            pool,
            fallback: rule_fallback,
            limits: rule_limits,
            timeouts: timeouts::overrides(
                RawTimeouts {
                    connect: rr.connect_timeout.as_ref(),
                    first_byte: rr.first_byte_timeout.as_ref(),
                    idle: rr.idle_timeout.as_ref(),
                },
                &field("rule"),
                c,
            ),
        };
        if m.pool.is_none() && m.limits.is_empty() && rr.pool.is_none() && m.timeouts == TimeoutOverrides::default() {
            c.push(rule.span(), field("rule"), "does nothing; give it a `pool`, `limits` or a timeout");
        }
        let by_call = m.method.is_some() || m.tool.is_some() || m.prompt.is_some() || m.resource.is_some();
        if !by_call && m.era.is_none() && m.protocol_version.is_none() {
            c.push(
                rule.span(),
                field("rule"),
                "matches nothing; give it `method`, `tool`, `resource`, `prompt`, `era` or `protocol_version`",
            );
        }
        if by_call && inspect == Inspect::Never {
            c.push(rule.span(), field("rule"), "matches on the body, but the route passes bodies through unread (`inspect = \"never\"`); remove `inspect` or match only on `era`/`protocol_version`");
        }
        let targets = [&m.tool, &m.prompt, &m.resource].iter().filter(|t| t.is_some()).count();
        if targets > 1 {
            c.push(rule.span(), field("rule"), "names more than one of `tool`, `resource`, `prompt`; a request has only one target, so split it into several rules");
        }
        rules.push(m);
    }
    let federation = super::federation::members(raw, pools, &field, c);
    if pool.is_none() && raw.pool.is_none() && rules.is_empty() && federation.is_none() {
        c.push(
            raw.name.span(),
            field("pool"),
            "route has no `pool` and no rules, so nothing could be served; add `pool = \"...\"`",
        );
    }
    let listener = raw.listener.as_ref().and_then(|l| {
        let addr = parse_addr(c, l, &field("listener"))?;
        if !listen.contains(&addr) {
            c.push(l.span(), field("listener"), "is not one of `proxy.listen`, so the route could never match; use an address from that list (a wildcard such as 0.0.0.0:8080 matches every local address on its port)");
        }
        Some(addr)
    });
    let batches = raw.batches.unwrap_or(false);
    if inspect == Inspect::Never && (batches || !raw.idempotent_tools.is_empty()) {
        c.push(
            raw.name.span(),
            field("inspect"),
            "`batches` and `idempotent_tools` need the body read; remove `inspect = \"never\"` or those keys",
        );
    }
    let mut route = RouteConfig {
        name: name.clone(),
        path,
        host: raw.host.as_ref().map(|h| Glob::new(&h.get_ref().to_ascii_lowercase())),
        listener,
        pool,
        fallback: raw.fallback.iter().filter_map(|p| pool_ref(p, pools, &field("fallback"), c)).collect(),
        inspect,
        batches,
        origins: super::origins::origins(raw.allowed_origins.as_deref(), &field("allowed_origins"), c),
        allowed_hosts: super::origins::hosts(raw.allowed_hosts.as_deref(), &field("allowed_hosts"), c),
        ips: super::ip_filter::ip_filter(
            raw.allow_ips.as_deref(),
            raw.deny_ips.as_deref(),
            &format!("route.{name}"),
            c,
        ),
        limits: limit_refs(&raw.limits, limits, &field("limits"), c),
        // Idempotent tools are known only from the body.
        needs_call: rules
            .iter()
            .any(|r| r.method.is_some() || r.tool.is_some() || r.prompt.is_some() || r.resource.is_some())
            || !raw.idempotent_tools.is_empty()
            || !raw.member.is_empty(),
        rules,
        timeouts: timeouts::overrides(
            RawTimeouts {
                connect: raw.connect_timeout.as_ref(),
                first_byte: raw.first_byte_timeout.as_ref(),
                idle: raw.idle_timeout.as_ref(),
            },
            &format!("route.{name}"),
            c,
        ),
        idempotent_tools: raw.idempotent_tools.iter().map(|t| Glob::new(t.get_ref())).collect(),
        serves: Vec::new(),
        auth: RouteAuth::default(),
        policy: None,
        access_sample: access_sample(raw.access_sample.as_ref(), &field("access_sample"), c),
        trace_sample: raw.trace_sample.as_ref().and_then(|r| super::traces::ratio(r, &field("trace_sample"), c)),
        headers: HeaderRules::default(),
        federation,
    };
    route.serves = serves(&route);
    route
}

/// A ratio from 0 to 1; 1 (every line) when absent.
fn access_sample(raw: Option<&S<f64>>, field: &str, c: &mut Collector<'_>) -> f64 {
    let Some(ratio) = raw else { return 1.0 };
    let r = *ratio.get_ref();
    if !(0.0..=1.0).contains(&r) {
        c.push(ratio.span(), field, "must be from 0 to 1: the fraction of successful requests logged (0.1 logs one in ten; errors, refusals and slow requests are always logged)");
        return 1.0;
    }
    r
}

/// The pools a route may send to, as the proxy picks them: a rule's fallbacks apply only when
/// the rule chose the pool.
fn serves(route: &RouteConfig) -> Vec<usize> {
    let rules = route.rules.iter().filter_map(|r| r.pool.map(|p| (p, &r.fallback)));
    let mut pools: Vec<usize> = route
        .pool
        .into_iter()
        .chain(route.fallback.iter().copied())
        .chain(rules.flat_map(|(p, fallback)| std::iter::once(p).chain(fallback.iter().copied())))
        .chain(route.federation.iter().flat_map(|f| f.members.iter().map(|m| m.pool)))
        .collect();
    pools.sort_unstable();
    pools.dedup();
    pools
}

fn era(e: &S<String>, field: &str, c: &mut Collector<'_>) -> Option<crate::mcp::method::Era> {
    use crate::mcp::method::Era;
    match e.get_ref().as_str() {
        "legacy" => Some(Era::Legacy),
        "modern" => Some(Era::Modern),
        _ => {
            c.push(
                e.span(),
                field,
                "unknown era; use \"legacy\" (2024-11-05 to 2025-11-25) or \"modern\" (2026-07-28 and later)",
            );
            None
        }
    }
}

fn limit_refs(names: &[S<String>], limits: &HashMap<String, usize>, field: &str, c: &mut Collector<'_>) -> Vec<usize> {
    names
        .iter()
        .filter_map(|n| {
            let found = limits.get(n.get_ref()).copied();
            if found.is_none() {
                let mut known: Vec<_> = limits.keys().map(String::as_str).collect();
                known.sort_unstable();
                c.push(
                    n.span(),
                    field,
                    format!("no limit named `{}`; defined limits: [{}]", n.get_ref(), known.join(", ")),
                );
            }
            found
        })
        .collect()
}
