//! `prefix_mode`: a federated route that offers its members' names as they are (`"never"`), or
//! prefixes only the names several members offer (`"conflicts"`). Calls and reads still reach
//! the one owner, under its own names; a name two members offer goes to the first (`never`),
//! or is offered under each prefix and not bare (`conflicts`).

use super::*;

/// `federated` (two members) or three members, with `prefix_mode = mode`.
fn with_mode(mode: &str, addrs: &[&str]) -> String {
    let mut out = String::new();
    let names = ["a", "b", "c"];
    for (name, addr) in names.iter().zip(addrs) {
        out += &format!("[[pool]]\nname = \"{name}\"\nbackends = [\"{addr}\"]\npath = \"/mcp\"\n[pool.health]\ncheck = \"none\"\n\n");
    }
    out += &format!("[[route]]\nname = \"all\"\npath = \"/mcp\"\nprefix_mode = \"{mode}\"\n");
    for p in names.iter().take(addrs.len()) {
        out += &format!("[[route.member]]\npool = \"{p}\"\nprefix = \"{p}\"\n");
    }
    out
}

fn read(edge: &Edge, id: u32, uri: &str) -> RawResponse {
    post(edge, &[], &rpc(id, "resources/read", &format!(r#"{{"uri":"{uri}"}}"#)))
}

/// The `uri` of every `resources/read` a member received.
fn uris_read(rec: &Recording) -> Vec<String> {
    received(rec, "resources/read")
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(&l.body)
                .map_or(String::new(), |v| v["params"]["uri"].as_str().unwrap_or("").to_owned())
        })
        .collect()
}

#[test]
fn with_prefix_mode_conflicts_only_names_several_members_offer_carry_a_prefix() {
    let (a, b) = (member("A", "5"), member("B", "5"));
    let (c, c_rec) = recording::mock_with("C", &["--tools-only", "--extra-tools", "2"]);
    let edge = Edge::start(&with_mode("conflicts", &[&a.addr, &b.addr, &c.addr()]));

    let own = ["echo", "whoami", "slow", "bytes", "deploy_app"];
    let mut want: Vec<String> =
        ["a", "b", "c"].iter().flat_map(|p| own.iter().map(move |t| format!("{p}_{t}"))).collect();
    want.extend(["tool_000".to_owned(), "tool_001".to_owned()]);
    assert_eq!(tool_names(&post(&edge, &[], &rpc(1, "tools/list", "{}"))), want);

    // A name only C offers is called as it is, and reaches C alone.
    let r = post(&edge, &[], &call("tool_001", "{}"));
    assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("C")), "{}", r.text());
    assert!(calls_received(&c_rec)[0].body.contains(r#""name":"tool_001""#));
    // A shared one under its prefix reaches its owner under its own name.
    let r = post(&edge, &[], &call("b_echo", r#"{"text":"x"}"#));
    assert_eq!(r.header("x-mock-backend"), Some("B"), "{}", r.text());
    assert!(calls_received(&b.rec)[0].body.contains(r#""name":"echo""#));
    // ...and not bare: nobody could tell whose it is.
    let r = post(&edge, &[], &call("echo", r#"{"text":"x"}"#));
    assert_eq!(r.json()["error"]["code"].as_i64(), Some(-32602), "{}", r.text());

    // Resources: each member's own URIs are unique, kept; the template both offer is prefixed.
    let r = post(&edge, &[], &rpc(2, "resources/templates/list", "{}"));
    assert_eq!(
        listed(&r, "resourceTemplates", "uriTemplate"),
        ["mock://A/files/{path}", "a+secret://{id}", "mock://B/files/{path}", "b+secret://{id}"],
        "{}",
        r.text()
    );
    assert_eq!(read(&edge, 3, "mock://B/readme").header("x-mock-backend"), Some("B"));
    assert_eq!(read(&edge, 4, "mock://A/files/q.txt").header("x-mock-backend"), Some("A"));
    assert_eq!(read(&edge, 5, "b+secret://7").header("x-mock-backend"), Some("B"));
    let r = read(&edge, 6, "secret://7");
    assert_eq!(r.json()["error"]["code"].as_i64(), Some(-32002), "{}", r.text());
    // A URI offered bare is not also reachable under a prefix (a policy judges the offered
    // form), nor is another member's URI under a prefix that names no list.
    for uri in ["a+mock://A/readme", "A+mock://A/readme", "a+mock://B/readme"] {
        let r = read(&edge, 7, uri);
        assert_eq!(r.json()["error"]["code"].as_i64(), Some(-32002), "{uri}: {}", r.text());
    }
    assert_eq!(uris_read(&a.rec), ["mock://A/files/q.txt"]);
    assert_eq!(uris_read(&b.rec), ["mock://B/readme", "secret://7"]);
}

#[test]
fn with_prefix_mode_never_names_are_the_members_own_and_the_first_member_keeps_a_shared_one() {
    let (a, b) = (member("A", "5"), member("B", "5"));
    let edge = Edge::start(&with_mode("never", &[&a.addr, &b.addr]));

    // Both offer the same five tools: A's are offered, B's are left out and the conflict logged.
    let r = post(&edge, &[], &rpc(1, "tools/list", "{}"));
    assert_eq!(tool_names(&r), ["echo", "whoami", "slow", "bytes", "deploy_app"]);
    edge.wait_log("offered under a name already taken");
    assert!(edge.log().contains("first_taken=Some(\"echo\")"), "{}", edge.log());
    let r = post(&edge, &modern("tools/call", Some("echo")), &call("echo", r#"{"text":"x"}"#));
    assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("A")), "{}", r.text());
    assert!(calls_received(&b.rec).is_empty());
    // Nothing to offer under other names: the answer is passed with its length, not held.
    assert!(r.header("content-length").is_some() && r.header("transfer-encoding").is_none(), "{:?}", r.headers);

    // Resources by their own URIs; a URI expanded from a template goes to the template's owner.
    let r = post(&edge, &[], &rpc(2, "resources/list", "{}"));
    assert_eq!(
        listed(&r, "resources", "uri"),
        ["mock://A/readme", "mock://A/secret", "mock://B/readme", "mock://B/secret"]
    );
    assert_eq!(read(&edge, 3, "mock://B/readme").header("x-mock-backend"), Some("B"));
    assert_eq!(read(&edge, 4, "mock://B/files/a/b.txt").header("x-mock-backend"), Some("B"));
    assert_eq!(read(&edge, 5, "secret://9").header("x-mock-backend"), Some("A"));
    assert_eq!(uris_read(&b.rec), ["mock://B/readme", "mock://B/files/a/b.txt"]);
    assert_eq!(uris_read(&a.rec), ["secret://9"]);
    // A URI no member lists nor could have expanded is unknown, and asked of nobody.
    let r = read(&edge, 6, "other://x");
    assert_eq!(r.json()["error"]["code"].as_i64(), Some(-32002), "{}", r.text());
    assert_eq!(uris_read(&a.rec).len() + uris_read(&b.rec).len(), 3);

    let config = common::http::get(edge.admin, "/config").json();
    assert_eq!(config["routes"][0]["federation"]["prefix_mode"].as_str(), Some("never"), "{config}");
}
