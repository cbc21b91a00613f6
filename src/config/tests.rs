//! Config pipeline stories: defaults, every error collected with its place and fix.

use std::path::Path;

use super::model::*;
use super::parse;
use super::stdio::Sessions;

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
    assert_eq!(c.routes[0].inspect, Inspect::Always);
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
        "edge.toml:3:11: proxy.threads: must be 1 or more",
        "edge.toml:7:13: pool.tools.backends: is not an ip:port address",
        "edge.toml:9:9: pool.tools.health.check: unknown check; use \"mcp\"",
        "edge.toml:10:12: pool.tools.health.interval: has an unknown unit; use ms, s, m or h",
        "edge.toml:14:8: route.main.path: must start with `/`",
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
    assert!(errs[0].starts_with("edge.toml:3:1: proxy: unknown key here; one of `listen`, `threads`"), "{errs:?}");
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
    assert!(bad[0].contains("pool.tools.first_byte_timeout") && bad[0].contains("above zero"), "{bad:?}");
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

/// A secret-looking value in the wrong place, one config at a time (TOML errors stop at the
/// first): the error names the place and the fix, never the value.
#[test]
fn no_error_message_echoes_a_value() {
    const SECRET: &str = "hunter2-s3cr3t";
    let cases = [
        ("[proxy]\nthreads = \"hunter2-s3cr3t\"\n", "proxy.threads: expected an integer; got a string"),
        ("[proxy]\nlisten = \"hunter2-s3cr3t\"\n", "proxy.listen: expected an array; got a string"),
        ("[proxy]\nwatch_config = \"hunter2-s3cr3t\"\n", "proxy.watch_config: expected a boolean"),
        ("[proxy]\nhunter2-s3cr3t = 1\n", "proxy: unknown key here"),
        ("[proxy]\n\"hunter2-s3cr3t\" = 1\n", "proxy: unknown key here"),
        ("[proxy]\nthreads = 1\nthreads = \"hunter2-s3cr3t\"\n", "edge.toml:12:1: proxy: this key is set twice"),
        ("[proxy]\ngrace_period = \"hunter2-s3cr3t\"\n", "proxy.grace_period: does not start with a number"),
        ("[proxy]\ngrace_period = \"5hunter2-s3cr3t\"\n", "proxy.grace_period: has an unknown unit"),
        ("[proxy]\nlisten = [\"hunter2-s3cr3t\"]\n", "proxy.listen: is not an ip:port address"),
        ("[proxy]\nthreads = hunter2-s3cr3t\n", "proxy.threads: invalid string"),
        ("[admin]\nlisten = \"hunter2-s3cr3t\"\n", "admin.listen: is not an ip:port address"),
        ("[log]\nformat = \"hunter2-s3cr3t\"\n", "log.format: unknown format"),
        ("[log]\naccess_file = \"/nonexistent/hunter2-s3cr3t/a.log\"\n", "log.access_file: cannot be opened for appending"),
        ("[log]\naccess_slow = \"hunter2-s3cr3t\"\n", "log.access_slow: does not start"),
        ("[[route]]\nname = \"s\"\npath = \"/s\"\npool = \"tools\"\naccess_sample = 1.5\n", "route.s.access_sample: must be from 0 to 1"),
        ("[redis]\nurl = \"redis://:hunter2-s3cr3t@[::1\"\n", "redis.url: is not a usable Redis URL"),
        ("[traces]\nendpoint = \"hunter2-s3cr3t\"\n", "traces.endpoint: is not an http URL"),
        ("[traces]\nendpoint = \"https://hunter2-s3cr3t.example:4317\"\n", "traces.endpoint: uses https"),
        ("[sessions]\nforeign_ids = \"hunter2-s3cr3t\"\n", "sessions.foreign_ids: unknown choice"),
        ("[traces]\nendpoint = \"http://u:hunter2-s3cr3t@collector:4317\"\n", "traces.endpoint: carries credentials"),
        ("[traces]\nendpoint = \"http://c:4317\"\nprotocol = \"hunter2-s3cr3t\"\n", "traces.protocol: unknown protocol"),
        ("[traces]\nendpoint = \"http://c:4317\"\nsample = 2.0\n", "traces.sample: must be from 0 to 1"),
        ("[traces]\nendpoint = \"http://c:4317\"\nparent = \"hunter2-s3cr3t\"\n", "traces.parent: unknown choice"),
        ("[traces]\nendpoint = \"http://c:4317\"\nqueue = 0\n", "traces.queue: must be between 1 and"),
        ("[traces]\nendpoint = \"http://c:4317\"\nqueue = 10\nbatch = 20\n", "traces.batch: is larger than traces.queue"),
        ("[traces]\nendpoint = \"http://c:4317\"\ntimeout = \"hunter2-s3cr3t\"\n", "traces.timeout: does not start"),
        ("[[route]]\nname = \"s\"\npath = \"/s\"\npool = \"tools\"\ntrace_sample = -1.0\n", "route.s.trace_sample: must be from 0 to 1"),
        ("[redis]\nurl = \"hunter2-s3cr3t\"\n", "redis.url: is not a usable Redis URL"),
        ("[redis]\nurl = \"redis://h\"\ntimeout = \"hunter2-s3cr3t\"\n", "redis.timeout: does not start"),
        ("[[limit]]\nname = \"l\"\nkey = [\"hunter2-s3cr3t\"]\nrate = \"1/s\"\n", "limit.l.key: unknown key part"),
        ("[[limit]]\nname = \"l\"\nkey = [\"route\"]\nrate = \"hunter2-s3cr3t\"\n", "limit.l.rate: is not a rate"),
        ("[[limit]]\nname = \"l\"\nkey = [\"route\"]\nrate = \"1/hunter2-s3cr3t\"\n", "limit.l.rate: has an unknown unit"),
        ("[[limit]]\nname = \"l\"\nkey = [\"route\"]\nrate = \"1/s\"\nbackend = \"hunter2-s3cr3t\"\n", "limit.l.backend: unknown backend"),
        ("[[limit]]\nname = \"l\"\nkey = [\"route\"]\nrate = \"1/s\"\n[limit.assign]\n\"hunter2-s3cr3t\" = 5\n", "limit.assign: expected a string; got an integer"),
        ("[[limit]]\nname = \"l\"\nkey = [\"route\"]\nrate = \"1/s\"\n[limit.assign]\nhunter2-s3cr3t = \"a\"\nhunter2-s3cr3t = \"b\"\n", "limit.assign: this key is set twice"),
        ("[[limit]]\nname = \"l\"\nkey = [\"route\"]\nrate = \"1/s\"\ncosts = { x = \"hunter2-s3cr3t\" }\n", "limit.costs: expected an integer"),
        ("[[pool]]\nname = \"x\"\nbackends = [\"hunter2-s3cr3t\"]\n", "pool.x.backends: is not an ip:port address"),
        ("[[pool]]\nname = \"x\"\nbackends = [{ addr = \"hunter2-s3cr3t\", weight = \"w\" }]\n", "pool.backends: expected \"host:port\""),
        ("[[pool]]\nname = \"x\"\nbackends = [\"127.0.0.1:1\"]\nhealth = { check = \"hunter2-s3cr3t\" }\n", "pool.x.health.check: unknown check"),
        ("[[pool]]\nname = \"x\"\nbackends = [\"127.0.0.1:1\"]\npath = \"hunter2-s3cr3t\"\n", "pool.x.path: must start with `/`"),
        ("[[pool]]\nname = \"x\"\nbackends = [\"127.0.0.1:1\"]\nretry = { budget = \"hunter2-s3cr3t\" }\n", "pool.retry: expected a number; got a string"),
        ("[sessions]\nrotation_overlap = \"hunter2-s3cr3t\"\n", "sessions.rotation_overlap: does not start"),
    ];
    for (snippet, expected) in cases {
        let errs = errors(&format!("{MINIMAL}{snippet}"));
        let all = errs.join("\n");
        assert!(!all.contains(SECRET) && !all.contains("hunter2"), "value echoed for {snippet:?}:\n{all}");
        assert!(errs.iter().any(|e| e.contains(expected)), "{expected:?} missing for {snippet:?}:\n{all}");
    }
}

