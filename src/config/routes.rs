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
    let inspect = match raw.inspect.as_ref().map(|i| (i.get_ref().as_str(), i.span())) {
        None | Some(("auto", _)) => Inspect::Auto,
        Some(("always", _)) => Inspect::Always,
        Some(("never", _)) => Inspect::Never,
        Some((other, span)) => {
            c.push(span, field("inspect"), format!("unknown mode `{other}`; use \"auto\", \"always\" or \"never\""));
            Inspect::Auto
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
        if m.method.is_none() && m.tool.is_none() && m.prompt.is_none() && m.resource.is_none() {
            c.push(rule.span(), field("rule"), "matches nothing; give it `method`, `tool`, `resource` or `prompt`");
        }
        let targets = [&m.tool, &m.prompt, &m.resource].iter().filter(|t| t.is_some()).count();
        if targets > 1 {
            c.push(rule.span(), field("rule"), "names more than one of `tool`, `resource`, `prompt`; a request has only one target, so split it into several rules");
        }
        rules.push(m);
    }
    if pool.is_none() && raw.pool.is_none() && rules.is_empty() {
        c.push(
            raw.name.span(),
            field("pool"),
            "route has no `pool` and no rules, so nothing could be served; add `pool = \"...\"`",
        );
    }
    let mut route = RouteConfig {
        name: name.clone(),
        path,
        host: raw.host.as_ref().map(|h| Glob::new(&h.get_ref().to_ascii_lowercase())),
        listener: raw.listener.as_ref().and_then(|l| parse_addr(c, l, &field("listener"))),
        pool,
        fallback: raw.fallback.iter().filter_map(|p| pool_ref(p, pools, &field("fallback"), c)).collect(),
        inspect,
        allowed_origins: raw.allowed_origins.iter().flatten().map(|o| o.get_ref().clone()).collect(),
        limits: limit_refs(&raw.limits, limits, &field("limits"), c),
        // Idempotent tools are known only from the body.
        needs_call: !rules.is_empty() || !raw.idempotent_tools.is_empty(),
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
    };
    route.serves = serves(&route);
    route
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
        .collect();
    pools.sort_unstable();
    pools.dedup();
    pools
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
