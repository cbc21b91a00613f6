//! Bodies the proxy must classify exactly once and trust only when they are valid JSON-RPC:
//! error-shaped bodies (D1, once a process abort), `"id": null` (D5), batches (D6), glob
//! subjects containing `*` (D7), and non-JSON-RPC bodies on inspecting routes (edge validation).

use crate::common::raw;
use crate::common::Edge;
use crate::story::*;

/// JSON-RPC error responses without an id, or with `"id": null`: the D1 crash bodies.
const ERROR_BODIES: [&str; 2] = [
    r#"{"jsonrpc":"2.0","error":{"code":0,"message":""}}"#,
    r#"{"jsonrpc":"2.0","id":null,"error":{"code":0,"message":""}}"#,
];

fn one_pool(main: &Backend, route_extra: &str, top: &str) -> Edge {
    Edge::start(&format!(
        "{top}{}[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"main\"\n{route_extra}",
        pool("main", main)
    ))
}

/// `main` by default, `deploy_*` tools to `deploy`.
fn deploy_rule(main: &Backend, deploy: &Backend, route_extra: &str, top: &str) -> Edge {
    let rule = format!("{route_extra}[[route.rule]]\ntool = \"deploy_*\"\npool = \"deploy\"\n");
    Edge::start(&format!(
        "{top}{}{}[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"main\"\n{rule}",
        pool("main", main),
        pool("deploy", deploy)
    ))
}

#[test]
fn d1_error_bodies_on_a_default_route_are_refused() {
    let main = backend("main");
    let edge = one_pool(&main, "", "");
    for body in ERROR_BODIES {
        assert_refused(&post(&edge, "/mcp", &[], body), 400, -32600);
    }
    assert_alive_and_only_probe(&edge, "/mcp", &main);
}

#[test]
fn d1_error_bodies_with_a_forged_session_token_are_refused() {
    let main = backend("main");
    let edge = one_pool(&main, "", "");
    for body in ERROR_BODIES {
        assert_refused(&post(&edge, "/mcp", &[("Mcp-Session-Id", "e1.x")], body), 400, -32600);
    }
    assert_alive_and_only_probe(&edge, "/mcp", &main);
}

#[test]
fn d1_error_bodies_on_a_route_with_a_tool_rule_are_refused() {
    let (main, deploy) = (backend("main"), backend("deploy"));
    let edge = deploy_rule(&main, &deploy, "", "");
    for body in ERROR_BODIES {
        assert_refused(&post(&edge, "/mcp", &[], body), 400, -32600);
    }
    assert_alive_and_only_probe(&edge, "/mcp", &main);
    deploy.rec.assert_nothing();
}

#[test]
fn d1_error_bodies_on_a_route_whose_limit_refuses_are_refused() {
    let main = backend("main");
    let limit = "[[limit]]\nname = \"once\"\nkey = [\"client_ip\"]\nrate = \"1/h\"\n\n";
    let edge = one_pool(&main, "limits = [\"once\"]\n", limit);
    assert_eq!(post(&edge, "/mcp", &[], &call("echo")).status, 200, "the hour's one request");
    // A limit keyed by the client is checked before the body is read (so a throttled client
    // cannot make the proxy buffer it): 429. The refusal then reads the small body only to
    // echo an id, which these bodies do not have: the path that once aborted the process.
    for body in ERROR_BODIES {
        let r = post(&edge, "/mcp", &[], body);
        assert_eq!(r.status, 429, "{}", r.text());
        assert!(r.body.is_empty(), "no id to echo, so a bare 429: {}", r.text());
    }
    assert_eq!(crate::common::http::try_status(edge.admin, "/livez"), Some(200));
    let r = post(&edge, "/mcp", &[], &call("echo"));
    assert_eq!(r.status, 429, "the limit still refuses: {}", r.text());
    main.rec.assert_stays(1);
}

