//! Audit events: one structured line per security decision against a caller, on their own
//! tracing target, `mcp_edge::audit` (route them with `RUST_LOG=mcp_edge::audit=info` or a
//! log pipeline filter on the target). Authentication failures name the route, why and the
//! client address; policy denials name the identity id, route, method, target, rule and how
//! the caller was answered. Never a credential: nothing here is handed one. Values sent by the
//! client (method, tool name, URI) are written escaped (`Debug`), so they cannot forge lines.

use std::net::IpAddr;

use crate::auth::Denied;
use crate::mcp::call::Element;
use crate::policy::Denial;

/// A request on a route with `auth` brought no valid credential.
pub fn unauthenticated(route: &str, why: Denied, client: Option<IpAddr>) {
    tracing::info!(
        target: "mcp_edge::audit",
        event = "auth_failed",
        route,
        why = why.as_str(),
        client = %client.map_or_else(|| "-".to_owned(), |ip| ip.to_string()),
    );
}

/// The route's policy denied `element` to `identity`.
pub fn denied(identity: &str, route: &str, element: &Element, denial: &Denial) {
    let rule = denial.rule.map_or_else(|| "default".to_owned(), |i| i.to_string());
    tracing::info!(
        target: "mcp_edge::audit",
        event = "policy_denied",
        identity,
        route,
        method = ?element.method_str(),
        tool = ?element.target_str().unwrap_or(""),
        rule = %rule,
        deny_as = denial.deny_as.as_str(),
        insufficient_scope = denial.insufficient_scope,
    );
}
