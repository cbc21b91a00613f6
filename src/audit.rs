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

/// The most of a client's value an audit line holds: a denied 3 MB name must not make a
/// 3 MB log line (denials spend no limit budget, so nothing else throttles them).
const MAX_VALUE: usize = 256;

/// `value` cut to [`MAX_VALUE`] bytes (at a character boundary), its full length noted.
fn clipped(value: &str) -> std::borrow::Cow<'_, str> {
    if value.len() <= MAX_VALUE {
        return value.into();
    }
    let mut end = MAX_VALUE;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &value[..end], value.len()).into()
}

/// The route's policy denied `element` to `identity`.
pub fn denied(identity: &str, route: &str, element: &Element, denial: &Denial) {
    let rule = denial.rule.map_or_else(|| "default".to_owned(), |i| i.to_string());
    tracing::info!(
        target: "mcp_edge::audit",
        event = "policy_denied",
        identity = ?clipped(identity),
        route,
        method = ?clipped(element.method_str()),
        tool = ?clipped(element.target_str().unwrap_or("")),
        rule = %rule,
        deny_as = denial.deny_as.as_str(),
        insufficient_scope = denial.insufficient_scope,
    );
}

#[cfg(test)]
mod tests {
    use super::{clipped, MAX_VALUE};

    #[test]
    fn a_long_value_is_clipped_at_a_character_boundary_and_its_length_noted() {
        assert_eq!(clipped("deploy_app"), "deploy_app");
        let long = "é".repeat(MAX_VALUE);
        let cut = clipped(&long);
        assert!(cut.len() < MAX_VALUE + 20, "{}", cut.len());
        assert!(cut.ends_with(&format!("… ({} bytes)", long.len())), "{cut}");
    }
}
