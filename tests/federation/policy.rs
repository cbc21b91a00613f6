//! A federated route with a policy: its rules name what clients see (`a_echo`), each caller's
//! lists are filtered from the one merged catalog, and a denied call reaches no member.

use sha2::{Digest, Sha256};

use super::*;

const KEY: &str = "ak_federated_0123456789";

/// `federated`, for callers with an API key, with a policy hiding B's tools, A's
/// `deploy_app`, the secret prompts and the secret resources.
fn with_policy(addrs: [&str; 2]) -> String {
    let digest: String = Sha256::digest(KEY.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    let keys = format!("[[authenticator]]\nname = \"keys\"\nkind = \"api_key\"\n[[authenticator.key]]\nid = \"caller\"\nsha256 = \"{digest}\"\n");
    keys + &federated(addrs).replace("path = \"/mcp\"\n[[route.member]]", "path = \"/mcp\"\nauth = [\"keys\"]\n[[route.member]]")
        + "[route.policy]\n[[route.policy.rule]]\neffect = \"deny\"\ntools = [\"b_*\", \"a_deploy_app\"]\nprompts = [\"*_secret_plan\"]\nresources = [\"*/secret\"]\n[[route.policy.rule]]\neffect = \"allow\"\n"
}

/// A request with the caller's key.
fn send(edge: &Edge, extra: &[(&str, &str)], body: &str) -> RawResponse {
    let auth = format!("Bearer {KEY}");
    let mut headers = vec![("Authorization", auth.as_str())];
    headers.extend_from_slice(extra);
    post(edge, &headers, body)
}

const LIST: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#;

#[test]
fn each_caller_sees_only_the_members_tools_its_policy_allows_and_calls_no_other() {
    let (a, b) = (member("A", "5"), member("B", "5"));
    let edge = Edge::start(&with_policy([&a.addr, &b.addr]));
    let allowed = ["a_echo", "a_whoami", "a_slow", "a_bytes"];
    for _ in 0..2 {
        let r = send(&edge, &[], LIST);
        assert_eq!((r.status, r.json()["id"].as_u64()), (200, Some(7)), "{}", r.text());
        assert_eq!(tool_names(&r), allowed, "{}", r.text());
    }
    let r = send(&edge, &modern("tools/list", None), LIST);
    assert_eq!(tool_names(&r), allowed, "{}", r.text());
    assert_eq!(r.json()["result"]["cacheScope"], "private", "a filtered answer differs per caller");
    // One catalog for every caller, holding every member's tools; only answers are filtered.
    assert_eq!((lists(&a.rec), lists(&b.rec)), (2, 2), "each member listed once per era");
    let servers = common::http::get(edge.admin, "/servers").json();
    assert_eq!(servers["routes"][0]["members"][1]["legacy"]["tools"], 5, "{servers}");

    for hidden in ["b_whoami", "b\\u005fwhoami", "a_deploy_app"] {
        let r = send(&edge, &[], &call(hidden, "{}"));
        assert_eq!((r.status, r.header("x-mock-backend")), (403, None), "{hidden}: {}", r.text());
    }
    let r = send(&edge, &modern("tools/call", Some("b_whoami")), &call("b_whoami", "{}"));
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(calls_received(&b.rec).is_empty(), "no denied call reached B");
    assert!(calls_received(&a.rec).is_empty(), "nor A");
    let r = send(&edge, &[], &call("a_whoami", "{}"));
    assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("A")), "{}", r.text());
    let received = calls_received(&a.rec);
    assert!(received[0].header_all("authorization").is_empty(), "the caller's key is not passed on");
    // Without the key, nothing is listed.
    assert_eq!(post(&edge, &[], LIST).status, 401);
}

