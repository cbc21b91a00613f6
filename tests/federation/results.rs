//! A federated route's tool-result cache (`[route.result_cache]`): a cacheable tool's result is
//! served again to the same caller asking the same, until its ttl, an operator's invalidation
//! or a reload; every other call reaches its member.

use sha2::{Digest, Sha256};

use super::*;

/// `federated`, with the route's `[route.result_cache]` holding `cache`.
fn with_cache(addrs: [&str; 2], cache: &str) -> String {
    federated(addrs) + "[route.result_cache]\n" + cache
}

/// A call to `tool` with `args`, under JSON-RPC id `id`.
fn call_as(id: u32, tool: &str, args: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{args}}}}}"#)
}

/// The calls of `tool` (its own name) a member received.
fn calls_of(member: &Member, tool: &str) -> usize {
    let name = format!("\"name\":\"{tool}\"");
    received(&member.rec, "tools/call").iter().filter(|l| l.body.contains(&name)).count()
}

/// The text of a call's answer (JSON, or the answer event of an event stream).
fn answered(r: &RawResponse) -> Value {
    let text = r.text();
    let json = match text.lines().rev().find_map(|l| l.strip_prefix("data: ")) {
        Some(data) if r.header("content-type").is_some_and(|t| t.starts_with("text/event-stream")) => data.to_owned(),
        _ => text,
    };
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

fn lookups(result: &str) -> String {
    format!("mcp_edge_federation_result_cache_lookups_total{{result=\"{result}\",route=\"all\"}}")
}

#[test]
fn a_cacheable_tools_result_is_served_again_to_whoever_asks_the_same_until_an_operator_forgets_it() {
    let (a, b) = (member("A", "5"), member("B", "5"));
    let edge = Edge::start(&with_cache([&a.addr, &b.addr], "tools = [\"a_echo\", \"a_slow\"]\n"));
    let first = answered(&post(&edge, &[], &call_as(1, "a_echo", r#"{"text":"x"}"#)));
    assert_eq!(first["result"]["content"][0]["text"], "x", "{first}");
    let again = answered(&post(&edge, &[], &call_as(2, "a_echo", r#"{"text":"x"}"#)));
    assert_eq!((again["id"].as_u64(), &again["result"]), (Some(2), &first["result"]), "{again}");
    assert_eq!(calls_of(&a, "echo"), 1, "the second call was answered from the cache");

    // Other arguments, a tool the route does not name, another member's tool: to the member.
    assert_eq!(
        answered(&post(&edge, &[], &call_as(3, "a_echo", r#"{"text":"y"}"#)))["result"]["content"][0]["text"],
        "y"
    );
    assert_eq!(calls_of(&a, "echo"), 2);
    for id in 4..6 {
        post(&edge, &[], &call_as(id, "a_whoami", "{}"));
        post(&edge, &[], &call_as(id, "b_echo", r#"{"text":"x"}"#));
    }
    assert_eq!((calls_of(&a, "whoami"), calls_of(&b, "echo")), (2, 2));

    // A result that came as an event stream (with progress) is kept as its answer event was.
    let slow = r#"{"steps":2,"delay_ms":5}"#;
    let streamed = post(&edge, &[], &call_as(6, "a_slow", slow));
    assert!(streamed.header("content-type").is_some_and(|t| t.starts_with("text/event-stream")), "{}", streamed.text());
    let cached = post(&edge, &[], &call_as(7, "a_slow", slow));
    assert_eq!(answered(&cached)["result"], answered(&streamed)["result"], "{}", cached.text());
    assert_eq!((answered(&cached)["id"].as_u64(), calls_of(&a, "slow")), (Some(7), 1));

    edge.wait_metric(&format!("{} 2", lookups("hit")));
    edge.wait_metric(&format!("{} 3", lookups("miss")));
    let status = common::http::get(edge.admin, "/status").json();
    let results = &status["catalogs"][0]["results"];
    assert_eq!((results["hits"].as_u64(), results["entries"].as_u64()), (Some(2), Some(3)), "{status}");

    // The operator forgets them: the next same call reaches the member, then is kept again.
    let r = common::http::request(edge.admin, "POST", "/cache/invalidate?route=all", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    post(&edge, &[], &call_as(8, "a_echo", r#"{"text":"x"}"#));
    post(&edge, &[], &call_as(9, "a_echo", r#"{"text":"x"}"#));
    assert_eq!(calls_of(&a, "echo"), 3);
}

const KEYS: [&str; 2] = ["ak_results_caller_one_0123", "ak_results_caller_two_0123"];

/// `with_cache` for two callers with API keys.
fn with_callers(addrs: [&str; 2], cache: &str) -> String {
    let mut keys = String::from("[[authenticator]]\nname = \"keys\"\nkind = \"api_key\"\n");
    for (i, key) in KEYS.iter().enumerate() {
        let digest: String = Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        keys += &format!("[[authenticator.key]]\nid = \"caller-{i}\"\nsha256 = \"{digest}\"\n");
    }
    keys + &with_cache(addrs, cache)
        .replace("path = \"/mcp\"\n[[route.member]]", "path = \"/mcp\"\nauth = [\"keys\"]\n[[route.member]]")
}

/// `caller`'s call of `tool`, in the era `headers` name.
fn call_by(edge: &Edge, caller: usize, headers: &[(&str, &str)], tool: &str) -> Value {
    let auth = format!("Bearer {}", KEYS[caller]);
    let mut h = vec![("Authorization", auth.as_str())];
    h.extend_from_slice(headers);
    let r = post(edge, &h, &call_as(1, tool, "{}"));
    assert_eq!(r.status, 200, "{}", r.text());
    answered(&r)
}

#[test]
fn a_result_trusted_read_only_is_each_callers_own_in_each_version_and_lives_for_the_ttl() {
    let (a, b) = (member("A", "5"), member("B", "5"));
    let edge = Edge::start(&with_callers([&a.addr, &b.addr], "read_only_hint = true\nttl = \"500ms\"\n"));
    // `whoami` is annotated readOnlyHint: kept per caller.
    call_by(&edge, 0, &[], "a_whoami");
    call_by(&edge, 0, &[], "a_whoami");
    assert_eq!(calls_of(&a, "whoami"), 1);
    call_by(&edge, 1, &[], "a_whoami");
    assert_eq!(calls_of(&a, "whoami"), 2, "another caller's result is not served");
    call_by(&edge, 0, &modern("tools/call", Some("a_whoami")), "a_whoami");
    assert_eq!(calls_of(&a, "whoami"), 3, "another protocol version's result is not served");
    // `deploy_app` says readOnlyHint false: every call reaches the member.
    call_by(&edge, 0, &[], "b_deploy_app");
    call_by(&edge, 0, &[], "b_deploy_app");
    assert_eq!(calls_of(&b, "deploy_app"), 2);
    // Past the ttl the caller's call reaches the member again.
    common::wait_until("the result to pass its ttl", std::time::Duration::from_secs(5), || {
        call_by(&edge, 0, &[], "a_whoami");
        calls_of(&a, "whoami") == 4
    });
    call_by(&edge, 0, &[], "a_whoami");
    assert_eq!(calls_of(&a, "whoami"), 4, "and it is kept again");
}

#[test]
fn a_call_two_readers_could_read_differently_is_never_kept_nor_served() {
    // An anonymous route: every caller shares results, so a poisoned entry would reach others.
    let (a, b) = (member("A", "5"), member("B", "5"));
    let edge = Edge::start(&with_cache([&a.addr, &b.addr], "tools = [\"a_echo\"]\n"));
    let twice = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a_echo","arguments":{"text":"x"},"arguments":{"text":"evil"}}}"#;
    for _ in 0..2 {
        raw::send(edge.port, &raw::post(edge.port, "/mcp", &[], twice));
    }
    let reached = calls_of(&a, "echo");
    assert!(reached == 0 || reached == 2, "each such call reaches the member or none does: {reached}");
    // The honest callers' calls are their own, each kept once.
    for text in ["x", "evil", "x", "evil"] {
        let r = answered(&post(&edge, &[], &call_as(2, "a_echo", &format!(r#"{{"text":"{text}"}}"#))));
        assert_eq!(r["result"]["content"][0]["text"], text, "{r}");
    }
    assert_eq!(calls_of(&a, "echo"), reached + 2);
    edge.wait_metric(&format!("{} 2", lookups("hit")));
}

#[test]
fn a_result_that_answers_more_than_its_arguments_is_never_kept_and_a_notification_gets_none() {
    // Found by an attack: a result after an input round, or after a request to the client on
    // the call's stream, was served to plain calls; a notification got a cached answer.
    let (mock, rec) = recording::mock_with("A", &["--page-size", "5", "--hostile-answers"]);
    let (a, b) = (Member { addr: mock.addr(), mock, rec }, member("B", "5"));
    let edge = Edge::start(&with_cache([&a.addr, &b.addr], "tools = [\"a_echo\", \"a_slow\"]\n"));
    // The hostile member's `slow` stream carries a request to the client before the answer.
    let slow = r#"{"steps":1,"delay_ms":5}"#;
    for id in 1..3 {
        let r = post(&edge, &[], &call_as(id, "a_slow", slow));
        assert!(r.text().contains("slow done"), "{}", r.text());
    }
    assert_eq!(calls_of(&a, "slow"), 2, "a stream that asked the client something is not kept");
    // A call answering an input round (or naming a task) is neither kept nor served.
    let echo = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"a_echo","arguments":{"text":"x"}}}"#;
    let answered_round = echo.replace(r#""arguments""#, r#""requestState":"s","inputResponses":{},"arguments""#);
    post(&edge, &[], &answered_round);
    post(&edge, &[], echo);
    post(&edge, &[], &answered_round);
    assert_eq!(calls_of(&a, "echo"), 3);
    post(&edge, &[], echo);
    assert_eq!(calls_of(&a, "echo"), 3, "the plain call's result is kept");
    // A notification of a cached call gets no answer.
    let note = r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"a_echo","arguments":{"text":"x"}}}"#;
    let r = post(&edge, &[], note);
    assert_eq!((r.status, r.text().as_str()), (202, ""), "{}", r.text());
}
