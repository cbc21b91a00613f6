//! The catalog cache of a federated route: stale lists served while a member is asked
//! again, invalidation by the operator, fail-closed routes, and the cache's statistics.

use super::sessions::{ended, issued};
use super::*;

#[test]
fn a_stale_list_is_served_while_a_hung_member_is_asked_again() {
    let (a, b) = (member("A", "5"), member("B", "5"));
    let edge = Edge::start(
        &federated([&a.addr, &b.addr])
            .replace("path = \"/mcp\"\n[[route.member]]", "path = \"/mcp\"\ncatalog_ttl = \"200ms\"\n[[route.member]]"),
    );
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    assert_eq!(tool_names(&post(&edge, &[], list)).len(), 10);
    // B now accepts connections and never answers; the list goes stale.
    b.mock.signal("STOP");
    common::wait_until("the list to pass catalog_ttl", std::time::Duration::from_secs(5), || {
        common::http::get(edge.admin, "/servers").json()["routes"][0]["members"][0]["legacy"]["age_ms"].as_u64()
            > Some(300)
    });
    // Callers get the stale list and their calls at once; the refresh waits on B behind them.
    let started = std::time::Instant::now();
    for _ in 0..3 {
        assert_eq!(tool_names(&post(&edge, &[], list)).len(), 10);
        let r = post(&edge, &[], &call("a_whoami", "{}"));
        assert_eq!(r.header("x-mock-backend"), Some("A"), "{}", r.text());
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "callers waited for the hung member: {:?}",
        started.elapsed()
    );
    b.mock.signal("CONT");
}

