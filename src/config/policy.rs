//! Validation of `[route.policy]`: rules checked and compiled once (patterns to globs, role
//! and scope names to bit masks, `scope_implies` expanded transitively, the insufficient-scope
//! challenge rendered), every mistake collected with its place and fix. A policy needs the
//! route's `auth` (it decides on the caller) and its bodies read (it decides on the call).
//! Part of the raw → model pipeline; what the rules mean is `crate::policy`'s.

use std::collections::BTreeMap;

use super::error::Collector;
use super::model::{
    DenyAs, Effect, Inspect, PolicyConfig, PolicyRule, RouteConfig, UnknownStyle, What, Who, MAX_NAMES,
};
use super::raw::{RawPolicy, RawPolicyRule, RawRoute, S};
use crate::glob::Glob;

type List = Option<S<Vec<S<String>>>>;

pub fn policy(raw: &RawRoute, route: &RouteConfig, c: &mut Collector<'_>) -> Option<PolicyConfig> {
    let p = raw.policy.as_ref()?;
    let field = |f: &str| format!("route.{}.policy{f}", route.name);
    if raw.auth.is_none() {
        c.push(p.span(), field(""), "decides on who the caller is, but the route has no `auth`: add `auth = [\"<authenticator>\"]` to the route (naming an [[authenticator]]), or remove [route.policy]");
    }
    if route.inspect == Inspect::Never {
        c.push(p.span(), field(""), "decides on each call's method and target, which a route with `inspect = \"never\"` never reads; remove `inspect` or the policy");
    }
    let rp = p.get_ref();
    let deny_as = deny_as(rp.deny_as.as_ref(), &field(".deny_as"), c).unwrap_or(DenyAs::Forbidden);
    let unknown_style = match rp.unknown_style.as_ref().map(|s| (s.get_ref().as_str(), s.span())) {
        None | Some(("spec", _)) => UnknownStyle::Spec,
        Some(("typescript-sdk", _)) => UnknownStyle::TypeScriptSdk,
        Some(("python-sdk", _)) => UnknownStyle::PythonSdk,
        Some((_, span)) => {
            c.push(span, field(".unknown_style"), "unknown style; use \"spec\" (MCP's examples), \"typescript-sdk\" or \"python-sdk\" (what the backend's SDK answers)");
            UnknownStyle::Spec
        }
    };
    let scopes = names(scope_names(rp), &field(""), "scopes", c);
    let roles = names(rp.rule.iter().flat_map(|r| strings(&r.get_ref().roles)).collect(), &field(""), "roles", c);
    for s in scope_names(rp).into_iter().filter(|s| !is_scope_token(s.get_ref())) {
        c.push(s.span(), field(""), "names a scope that is not an OAuth scope token: use printable ASCII without spaces, `\"` or `\\` (RFC 6749 3.3)");
    }
    let implies = implications(&rp.scope_implies, &scopes);
    let mut claims: Vec<String> = rp.rule.iter().flat_map(|r| r.get_ref().claims.keys().cloned()).collect();
    claims.sort_unstable();
    claims.dedup();
    let tables = Tables { scopes: &scopes, roles: &roles, public_url: route.auth.public_url.as_deref() };
    let rules = rp.rule.iter().map(|r| rule(r, deny_as, &tables, &field(".rule"), c)).collect();
    Some(PolicyConfig { rules, deny_as, unknown_style, scopes, implies, roles, claims })
}

struct Tables<'t> {
    scopes: &'t [String],
    roles: &'t [String],
    public_url: Option<&'t str>,
}

fn rule(r: &S<RawPolicyRule>, default: DenyAs, t: &Tables<'_>, field: &str, c: &mut Collector<'_>) -> PolicyRule {
    let raw = r.get_ref();
    let f = |k: &str| format!("{field}.{k}");
    let effect = match raw.effect.get_ref().as_str() {
        "allow" => Effect::Allow,
        "deny" => Effect::Deny,
        _ => {
            c.push(raw.effect.span(), f("effect"), "unknown effect; use \"allow\" or \"deny\"");
            Effect::Deny
        }
    };
    let globs = |list: &List, key: &str, c: &mut Collector<'_>| -> Vec<Glob> {
        checked(list, &f(key), c).iter().map(|s| Glob::new(s)).collect()
    };
    let mut claims = Vec::new();
    for (name, values) in &raw.claims {
        let values = checked(&Some(values.clone()), &f("claims"), c);
        claims.push((name.clone(), values));
    }
    let who = Who {
        ids: globs(&raw.ids, "ids", c),
        tenants: globs(&raw.tenants, "tenants", c),
        roles: mask(&checked(&raw.roles, &f("roles"), c), t.roles),
        scopes: mask(&checked(&raw.scopes, &f("scopes"), c), t.scopes),
        claims,
    };
    let what = What {
        methods: globs(&raw.methods, "methods", c),
        tools: globs(&raw.tools, "tools", c),
        resources: globs(&raw.resources, "resources", c),
        prompts: globs(&raw.prompts, "prompts", c),
    };
    let required = checked(&raw.require_scopes, &f("require_scopes"), c);
    if let (Effect::Deny, Some(s)) = (effect, &raw.require_scopes) {
        c.push(
            s.span(),
            f("require_scopes"),
            "a deny rule denies whatever the scopes; move `require_scopes` to an allow rule",
        );
    }
    let challenge = (!required.is_empty() && effect == Effect::Allow)
        .then(|| crate::auth::challenge::insufficient_scope(t.public_url, &required));
    PolicyRule {
        effect,
        deny_as: deny_as(raw.deny_as.as_ref(), &f("deny_as"), c).unwrap_or(default),
        who,
        what,
        require: mask(&required, t.scopes),
        challenge,
    }
}

