//! Limits through the real binary: 429 with Retry-After and a JSON-RPC error naming the limit
//! (a bare 429 for notifications), per-tool limits and costs from rules, concurrency caps that
//! never cut an admitted stream, tiers by API key, and counters that survive a reload.

mod common;

use common::http::{post_mcp, request, Stream, JSON_HEADERS};
use common::{pool, Edge, Mock, Opts};

fn call(tool: &str, id: u32) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}"}}}}"#)
}

fn edge(mock: &Mock, limits: &str, route_extra: &str) -> Edge {
    Edge::start(&format!(
        "{limits}\n{}[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"p\"\n{route_extra}",
        pool("p", &[mock], "")
    ))
}

fn statuses(edge: &Edge, n: u32, body: impl Fn(u32) -> String, headers: &[(&str, &str)]) -> Vec<u16> {
    (0..n).map(|i| post_mcp(edge.port, "/mcp", headers, &body(i)).status).collect()
}

#[test]
fn over_the_rate_gets_429_with_retry_after_and_a_json_rpc_error_naming_the_limit() {
    let mock = Mock::start("m", false);
    let limit = "[[limit]]\nname = \"per-client\"\nkey = [\"client_ip\"]\nrate = \"5/min\"\nburst = 2\n";
    let edge = edge(&mock, limit, "limits = [\"per-client\"]\n");
    let got = statuses(&edge, 7, |i| call("echo", i), &[]);
    assert_eq!(got, vec![200; 7], "5/min plus a burst of 2");
    let r = post_mcp(edge.port, "/mcp", &[], &call("echo", 77));
    assert_eq!(r.status, 429);
    let retry: u64 = r.header("retry-after").and_then(|v| v.parse().ok()).expect("Retry-After");
    assert!((1..=60).contains(&retry), "{retry}");
    let body = r.json();
    assert_eq!(body["id"], 77);
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("`per-client`")), "{body}");
    assert!(r.header("x-mock-backend").is_none());
    let note = post_mcp(edge.port, "/mcp", &[], r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    assert_eq!((note.status, note.body.len()), (429, 0), "notifications get a bare 429");
    edge.wait_metric(r#"mcp_edge_limit_rejections_total{limit="per-client",reason="rate_limited",route="mcp"} 2"#);
    // Usage: what the limit let through, and how much of its quota the busiest key used.
    let m = edge.metrics();
    assert!(m.contains("mcp_edge_limit_admitted_total{limit=\"per-client\"} 7\n"), "{m}");
    let usage = m.lines().find_map(|l| l.strip_prefix("mcp_edge_limit_usage_ratio{limit=\"per-client\"} "));
    assert!(
        usage.and_then(|v| v.parse::<f64>().ok()).is_some_and(|u| u >= 1.0),
        "the client used its whole quota: {m}"
    );
}

#[test]
fn rule_limits_count_per_tool_and_expensive_tools_cost_more() {
    let mock = Mock::start("m", false);
    let limit = "[[limit]]\nname = \"deploys\"\nkey = [\"tool\"]\nrate = \"10/min\"\ncosts = { deploy_db = 5 }\n";
    let edge = edge(&mock, limit, "[[route.rule]]\ntool = \"deploy_*\"\nlimits = [\"deploys\"]\n");
    assert_eq!(statuses(&edge, 3, |i| call("deploy_db", i), &[]), vec![200, 200, 429], "cost 5 against 10/min");
    assert_eq!(statuses(&edge, 10, |i| call("deploy_app", i), &[]), vec![200; 10], "another tool, another key");
    assert_eq!(statuses(&edge, 20, |i| call("echo", i), &[]), vec![200; 20], "tools without the rule are not limited");
}

#[test]
fn concurrency_caps_refuse_new_work_but_never_cut_admitted_streams() {
    let mock = Mock::start("m", false);
    let limit = "[[limit]]\nname = \"inflight\"\nkey = [\"route\"]\nconcurrency = 2\n";
    let edge = edge(&mock, limit, "limits = [\"inflight\"]\n");
    let slow = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow","arguments":{"steps":3,"delay_ms":300}}}"#;
    let streams: Vec<Stream> = (0..2).map(|_| Stream::open(edge.port, "POST", "/mcp", &JSON_HEADERS, slow)).collect();
    assert!(streams.iter().all(|s| s.status == 200));
    let r = post_mcp(edge.port, "/mcp", &[], &call("echo", 5));
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("1"));
    for mut s in streams {
        let events: Vec<String> = std::iter::from_fn(|| s.next_event().map(|e| e.0)).collect();
        assert!(events.last().is_some_and(|e| e.contains("\"result\"")), "admitted streams finish: {events:?}");
    }
    common::wait_until("slots to free", std::time::Duration::from_secs(5), || {
        post_mcp(edge.port, "/mcp", &[], &call("echo", 6)).status == 200
    });
}