#[test]
fn a_route_serves_its_pools_fallbacks_and_pool_choosing_rules() {
    let text = r#"
[[pool]]
name = "a"
backends = ["127.0.0.1:9001"]
[[pool]]
name = "b"
backends = ["127.0.0.1:9002"]
[[pool]]
name = "c"
backends = ["127.0.0.1:9003"]
[[pool]]
name = "d"
backends = ["127.0.0.1:9004"]
[[pool]]
name = "e"
backends = ["127.0.0.1:9005"]

[[route]]
name = "main"
pool = "c"
fallback = ["a", "c"]
[[route.rule]]
tool = "t*"
pool = "d"
fallback = ["b"]
[[route.rule]]
tool = "x"
fallback = ["e"]
connect_timeout = "1s"
"#;
    let c = parse(Path::new("edge.toml"), text).expect("valid");
    let route = &c.routes[0];
    assert_eq!(route.serves, vec![0, 1, 2, 3], "sorted, no repeats; e is a fallback of a rule that picks no pool");
    assert!(route.serves(1) && !route.serves(4));
}

/// MINIMAL with extra tables: a `[sessions]` overlap, the pool's health, breaker and retry.
fn with_durations(sessions: &str, pool: &str) -> String {
    format!("[sessions]\n{sessions}\n{}", MINIMAL.replace("weight = 3 }]", &format!("weight = 3 }}]\n{pool}")))
}