/// Like the story above, with a limit keyed by tool: one that needs the body, so the body is
/// read and classified on the way to the limit (the path that aborted the process).
#[test]
fn d1_error_bodies_on_a_route_whose_body_keyed_limit_refuses_are_refused() {
    let main = backend("main");
    let limit = "[[limit]]\nname = \"once\"\nkey = [\"tool\"]\nrate = \"1/h\"\n\n";
    let edge = one_pool(&main, "limits = [\"once\"]\n", limit);
    assert_eq!(post(&edge, "/mcp", &[], &call("echo")).status, 200, "the hour's one echo");
    for body in ERROR_BODIES {
        assert_refused(&post(&edge, "/mcp", &[], body), 400, -32600);
    }
    let r = post(&edge, "/mcp", &[], &call("echo"));
    assert_eq!(r.status, 429, "the limit still refuses: {}", r.text());
    main.rec.assert_stays(1);
}

#[test]
fn d1_chunked_error_bodies_are_refused() {
    let (main, deploy) = (backend("main"), backend("deploy"));
    let edge = deploy_rule(&main, &deploy, "", "");
    for body in ERROR_BODIES {
        assert_refused(&raw::send(edge.port, &raw::post_chunked(edge.port, "/mcp", &[], body, 3)), 400, -32600);
    }
    assert_alive_and_only_probe(&edge, "/mcp", &main);
    deploy.rec.assert_nothing();
}

#[test]
fn d1_a_pipelined_error_body_does_not_carry_the_next_request_in() {
    let main = backend("main");
    let edge = one_pool(&main, "[[route.rule]]\ntool = \"x\"\npool = \"main\"\n", "");
    let keep = [("Connection", "keep-alive")];
    let attack = raw::post(edge.port, "/mcp", &keep, ERROR_BODIES[1]);
    let next = raw::post(edge.port, "/mcp", &keep, &call("echo"));
    let answers = raw::exchange_many(edge.port, &[&attack, &next]);
    assert_refused(&answers[0], 400, -32600);
    // The proxy may close after a refusal; if it answered the next request, that one (and
    // only that one, byte-exact) reached the backend.
    let lines = main.rec.wait_count(answers.len() - 1);
    assert_eq!(lines.iter().map(|l| l.body.as_str()).collect::<Vec<_>>(), vec![call("echo"); answers.len() - 1]);
    assert_eq!(crate::common::http::try_status(edge.admin, "/livez"), Some(200));
}

#[test]
fn d5_a_null_id_tools_call_is_refused_with_a_null_id() {
    let (main, deploy) = (backend("main"), backend("deploy"));
    let edge = deploy_rule(&main, &deploy, "", "");
    let r =
        post(&edge, "/mcp", &[], r#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"deploy_db"}}"#);
    assert_refused(&r, 400, -32600);
    let answer = r.json();
    assert!(answer.get("id").is_some_and(serde_json::Value::is_null), "the refusal's id is null: {answer}");
    assert_alive_and_only_probe(&edge, "/mcp", &main);
    deploy.rec.assert_nothing();
}

#[test]
fn d5_a_tools_call_notification_is_routed_by_its_tool() {
    let (main, deploy) = (backend("main"), backend("deploy"));
    let edge = deploy_rule(&main, &deploy, "", "");
    let note = r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"deploy_db"}}"#;
    let r = post(&edge, "/mcp", &[], note);
    assert_eq!(r.header("x-mock-backend"), Some("deploy"), "{} {}", r.status, r.text());
    let lines = deploy.rec.wait_count(1);
    assert_eq!(lines[0].body, note);
    main.rec.assert_nothing();
}

#[test]
fn d6_batches_are_refused_by_default() {
    let (main, deploy) = (backend("main"), backend("deploy"));
    let edge = deploy_rule(&main, &deploy, "", "");
    let batch = format!("[{},{}]", call("deploy_db"), call("echo"));
    assert_refused(&post(&edge, "/mcp", &[], &batch), 400, -32600);
    assert_alive_and_only_probe(&edge, "/mcp", &main);
    deploy.rec.assert_nothing();
}

#[test]
fn d6_an_allowed_batch_for_one_pool_is_forwarded_byte_exact() {
    let (main, deploy) = (backend("main"), backend("deploy"));
    let edge = deploy_rule(&main, &deploy, "batches = true\n", "");
    let batch = format!("[{}, {}]", call("deploy_db"), call("deploy_app"));
    let r = post(&edge, "/mcp", &[], &batch);
    assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("deploy")), "{}", r.text());
    assert_eq!(deploy.rec.wait_count(1)[0].body, batch);
    main.rec.assert_nothing();
}

