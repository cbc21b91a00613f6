//! Request routing, compiled from config: listener, host and path select a route; the route's
//! MCP rules (first match wins) or its default pool select the pool. Pure and synchronous:
//! no I/O, no sessions (a session's backend overrides the result elsewhere, in `proxy`).
//!
//! Paths are matched in their canonical form ([`path`]), ASCII-case-insensitively, and an
//! exact route also matches its path with a trailing `/`: backends such as Express route
//! `/MCP` and `/mcp/` to `/mcp`, so a route that did not would be walked around. Rules read
//! only the one classification of a request ([`crate::mcp::call`]).

pub mod path;

use std::borrow::Cow;
use std::net::SocketAddr;

use crate::config::model::{Config, Inspect, PathMatch, RouteConfig, RuleConfig};
use crate::mcp::call::Element;
use crate::mcp::method::{Era, TargetKind};

pub struct Router {
    routes: Vec<RouteConfig>,
}

/// What a rule can look at: the request's protocol era and version, and one message.
#[derive(Debug, Clone, Copy)]
pub struct Msg<'a> {
    pub era: Era,
    /// `MCP-Protocol-Version` as sent (`2025-03-26` when absent, as the spec says to assume).
    pub version: &'a str,
    pub element: &'a Element,
}

/// The version a request without `MCP-Protocol-Version` is taken to speak.
pub const ASSUMED_VERSION: &str = "2025-03-26";

impl Router {
    pub fn new(config: &Config) -> Router {
        Router { routes: config.routes.clone() }
    }

    pub fn routes(&self) -> &[RouteConfig] {
        &self.routes
    }

    /// The first route whose listener, host and path all match; with its index. `path` must be
    /// canonical ([`path::canonicalize`]). A route's wildcard listener (`0.0.0.0:8080`) matches
    /// any local address on its port, since the accepted socket reports the concrete one.
    pub fn find(&self, listener: Option<SocketAddr>, host: Option<&str>, path: &str) -> Option<(usize, &RouteConfig)> {
        let host = host.map(normalize_host);
        self.routes.iter().enumerate().find(|(_, r)| {
            r.listener.is_none_or(|l| listener.is_some_and(|a| listener_matches(l, a)))
                && r.host.as_ref().is_none_or(|h| host.as_deref().is_some_and(|x| h.is_match(x)))
                && path_matches(&r.path, path)
        })
    }
}

fn listener_matches(configured: SocketAddr, local: SocketAddr) -> bool {
    configured == local || (configured.ip().is_unspecified() && configured.port() == local.port())
}

fn path_matches(route: &PathMatch, path: &str) -> bool {
    let (p, path) = (route_path(route).as_bytes(), path.as_bytes());
    match route {
        PathMatch::Exact(_) => {
            let path = path.strip_suffix(b"/").filter(|_| path.len() > 1).unwrap_or(path);
            path.eq_ignore_ascii_case(p)
        }
        PathMatch::Prefix(_) => path.get(..p.len()).is_some_and(|head| head.eq_ignore_ascii_case(p)),
    }
}

fn route_path(route: &PathMatch) -> &str {
    match route {
        PathMatch::Exact(p) | PathMatch::Prefix(p) => p,
    }
}

/// Routing decisions of one route.
pub trait RouteExt {
    /// The first matching rule, if any, with its index.
    fn rule(&self, msg: Msg<'_>) -> Option<(usize, &RuleConfig)>;
    /// The pool of the first matching rule, if it names one.
    fn rule_pool(&self, msg: Msg<'_>) -> Option<usize> {
        self.rule(msg).and_then(|(_, r)| r.pool)
    }
    /// Whether POST bodies are read, validated and classified before a pool is chosen.
    fn validates(&self) -> bool;
}

impl RouteExt for RouteConfig {
    fn rule(&self, msg: Msg<'_>) -> Option<(usize, &RuleConfig)> {
        self.rules.iter().enumerate().find(|(_, r)| rule_matches(r, msg))
    }