#[test]
fn every_duration_is_bounded_by_a_day() {
    let ok =
        with_durations("rotation_overlap = \"24h\"", "idle_timeout = \"1440m\"\n[pool.health]\ninterval = \"86400s\"");
    parse(Path::new("edge.toml"), &ok).expect("a day is allowed");

    let bad = errors(&with_durations(
        "rotation_overlap = \"25h\"",
        "idle_timeout = \"1441m\"\n[pool.health]\ntimeout = \"99999999999h\"\n[pool.breaker]\ncooldown = \"86401s\"\n[pool.retry]\nmax_backoff = \"86400001ms\"",
    ));
    let fields = [
        "sessions.rotation_overlap",
        "pool.tools.idle_timeout",
        "pool.tools.health.timeout",
        "pool.tools.breaker.cooldown",
        "pool.tools.retry.max_backoff",
    ];
    assert_eq!(bad.len(), fields.len(), "{bad:#?}");
    for field in fields {
        assert!(bad.iter().any(|e| e.contains(field) && e.contains("at most \"24h\"")), "{field}: {bad:#?}");
    }
}

#[test]
fn the_admin_token_is_read_with_the_config_and_never_shown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("token");
    std::fs::write(&file, "  admin-token-0123456789abcdef\n").expect("write token");
    let admin = format!(
        "[admin]\ntoken_file = \"{}\"\nallowed_hosts = [\"Admin.Internal\", \"10.0.0.5:9443\", \"*\"]\n",
        file.display()
    );
    let c = parse(Path::new("edge.toml"), &format!("{MINIMAL}{admin}")).expect("valid");
    let token = c.admin.token.as_ref().expect("token read");
    assert!(token.matches(b"admin-token-0123456789abcdef"), "surrounding whitespace is not part of it");
    assert!(!token.matches(b"admin-token-0123456789abcde"));
    assert_eq!(
        c.admin.allowed_hosts,
        vec![
            HostRule::Name { host: "admin.internal".into(), port: None },
            HostRule::Name { host: "10.0.0.5".into(), port: Some(9443) },
            HostRule::Any
        ]
    );
    let shown = super::render::to_json(&c).to_string();
    assert!(shown.contains("<from token_file, redacted>"), "{shown}");
    assert!(!shown.contains("admin-token") && !format!("{c:?}").contains("admin-token"));

    std::fs::write(&file, "short-hunter2\n").expect("write token");
    let errs = errors(&format!("{MINIMAL}{admin}"));
    assert!(errs.iter().any(|e| e.contains("admin.token_file: holds a token shorter than 16")), "{errs:?}");
    assert!(!errs.join("\n").contains("hunter2"), "{errs:?}");
    let missing = admin.replace("token\"", "no-such-token\"");
    let errs = errors(&format!("{MINIMAL}{missing}"));
    assert!(errs.iter().any(|e| e.contains("admin.token_file: cannot read the token file")), "{errs:?}");
    let errs = errors(&format!("{MINIMAL}[admin]\nallowed_hosts = [\"http://hunter2.example/\"]\n"));
    assert!(errs.iter().any(|e| e.contains("admin.allowed_hosts: is not a host name")), "{errs:?}");
    assert!(!errs.join("\n").contains("hunter2"), "{errs:?}");
}

