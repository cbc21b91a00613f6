//! Request routing, compiled from config: listener, host and path select a route; the route's
//! MCP rules (first match wins) or its default pool select the pool. Pure and synchronous:
//! no I/O, no sessions (a session's backend overrides the result elsewhere, in `proxy`).

use std::borrow::Cow;
use std::net::SocketAddr;

use crate::config::model::{Config, Inspect, PathMatch, RouteConfig, RuleConfig};
use crate::mcp::method::Method;

pub struct Router {
    routes: Vec<RouteConfig>,
}

/// What a rule can look at: the JSON-RPC method and, for methods that have one, its target.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub method: &'a str,
    pub target: Option<&'a str>,
}

impl Router {
    pub fn new(config: &Config) -> Router {
        Router { routes: config.routes.clone() }
    }

    pub fn routes(&self) -> &[RouteConfig] {
        &self.routes
    }

    /// The first route whose listener, host and path all match; with its index.
    pub fn find(&self, listener: Option<SocketAddr>, host: Option<&str>, path: &str) -> Option<(usize, &RouteConfig)> {
        let host = host.map(normalize_host);
        self.routes.iter().enumerate().find(|(_, r)| {
            r.listener.is_none_or(|l| Some(l) == listener)
                && r.host.as_ref().is_none_or(|h| host.as_deref().is_some_and(|x| h.is_match(x)))
                && match &r.path {
                    PathMatch::Exact(p) => p == path,
                    PathMatch::Prefix(p) => path.starts_with(p.as_str()),
                }
        })
    }
}

/// Routing decisions of one route.
pub trait RouteExt {
    /// The first matching rule, if any, with its index.
    fn rule(&self, call: Call<'_>) -> Option<(usize, &RuleConfig)>;
    /// The pool of the first matching rule, if it names one.
    fn rule_pool(&self, call: Call<'_>) -> Option<usize> {
        self.rule(call).and_then(|(_, r)| r.pool)
    }
    /// Whether a POST body must be read before a pool can be chosen.
    fn reads_body(&self, headers_classify: bool) -> bool;
}

impl RouteExt for RouteConfig {
    fn rule(&self, call: Call<'_>) -> Option<(usize, &RuleConfig)> {
        self.rules.iter().enumerate().find(|(_, r)| rule_matches(r, call))
    }

    fn reads_body(&self, headers_classify: bool) -> bool {
        match self.inspect {
            Inspect::Always => true,
            Inspect::Never => false,
            Inspect::Auto => self.needs_call && !headers_classify,
        }
    }
}

fn rule_matches(rule: &RuleConfig, call: Call<'_>) -> bool {
    let kind = Method::parse(call.method);
    let target_ok = |glob: &Option<crate::glob::Glob>, wanted: Method| match glob {
        None => true,
        Some(g) => kind == wanted && call.target.is_some_and(|t| g.is_match(t)),
    };
    let resource_ok = match &rule.resource {
        None => true,
        Some(g) => {
            kind.target_kind() == Some(crate::mcp::method::TargetKind::Resource)
                && call.target.is_some_and(|t| g.is_match(t))
        }
    };
    rule.method.as_ref().is_none_or(|m| m.is_match(call.method))
        && target_ok(&rule.tool, Method::ToolsCall)
        && target_ok(&rule.prompt, Method::PromptsGet)
        && resource_ok
}

/// Host header without port, lowercased only when needed (clients nearly always send lowercase).
fn normalize_host(host: &str) -> Cow<'_, str> {
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
        route.rule_pool(Call { method, target }).or(route.pool)
    }

    #[test]
    fn host_and_path_pick_the_route() {
        let r = router();
        assert_eq!(r.find(None, Some("a.tenant.example:443"), "/mcp").map(|x| x.1.name.as_str()), Some("tenant"));
        assert_eq!(r.find(None, Some("A.TENANT.EXAMPLE"), "/mcp").map(|x| x.1.name.as_str()), Some("tenant"));
        assert_eq!(r.find(None, Some("localhost"), "/mcp").map(|x| x.1.name.as_str()), Some("main"));
        assert_eq!(r.find(None, None, "/legacy/sse").map(|x| x.1.name.as_str()), Some("legacy"));
        assert!(r.find(None, None, "/other").is_none());
        assert!(r.find(None, None, "/mcp/extra").is_none());
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
    fn a_listener_restricts_a_route_to_requests_arriving_on_it() {
        let text = format!("{CONF}\n[[route]]\nname = \"internal\"\nlistener = \"127.0.0.1:9443\"\npath = \"/admin-mcp\"\npool = \"main\"\n");
        let r = Router::new(&crate::config::parse(Path::new("t.toml"), &text).expect("valid config"));
        let on = |port: u16| r.find(Some(([127, 0, 0, 1], port).into()), None, "/admin-mcp").map(|x| x.1.name.clone());
        assert_eq!(on(9443).as_deref(), Some("internal"));
        assert_eq!(on(8080), None);
    }

    #[test]
    fn body_is_read_only_when_rules_need_it() {
        let r = router();
        let (_, main) = r.find(None, None, "/mcp").map(|(i, _)| (i, &r.routes()[1])).expect("route");
        assert!(main.reads_body(false));
        assert!(!main.reads_body(true));
        assert!(!r.routes()[0].reads_body(false));
        assert!(!r.routes()[2].reads_body(false));
    }
}