    fn validates(&self) -> bool {
        self.inspect == Inspect::Always
    }
}

fn rule_matches(rule: &RuleConfig, msg: Msg<'_>) -> bool {
    let e = msg.element;
    let target = e.target_str();
    let target_ok = |glob: &Option<crate::glob::Glob>, wanted: TargetKind| match glob {
        None => true,
        Some(g) => e.method.target_kind() == Some(wanted) && target.is_some_and(|t| g.is_match(t)),
    };
    // A request with no JSON-RPC reading (GET, DELETE, a pass-through body) matches only rules
    // that look at nothing else than its protocol version.
    let by_call = rule.method.is_some() || rule.tool.is_some() || rule.prompt.is_some() || rule.resource.is_some();
    if by_call && e.method == crate::mcp::method::Method::None {
        return false;
    }
    rule.era.is_none_or(|era| era == msg.era)
        && rule.protocol_version.as_ref().is_none_or(|v| v.is_match(msg.version))
        && rule.method.as_ref().is_none_or(|m| m.is_match(e.method_str()))
        && target_ok(&rule.tool, TargetKind::Tool)
        && target_ok(&rule.prompt, TargetKind::Prompt)
        && target_ok(&rule.resource, TargetKind::Resource)
}

/// Host header without port and without the trailing dot of a fully qualified name
/// (`a.example.` is `a.example` to DNS and to servers that route by host, so a host route
/// must not be skipped by it), lowercased only when needed (clients nearly always send
/// lowercase).
pub fn normalize_host(host: &str) -> Cow<'_, str> {
    let bare = match host.rsplit_once(':') {
        Some((h, port)) if !h.ends_with(']') || host.starts_with('[') => {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        }
        _ => host,
    };
    let bare = bare.strip_suffix('.').filter(|b| !b.is_empty()).unwrap_or(bare);
    if bare.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(bare.to_ascii_lowercase())
    } else {
        Cow::Borrowed(bare)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const CONF: &str = r#"
[[pool]]
name = "main"
backends = ["127.0.0.1:9001"]
[[pool]]
name = "deploy"
backends = ["127.0.0.1:9002"]
[[pool]]
name = "docs"
backends = ["127.0.0.1:9003"]

[[route]]
name = "tenant"
host = "*.tenant.example"
path = "/mcp"
pool = "docs"

[[route]]
name = "main"
path = "/mcp"
pool = "main"
[[route.rule]]
tool = "deploy_*"
pool = "deploy"
[[route.rule]]
resource = "file:///docs/"
pool = "docs"
[[route.rule]]
method = "prompts/*"
pool = "docs"

[[route]]
name = "legacy"
path_prefix = "/legacy/"
pool = "main"
inspect = "never"
"#;

    fn router() -> Router {
        Router::new(&crate::config::parse(Path::new("t.toml"), CONF).expect("valid config"))
    }

    fn pool_of(r: &Router, method: &str, target: Option<&str>) -> Option<usize> {
        let (_, route) = r.find(None, Some("localhost:8080"), "/mcp")?;
        let element = element(method, target);
        route.rule_pool(Msg { era: Era::Legacy, version: ASSUMED_VERSION, element: &element }).or(route.pool)
    }

    fn element(method: &str, target: Option<&str>) -> Element {
        Element {
            method: crate::mcp::method::Method::parse(method),
            method_name: bytes::Bytes::copy_from_slice(method.as_bytes()),
            target: target.map(|t| bytes::Bytes::copy_from_slice(t.as_bytes())),
            id: None,
        }
    }

    fn route_of(r: &Router, path: &str) -> Option<String> {
        r.find(None, None, path).map(|x| x.1.name.clone())
    }

    #[test]
    fn host_and_path_pick_the_route() {
        let r = router();
        assert_eq!(r.find(None, Some("a.tenant.example:443"), "/mcp").map(|x| x.1.name.as_str()), Some("tenant"));
        assert_eq!(r.find(None, Some("A.TENANT.EXAMPLE"), "/mcp").map(|x| x.1.name.as_str()), Some("tenant"));
        for fqdn in ["a.tenant.example.", "a.tenant.example.:443"] {
            assert_eq!(r.find(None, Some(fqdn), "/mcp").map(|x| x.1.name.as_str()), Some("tenant"), "{fqdn}");
        }
        assert_eq!(r.find(None, Some("localhost"), "/mcp").map(|x| x.1.name.as_str()), Some("main"));
        assert_eq!(route_of(&r, "/legacy/sse").as_deref(), Some("legacy"));
        assert!(r.find(None, None, "/other").is_none());
        assert!(r.find(None, None, "/mcp/extra").is_none());
    }

    #[test]
    fn exact_routes_match_any_case_and_a_trailing_slash() {
        let r = router();
        for p in ["/mcp", "/MCP", "/Mcp/", "/mcp/"] {
            assert_eq!(route_of(&r, p).as_deref(), Some("main"), "{p}");
        }
        assert_eq!(route_of(&r, "/LEGACY/sse").as_deref(), Some("legacy"));
        assert_eq!(route_of(&r, "/mcp//"), None, "only canonical paths are matched");
    }

    #[test]
    fn rules_route_tools_resources_and_methods_first_match_wins() {
        let r = router();
        assert_eq!(pool_of(&r, "tools/call", Some("deploy_app")), Some(1));
        assert_eq!(pool_of(&r, "tools/call", Some("echo")), Some(0));
        assert_eq!(pool_of(&r, "resources/read", Some("file:///docs/a.md")), Some(2));
        assert_eq!(pool_of(&r, "resources/read", Some("file:///etc/passwd")), Some(0));
        assert_eq!(pool_of(&r, "prompts/get", Some("greet")), Some(2));
        // A tool rule never matches another method carrying the same name.
        assert_eq!(pool_of(&r, "prompts/list", Some("deploy_app")), Some(2));
        assert_eq!(pool_of(&r, "initialize", None), Some(0));
    }

    #[test]
    fn rules_can_route_by_protocol_era_and_version() {
        let text = CONF.replace(
            "[[route.rule]]\ntool = \"deploy_*\"",
            "[[route.rule]]\nera = \"modern\"\npool = \"docs\"\n[[route.rule]]\nprotocol_version = \"2025-06-*\"\npool = \"deploy\"\n[[route.rule]]\ntool = \"deploy_*\"",
        );
        let r = Router::new(&crate::config::parse(Path::new("t.toml"), &text).expect("valid config"));
        let (_, route) = r.find(None, None, "/mcp").expect("route");
        let ping = element("ping", None);
        let at = |era, version| route.rule_pool(Msg { era, version, element: &ping });
        assert_eq!(at(Era::Modern, "2026-07-28"), Some(2));
        assert_eq!(at(Era::Legacy, "2025-06-18"), Some(1));
        assert_eq!(at(Era::Legacy, ASSUMED_VERSION), None);
    }

    #[test]
    fn a_listener_restricts_a_route_to_requests_arriving_on_it() {
        let text = format!("[proxy]\nlisten = [\"127.0.0.1:8080\", \"127.0.0.1:9443\", \"0.0.0.0:9444\"]\n{CONF}\n[[route]]\nname = \"internal\"\nlistener = \"127.0.0.1:9443\"\npath = \"/admin-mcp\"\npool = \"main\"\n[[route]]\nname = \"any\"\nlistener = \"0.0.0.0:9444\"\npath = \"/any\"\npool = \"main\"\n");
        let r = Router::new(&crate::config::parse(Path::new("t.toml"), &text).expect("valid config"));
        let on =
            |ip: [u8; 4], port: u16, path: &str| r.find(Some((ip, port).into()), None, path).map(|x| x.1.name.clone());
        assert_eq!(on([127, 0, 0, 1], 9443, "/admin-mcp").as_deref(), Some("internal"));
        assert_eq!(on([127, 0, 0, 1], 8080, "/admin-mcp"), None);
        // A wildcard listen address matches whatever concrete address the socket reports.
        assert_eq!(on([10, 0, 0, 5], 9444, "/any").as_deref(), Some("any"));
        assert_eq!(on([10, 0, 0, 5], 9445, "/any"), None);
    }

    #[test]
    fn requests_without_a_reading_match_no_method_rule() {
        let text = CONF.replace("method = \"prompts/*\"", "method = \"*\"");
        let r = Router::new(&crate::config::parse(Path::new("t.toml"), &text).expect("valid config"));
        let (_, route) = r.find(None, None, "/mcp").expect("route");
        let msg = Msg { era: Era::Legacy, version: ASSUMED_VERSION, element: &Element::UNREAD };
        assert_eq!(route.rule_pool(msg), None, "a GET stream is not a JSON-RPC call");
        let ping = element("ping", None);
        assert_eq!(route.rule_pool(Msg { element: &ping, ..msg }), Some(2));
    }

    #[test]
    fn pass_through_routes_do_not_validate() {
        let r = router();
        assert!(r.routes()[1].validates());
        assert!(!r.routes()[2].validates());
    }
}