#[test]
fn zero_is_refused_where_it_would_fail_or_spin_and_kept_where_it_means_none() {
    let zero_means_none = with_durations(
        "rotation_overlap = \"0s\"",
        "[pool.breaker]\nmax_cooldown = \"0s\"\n[pool.retry]\nbackoff = \"0ms\"\nmax_backoff = \"0s\"",
    );
    let c = parse(Path::new("edge.toml"), &zero_means_none).expect("zero means none here");
    assert!(c.sessions.rotation_overlap.is_zero() && c.pools[0].retry.backoff.is_zero());
    assert_eq!(c.pools[0].breaker.max_cooldown, c.pools[0].breaker.cooldown, "no back-off");

    let bad = errors(&format!(
        "{}[redis]\nurl = \"redis://127.0.0.1:6379\"\ntimeout = \"0ms\"\nretry_interval = \"0s\"\n",
        with_durations(
            "",
            "connect_timeout = \"0s\"\n[pool.health]\ninterval = \"0s\"\ntimeout = \"0ms\"\n[pool.breaker]\ncooldown = \"0s\"",
        )
    ));
    let fields = [
        "pool.tools.connect_timeout",
        "pool.tools.health.interval",
        "pool.tools.health.timeout",
        "pool.tools.breaker.cooldown",
        "redis.timeout",
        "redis.retry_interval",
    ];
    assert_eq!(bad.len(), fields.len(), "{bad:#?}");
    for field in fields {
        assert!(bad.iter().any(|e| e.contains(field) && e.contains("above zero")), "{field}: {bad:#?}");
    }
}

#[test]
fn values_that_end_up_on_the_wire_are_checked_at_load() {
    let pool = |extra: &str| format!("{MINIMAL}[[pool]]\nname = \"w\"\nbackends = [\"127.0.0.1:1\"]\n{extra}\n");
    let errs = errors(&pool("host = \"a\\r\\nX-Evil: 1\""));
    assert!(errs.iter().any(|e| e.contains("pool.w.host: is not a valid Host header value")), "{errs:?}");
    let errs = errors(&pool("path = \"/a b\""));
    assert!(errs.iter().any(|e| e.contains("pool.w.path: is not a valid request path")), "{errs:?}");
    let errs = errors(&pool("[pool.health]\ncheck = \"http\"\npath = \"/he alth\""));
    assert!(errs.iter().any(|e| e.contains("pool.w.health.path: is not a valid request path")), "{errs:?}");
    let errs = errors(&format!("{MINIMAL}[[limit]]\nname = \"l\"\nkey = [\"header:x y\"]\nrate = \"1/s\"\n"));
    assert!(errs.iter().any(|e| e.contains("limit.l.key: unknown key part")), "{errs:?}");
    let errs = errors(&format!("[proxy]\nlisten = [\"127.0.0.1:8080\", \"127.0.0.1:8080\"]\n{MINIMAL}"));
    assert!(errs.iter().any(|e| e.contains("proxy.listen: lists the same address twice")), "{errs:?}");
}

#[test]
fn request_deadlines_and_the_connection_cap_have_sane_defaults_and_refuse_zero() {
    let c = parse(Path::new("edge.toml"), MINIMAL).expect("valid");
    assert_eq!(c.proxy.header_timeout, std::time::Duration::from_secs(10));
    assert_eq!(c.proxy.body_timeout, std::time::Duration::from_secs(60));
    assert_eq!(c.proxy.max_connections, 10_000);
    assert_eq!(c.proxy.keepalive_timeout, std::time::Duration::from_secs(60));
    assert_eq!(c.proxy.send_timeout, std::time::Duration::from_secs(60));
    let off = parse(Path::new("edge.toml"), &format!("[proxy]\nkeepalive_timeout = \"0s\"\n{MINIMAL}")).expect("valid");
    assert!(off.proxy.keepalive_timeout.is_zero(), "zero turns keep-alive off");

    let errs =
        errors(&format!("[proxy]\nheader_timeout = \"0s\"\nbody_timeout = \"0ms\"\nmax_connections = 0\n{MINIMAL}"));
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(
        errs[0].starts_with("edge.toml:2:18: proxy.header_timeout: ") && errs[0].contains("above zero"),
        "{errs:?}"
    );
    assert!(errs[1].starts_with("edge.toml:3:16: proxy.body_timeout: ") && errs[1].contains("above zero"), "{errs:?}");
    assert!(errs[2].starts_with("edge.toml:4:19: proxy.max_connections: "), "{errs:?}");
    assert!(!errs[2].contains("0 must"), "no value is echoed: {errs:?}");
}

