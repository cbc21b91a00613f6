//! Config pipeline stories: defaults, every error collected with its place and fix.

use std::path::Path;

use super::model::*;
use super::parse;

fn errors(text: &str) -> Vec<String> {
    parse(Path::new("edge.toml"), text)
        .expect_err("config should be refused")
        .0
        .iter()
        .map(ToString::to_string)
        .collect()
}

const MINIMAL: &str = r#"
[[pool]]
name = "tools"
backends = ["127.0.0.1:9001", { addr = "127.0.0.1:9002", weight = 3 }]

[[route]]
name = "main"
path = "/mcp"
pool = "tools"
"#;

#[test]
fn minimal_config_gets_documented_defaults() {
    let c = parse(Path::new("edge.toml"), MINIMAL).expect("valid");
    assert_eq!(c.proxy.listen, vec!["127.0.0.1:8080".parse().expect("addr")]);
    assert_eq!(c.admin.listen, "127.0.0.1:9090".parse().expect("addr"));
    assert_eq!(c.proxy.max_body_bytes, 4 * 1024 * 1024);
    assert_eq!(c.pools[0].backends[1].weight, 3);
    assert_eq!(c.pools[0].health.kind, HealthKind::Tcp);
    assert_eq!(c.routes[0].inspect, Inspect::Auto);
    assert_eq!(c.routes[0].pool, Some(0));
    assert_eq!(c.digest.len(), 64);
}

#[test]
fn every_error_is_reported_with_line_column_field_and_fix() {
    let text = r#"
[proxy]
threads = 0

[[pool]]
name = "tools"
backends = ["localhost"]
[pool.health]
check = "ping"
interval = "5 parsecs"

[[route]]
name = "main"
path = "mcp"
pool = "tool"
[[route.rule]]
tool = "deploy_*"
pool = "deploy"
"#;
    let errs = errors(text);
    let expect = [
        "edge.toml:3:11: proxy.threads: 0 must be 1 or more",
        "edge.toml:7:13: pool.tools.backends: `localhost` is not an ip:port address",
        "edge.toml:9:9: pool.tools.health.check: unknown check `ping`",
        "edge.toml:10:12: pool.tools.health.interval:",
        "edge.toml:14:8: route.main.path: `mcp` must start with `/`",
        "edge.toml:15:8: route.main.pool: no pool named `tool`; defined pools: [tools]",
        "edge.toml:18:8: route.main.rule.pool: no pool named `deploy`",
    ];
    for e in expect {
        assert!(errs.iter().any(|x| x.starts_with(e)), "missing {e:?} in {errs:#?}");
    }
    assert_eq!(errs.len(), expect.len(), "{errs:#?}");
}

#[test]
fn unknown_keys_are_refused_with_their_place() {
    let errs = errors("[proxy]\nlisten = [\"127.0.0.1:1\"]\nthreds = 2\n");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("edge.toml:3:1: threds: unknown field `threds`"), "{errs:?}");
}

#[test]
fn routes_need_somewhere_to_go_and_unique_names() {
    let text = format!("{MINIMAL}\n[[route]]\nname = \"main\"\npath = \"/x\"\n");
    let errs = errors(&text);
    assert!(errs.iter().any(|e| e.contains("route `main` is defined twice")), "{errs:#?}");
    assert!(errs.iter().any(|e| e.contains("route has no `pool` and no rules")), "{errs:#?}");
    assert!(errors("").iter().any(|e| e.contains("no [[route]] is defined")));
}

#[test]
fn rules_must_match_something_and_one_target() {
    let text = format!(
        "{MINIMAL}[[route.rule]]\npool = \"tools\"\n[[route.rule]]\ntool = \"a\"\nprompt = \"b\"\npool = \"tools\"\n"
    );
    let errs = errors(&text);
    assert!(errs.iter().any(|e| e.contains("matches nothing")), "{errs:#?}");
    assert!(errs.iter().any(|e| e.contains("more than one of `tool`, `resource`, `prompt`")), "{errs:#?}");
}
