//! Warnings about a valid config: things that load but probably do not do what the operator
//! meant. `mcp-edge check` prints them; start-up and reload log them. Pure over the model.
//!
//! - a route that can never match, because an earlier route matches every request it would;
//! - a prefix route that passes bodies through (`inspect = "never"`) to a pool that an exact
//!   route with rules, limits, `auth`, a policy or an Origin list also serves: requests for
//!   other paths reach the same backends without those controls;
//! - a policy that allows `initialize` to no one (legacy clients could never open a session);
//! - a `first_byte_timeout` at or above `idle_timeout`, which turns the first-byte timer off;
//! - a route with `forward_identity` but no `auth` (its identity headers are only removed);
//! - a pool that sends credentials (or its OAuth token) in clear text to a backend off this host;
//! - a route to a token-exchange pool that admits no bearer token (every call would get 403).

use super::model::{AuthKind, Config, Effect, Grant, Inspect, Origins, PathMatch, PolicyConfig, RouteConfig};

pub fn warnings(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let routes = &config.routes;
    for (i, later) in routes.iter().enumerate() {
        if let Some(earlier) = routes[..i].iter().find(|e| covers(e, later)) {
            out.push(format!(
                "route `{}` can never match: route `{}` before it matches every request it would; move it above `{}` or narrow `{}`",
                later.name, earlier.name, earlier.name, earlier.name
            ));
        }
    }
    for open in routes.iter().filter(|r| r.inspect == Inspect::Never && matches!(r.path, PathMatch::Prefix(_))) {
        let guarded = routes.iter().filter(|r| matches!(r.path, PathMatch::Exact(_)) && has_controls(r));
        for exact in guarded.filter(|e| shares_pool(open, e)) {
            out.push(format!(
                "route `{}` passes bodies through to a pool that route `{}` serves with rules, limits, auth, a policy or an Origin list; requests that miss `{}` reach the same backends without them; narrow `{}`'s path_prefix to what the backends need (e.g. /sse and /messages/)",
                open.name, exact.name, exact.name, open.name
            ));
        }
    }
    for r in routes.iter().filter(|r| r.policy.as_ref().is_some_and(|p| !allows_initialize(p))) {
        out.push(format!(
            "route `{}`: its policy allows `initialize` to no one, so legacy (2025-11-25 and older) clients cannot open a session; add \"initialize\" and \"notifications/*\" to an allow rule's `methods`",
            r.name
        ));
    }
    for pool in &config.pools {
        if pool.timeouts.first_byte >= pool.timeouts.idle {
            out.push(format!(
                "pool `{}`: first_byte_timeout is not below idle_timeout, so idle_timeout alone bounds the wait for a response header",
                pool.name
            ));
        }
    }
    for r in routes.iter().filter(|r| r.headers.identity.is_some() && r.auth.accept.is_empty()) {
        out.push(format!(
            "route `{}` has forward_identity but no `auth`: no identity is ever forwarded, the headers are only removed; add `auth` or move forward_identity to the pool",
            r.name
        ));
    }
    for pool in config.pools.iter().filter(|p| (!p.credentials.is_empty() || p.oauth.is_some()) && !p.tls) {
        if pool.backends.iter().any(|b| !b.addr.ip().is_loopback()) {
            out.push(format!(
                "pool `{}` sends its credentials without TLS to a backend off this host; set `tls = true` (or keep the network path private)",
                pool.name
            ));
        }
    }
    for r in routes {
        let bearer = r
            .auth
            .accept
            .iter()
            .any(|&a| config.authenticators.get(a).is_some_and(|a| matches!(a.kind, AuthKind::Jwt(_))));
        let exchanging = serves(r)
            .filter_map(|p| config.pools.get(p))
            .find(|p| p.oauth.as_ref().is_some_and(|o| matches!(o.grant, Grant::TokenExchange { .. })));
        if let (false, Some(pool)) = (bearer, exchanging) {
            out.push(format!(
                "route `{}` sends to pool `{}`, whose [pool.oauth] exchanges the caller's bearer token, but admits no bearer token (no jwt authenticator in `auth`): its calls to that pool get 403; add a jwt authenticator",
                r.name, pool.name
            ));
        }
    }
    out
}

/// Whether `earlier` matches every request `later` could match.
fn covers(earlier: &RouteConfig, later: &RouteConfig) -> bool {
    let listener = earlier.listener.is_none() || earlier.listener == later.listener;
    let host = earlier.host.is_none() || earlier.host == later.host;
    let path = match (&earlier.path, &later.path) {
        (PathMatch::Prefix(e), PathMatch::Prefix(l) | PathMatch::Exact(l)) => starts_with_ci(l, e),
        (PathMatch::Exact(e), PathMatch::Exact(l)) => e.eq_ignore_ascii_case(l),
        (PathMatch::Exact(_), PathMatch::Prefix(_)) => false,
    };
    listener && host && path
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.as_bytes().get(..prefix.len()).is_some_and(|h| h.eq_ignore_ascii_case(prefix.as_bytes()))
}

fn has_controls(r: &RouteConfig) -> bool {
    !r.rules.is_empty()
        || !r.limits.is_empty()
        || matches!(r.origins, Origins::List(_))
        || !r.auth.accept.is_empty()
        || r.policy.is_some()
}