fn deny_as(v: Option<&S<String>>, field: &str, c: &mut Collector<'_>) -> Option<DenyAs> {
    let v = v?;
    match v.get_ref().as_str() {
        "forbidden" => Some(DenyAs::Forbidden),
        "unknown" => Some(DenyAs::Unknown),
        _ => {
            c.push(v.span(), field, "unknown answer; use \"forbidden\" (403) or \"unknown\" (as if the tool, prompt or resource did not exist)");
            None
        }
    }
}

/// The values of a list key; an empty list or value is an error (it could never match).
fn checked(list: &List, field: &str, c: &mut Collector<'_>) -> Vec<String> {
    let Some(list) = list else { return Vec::new() };
    if list.get_ref().is_empty() {
        c.push(
            list.span(),
            field,
            "is empty, so the rule could never match; list values, or remove the key to match any",
        );
    }
    for v in list.get_ref().iter().filter(|v| v.get_ref().is_empty()) {
        c.push(v.span(), field, "holds an empty value; remove it");
    }
    list.get_ref().iter().map(|v| v.get_ref().clone()).collect()
}

fn strings(list: &List) -> Vec<S<String>> {
    list.iter().flat_map(|l| l.get_ref().iter().cloned()).collect()
}

/// Every scope name the policy mentions: rules' `scopes` and `require_scopes`, and both sides
/// of `scope_implies` (whose keys carry the span of their list).
fn scope_names(p: &RawPolicy) -> Vec<S<String>> {
    let mut out: Vec<S<String>> = Vec::new();
    for (broad, narrower) in &p.scope_implies {
        out.push(S::new(narrower.span(), broad.clone()));
        out.extend(narrower.get_ref().iter().cloned());
    }
    for r in &p.rule {
        out.extend(strings(&r.get_ref().scopes));
        out.extend(strings(&r.get_ref().require_scopes));
    }
    out
}

/// The sorted, distinct names; more than [`MAX_NAMES`] is an error.
fn names(list: Vec<S<String>>, field: &str, what: &str, c: &mut Collector<'_>) -> Vec<String> {
    let span = list.get(MAX_NAMES).map(S::span);
    let mut names: Vec<String> = list.into_iter().map(S::into_inner).collect();
    names.sort_unstable();
    names.dedup();
    if names.len() > MAX_NAMES {
        c.push(span.unwrap_or(0..0), field, format!("names more than {MAX_NAMES} distinct {what}; group them (a role or scope that implies the others) or split the route"));
        names.truncate(MAX_NAMES);
    }
    names
}

fn bit(name: &str, table: &[String]) -> u128 {
    table.binary_search_by(|n| n.as_str().cmp(name)).map_or(0, |i| 1u128 << i)
}

fn mask(names: &[String], table: &[String]) -> u128 {
    names.iter().fold(0, |m, n| m | bit(n, table))
}

/// Per scope, its own bit and every scope it implies, transitively (cycles are harmless).
fn implications(implies: &BTreeMap<String, S<Vec<S<String>>>>, scopes: &[String]) -> Vec<u128> {
    let mut out: Vec<u128> = (0..scopes.len()).map(|i| 1u128 << i).collect();
    for (broad, narrower) in implies {
        let Ok(i) = scopes.binary_search(broad) else { continue };
        let direct = narrower.get_ref().iter().fold(0, |m, n| m | bit(n.get_ref(), scopes));
        if let Some(m) = out.get_mut(i) {
            *m |= direct;
        }
    }
    loop {
        let mut changed = false;
        for i in 0..out.len() {
            let closed = (0..out.len()).filter(|&j| out[i] & (1u128 << j) != 0).fold(out[i], |m, j| m | out[j]);
            changed |= closed != out[i];
            out[i] = closed;
        }
        if !changed {
            return out;
        }
    }
}

/// RFC 6749 3.3 `scope-token`: %x21 / %x23-5B / %x5D-7E, at least one.
fn is_scope_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}
