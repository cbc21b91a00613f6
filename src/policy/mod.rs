//! Per-route policy: whether the authenticated caller may make the call the proxy read. The
//! rules (compiled at load into `config::model::PolicyConfig`) are tried in order and the
//! first whose caller conditions and call patterns both match decides; a call no rule matches
//! is denied. An allow rule with `require_scopes` denies a caller lacking one of them as
//! "insufficient scope", so the answer can name the scopes that would help.
//!
//! Decides on the one classification (`mcp::call`): every element of a batch, and the first
//! denied element denies the request. JSON-RPC responses from the client (answers to the
//! server's own requests) and requests without a reading (GET streams, DELETE) carry no
//! operation and pass. Pure and allocation-free: the caller's roles and scopes become bit
//! masks once per request, and rules compare masks and compiled globs. Not owned here: the
//! answer (`proxy::reply`), the audit line (`audit`), filtered discovery.

use crate::auth::identity::Identity;
use crate::config::model::{DenyAs, Effect, PolicyConfig, What, Who};
use crate::glob::Glob;
use crate::mcp::call::{Call, Element};
use crate::mcp::method::{Method, TargetKind};

/// Why a call was denied. Indexes only, so it outlives the snapshot borrow it was decided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denial {
    /// The denied message, an index into the request's elements.
    pub element: usize,
    /// The rule that denied; None: no rule matched (deny by default).
    pub rule: Option<usize>,
    pub deny_as: DenyAs,
    /// The rule allows the call to callers holding scopes this one lacks: its challenge applies.
    pub insufficient_scope: bool,
}

/// The caller as rules see it: role and scope bits (scopes with what they imply).
struct Caller<'i> {
    identity: &'i Identity,
    roles: u128,
    scopes: u128,
}

/// Whether every message of `call` is allowed for `identity` (None, which a route with a
/// policy never lets through authentication, is denied).
pub fn check(policy: &PolicyConfig, identity: Option<&Identity>, call: &Call) -> Result<(), Denial> {
    let by_default = Denial { element: 0, rule: None, deny_as: policy.deny_as, insufficient_scope: false };
    let Some(identity) = identity else { return Err(by_default) };
    let caller = caller(policy, identity);
    for (element, e) in call.elements().iter().enumerate() {
        decide(policy, &caller, e).map_err(|d| Denial { element, ..d })?;
    }
    Ok(())
}

fn caller<'i>(policy: &PolicyConfig, identity: &'i Identity) -> Caller<'i> {
    let index = |table: &[String], name: &str| table.binary_search_by(|n| n.as_str().cmp(name)).ok();
    let roles = identity.roles.iter().filter_map(|r| index(&policy.roles, r)).fold(0u128, |m, i| m | 1u128 << i);
    let scopes = identity
        .scopes
        .iter()
        .filter_map(|s| index(&policy.scopes, s).and_then(|i| policy.implies.get(i)))
        .fold(0u128, |m, implied| m | implied);
    Caller { identity, roles, scopes }
}

fn decide(policy: &PolicyConfig, caller: &Caller<'_>, e: &Element) -> Result<(), Denial> {
    if matches!(e.method, Method::Response | Method::None) {
        return Ok(());
    }
    for (i, rule) in policy.rules.iter().enumerate() {
        let deny = rule.effect == Effect::Deny;
        if !who(&rule.who, caller) || !what(&rule.what, e, deny) {
            continue;
        }
        let denial =
            |insufficient_scope| Denial { element: 0, rule: Some(i), deny_as: rule.deny_as, insufficient_scope };
        return match rule.effect {
            Effect::Deny => Err(denial(false)),
            Effect::Allow if caller.scopes & rule.require == rule.require => Ok(()),
            Effect::Allow => Err(denial(true)),
        };
    }
    Err(Denial { element: 0, rule: None, deny_as: policy.deny_as, insufficient_scope: false })
}

fn who(w: &Who, c: &Caller<'_>) -> bool {
    let id = c.identity;
    (w.ids.is_empty() || w.ids.iter().any(|g| g.is_match(&id.id)))
        && (w.tenants.is_empty() || id.tenant.as_deref().is_some_and(|t| w.tenants.iter().any(|g| g.is_match(t))))
        && (w.roles == 0 || w.roles & c.roles != 0)
        && (w.scopes == 0 || w.scopes & c.scopes != 0)
        && w.claims
            .iter()
            .all(|(name, values)| id.claims.iter().any(|(n, v)| n == name && values.iter().any(|x| x == v)))
}

fn what(w: &What, e: &Element, deny: bool) -> bool {
    if w.is_any() {
        return true;
    }
    let any = |globs: &[Glob], text: &str| {
        globs.iter().any(|g| if deny { g.is_match_ignore_ascii_case(text) } else { g.is_match(text) })
    };
    if any(&w.methods, e.method_str()) {
        return true;
    }
    let Some(target) = e.target_str() else { return false };
    match e.method.target_kind() {
        Some(TargetKind::Tool) => any(&w.tools, target),
        Some(TargetKind::Prompt) => any(&w.prompts, target),
        // An allow pattern such as `file:///docs/*` must not admit `file:///docs/../secret`.
        Some(TargetKind::Resource) => (deny || !walks_out(target)) && any(&w.resources, target),
        None => false,
    }
}

/// Whether a URI holds a dot segment, a backslash or an encoded `.`, `/` or `\`: spellings a
/// backend may resolve to somewhere other than where the pattern looked.
fn walks_out(uri: &str) -> bool {
    let b = uri.as_bytes();
    b.contains(&b'\\')
        || b.windows(3).any(|w| matches!(w, [b'%', b'2', b'e' | b'E' | b'f' | b'F'] | [b'%', b'5', b'c' | b'C']))
        || uri.split(['/', '?', '#']).any(|segment| segment == "." || segment == "..")
}

#[cfg(test)]
mod tests;