/// Whether some allow rule covers the method `initialize` (for some caller).
fn allows_initialize(p: &PolicyConfig) -> bool {
    p.rules.iter().any(|r| {
        r.effect == Effect::Allow && (r.what.is_any() || r.what.methods.iter().any(|g| g.is_match("initialize")))
    })
}

fn serves(r: &RouteConfig) -> impl Iterator<Item = usize> + '_ {
    r.pool
        .into_iter()
        .chain(r.fallback.iter().copied())
        .chain(r.rules.iter().flat_map(|x| x.pool.into_iter().chain(x.fallback.iter().copied())))
}

fn shares_pool(a: &RouteConfig, b: &RouteConfig) -> bool {
    serves(a).any(|p| serves(b).any(|q| q == p))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn warnings(routes: &str) -> Vec<String> {
        let text = format!("[[pool]]\nname = \"tools\"\nbackends = [\"127.0.0.1:9001\"]\n{routes}");
        super::warnings(&crate::config::parse(Path::new("t.toml"), &text).expect("valid"))
    }

    #[test]
    fn a_route_to_a_token_exchange_pool_without_a_jwt_authenticator_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = dir.path().join("s");
        std::fs::write(&secret, "x").expect("write");
        let pool = format!("[pool.oauth]\ngrant = \"token_exchange\"\ntoken_url = \"https://a.example/t\"\nclient_id = \"e\"\nclient_secret_file = \"{}\"\n", secret.display());
        let w = warnings(&format!("{pool}[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"tools\"\n"));
        assert!(
            w.iter().any(|w| w.starts_with("route `mcp` sends to pool `tools`, whose [pool.oauth] exchanges")),
            "{w:?}"
        );
        let jwks = dir.path().join("jwks.json");
        std::fs::write(
            &jwks,
            r#"{"keys":[{"kty":"oct","kid":"k","alg":"HS256","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC0"}]}"#,
        )
        .expect("write");
        let jwt = format!("[[authenticator]]\nname = \"t\"\nkind = \"jwt\"\nissuer = \"https://a.example\"\naudience = [\"x\"]\njwks_file = \"{}\"\n", jwks.display());
        let w = warnings(&format!(
            "{pool}{jwt}[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"tools\"\nauth = [\"t\"]\n"
        ));
        assert!(!w.iter().any(|w| w.contains("exchanges")), "{w:?}");
    }

    #[test]
    fn a_catch_all_before_an_exact_route_shadows_it() {
        let w = warnings("[[route]]\nname = \"all\"\npath_prefix = \"/\"\npool = \"tools\"\n[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"tools\"\n");
        assert!(w.iter().any(|w| w.starts_with("route `mcp` can never match")), "{w:?}");
        let w = warnings("[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"tools\"\n[[route]]\nname = \"all\"\npath_prefix = \"/\"\npool = \"tools\"\n");
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn a_pass_through_catch_all_beside_a_guarded_exact_route_is_named() {
        let routes = "[[limit]]\nname = \"l\"\nkey = [\"client_ip\"]\nrate = \"10/s\"\n[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"tools\"\nlimits = [\"l\"]\n[[route]]\nname = \"sse\"\npath_prefix = \"/\"\npool = \"tools\"\ninspect = \"never\"\n";
        let w = warnings(routes);
        assert!(w.iter().any(|w| w.starts_with("route `sse` passes bodies through")), "{w:?}");
    }

    #[test]
    fn a_policy_that_lets_no_one_initialize_is_named_and_a_guarded_route_beside_a_catch_all_too() {
        let keys = "[[authenticator]]\nname = \"k\"\nkind = \"api_key\"\n[[authenticator.key]]\nid = \"a\"\nsha256 = \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"\n";
        let route = |methods: &str| {
            format!("{keys}[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"tools\"\nauth = [\"k\"]\n[route.policy]\n[[route.policy.rule]]\neffect = \"allow\"\nmethods = [{methods}]\n[[route]]\nname = \"sse\"\npath_prefix = \"/\"\npool = \"tools\"\ninspect = \"never\"\n")
        };
        let w = warnings(&route("\"tools/list\""));
        assert!(w.iter().any(|w| w.starts_with("route `mcp`: its policy allows `initialize` to no one")), "{w:?}");
        assert!(w.iter().any(|w| w.starts_with("route `sse` passes bodies through")), "{w:?}");
        let w = warnings(&route("\"initialize\", \"tools/list\""));
        assert!(!w.iter().any(|w| w.contains("initialize")), "{w:?}");
    }

    #[test]
    fn identity_forwarding_without_auth_and_clear_text_credentials_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("k");
        std::fs::write(&key, "secret").expect("write");
        let text = format!("[[pool]]\nname = \"far\"\nbackends = [\"10.0.0.5:9001\"]\n[[pool.credential]]\nheader = \"X-Key\"\nfile = \"{}\"\n[[route]]\nname = \"open\"\npath = \"/mcp\"\npool = \"far\"\nforward_identity = {{ id = \"X-Id\" }}\n", key.display());
        let w = super::warnings(&crate::config::parse(Path::new("t.toml"), &text).expect("valid"));
        assert!(w.iter().any(|w| w.starts_with("route `open` has forward_identity but no `auth`")), "{w:?}");
        assert!(w.iter().any(|w| w.starts_with("pool `far` sends its credentials without TLS")), "{w:?}");
    }
}
