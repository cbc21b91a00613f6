//! Federated routes in the config pipeline: members resolved to pools, prefixes checked, and
//! the keys a route with members cannot have refused with their fix.

use std::path::Path;
use std::time::Duration;

use super::parse;

const POOLS: &str = "[[pool]]\nname = \"a\"\nbackends = [\"127.0.0.1:9001\"]\n[[pool]]\nname = \"b\"\nbackends = [\"127.0.0.1:9002\"]\n";

fn route(extra: &str, members: &[(&str, &str)]) -> String {
    let members: String = members
        .iter()
        .map(|(pool, prefix)| format!("[[route.member]]\npool = \"{pool}\"\nprefix = \"{prefix}\"\n"))
        .collect();
    format!("{POOLS}[[route]]\nname = \"all\"\npath = \"/mcp\"\n{extra}{members}")
}

fn errors(text: &str) -> Vec<String> {
    match parse(Path::new("edge.toml"), text) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn members_resolve_to_pools_and_the_route_serves_them_all() {
    let c = parse(Path::new("edge.toml"), &route("catalog_ttl = \"5s\"\n", &[("a", "alpha"), ("b", "beta-2")]))
        .expect("valid");
    let r = &c.routes[0];
    let fed = r.federation.as_ref().expect("federated");
    assert_eq!(
        fed.members.iter().map(|m| (m.pool, m.prefix.as_str())).collect::<Vec<_>>(),
        [(0, "alpha"), (1, "beta-2")]
    );
    assert_eq!(fed.catalog_ttl, Duration::from_secs(5));
    assert_eq!(r.serves, [0, 1]);
    assert!(r.needs_call && r.pool.is_none());
}

#[test]
fn prefixes_are_short_unique_and_free_of_the_separator() {
    for bad in ["", "has_underscore", "dot.ted", "ünï", &"x".repeat(25), "1st", "-x", "a+b"] {
        let errs = errors(&route("", &[("a", bad), ("b", "ok")]));
        assert!(
            errs.iter().any(|e| e.contains("route.all.member.prefix") && e.contains("letters, digits or '-'")),
            "{bad:?}: {errs:#?}"
        );
    }
    let errs = errors(&route("", &[("a", "same"), ("b", "SAME")]));
    assert!(errs.iter().any(|e| e.contains("already another member's")), "{errs:#?}");
    let errs = errors(&route("", &[("a", "x"), ("nope", "y")]));
    assert!(errs.iter().any(|e| e.contains("route.all.member.pool") && e.contains("no pool named")), "{errs:#?}");
}

#[test]
fn keys_that_choose_a_pool_or_filter_lists_are_refused_beside_members() {
    for (extra, key) in [
        ("pool = \"a\"\n", "pool"),
        ("fallback = [\"b\"]\n", "fallback"),
        ("inspect = \"never\"\n", "inspect"),
        ("batches = true\n", "batches"),
    ] {
        let errs = errors(&route(extra, &[("a", "x")]));
        assert!(errs.iter().any(|e| e.contains(&format!("route.all.{key}")) && e.contains("picks the pool from the tool's prefix")), "{key}: {errs:#?}");
    }
    let errs = errors(&route("[[route.rule]]\ntool = \"x\"\npool = \"a\"\n", &[("a", "x")]));
    assert!(errs.iter().any(|e| e.contains("route.all.rule")), "{errs:#?}");
}

#[test]
fn a_failure_mode_is_open_or_closed_and_federation_keys_need_members() {
    let fed = |extra: &str| {
        let c = parse(Path::new("edge.toml"), &route(extra, &[("a", "x")])).expect("valid");
        c.routes[0].federation.as_ref().map(|f| f.fail_closed)
    };
    assert_eq!(fed(""), Some(false));
    assert_eq!(fed("failure_mode = \"open\"\n"), Some(false));
    assert_eq!(fed("failure_mode = \"closed\"\n"), Some(true));
    let errs = errors(&route("failure_mode = \"secret-value\"\n", &[("a", "x")]));
    assert!(errs.iter().any(|e| e.contains("route.all.failure_mode") && e.contains("\"open\"")), "{errs:#?}");
    assert!(errs.iter().all(|e| !e.contains("secret-value")), "the value is not echoed: {errs:#?}");
    for key in ["failure_mode = \"closed\"\n", "catalog_ttl = \"5s\"\n"] {
        let errs = errors(&route(&format!("pool = \"a\"\n{key}"), &[]));
        assert!(errs.iter().any(|e| e.contains("applies to a federated route only")), "{key}: {errs:#?}");
    }
}

#[test]
fn a_page_size_is_zero_to_ten_thousand_entries_and_needs_members() {
    let size = |extra: &str| {
        let c = parse(Path::new("edge.toml"), &route(extra, &[("a", "x")])).expect("valid");
        c.routes[0].federation.as_ref().map(|f| f.page_size)
    };
    assert_eq!((size(""), size("page_size = 50\n"), size("page_size = 10000\n")), (Some(0), Some(50), Some(10_000)));
    for bad in ["-1", "10001", "987654321"] {
        let errs = errors(&route(&format!("page_size = {bad}\n"), &[("a", "x")]));
        assert!(errs.iter().any(|e| e.contains("route.all.page_size") && e.contains("10000")), "{bad}: {errs:#?}");
        assert!(errs.iter().all(|e| !e.contains(bad)), "the value is not echoed: {errs:#?}");
    }
    let errs = errors(&route("pool = \"a\"\npage_size = 5\n", &[]));
    assert!(
        errs.iter().any(|e| e.contains("route.all.page_size") && e.contains("applies to a federated route only")),
        "{errs:#?}"
    );
}

#[test]
fn a_prefix_mode_is_always_conflicts_or_never_and_needs_members() {
    use crate::config::model::PrefixMode;
    let mode = |extra: &str| {
        let c = parse(Path::new("edge.toml"), &route(extra, &[("a", "x")])).expect("valid");
        c.routes[0].federation.as_ref().map(|f| f.prefix_mode)
    };
    assert_eq!(mode(""), Some(PrefixMode::Always));
    assert_eq!(mode("prefix_mode = \"conflicts\"\n"), Some(PrefixMode::Conflicts));
    assert_eq!(mode("prefix_mode = \"never\"\n"), Some(PrefixMode::Never));
    let errs = errors(&route("prefix_mode = \"sometimes-secret\"\n", &[("a", "x")]));
    assert!(errs.iter().any(|e| e.contains("route.all.prefix_mode") && e.contains("\"conflicts\"")), "{errs:#?}");
    assert!(errs.iter().all(|e| !e.contains("sometimes-secret")), "the value is not echoed: {errs:#?}");
    let errs = errors(&route("pool = \"a\"\nprefix_mode = \"never\"\n", &[]));
    assert!(
        errs.iter().any(|e| e.contains("route.all.prefix_mode") && e.contains("applies to a federated route only")),
        "{errs:#?}"
    );
}

#[test]
fn a_result_cache_names_what_it_keeps_on_a_federated_route_only() {
    let cache = |extra: &str| {
        let c = parse(Path::new("edge.toml"), &route(extra, &[("a", "x")])).expect("valid");
        c.routes[0].federation.as_ref().and_then(|f| f.results.clone())
    };
    assert!(cache("").is_none());
    let r = cache("[route.result_cache]\ntools = [\"x_echo\", \"x_get_*\"]\n").expect("a cache");
    let tools: Vec<_> = r.tools.iter().map(crate::glob::Glob::as_pattern).collect();
    assert_eq!(
        (tools, r.read_only_hint, r.ttl, r.max_bytes),
        (vec!["x_echo".to_owned(), "x_get_*".to_owned()], false, Duration::from_secs(30), 16 << 20)
    );
    let r = cache("[route.result_cache]\nread_only_hint = true\nttl = \"5s\"\nmax_bytes = 65536\n").expect("a cache");
    assert_eq!((r.tools.len(), r.read_only_hint, r.ttl, r.max_bytes), (0, true, Duration::from_secs(5), 65536));
    for (extra, field, said) in [
        ("[route.result_cache]\nttl = \"1m\"\n", "route.all.result_cache", "caches nothing"),
        ("[route.result_cache]\nread_only_hint = false\n", "route.all.result_cache", "caches nothing"),
        ("[route.result_cache]\ntools = [\"\"]\n", "route.all.result_cache.tools", "must name a tool"),
        ("[route.result_cache]\ntools = [\"t\"]\nttl = \"0s\"\n", "route.all.result_cache.ttl", "above zero"),
        ("[route.result_cache]\ntools = [\"t\"]\nmax_bytes = 1024\n", "route.all.result_cache.max_bytes", "65536"),
    ] {
        let errs = errors(&route(extra, &[("a", "x")]));
        assert!(errs.iter().any(|e| e.contains(field) && e.contains(said)), "{extra}: {errs:#?}");
    }
    let errs = errors(&route("pool = \"a\"\n[route.result_cache]\ntools = [\"t\"]\n", &[]));
    assert!(
        errs.iter().any(|e| e.contains("route.all.result_cache") && e.contains("applies to a federated route only")),
        "{errs:#?}"
    );
    let errs = errors(&route("[route.result_cache]\ntools = [\"t\"]\nsize = 1\n", &[("a", "x")]));
    assert!(errs.iter().any(|e| e.contains("result_cache: unknown key")), "{errs:#?}");
}
