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
//! answer (`proxy::reply`), the audit line (`audit`), filtered discovery (`discovery`, which
//! asks [`Viewer::allows`] per list entry: the same decision a call on the entry would get).

pub mod uri;

use std::cell::Cell;

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

/// The caller as rules see it: role and scope bits (scopes with what they imply), computed
/// when a rule first asks (a call denied by a pattern rule never needs them).
struct Caller<'p, 'i> {
    policy: &'p PolicyConfig,
    identity: &'i Identity,
    roles: Cell<Option<u128>>,
    scopes: Cell<Option<u128>>,
}

impl Caller<'_, '_> {
    fn roles(&self) -> u128 {
        let roles = self.roles.get().unwrap_or_else(|| bits(&self.policy.roles, &self.identity.roles, |i| 1u128 << i));
        self.roles.set(Some(roles));
        roles
    }

    fn scopes(&self) -> u128 {
        let implies = &self.policy.implies;
        let scopes = self.scopes.get().unwrap_or_else(|| {
            bits(&self.policy.scopes, &self.identity.scopes, |i| implies.get(i).copied().unwrap_or(0))
        });
        self.scopes.set(Some(scopes));
        scopes
    }
}

/// The union of `bit(i)` over the caller's `names` found at `i` in the sorted `table`.
fn bits(table: &[String], names: &[String], bit: impl Fn(usize) -> u128) -> u128 {
    if table.is_empty() {
        return 0;
    }
    names.iter().filter_map(|n| table.binary_search_by(|t| t.as_str().cmp(n)).ok()).fold(0, |m, i| m | bit(i))
}

/// Whether every message of `call` is allowed for `identity` (None, which a route with a
/// policy never lets through authentication, is denied).
pub fn check(policy: &PolicyConfig, identity: Option<&Identity>, call: &Call) -> Result<(), Denial> {
    let by_default = Denial { element: 0, rule: None, deny_as: policy.deny_as, insufficient_scope: false };
    let Some(identity) = identity else { return Err(by_default) };
    let caller = Caller { policy, identity, roles: Cell::new(None), scopes: Cell::new(None) };
    for (element, e) in call.elements().iter().enumerate() {
        decide(policy, &caller, e).map_err(|d| Denial { element, ..d })?;
    }
    Ok(())
}

/// Whether `identity` may call `method` (`tools/call`, `prompts/get`, `resources/read`) on
/// `target`, as if it sent that call: what a `completion/complete` reference is judged by.
pub fn check_target(
    policy: &PolicyConfig,
    identity: Option<&Identity>,
    method: Method,
    target: &str,
) -> Result<(), Denial> {
    let by_default = Denial { element: 0, rule: None, deny_as: policy.deny_as, insufficient_scope: false };
    let Some(identity) = identity else { return Err(by_default) };
    let caller = Caller { policy, identity, roles: Cell::new(None), scopes: Cell::new(None) };
    decide_op(policy, &caller, &Op::new(method.as_str(), method.target_kind(), Some(target)))
}

/// One caller's view of a route's policy, for judging many targets (the entries of a list):
/// the caller's role and scope bits are computed once, not once per entry.
pub struct Viewer<'p, 'i> {
    policy: &'p PolicyConfig,
    caller: Option<Caller<'p, 'i>>,
}

impl<'p, 'i> Viewer<'p, 'i> {
    pub fn new(policy: &'p PolicyConfig, identity: Option<&'i Identity>) -> Viewer<'p, 'i> {
        let caller =
            identity.map(|identity| Caller { policy, identity, roles: Cell::new(None), scopes: Cell::new(None) });
        Viewer { policy, caller }
    }

    /// Whether calling `method` on `target` would be allowed, scopes included: a list shows an
    /// entry iff this holds, so list and call never disagree.
    pub fn allows(&self, method: Method, target: &str) -> bool {
        let Some(caller) = &self.caller else { return false };
        let op = Op::new(method.as_str(), method.target_kind(), Some(target));
        decide_op(self.policy, caller, &op).is_ok()
    }
}

fn decide(policy: &PolicyConfig, caller: &Caller<'_, '_>, e: &Element) -> Result<(), Denial> {
    if matches!(e.method, Method::Response | Method::None) {
        return Ok(());
    }
    // Read once, not once per rule.
    decide_op(policy, caller, &Op::new(e.method_str(), e.method.target_kind(), e.target_str()))
}