#[test]
fn d6_an_allowed_batch_spanning_two_pools_is_refused() {
    let (main, deploy) = (backend("main"), backend("deploy"));
    let edge = deploy_rule(&main, &deploy, "batches = true\n", "");
    let batch = format!("[{},{}]", call("echo"), call("deploy_db"));
    assert_refused(&post(&edge, "/mcp", &[], &batch), 400, -32600);
    assert_alive_and_only_probe(&edge, "/mcp", &main);
    deploy.rec.assert_nothing();
}

#[test]
fn d6_every_element_of_a_batch_is_charged_to_the_limit() {
    let (main, deploy) = (backend("main"), backend("deploy"));
    let limit = "[[limit]]\nname = \"per-tool\"\nkey = [\"tool\"]\nrate = \"3/h\"\n\n";
    let edge = deploy_rule(&main, &deploy, "batches = true\nlimits = [\"per-tool\"]\n", limit);
    // Five calls with five ids (a batch whose requests share an id is refused before limits).
    let calls: Vec<String> = (0..5).map(|i| call("echo").replace("\"c-echo\"", &format!("\"c-echo-{i}\""))).collect();
    let batch = format!("[{}]", calls.join(","));
    let r = post(&edge, "/mcp", &[], &batch);
    assert_eq!(r.status, 429, "5 calls against 3/h: {}", r.text());
    assert_local(&r);
    main.rec.assert_nothing();
    deploy.rec.assert_nothing();
}

#[test]
fn d7_a_glob_matches_a_subject_that_contains_a_star() {
    let (main, deploy) = (backend("main"), backend("deploy"));
    let rule = "[[route.rule]]\ntool = \"*b*\"\npool = \"deploy\"\n";
    let edge = Edge::start(&format!(
        "{}{}[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"main\"\n{rule}",
        pool("main", &main),
        pool("deploy", &deploy)
    ));
    let r = post(&edge, "/mcp", &[], &call("*ab"));
    assert_eq!(r.header("x-mock-backend"), Some("deploy"), "{} {}", r.status, r.text());
    assert_eq!(deploy.rec.wait_count(1)[0].body, call("*ab"));
    main.rec.assert_nothing();
}