#[test]
fn hidden_prompts_and_resources_are_left_out_of_the_lists_and_reach_no_member() {
    let (a, b) = (member("A", "5"), member("B", "5"));
    let edge = Edge::start(&with_policy([&a.addr, &b.addr]));
    let prompts = send(&edge, &[], &rpc(1, "prompts/list", "{}"));
    assert_eq!(listed(&prompts, "prompts", "name"), ["a_greet", "b_greet"], "{}", prompts.text());
    let resources = send(&edge, &[], &rpc(2, "resources/list", "{}"));
    let uris = listed(&resources, "resources", "uri");
    assert_eq!(uris.len(), 2, "{uris:?}");
    assert!(uris.iter().all(|u| u.ends_with("/readme")), "{uris:?}");

    let secret = uris[0].replace("/readme", "/secret");
    for (method, params) in [
        ("prompts/get", r#"{"name":"b_secret_plan"}"#.to_owned()),
        ("resources/read", format!(r#"{{"uri":"{secret}"}}"#)),
        (
            "completion/complete",
            r#"{"ref":{"type":"ref/prompt","name":"a_secret_plan"},"argument":{"name":"x","value":""}}"#.to_owned(),
        ),
    ] {
        let r = send(&edge, &[], &rpc(3, method, &params));
        assert_eq!((r.status, r.header("x-mock-backend")), (403, None), "{method}: {}", r.text());
    }
    // Spellings a lenient member may read as the hidden resource are denied with it.
    let spellings = [
        "%73ecret",
        "x/../secret",
        "/secret",
        "secret#x",
        "secret?",
        "secret%00",
        "secret/.",
        // Tabs, newlines and edge spaces, which WHATWG parsers (`new URL()`, pydantic) strip.
        "sec\\tret",
        "sec\\nret",
        "secret ",
        "secret\\u0001",
    ];
    for spelling in spellings.map(|s| secret.replace("secret", s)) {
        let r = send(&edge, &[], &rpc(5, "resources/read", &format!(r#"{{"uri":"{spelling}"}}"#)));
        assert_eq!((r.status, r.header("x-mock-backend")), (403, None), "{spelling}: {}", r.text());
    }
    // A URI as the member parses the part after the prefix: a space after it, an empty port.
    let (prefix, rest) = secret.split_once('+').expect("a prefixed URI");
    for spelling in
        [format!("{prefix}+ {rest}"), format!("{prefix}+\\t{rest}"), secret.replacen("/secret", ":/secret", 1)]
    {
        let r = send(&edge, &[], &rpc(6, "resources/read", &format!(r#"{{"uri":"{spelling}"}}"#)));
        assert_eq!((r.status, r.header("x-mock-backend")), (403, None), "{spelling}: {}", r.text());
    }
    // Keys a member that matches keys ignoring case (Go) reads instead of the ones judged.
    // Refused as no JSON-RPC message (400); a completion whose reference cannot be judged is
    // denied (403).
    for (body, status) in [
        (r#"{"jsonrpc":"2.0","id":7,"method":"prompts/get","params":{"name":"a_greet","Name":"a_secret_plan"}}"#.to_owned(), 400),
        (format!(r#"{{"jsonrpc":"2.0","id":7,"method":"resources/read","params":{{"uri":"{}","URI":"{secret}"}}}}"#, uris[0]), 400),
        (r#"{"jsonrpc":"2.0","id":7,"method":"ping","Method":"prompts/get","params":{"name":"a_secret_plan"}}"#.to_owned(), 400),
        (r#"{"jsonrpc":"2.0","id":7,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"a_greet","NAME":"a_secret_plan"},"argument":{"name":"x","value":""}}}"#.to_owned(), 403),
        (r#"{"jsonrpc":"2.0","id":7,"method":"completion/complete","params":{"ref":{"type":"REF/PROMPT","name":"a_secret_plan"},"argument":{"name":"x","value":""}}}"#.to_owned(), 403),
    ] {
        let r = send(&edge, &[], &body);
        assert_eq!((r.status, r.header("x-mock-backend")), (status, None), "{body}: {}", r.text());
    }
    for m in [&a, &b] {
        for method in ["prompts/get", "resources/read", "completion/complete", "ping"] {
            assert!(received(&m.rec, method).is_empty(), "a denied {method} reached a member");
        }
    }
    let r = send(&edge, &[], &rpc(4, "prompts/get", r#"{"name":"b_greet"}"#));
    assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("B")), "{}", r.text());
}

#[test]
fn a_list_asked_without_an_id_is_a_notification_and_gets_no_list() {
    let (a, b) = (member("A", "5"), member("B", "5"));
    let edge = Edge::start(&with_policy([&a.addr, &b.addr]));
    for method in
        ["tools/list", "prompts/list", "resources/list", "resources/templates/list", "server/discover", "ping"]
    {
        let body = format!(r#"{{"jsonrpc":"2.0","method":"{method}"}}"#);
        for era in [vec![], modern(method, None)] {
            let r = send(&edge, &era, &body);
            assert_eq!((r.status, r.text()), (202, String::new()), "{method}");
        }
    }
}