#[test]
fn tiers_follow_the_api_key_header_with_a_default() {
    let mock = Mock::start("m", false);
    let limit = "[[limit]]\nname = \"api\"\nkey = [\"header:x-api-key\"]\ndefault_tier = \"free\"\n[limit.tiers.free]\nrate = \"2/min\"\n[limit.tiers.gold]\nrate = \"100/min\"\n[limit.assign]\n\"gold-key-123\" = \"gold\"\n";
    let edge = edge(&mock, limit, "limits = [\"api\"]\n");
    assert_eq!(statuses(&edge, 4, |i| call("echo", i), &[("x-api-key", "someone")]), vec![200, 200, 429, 429]);
    assert_eq!(statuses(&edge, 20, |i| call("echo", i), &[("x-api-key", "gold-key-123")]), vec![200; 20]);
    let config = common::http::get(edge.admin, "/config").text();
    assert!(!config.contains("gold-key-123"), "tier assignments are secrets: {config}");
}

#[test]
fn limiter_state_survives_a_reload_while_the_limit_is_unchanged() {
    let mock = Mock::start("m", false);
    let limit = "[[limit]]\nname = \"per-client\"\nkey = [\"client_ip\"]\nrate = \"3/min\"\n";
    let body = format!(
        "{limit}\n{}[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"p\"\nlimits = [\"per-client\"]\n",
        pool("p", &[&mock], "")
    );
    let edge = Edge::start(&body);
    assert_eq!(statuses(&edge, 3, |i| call("echo", i), &[]), vec![200; 3]);
    edge.rewrite(&(body.clone() + "[[route]]\nname = \"extra\"\npath = \"/extra\"\npool = \"p\"\n"), &Opts::default());
    assert_eq!(request(edge.admin, "POST", "/reload", &[], b"").status, 200);
    assert_eq!(
        statuses(&edge, 1, |i| call("echo", i), &[]),
        vec![429],
        "the budget spent before the reload stays spent"
    );
    edge.rewrite(&body.replace("3/min", "50/min"), &Opts::default());
    assert_eq!(request(edge.admin, "POST", "/reload", &[], b"").status, 200);
    assert_eq!(statuses(&edge, 1, |i| call("echo", i), &[]), vec![200], "a changed limit starts afresh");
}

#[test]
fn status_shows_the_busiest_keys_without_their_secret_values() {
    let mock = Mock::start("m", false);
    let limit = "[[limit]]\nname = \"api\"\nkey = [\"header:x-api-key\", \"tool\"]\nrate = \"10/min\"\n";
    let edge = edge(&mock, limit, "limits = [\"api\"]\n");
    let busy = [("x-api-key", "sk-live-busy-123")];
    let quiet = [("x-api-key", "sk-live-quiet-456")];
    assert_eq!(statuses(&edge, 8, |i| call("echo", i), &busy), vec![200; 8]);
    assert_eq!(statuses(&edge, 2, |i| call("echo", i), &quiet), vec![200; 2]);

    let status = common::http::get(edge.admin, "/status").json();
    let limits = &status["limits"][0];
    assert_eq!(limits["name"], "api");
    let busiest = limits["busiest"].as_array().expect("busiest");
    assert_eq!(busiest.len(), 1, "only the key at half its quota or more: {busiest:?}");
    let key = busiest[0]["key"].as_str().expect("key");
    assert!(key.starts_with("header:x-api-key=#") && key.ends_with(" tool=echo"), "{key}");
    assert_eq!((busiest[0]["kind"].as_str(), busiest[0]["used"].as_f64()), (Some("rate"), Some(8.0)));
    assert_eq!((busiest[0]["quota"].as_f64(), busiest[0]["tier"].as_str()), (Some(10.0), Some("default")));
    assert!(!status.to_string().contains("sk-live"), "header values are never shown");
}