#[test]
fn an_operator_invalidates_a_routes_lists_and_the_next_client_gets_them_anew() {
    let (a, b) = (member("A", "5"), member("B", "5"));
    let edge = Edge::start(&federated([&a.addr, &b.addr]));
    let prompts = |id| post(&edge, &[], &rpc(id, "prompts/list", "{}"));
    assert_eq!(listed(&prompts(1), "prompts", "name").len(), 4);
    assert_eq!(listed(&prompts(2), "prompts", "name").len(), 4);
    assert_eq!(received(&a.rec, "prompts/list").len(), 1, "served from the catalog within catalog_ttl");
    let servers = common::http::get(edge.admin, "/servers").json();
    assert!(servers["routes"][0]["members"][0]["legacy"]["bytes"].as_u64().is_some_and(|b| b > 100), "{servers}");

    // A name that is no federated route's is refused, and not echoed.
    let r = common::http::request(edge.admin, "POST", "/cache/invalidate?route=nope", &[], b"");
    assert_eq!(r.status, 404);
    assert!(!r.text().contains("nope"), "{}", r.text());
    assert_eq!(common::http::request(edge.admin, "GET", "/cache/invalidate", &[], b"").status, 405);
    assert_eq!(received(&a.rec, "prompts/list").len(), 1);

    let r = common::http::request(edge.admin, "POST", "/cache/invalidate?route=all", &[], b"");
    assert_eq!((r.status, r.json()["invalidated"].clone()), (200, serde_json::json!(["all"])), "{}", r.text());
    assert_eq!(listed(&prompts(3), "prompts", "name").len(), 4);
    assert_eq!((received(&a.rec, "prompts/list").len(), received(&b.rec, "prompts/list").len()), (2, 2));
    assert_eq!(listed(&prompts(4), "prompts", "name").len(), 4);
    assert_eq!(received(&a.rec, "prompts/list").len(), 2, "and cached again");
    let r = common::http::request(edge.admin, "POST", "/cache/invalidate", &[], b"");
    assert_eq!(r.json()["invalidated"], serde_json::json!(["all"]));
    assert_eq!(tool_names(&post(&edge, &[], r#"{"jsonrpc":"2.0","id":5,"method":"tools/list"}"#)).len(), 10);
    assert_eq!(lists(&a.rec), 1, "tools were never listed before: asked once");
}

/// `federated`, with `catalog_ttl`.
fn with_ttl(addrs: [&str; 2], ttl: &str) -> String {
    federated(addrs).replace(
        "path = \"/mcp\"\n[[route.member]]",
        &format!("path = \"/mcp\"\ncatalog_ttl = \"{ttl}\"\n[[route.member]]"),
    )
}

/// A catalog series of route `all`, as `/metrics` prints it.
fn catalog_line(metric: &str, labels: &str, value: u64) -> String {
    format!("mcp_edge_federation_catalog_{metric}{{{labels}route=\"all\"}} {value}")
}

#[test]
fn the_catalog_counts_how_each_list_was_served_and_what_each_member_holds() {
    let (a, b) = (member("A", "5"), member("B", "5"));
    let edge = Edge::start(&with_ttl([&a.addr, &b.addr], "300ms"));
    let list = || tool_names(&post(&edge, &[], r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)).len();
    let lookups = |result, n| {
        edge.wait_metric(&catalog_line("lookups_total", &format!("list=\"tools\",result=\"{result}\","), n))
    };
    assert_eq!((list(), list()), (10, 10));
    lookups("miss", 1);
    lookups("hit", 1);
    edge.wait_metric(&catalog_line("entries", "list=\"tools\",member=\"a\",", 5));
    let servers = common::http::get(edge.admin, "/servers").json();
    let bytes = servers["routes"][0]["members"][0]["legacy"]["bytes"].as_u64().expect("bytes held");
    edge.wait_metric(&catalog_line("bytes", "list=\"tools\",member=\"a\",", bytes));

    // Past catalog_ttl: served stale while one refresh runs in the background.
    common::wait_until("the list to pass catalog_ttl", std::time::Duration::from_secs(5), || {
        common::http::get(edge.admin, "/servers").json()["routes"][0]["members"][0]["legacy"]["age_ms"].as_u64()
            > Some(400)
    });
    assert_eq!(list(), 10);
    lookups("stale", 1);
    edge.wait_metric(r#"mcp_edge_federation_member_lists_total{list="tools",member="a",result="ok",route="all"} 2"#);

    // Invalidated: the one warm list is evicted, and the next caller waits for a new one.
    assert_eq!(common::http::request(edge.admin, "POST", "/cache/invalidate", &[], b"").status, 200);
    edge.wait_metric(&catalog_line("evictions_total", "reason=\"invalidated\",", 1));
    assert_eq!(list(), 10);
    lookups("miss", 2);

    let status = common::http::get(edge.admin, "/status").json();
    let catalog = &status["catalogs"][0];
    assert_eq!((catalog["route"].as_str(), catalog["evictions"].as_u64()), (Some("all"), Some(1)), "{catalog}");
    let tools = &catalog["lists"][0];
    assert_eq!(tools, &serde_json::json!({"list": "tools", "hits": 1, "stale": 1, "misses": 2}), "{catalog}");
    assert_eq!(
        catalog["members"][0],
        serde_json::json!({"prefix": "a", "entries": 5, "bytes": bytes, "refreshes": 3, "failed_refreshes": 0}),
        "{catalog}"
    );
    assert_eq!(catalog["members"][1]["entries"], 5, "{catalog}");
}

/// `federated`, fail-closed.
fn fail_closed(addrs: [&str; 2]) -> String {
    federated(addrs)
        .replace("path = \"/mcp\"\n[[route.member]]", "path = \"/mcp\"\nfailure_mode = \"closed\"\n[[route.member]]")
}

#[test]
fn a_fail_closed_route_refuses_lists_and_sessions_a_member_is_missing_from() {
    let a = member("A", "5");
    let dead = format!("127.0.0.1:{}", free_port());
    let edge = Edge::start(&fail_closed([&a.addr, &dead]));
    for (method, era) in [("tools/list", modern("tools/list", None)), ("prompts/list", vec![])] {
        let r = post(&edge, &era, &rpc(1, method, "{}"));
        assert_eq!((r.status, r.rpc_code()), (503, Some(-32000)), "{method}: {}", r.text());
        assert!(r.text().contains("fail-closed"), "{}", r.text());
    }
    let config = common::http::get(edge.admin, "/config").json();
    let fed = &config["routes"][0]["federation"];
    assert_eq!(
        (fed["failure_mode"].as_str(), fed["members"][1]["prefix"].as_str()),
        (Some("closed"), Some("b")),
        "{config}"
    );
    // A call to a member that answers still goes through: only lists are refused.
    let r = post(&edge, &modern("tools/call", Some("a_whoami")), &call("a_whoami", "{}"));
    assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("A")), "{}", r.text());

    // A session the dead member cannot join is not opened: the live member's part is ended.
    let (mock, rec) = recording::stateful_mock("S");
    let edge = Edge::start(&fail_closed([&mock.addr(), &dead]));
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let r = post(&edge, &[], init);
    assert_eq!((r.status, r.header("mcp-session-id")), (503, None), "{}", r.text());
    assert_eq!(issued(&rec).len(), 1, "{:?}", methods(&rec));
    assert_eq!(issued(&rec), ended(&rec), "the member session opened was ended");
}

#[test]
fn a_reload_that_removes_a_member_or_the_federation_stops_reporting_what_it_held() {
    let (a, b) = (member("A", "5"), member("B", "5"));
    let body = federated([&a.addr, &b.addr]);
    let edge = Edge::start(&body);
    assert_eq!(tool_names(&post(&edge, &[], r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)).len(), 10);
    edge.wait_metric(&catalog_line("entries", "list=\"tools\",member=\"b\",", 5));
    let reload = |body: &str| {
        edge.rewrite(body, &common::Opts::default());
        let r = common::http::request(edge.admin, "POST", "/reload", &[], b"");
        assert_eq!(r.status, 200, "{}", r.text());
    };
    // B is no member any more: its series go; A's start again from nothing.
    let without_b = body.replace("[[route.member]]\npool = \"b\"\nprefix = \"b\"\n", "");
    reload(&without_b);
    let metrics = edge.metrics();
    let held = |m: &str| {
        m.lines().filter(|l| l.starts_with("mcp_edge_federation_catalog_")).map(str::to_owned).collect::<Vec<_>>()
    };
    assert!(!held(&metrics).iter().any(|l| l.contains("member=\"b\"")), "{metrics}");
    assert!(metrics.contains(&catalog_line("entries", "list=\"tools\",member=\"a\",", 0)), "{metrics}");
    // The route is plain now: nothing of its catalog is reported.
    let plain = without_b.replace("[[route.member]]\npool = \"a\"\nprefix = \"a\"\n", "pool = \"a\"\n");
    reload(&plain);
    let metrics = edge.metrics();
    assert!(
        !metrics.contains("federation_catalog_entries") && !metrics.contains("federation_catalog_bytes"),
        "{metrics}"
    );
}

/// A recording member offering `extra` more tools of about 250 bytes each.
fn large_member(name: &str, extra: &str) -> Member {
    let (mock, rec) = recording::mock_with(name, &["--extra-tools", extra]);
    let addr = mock.addr();
    Member { mock, rec, addr }
}

#[test]
fn the_catalog_stays_within_catalog_max_bytes() {
    // A's 105 tools make a list of about 50 KiB held (entries and the rendered page): one fits
    // in 64 KiB, the legacy and the 2026-07-28 list together do not.
    let (a, b) = (large_member("A", "100"), member("B", "5"));
    let budget = "path = \"/mcp\"\ncatalog_max_bytes = 65536\n[[route.member]]";
    let edge = Edge::start(&federated([&a.addr, &b.addr]).replacen("path = \"/mcp\"\n[[route.member]]", budget, 1));
    let legacy = |id| post(&edge, &[], &rpc(id, "tools/list", "{}"));
    let modern_list = || post(&edge, &modern("tools/list", None), &rpc(9, "tools/list", "{}"));
    assert_eq!(tool_names(&legacy(1)).len(), 110);
    assert_eq!(tool_names(&legacy(2)).len(), 110);
    assert_eq!(lists(&a.rec), 1, "kept while it fits");
    assert_eq!(tool_names(&modern_list()).len(), 110);
    assert_eq!(lists(&a.rec), 2);
    assert_eq!(tool_names(&legacy(3)).len(), 110);
    assert_eq!(lists(&a.rec), 3, "the legacy list was dropped to keep the modern one");
    edge.wait_metric(&catalog_line("evictions_total", "reason=\"size\",", 2));

    // A list over the budget on its own is served, and asked for again every time.
    let big = large_member("C", "300");
    let edge = Edge::start(&federated([&big.addr, &b.addr]).replacen("path = \"/mcp\"\n[[route.member]]", budget, 1));
    for id in 1..=2 {
        assert_eq!(tool_names(&post(&edge, &[], &rpc(id, "tools/list", "{}"))).len(), 310);
    }
    assert_eq!(lists(&big.rec), 2, "not kept");
}