#[test]
fn address_lists_take_cidrs_and_bare_addresses_and_name_the_bad_entry_without_echoing_it() {
    let c = parse(Path::new("edge.toml"), &format!("[proxy]\nallow_ips = [\"10.1.2.3/8\", \"::1\"]\n{MINIMAL}"))
        .expect("valid");
    assert_eq!(c.proxy.ips.allow.iter().map(ToString::to_string).collect::<Vec<_>>(), ["10.0.0.0/8", "::1/128"]);
    let errs = errors(&format!("[proxy]\ndeny_ips = [\"10.0.0.0/8\", \"secret-host-7\"]\n{MINIMAL}"));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("edge.toml:2:27: proxy.deny_ips: not an address or CIDR"), "{errs:?}");
    assert!(!errs[0].contains("secret-host-7"), "the value is not echoed: {errs:?}");
}

#[test]
fn a_stdio_pool_needs_an_absolute_command_and_no_backends_and_echoes_no_value() {
    let route = "[[route]]\nname = \"main\"\npath = \"/mcp\"\npool = \"files\"\n";
    let e = errors(&format!(
        "[[pool]]\nname = \"files\"\n[pool.stdio]\ncommand = \"python3\"\nenv = {{ \"A=B\" = \"hunter2\" }}\nenv_file = {{ TOKEN = \"/nonexistent/hunter2\" }}\nprocesses = 0\n{route}"
    ));
    let text = e.join("\n");
    for field in
        ["pool.files.stdio.command", "pool.files.stdio.env", "pool.files.stdio.env_file", "pool.files.stdio.processes"]
    {
        assert!(text.contains(field), "{field} missing from:\n{text}");
    }
    assert!(!text.contains("hunter2"), "a value was echoed:\n{text}");
    let both = errors(&format!(
        "[[pool]]\nname = \"files\"\nbackends = [\"127.0.0.1:1\"]\n[pool.stdio]\ncommand = \"/bin/cat\"\n{route}"
    ));
    assert!(both.iter().any(|e| e.contains("pool.files.backends") && e.contains("not both")), "{both:?}");
    let missing =
        errors(&format!("[[pool]]\nname = \"files\"\n[pool.stdio]\ncommand = \"/nonexistent/server\"\n{route}"));
    assert!(
        missing.iter().any(|e| e.contains("pool.files.stdio.command") && e.contains("no executable")),
        "{missing:?}"
    );
    let neither = errors(&format!("[[pool]]\nname = \"files\"\n{route}"));
    assert!(neither.iter().any(|e| e.contains("pool.files.backends") && e.contains("[pool.stdio]")), "{neither:?}");

    let ok = parse(
        Path::new("edge.toml"),
        &format!("[[pool]]\nname = \"files\"\n[pool.stdio]\ncommand = \"/bin/cat\"\nenv = {{ A = \"1\" }}\n{route}"),
    )
    .expect("valid");
    let pool = &ok.pools[0];
    let stdio = pool.stdio.as_ref().expect("stdio");
    assert_eq!(
        (stdio.processes, pool.health.kind, pool.backends.len()),
        (1, HealthKind::Mcp, 0),
        "MCP probe by default"
    );
    assert_eq!(stdio.env_names, ["A"]);
    assert_eq!(stdio.sessions, None, "shared processes by default");
}

#[test]
fn a_per_session_stdio_pool_is_bounded_and_takes_no_shared_process_count() {
    let route = "[[route]]\nname = \"main\"\npath = \"/mcp\"\npool = \"files\"\n";
    let pool =
        |extra: &str| format!("[[pool]]\nname = \"files\"\n[pool.stdio]\ncommand = \"/bin/cat\"\n{extra}{route}");
    for (extra, field, says) in [
        ("per_session = true\nprocesses = 2\n", "pool.files.stdio.processes", "per_session"),
        ("per_session = true\nmax_sessions = 0\n", "pool.files.stdio.max_sessions", "between 1 and 1024"),
        ("per_session = true\nsession_idle = \"0s\"\n", "pool.files.stdio.session_idle", ""),
        ("max_sessions = 5\n", "pool.files.stdio.max_sessions", "only with `per_session = true`"),
        ("per_session = false\nsession_idle = \"1m\"\n", "pool.files.stdio.session_idle", "only with"),
    ] {
        let e = errors(&pool(extra));
        assert!(e.iter().any(|e| e.contains(field) && e.contains(says)), "{extra:?}: {e:?}");
    }
    let ok = parse(Path::new("edge.toml"), &pool("per_session = true\nmax_sessions = 3\n")).expect("valid");
    let stdio = ok.pools[0].stdio.as_ref().expect("stdio");
    assert_eq!(stdio.sessions, Some(Sessions { max: 3, idle: std::time::Duration::from_secs(600) }));
    assert_eq!(stdio.processes, 1, "one bridge starts them");
}