#[test]
fn edge_validation_refuses_what_is_not_json_rpc_on_a_default_route() {
    let main = backend("main");
    let edge = one_pool(&main, "", "");
    assert_refused(&post(&edge, "/mcp", &[], r#"{"hello":1}"#), 400, -32600);
    assert_refused(&post(&edge, "/mcp", &[], "{nope"), 400, -32700);
    assert_alive_and_only_probe(&edge, "/mcp", &main);
}

#[test]
fn edge_validation_is_off_on_an_explicit_pass_through_route() {
    let main = backend("main");
    let edge = one_pool(&main, "inspect = \"never\"\n", "");
    for (i, body) in [r#"{"hello":1}"#, "{nope"].into_iter().enumerate() {
        let r = post(&edge, "/mcp", &[], body);
        assert_eq!(r.header("x-mock-backend"), Some("main"), "{} {}", r.status, r.text());
        assert_eq!(main.rec.wait_count(i + 1)[i].body, body, "forwarded byte-exact");
    }
}

#[test]
fn d8_keys_a_case_insensitive_backend_reads_instead_of_the_routed_ones_are_refused() {
    // Go's encoding/json matches keys ignoring case (and reads `ſ` as `s`): such a backend
    // runs the second spelling while the proxy routed on the first (CVE-2026-27896's class).
    let (main, deploy) = (backend("main"), backend("deploy"));
    let edge = deploy_rule(&main, &deploy, "", "");
    for body in [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","Name":"deploy_db"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","NAME":"deploy_db"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"ping","Method":"tools/call","params":{"name":"deploy_db"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"},"paramſ":{"name":"deploy_db"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{},"Method":"tools/call","params":{"name":"deploy_db"}}"#,
    ] {
        assert_refused(&post(&edge, "/mcp", &[], body), 400, -32600);
    }
    assert_alive_and_only_probe(&edge, "/mcp", &main);
    deploy.rec.assert_nothing();
}

/// `main` behind a route with API-key auth and `policy`; [`post`] with [`KEY`] passes the auth.
fn policy_route(main: &Backend, policy: &str) -> Edge {
    let keys = "[[authenticator]]\nname = \"keys\"\nkind = \"api_key\"\n[[authenticator.key]]\nid = \"caller\"\nsha256 = \"cbd1af04c3403e37799c34fe7c2e9dabbcf4854523b90b93dce890f2922924b7\"\n\n";
    one_pool(main, &format!("auth = [\"keys\"]\n{policy}"), keys)
}

/// The caller's key for [`policy_route`]s.
const KEY: (&str, &str) = ("Authorization", "Bearer k-hostile-policy");

#[test]
fn d9_a_batch_whose_requests_share_an_id_is_refused() {
    // Two list requests under one id: the discovery filter judged both answers as the first
    // request's kind, and the second list (hidden resources, tools, prompts) passed unfiltered.
    let main = backend("main");
    let policy = "batches = true\n[route.policy]\n[[route.policy.rule]]\neffect = \"deny\"\nresources = [\"mock://A/secret\"]\n[[route.policy.rule]]\neffect = \"allow\"\n";
    let edge = policy_route(&main, policy);
    for batch in [
        r#"[{"jsonrpc":"2.0","id":7,"method":"tools/list"},{"jsonrpc":"2.0","id":7,"method":"resources/list"}]"#,
        r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":1.0,"method":"resources/list"}]"#,
        r#"[{"jsonrpc":"2.0","id":"a","method":"ping"},{"jsonrpc":"2.0","id":"\u0061","method":"resources/list"}]"#,
    ] {
        assert_refused(&post(&edge, "/mcp", &[KEY], batch), 400, -32600);
    }
    assert_alive_and_only_probe_as(&edge, "/mcp", &main, &[KEY]);
}

#[test]
fn d10_what_a_lenient_backend_would_trim_or_fold_is_judged_or_refused() {
    let main = backend("main");
    let policy = "[route.policy]\n[[route.policy.rule]]\neffect = \"deny\"\ntools = [\"deploy_db\"]\nresources = [\"mock://A/secret\"]\n[[route.policy.rule]]\neffect = \"allow\"\n";
    let edge = policy_route(&main, policy);
    // Python's strip() and JavaScript's trim() remove Unicode spaces and the BOM.
    for target in
        [r#""uri":"mock://A/secret\u00a0""#, r#""uri":"\u2028mock://A/secret""#, r#""uri":"mock://A/secret\ufeff""#]
    {
        let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{{{target}}}}}"#);
        assert_refused(&post(&edge, "/mcp", &[KEY], &body), 403, -32600);
    }
    // Isolates, variation selectors, tags, fillers and fullwidth forms: stripped or normalised
    // (NFKC) by some readers.
    for name in [
        "deploy_db\\u3000",
        "deploy_db\\u2066",
        "deploy_db\\ufe0f",
        "deploy_db\\udb40\\udc20",
        "deploy_db\\ud834\\udd73",
        "deploy_db\\u3164",
        "\\uff44eploy_db",
    ] {
        assert_refused(&post(&edge, "/mcp", &[KEY], &call(name)), 403, -32600);
    }
    // A method a case-insensitive or trimming dispatcher runs as tools/call.
    for method in ["Tools/Call", "tools/call\\u0000", "tools/call ", "TOOLS/CALL"] {
        let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{{"name":"deploy_db"}}}}"#);
        assert_refused(&post(&edge, "/mcp", &[KEY], &body), 400, -32600);
    }
    // A list cursor that is not a string, and a version header with more after the date.
    assert_refused(
        &post(&edge, "/mcp", &[KEY], r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":2}}"#),
        400,
        -32600,
    );
    assert_refused(&post(&edge, "/mcp", &[KEY, ("MCP-Protocol-Version", "2026-07-28x")], &call("echo")), 400, -32600);
    assert_alive_and_only_probe_as(&edge, "/mcp", &main, &[KEY]);
}