fn decide_op(policy: &PolicyConfig, caller: &Caller<'_, '_>, op: &Op<'_>) -> Result<(), Denial> {
    for (i, rule) in policy.rules.iter().enumerate() {
        let deny = rule.effect == Effect::Deny;
        if !who(&rule.who, caller) || !what(&rule.what, op, deny) {
            continue;
        }
        let denial =
            |insufficient_scope| Denial { element: 0, rule: Some(i), deny_as: rule.deny_as, insufficient_scope };
        return match rule.effect {
            Effect::Deny => Err(denial(false)),
            Effect::Allow if rule.require == 0 || caller.scopes() & rule.require == rule.require => Ok(()),
            Effect::Allow => Err(denial(true)),
        };
    }
    Err(Denial { element: 0, rule: None, deny_as: policy.deny_as, insufficient_scope: false })
}

fn who(w: &Who, c: &Caller<'_, '_>) -> bool {
    let id = c.identity;
    (w.ids.is_empty() || w.ids.iter().any(|g| g.is_match(&id.id)))
        && (w.tenants.is_empty() || id.tenant.as_deref().is_some_and(|t| w.tenants.iter().any(|g| g.is_match(t))))
        && (w.roles == 0 || w.roles & c.roles() != 0)
        && (w.scopes == 0 || w.scopes & c.scopes() != 0)
        && w.claims
            .iter()
            .all(|(name, values)| id.claims.iter().any(|(n, v)| n == name && values.iter().any(|x| x == v)))
}

/// What rules match a message on.
struct Op<'e> {
    method: &'e str,
    kind: Option<TargetKind>,
    target: Option<&'e str>,
    /// The target's other spellings (`uri::spellings`), made when a deny rule on resources
    /// first needs them: once per message, not once per rule.
    spelled: std::cell::OnceCell<Vec<String>>,
}

impl<'e> Op<'e> {
    fn new(method: &'e str, kind: Option<TargetKind>, target: Option<&'e str>) -> Op<'e> {
        Op { method, kind, target, spelled: std::cell::OnceCell::new() }
    }
}

fn what(w: &What, op: &Op<'_>, deny: bool) -> bool {
    if w.is_any() {
        return true;
    }
    let any = |globs: &[Glob], text: &str| {
        globs.iter().any(|g| if deny { g.is_match_ignore_ascii_case(text) } else { g.is_match(text) })
    };
    if any(&w.methods, op.method) {
        return true;
    }
    let Some(target) = op.target else { return false };
    // A deny pattern on names also denies the name a backend may read after cutting it at a
    // NUL or stripping control characters; an allow pattern never admits such a name.
    let named = |globs: &[Glob]| match deny {
        true => {
            any(globs, target)
                || (uri::has_controls(target) && uri::controls_gone(target).iter().any(|t| any(globs, t)))
        }
        false => !uri::has_controls(target) && any(globs, target),
    };
    match op.kind {
        Some(TargetKind::Tool) => named(&w.tools),
        Some(TargetKind::Prompt) => named(&w.prompts),
        // An allow pattern such as `file:///docs/*` must not admit `file:///docs/../secret`;
        // a deny pattern denies every spelling that may name what it matches.
        Some(TargetKind::Resource) if deny => {
            !w.resources.is_empty()
                && (any(&w.resources, target)
                    || op.spelled.get_or_init(|| uri::spellings(target)).iter().any(|r| any(&w.resources, r)))
        }
        Some(TargetKind::Resource) => !walks_out(target) && any(&w.resources, target),
        None => false,
    }
}

/// Whether a URI holds a dot segment, a backslash, an encoded `.`, `/` or `\`, or a control
/// character or space (which parsers strip, so `..\t` is `..` to them): spellings a backend
/// may resolve to somewhere other than where the pattern looked.
fn walks_out(uri: &str) -> bool {
    let b = uri.as_bytes();
    uri::has_controls(uri)
        || b.contains(&b'\\')
        || b.windows(3).any(|w| matches!(w, [b'%', b'2', b'e' | b'E' | b'f' | b'F'] | [b'%', b'5', b'c' | b'C']))
        || uri.split(['/', '?', '#']).any(|segment| segment == "." || segment == "..")
}

#[cfg(test)]
mod tests;
