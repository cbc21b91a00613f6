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

#[test]
fn timeouts_default_and_override_per_route_and_rule() {
    let text = MINIMAL.replace(
        "pool = \"tools\"\n",
        "pool = \"tools\"\nfirst_byte_timeout = \"30s\"\n[[route.rule]]\ntool = \"render\"\nidle_timeout = \"2h\"\n",
    );
    let c = parse(Path::new("edge.toml"), &text).expect("valid");
    let pool = c.pools[0].timeouts;
    assert_eq!((pool.connect.as_secs(), pool.first_byte.as_secs(), pool.idle.as_secs()), (2, 300, 3600));
    let route = pool.with(&c.routes[0].timeouts);
    assert_eq!(route.first_byte.as_secs(), 30);
    assert_eq!(route.with(&c.routes[0].rules[0].timeouts).idle.as_secs(), 7200);
    let bad = errors(&MINIMAL.replace("weight = 3 }]", "weight = 3 }]\nfirst_byte_timeout = \"0s\""));
    assert!(bad[0].contains("pool.tools.first_byte_timeout") && bad[0].contains("zero timeout"), "{bad:?}");
}

#[test]
fn redis_limits_need_a_redis_section_and_never_echo_its_url() {
    let limit = "[[limit]]\nname = \"g\"\nkey = [\"route\"]\nrate = \"5/s\"\nbackend = \"redis\"\non_redis_error = \"sometimes\"\n";
    let bad = errors(&format!("{MINIMAL}{limit}"));
    assert!(bad.iter().any(|e| e.contains("limit.g.backend") && e.contains("needs a [redis] section")), "{bad:?}");
    assert!(bad.iter().any(|e| e.contains("limit.g.on_redis_error") && e.contains("\"deny\"")), "{bad:?}");

    let url = "[redis]\nurl = \"mysql://root:hunter2@db\"\n";
    let bad = errors(&format!("{MINIMAL}{url}"));
    assert!(bad[0].contains("redis.url") && !bad[0].contains("hunter2"), "{bad:?}");

    let good =
        format!("{MINIMAL}{}[redis]\nurl = \"redis://:hunter2@10.0.0.5:6379/0\"\n", limit.replace("sometimes", "deny"));
    let c = parse(Path::new("edge.toml"), &good).expect("valid");
    assert_eq!(c.limits[0].backend, LimitBackend::Redis { on_error: RedisFailure::Deny });
    let redis = c.redis.as_ref().expect("redis");
    assert_eq!(redis.display_url(), "redis://<redacted>@10.0.0.5:6379/0");
    let unix = RedisSettings { url: "redis+unix:///run/redis.sock?db=1&pass=hunter2".into(), ..redis.clone() };
    assert_eq!(unix.display_url(), "redis+unix:///run/redis.sock?<redacted>");
    assert!(!format!("{redis:?}").contains("hunter2"));
}

#[test]
fn request_deadlines_and_the_connection_cap_have_sane_defaults_and_refuse_zero() {
    let c = parse(Path::new("edge.toml"), MINIMAL).expect("valid");
    assert_eq!(c.proxy.header_timeout, std::time::Duration::from_secs(10));
    assert_eq!(c.proxy.body_timeout, std::time::Duration::from_secs(60));
    assert_eq!(c.proxy.max_connections, 10_000);

    let errs =
        errors(&format!("[proxy]\nheader_timeout = \"0s\"\nbody_timeout = \"0ms\"\nmax_connections = 0\n{MINIMAL}"));
    assert_eq!(
        errs,
        [
            "edge.toml:2:18: proxy.header_timeout: must be at least 1ms, such as \"10s\"",
            "edge.toml:3:16: proxy.body_timeout: must be at least 1ms, such as \"10s\"",
            "edge.toml:4:19: proxy.max_connections: 0 must be 1 or more",
        ]
    );
}
