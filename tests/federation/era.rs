//! A 2026-07-28 client of a federated route gets what that era's servers answer: the route
//! is the server there. Each request carries its version and capabilities in `params._meta`
//! (else -32602, 400); a version the route does not speak is refused naming those it does
//! (-32022, 400); the handshake, `ping`, `logging/setLevel`, resource subscriptions and
//! unknown methods are "method not found" with 404. No member hears of any of it.

use super::*;

/// A 2026-07-28 POST of `body` as written (no `_meta` added), with `version` as its
/// `MCP-Protocol-Version`.
fn modern_as_written(edge: &Edge, version: &str, method: &str, name: Option<&str>, body: &str) -> RawResponse {
    let mut headers = vec![("MCP-Protocol-Version", version), ("Mcp-Method", method)];
    headers.extend(name.map(|n| ("Mcp-Name", n)));
    raw::send(edge.port, &raw::post(edge.port, "/mcp", &headers, body))
}

fn refused(r: &RawResponse) -> (u16, Option<i64>, Value) {
    (r.status, r.rpc_code(), r.json()["id"].clone())
}

#[test]
fn a_2026_07_28_request_is_judged_as_that_eras_servers_judge_it_and_reaches_no_member_when_refused() {
    let (a, b) = (member("A", "5"), member("B", "5"));
    let edge = Edge::start(&federated([&a.addr, &b.addr]));
    let caps = r#""io.modelcontextprotocol/clientCapabilities":{}"#;
    let version = r#""io.modelcontextprotocol/protocolVersion":"2026-07-28""#;
    for (why, meta) in [
        ("no _meta", String::new()),
        ("no version", format!(r#","_meta":{{{caps}}}"#)),
        ("no capabilities", format!(r#","_meta":{{{version}}}"#)),
    ] {
        let discover = format!(r#"{{"jsonrpc":"2.0","id":"d","method":"server/discover","params":{{"x":1{meta}}}}}"#);
        let r = modern_as_written(&edge, MODERN, "server/discover", None, &discover);
        assert_eq!(refused(&r), (400, Some(-32602), "d".into()), "{why}: {}", r.text());
        let call = format!(r#"{{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{{"name":"a_echo"{meta}}}}}"#);
        let r = modern_as_written(&edge, MODERN, "tools/call", Some("a_echo"), &call);
        assert_eq!(refused(&r), (400, Some(-32602), 4.into()), "{why}: {}", r.text());
    }
    // With both, the same discover is answered.
    let whole =
        format!(r#"{{"jsonrpc":"2.0","id":"d","method":"server/discover","params":{{"_meta":{{{version},{caps}}}}}}}"#);
    let r = modern_as_written(&edge, MODERN, "server/discover", None, &whole);
    assert_eq!((r.status, r.json()["result"]["supportedVersions"][0].as_str()), (200, Some(MODERN)), "{}", r.text());

    // A version the route does not speak, in the header: refused naming those it does, the
    // asked one echoed as a JSON string however it is spelled, at most 64 bytes of it.
    for (asked, echoed) in [
        ("v999.0.0", "v999.0.0".to_owned()),
        ("2027-01-01", "2027-01-01".to_owned()),
        (r#"a"b\c"#, r#"a"b\c"#.to_owned()),
        (&"9".repeat(200), "9".repeat(64)),
    ] {
        let body =
            format!(r#"{{"jsonrpc":"2.0","id":301,"method":"server/discover","params":{{"_meta":{{{caps}}}}}}}"#);
        let r = modern_as_written(&edge, asked, "server/discover", None, &body);
        assert_eq!(refused(&r), (400, Some(-32022), 301.into()), "{asked}: {}", r.text());
        let data = &r.json()["error"]["data"];
        assert_eq!(data["requested"].as_str(), Some(echoed.as_str()), "{}", r.text());
        assert_eq!(data["supported"][0], MODERN, "{}", r.text());
    }

    // What 2026-07-28 removed, and what no server has: 404 and -32601, with the request's id.
    for (method, params) in [
        ("initialize", r#"{"protocolVersion":"2026-07-28","capabilities":{},"clientInfo":{"name":"t","version":"1"}}"#),
        ("ping", "{}"),
        ("logging/setLevel", r#"{"level":"debug"}"#),
        ("resources/subscribe", "{}"),
        ("resources/unsubscribe", "{}"),
        ("unknown/method", "{}"),
    ] {
        let r = post(&edge, &modern(Box::leak(method.into()), None), &rpc(500, method, params));
        assert_eq!(refused(&r), (404, Some(-32601), 500.into()), "{method}: {}", r.text());
    }
    assert_eq!(a.rec.count() + b.rec.count(), 0, "no member heard of a refused request");
    // In the legacy era the same ping is answered, and an unknown method is a 200 error.
    let r = post(&edge, &[], &rpc(6, "ping", "{}"));
    assert_eq!((r.status, r.json()["result"].clone()), (200, serde_json::json!({})), "{}", r.text());
    let r = post(&edge, &[], &rpc(7, "unknown/method", "{}"));
    assert_eq!((r.status, r.rpc_code()), (200, Some(-32601)), "{}", r.text());
}

/// A 2026-07-28 `tools/call` of `tool` with `text`, and what else `params` holds (`extra`).
fn confirm(edge: &Edge, tool: &'static str, extra: &str) -> RawResponse {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":"m1","method":"tools/call","params":{{"name":"{tool}","arguments":{{"text":"confirm"}}{extra}}}}}"#
    );
    post(edge, &modern("tools/call", Some(tool)), &body)
}

#[test]
fn an_input_required_result_reaches_the_client_and_its_retry_the_member_that_asked() {
    let (a, b) = (member("A", "5"), member("B", "5"));
    let edge = Edge::start(&federated([&a.addr, &b.addr]));
    // Each member asks for input, with a state of its own.
    for (tool, state) in [("a_echo", "A-state"), ("b_echo", "B-state")] {
        let r = confirm(&edge, tool, "");
        let result = &r.json()["result"];
        assert_eq!(
            (result["resultType"].as_str(), result["requestState"].as_str()),
            (Some("input_required"), Some(state))
        );
        assert_eq!(result["inputRequests"]["ok"]["method"], "elicitation/create", "{}", r.text());
    }
    // The retries, with the answers and each member's state, reach the member that asked,
    // under its own tool name, with the answers as sent.
    let answers = r#","inputResponses":{"ok":{"action":"accept","content":{}}}"#;
    for (tool, member, state) in [("b_echo", &b, "B-state"), ("a_echo", &a, "A-state")] {
        let r = confirm(&edge, tool, &format!(r#"{answers},"requestState":"{state}""#));
        let text = r.json()["result"]["content"][0]["text"].as_str().map(str::to_owned);
        let name = &tool[..1].to_uppercase();
        assert_eq!(text.as_deref(), Some(format!("confirmed by {name}, state {state}").as_str()), "{}", r.text());
        let calls = calls_received(&member.rec);
        let retry = calls.last().expect("the member got the retry");
        let params: Value = serde_json::from_str::<Value>(&retry.body).expect("JSON")["params"].clone();
        assert_eq!((params["name"].as_str(), params["requestState"].as_str()), (Some("echo"), Some(state)));
        assert_eq!(params["inputResponses"]["ok"]["action"], "accept", "{params}");
    }
    assert_eq!((calls_received(&a.rec).len(), calls_received(&b.rec).len()), (2, 2), "each call once, to its member");
}
