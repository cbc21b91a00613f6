//! The validated, compiled shape of a route's `[route.policy]`: rules with their patterns
//! compiled to [`Glob`]s and their role and scope sets to bit masks, the scope hierarchy
//! expanded, the insufficient-scope challenges rendered. Built only by `config::policy`;
//! evaluated by `crate::policy`, which owns the semantics.

use crate::glob::Glob;
pub use crate::mcp::error::UnknownStyle;

/// At most this many distinct scopes (and, separately, roles) per policy: one bit each.
pub const MAX_NAMES: usize = 128;

#[derive(Debug, Clone, PartialEq)]
pub struct PolicyConfig {
    pub rules: Vec<PolicyRule>,
    /// How the implicit deny (no rule matched) answers.
    pub deny_as: DenyAs,
    /// Whose "does not exist" answer `DenyAs::Unknown` copies.
    pub unknown_style: UnknownStyle,
    /// The scope names the policy mentions, sorted: bit `i` of a scope mask is `scopes[i]`.
    pub scopes: Vec<String>,
    /// Per scope: its own bit and the bits of every scope it implies, transitively.
    pub implies: Vec<u128>,
    /// The role names the rules test, sorted: bit `i` of a role mask is `roles[i]`.
    pub roles: Vec<String>,
    /// Claim names the rules test: JWT verification keeps these on the identity.
    pub claims: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// How a denied call is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyAs {
    /// HTTP 403 and a JSON-RPC error (with an `insufficient_scope` challenge when a scope
    /// would make the call allowed).
    Forbidden,
    /// The answer a server gives for a tool, prompt, resource or method it does not have.
    Unknown,
}

impl DenyAs {
    pub fn as_str(self) -> &'static str {
        match self {
            DenyAs::Forbidden => "forbidden",
            DenyAs::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRule {
    pub effect: Effect,
    pub deny_as: DenyAs,
    pub who: Who,
    pub what: What,
    /// Scope bits an allowed call needs (all of them, after implication); 0: none.
    pub require: u128,
    /// `WWW-Authenticate` for a caller lacking `require`, naming every required scope.
    pub challenge: Option<String>,
}

/// Conditions on the caller; each one present must hold. Matched exactly: these values come
/// from the proxy's own config or a verified token, not from the request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Who {
    pub ids: Vec<Glob>,
    pub tenants: Vec<Glob>,
    /// Any of these role bits; 0: no condition.
    pub roles: u128,
    /// Any of these scope bits (the caller's scopes expanded); 0: no condition.
    pub scopes: u128,
    /// Each claim must hold one of its values.
    pub claims: Vec<(String, Vec<String>)>,
}

/// The calls a rule covers: any call when every list is empty, else a call any list matches.
/// A deny rule's patterns ignore ASCII case, so a case variant cannot walk around them on a
/// backend that folds case; an allow rule's match exactly.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct What {
    /// Method names as sent (`tools/list`, `notifications/*`).
    pub methods: Vec<Glob>,
    /// `tools/call` by tool name.
    pub tools: Vec<Glob>,
    /// `resources/read`, `subscribe`, `unsubscribe` by URI.
    pub resources: Vec<Glob>,
    /// `prompts/get` by prompt name.
    pub prompts: Vec<Glob>,
}

impl What {
    pub fn is_any(&self) -> bool {
        self.methods.is_empty() && self.tools.is_empty() && self.resources.is_empty() && self.prompts.is_empty()
    }
}
