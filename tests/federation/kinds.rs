//! Prompts, resources, templates and completions through a federated route: listed under
//! each member's prefix, each request sent to its owner under the owner's own names.

use super::streams::Listening;
use super::*;

#[test]
fn prompts_and_resources_of_every_member_are_listed_under_its_prefix() {
    let (a, b) = (member("A", "5"), member("B", "5"));
    let edge = Edge::start(&federated([&a.addr, &b.addr]));
    for extra in [vec![], modern("prompts/list", None)] {
        let r = post(&edge, &extra, &rpc(1, "prompts/list", "{}"));
        assert_eq!(
            listed(&r, "prompts", "name"),
            ["a_greet", "a_secret_plan", "b_greet", "b_secret_plan"],
            "{}",
            r.text()
        );
    }
    let r = post(&edge, &[], &rpc(2, "resources/list", "{}"));
    assert_eq!(
        listed(&r, "resources", "uri"),
        ["a+mock://A/readme", "a+mock://A/secret", "b+mock://B/readme", "b+mock://B/secret"],
        "{}",
        r.text()
    );
    // Only the naming field changes: the rest of each entry is the member's.
    assert_eq!(listed(&r, "resources", "name"), ["readme", "secret", "readme", "secret"]);
    let r = post(&edge, &[], &rpc(3, "resources/templates/list", "{}"));
    assert_eq!(
        listed(&r, "resourceTemplates", "uriTemplate"),
        ["a+mock://A/files/{path}", "a+secret://{id}", "b+mock://B/files/{path}", "b+secret://{id}"],
        "{}",
        r.text()
    );
    // Each list was asked of each member once (after the catalog's own handshake), then served.
    assert_eq!(post(&edge, &[], &rpc(4, "prompts/list", "{}")).status, 200);
    for rec in [&a.rec, &b.rec] {
        let asked: Vec<usize> = ["prompts/list", "resources/list", "resources/templates/list"]
            .iter()
            .map(|m| received(rec, m).len())
            .collect();
        assert_eq!(asked, [2, 1, 1], "one per era for prompts, legacy only for the others");
        assert!(received(rec, "prompts/get").is_empty() && received(rec, "resources/read").is_empty());
    }
}

#[test]
fn a_prompt_a_resource_and_a_completion_reach_their_owner_under_its_own_names() {
    let (a, b) = (member("A", "5"), member("B", "5"));
    let edge = Edge::start(&federated([&a.addr, &b.addr]));
    let r = post(&edge, &[], &rpc(1, "prompts/get", r#"{"name":"b_greet","arguments":{"who":"x"}}"#));
    assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("B")), "{}", r.text());
    assert_eq!(r.json()["result"]["description"].as_str(), Some("prompt greet from B"));
    let got = received(&b.rec, "prompts/get");
    assert_eq!(got.len(), 1);
    assert!(got[0].body.contains(r#""name":"greet","arguments":{"who":"x"}"#), "{}", got[0].body);

    // 2026-07-28: the URI in the body and in Mcp-Name is the member's own; a client that
    // lower- or upper-cases the scheme (the prefix is part of it) still reaches the member.
    let r = post(
        &edge,
        &modern("resources/read", Some("A+mock://A/readme")),
        &rpc(2, "resources/read", r#"{"uri":"A+mock://A/readme"}"#),
    );
    assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("A")), "{}", r.text());
    let got = received(&a.rec, "resources/read");
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].header("mcp-name"), got[0].body.contains(r#""uri":"mock://A/readme""#)),
        (Some("mock://A/readme"), true),
        "{}",
        got[0].body
    );
    // A URI the client expanded from an offered template.
    let r = post(&edge, &[], &rpc(3, "resources/read", r#"{"uri":"a+mock://A/files/x%20y.txt"}"#));
    assert_eq!(r.header("x-mock-backend"), Some("A"), "{}", r.text());
    assert!(received(&a.rec, "resources/read")[1].body.contains(r#""uri":"mock://A/files/x%20y.txt""#));

    // A completion is the owner's, its reference renamed, everything else as sent.
    let r = post(
        &edge,
        &[],
        &rpc(
            4,
            "completion/complete",
            r#"{"ref":{"type":"ref/prompt","name":"b_greet"},"argument":{"name":"who","value":"w"}}"#,
        ),
    );
    assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("B")), "{}", r.text());
    let got = received(&b.rec, "completion/complete");
    assert!(
        got[0].body.contains(r#"{"ref":{"type":"ref/prompt","name":"greet"},"argument":{"name":"who","value":"w"}}"#),
        "{}",
        got[0].body
    );
    let r = post(
        &edge,
        &[],
        &rpc(
            5,
            "completion/complete",
            r#"{"argument":{"name":"path","value":"r"},"ref":{"uri":"a+mock://A/files/{path}","type":"ref/resource"}}"#,
        ),
    );
    assert_eq!(r.header("x-mock-backend"), Some("A"), "{}", r.text());
    let got = received(&a.rec, "completion/complete");
    assert!(got[0].body.contains(r#""ref":{"uri":"mock://A/files/{path}","type":"ref/resource"}"#), "{}", got[0].body);
}

#[test]
fn the_resources_an_answer_names_are_offered_as_the_route_offers_them() {
    let (a, ra) = recording::mock_with("A", &["--links"]);
    let b = member("B", "5");
    let edge = Edge::start(&federated([&a.addr(), &b.addr]));
    // What `resources/read` returned names the URI the client read.
    let r = post(&edge, &[], &rpc(1, "resources/read", r#"{"uri":"a+mock://A/readme"}"#));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["result"]["contents"][0]["uri"], "a+mock://A/readme", "{}", r.text());
    assert_eq!(r.json()["result"]["contents"][0]["text"], "resource mock://A/readme from A", "the rest as sent");
    // A tool's links and embedded resources lead back through the route; its own data stays.
    let r = post(&edge, &[], &call("a_whoami", "{}"));
    let result = &r.json()["result"];
    assert_eq!(result["content"][1]["uri"], "a+mock://A/readme", "{}", r.text());
    assert_eq!(result["content"][2]["resource"]["uri"], "a+mock://A/secret", "{}", r.text());
    assert_eq!(result["structuredContent"]["uri"], "mock://A/readme", "{}", r.text());
    let linked = result["content"][1]["uri"].as_str().unwrap_or_default().to_owned();
    let r = post(&edge, &[], &rpc(2, "resources/read", &format!(r#"{{"uri":"{linked}"}}"#)));
    assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("A")), "{}", r.text());
    assert_eq!(received(&ra, "resources/read").len(), 2);
}

#[test]
fn a_held_answer_reaches_the_client_in_one_piece_with_its_head() {
    // A sends the head of its answer 300 ms before the body. The proxy holds the answer to
    // offer its links, so its head is of no use alone: head, body and last chunk go out in
    // one write (a federated call once cost two writes more than a plain one).
    let (a, _rec) = recording::mock_with("A", &["--links", "--answer-gap-ms", "300"]);
    let b = member("B", "5");
    let edge = Edge::start(&federated([&a.addr(), &b.addr]));
    let mut answer = Listening::sent(&edge, &raw::post(edge.port, "/mcp", &[], &call("a_whoami", "{}")));
    let head = answer.until_head();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(answer.ended(), "the head came without the answer: {head}");
    assert!(answer.body().contains(r#""uri":"a+mock://A/readme""#), "offered: {}", answer.body());
}

#[test]
fn a_held_answer_whose_member_stalls_mid_answer_is_cut_after_its_head() {
    // A sends its head, then nothing past the pool's idle_timeout: the client gets the head
    // the proxy kept for the answer, then the cut (not a bare close).
    let (a, _rec) = recording::mock_with("A", &["--links", "--answer-gap-ms", "5000"]);
    let b = member("B", "5");
    let config =
        federated([&a.addr(), &b.addr]).replacen("path = \"/mcp\"\n", "path = \"/mcp\"\nidle_timeout = \"300ms\"\n", 1);
    let edge = Edge::start(&config);
    let received = raw::until_close(edge.port, &raw::post(edge.port, "/mcp", &[], &call("a_whoami", "{}")));
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200"), "the head came: {text:?}");
    assert!(!text.ends_with("0\r\n\r\n"), "and no end: {text:?}");
}

#[test]
fn an_http_1_0_client_gets_a_held_answer_without_a_transfer_coding() {
    let (a, _rec) = recording::mock_with("A", &["--links"]);
    let b = member("B", "5");
    let edge = Edge::start(&federated([&a.addr(), &b.addr]));
    let keep = [("Connection", "keep-alive")];
    let request = String::from_utf8(raw::post(edge.port, "/mcp", &keep, &call("a_whoami", "{}"))).expect("text");
    let request = request.replacen("HTTP/1.1\r\n", "HTTP/1.0\r\n", 1);
    let received = raw::until_close(edge.port, request.as_bytes());
    let text = String::from_utf8_lossy(&received);
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200") && !head.contains("transfer-encoding"), "RFC 9112 6.1: {head}");
    assert!(head.contains("connection: close"), "its body ends with the connection: {head}");
    let answer: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("the body is the answer ({e}): {body:?}"));
    assert_eq!(answer["result"]["content"][1]["uri"], "a+mock://A/readme", "offered: {answer}");
}

#[test]
fn prompts_resources_and_references_no_member_owns_are_unknown_and_reach_no_backend() {
    let (a, b) = (member("A", "5"), member("B", "5"));
    let edge = Edge::start(&federated([&a.addr, &b.addr]));
    let before = a.rec.count() + b.rec.count();
    for name in ["c_greet", "greet", "a_nothing", "a+greet"] {
        let r = post(&edge, &[], &rpc(1, "prompts/get", &format!(r#"{{"name":"{name}"}}"#)));
        assert_eq!((r.status, r.rpc_code()), (200, Some(-32602)), "{name}: {}", r.text());
        assert!(r.text().contains("Unknown prompt"), "{}", r.text());
    }
    for uri in ["mock://A/readme", "c+mock://A/readme", "+mock://A/readme", "a+", "a_mock://A/readme"] {
        let r = post(&edge, &[], &rpc(2, "resources/read", &format!(r#"{{"uri":"{uri}"}}"#)));
        assert_eq!((r.status, r.rpc_code()), (200, Some(-32002)), "{uri}: {}", r.text());
    }
    let r = post(
        &edge,
        &[],
        &rpc(
            3,
            "completion/complete",
            r#"{"ref":{"type":"ref/prompt","name":"c_greet"},"argument":{"name":"a","value":""}}"#,
        ),
    );
    assert!(r.text().contains("Unknown prompt: c_greet") && r.json()["id"] == 3, "{}", r.text());
    // A reference named twice, or of no known type, is refused rather than guessed at.
    for reference in
        [r#"{"type":"ref/prompt","name":"a_greet","name":"b_greet"}"#, r#"{"type":"ref/tool","name":"a_echo"}"#]
    {
        let r = post(
            &edge,
            &[],
            &rpc(4, "completion/complete", &format!(r#"{{"ref":{reference},"argument":{{"name":"a","value":""}}}}"#)),
        );
        assert_eq!((r.status, r.rpc_code()), (400, Some(-32602)), "{reference}: {}", r.text());
    }
    // Only the catalog's own requests (for prompts, to resolve names) reached the members.
    for rec in [&a.rec, &b.rec] {
        for m in ["prompts/get", "resources/read", "completion/complete"] {
            assert!(received(rec, m).is_empty(), "{m}");
        }
    }
    assert!(a.rec.count() + b.rec.count() > before);
}

/// Pools `a`, `b`, `c` at `addrs`, and `/mcp` federating them under prefixes `a`, `b`, `c`.
fn federated3(addrs: [&str; 3]) -> String {
    let mut out = String::new();
    for (name, addr) in ["a", "b", "c"].iter().zip(addrs) {
        out += &format!("[[pool]]\nname = \"{name}\"\nbackends = [\"{addr}\"]\npath = \"/mcp\"\n[pool.health]\ncheck = \"none\"\n\n");
    }
    out += "[[route]]\nname = \"all\"\npath = \"/mcp\"\n";
    for p in ["a", "b", "c"] {
        out += &format!("[[route.member]]\npool = \"{p}\"\nprefix = \"{p}\"\n");
    }
    out
}

#[test]
fn real_servers_offer_their_prompts_and_resources_through_one_route_to_every_client() {
    let peers = Peers::load();
    let (py1, py2, everything) = (
        peers.server("PEERS_PY1_SERVER", &["--name", "P"]),
        peers.server("PEERS_PY2_SERVER", &["--name", "Q"]),
        peers.server("PEERS_EVERYTHING", &["--mode", "streamableHttp"]),
    );
    // Paged by the route: 10 entries a page, whatever each member's own pages.
    let route = "path = \"/mcp\"\n[[route.member]]";
    let body = federated3([&py1.addr(), &py2.addr(), &everything.addr()]).replacen(
        route,
        "path = \"/mcp\"\npage_size = 10\n[[route.member]]",
        1,
    );
    let edge = Edge::start(&body);
    let url = edge.url("/mcp");
    let runs: [(&str, &[&str]); 3] =
        [("PEERS_PY1_CLIENT", &[]), ("PEERS_PY2_CLIENT", &["--era", "legacy"]), ("PEERS_TS_CLIENT", &[])];
    for (client, extra) in runs {
        let args: Vec<&str> = extra.iter().copied().chain(["--scenario", "members"]).collect();
        let r = peers.client(client, &url, &args);
        let got = &r["got"];
        assert_eq!(got["a"]["text"].as_str(), Some("Hello, world! (P)"), "{client}: {r}");
        assert_eq!(got["b"]["text"].as_str(), Some("Hello, world! (Q)"), "{client}: {r}");
        assert!(got["c"]["name"].as_str().is_some_and(|n| n.starts_with("c_")), "{client}: {r}");
        assert!(got["c"]["text"].as_str().is_some_and(|t| !t.is_empty()), "{client}: {r}");
        let read = &r["read"];
        assert_eq!(read["a"]["uri"].as_str(), Some("a+res://greeting"), "{client}: {r}");
        // What each member's read returned names the URI the client read.
        for m in ["a", "b", "c"] {
            assert_eq!(read[m]["content_uri"], read[m]["uri"], "{client} {m}: {r}");
        }
        assert_eq!(read["a"]["text"].as_str(), Some("Hello from P"), "{client}: {r}");
        assert_eq!(read["b"]["text"].as_str(), Some("Hello from Q"), "{client}: {r}");
        assert!(read["c"]["uri"].as_str().is_some_and(|u| u.starts_with("c+")), "{client}: {r}");
        assert!(read["c"]["text"].as_str().is_some_and(|t| !t.is_empty()), "{client}: {r}");
        let templates = r["template_uris"].as_array().expect("templates");
        assert!(templates.iter().any(|t| t == "b+res://items/{item_id}"), "{client}: {r}");
        // Each list walked page by page with the route's cursors, every entry once.
        for (list, names) in [("tools", "tool_names"), ("prompts", "prompt_names"), ("resources", "resource_uris")] {
            let names = r[names].as_array().expect("names");
            let unique: std::collections::HashSet<_> = names.iter().collect();
            assert!(unique.len() == names.len() && (list != "tools" || names.len() > 10), "{client} {list}: {r}");
            assert_eq!(r["pages"][list].as_u64(), Some(names.len().div_ceil(10) as u64), "{client} {list}: {r}");
        }
    }
}

#[test]
fn a_client_of_either_era_gets_a_prompt_and_reads_a_resource_of_each_stateless_member() {
    let peers = Peers::load();
    let (a, b) = (
        peers.server("PEERS_PY2_SERVER", &["--name", "A", "--stateless"]),
        peers.server("PEERS_PY2_SERVER", &["--name", "B", "--stateless", "--json"]),
    );
    let edge = Edge::start(&federated([&a.addr(), &b.addr()]));
    for era in ["legacy", "modern"] {
        let r = peers.client("PEERS_PY2_CLIENT", &edge.url("/mcp"), &["--era", era, "--scenario", "members"]);
        assert_eq!(r["prompt_names"], serde_json::json!(["a_greet", "b_greet"]), "{era}: {r}");
        assert_eq!(r["got"]["b"]["text"].as_str(), Some("Hello, world! (B)"), "{era}: {r}");
        assert_eq!(r["read"]["a"]["text"].as_str(), Some("Hello from A"), "{era}: {r}");
        assert_eq!(r["read"]["b"]["uri"].as_str(), Some("b+res://greeting"), "{era}: {r}");
        // Answered as an event stream (A) and as JSON (B): either way the contents name the
        // URI the client read.
        for m in ["a", "b"] {
            assert_eq!(r["read"][m]["content_uri"], r["read"][m]["uri"], "{era} {m}: {r}");
        }
    }
}

#[test]
fn a_member_without_prompts_or_resources_has_none_and_the_others_are_offered() {
    let b = member("B", "5");
    let (tools_only, rec) = recording::mock_with("T", &["--tools-only"]);
    let edge = Edge::start(&federated([&tools_only.addr(), &b.addr]));
    let r = post(&edge, &[], &rpc(1, "prompts/list", "{}"));
    assert_eq!(listed(&r, "prompts", "name"), ["b_greet", "b_secret_plan"], "{}", r.text());
    let r = post(&edge, &modern("resources/list", None), &rpc(2, "resources/list", "{}"));
    assert_eq!(listed(&r, "resources", "uri"), ["b+mock://B/readme", "b+mock://B/secret"], "{}", r.text());
    assert_eq!(received(&rec, "prompts/list").len(), 1, "asked, and its 'method not found' taken as none");
    // Not a failure: /servers names no error, and counts none.
    let servers = common::http::get(edge.admin, "/servers").json();
    let t = &servers["routes"][0]["members"][0];
    assert_eq!((t["legacy"]["prompts"].as_u64(), &t["legacy"]["last_error"]), (Some(0), &Value::Null), "{servers}");
    assert_eq!((t["modern"]["resources"].as_u64(), &t["modern"]["tools"]), (Some(0), &Value::Null), "{servers}");
    // The session's capabilities are what some member announced.
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let r = post(&edge, &[], init);
    assert_eq!(r.json()["result"]["capabilities"], serde_json::json!({ "tools": {}, "prompts": {}, "resources": {} }));
    drop(tools_only);
    let (t1, _) = recording::mock_with("T1", &["--tools-only"]);
    let (t2, _) = recording::mock_with("T2", &["--tools-only"]);
    let edge = Edge::start(&federated([&t1.addr(), &t2.addr()]));
    assert_eq!(post(&edge, &[], init).json()["result"]["capabilities"], serde_json::json!({ "tools": {} }));

    // Any other error is a failure, not an absence: named on /servers and counted as failed
    // (and, as for tools, the entries of an earlier list would stay offered).
    let (failing, _) = recording::mock_with("F", &["--list-error", "-32603"]);
    let edge = Edge::start(&federated([&failing.addr(), &b.addr]));
    assert_eq!(listed(&post(&edge, &[], &rpc(1, "prompts/list", "{}")), "prompts", "name").len(), 2);
    let servers = common::http::get(edge.admin, "/servers").json();
    let f = &servers["routes"][0]["members"][0]["legacy"];
    assert!(f["last_error"].as_str().is_some_and(|e| e.contains("prompts") && e.contains("-32603")), "{servers}");
    let line = r#"mcp_edge_federation_member_lists_total{list="prompts",member="a",result="failed",route="all"} 1"#;
    assert!(edge.metrics().contains(line), "{line}");
}

/// `whoami` on member `a` (T) and the answer's first link.
fn whoami_link(edge: &Edge, headers: &[(&str, &str)]) -> (String, RawResponse) {
    let r = post(edge, headers, &call("a_whoami", "{}"));
    (r.json()["result"]["content"][1]["uri"].as_str().unwrap_or_default().to_owned(), r)
}

#[test]
fn the_links_of_a_member_that_reads_no_resources_stay_as_sent_and_its_answers_keep_their_length() {
    let (t, _) = recording::mock_with("T", &["--tools-only", "--links"]);
    let (b, _) = recording::mock_with("B", &["--links"]);
    let edge = Edge::start(&federated([&t.addr(), &b.addr()]));
    // Before T said what it offers, its links are offered under the route's names.
    let (link, r) = whoami_link(&edge, &[]);
    assert_eq!(link, "a+mock://T/readme", "{}", r.text());
    assert!(r.header("content-length").is_none(), "held to offer its URIs: {:?}", r.headers);

    // A client's `initialize` reaches every member: T announces no resources, so it reads
    // none and a renamed link would lead back to a member that cannot read it. Its links stay
    // as sent, its answers are not held.
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    assert_eq!(post(&edge, &[], init).status, 200);
    let (link, r) = whoami_link(&edge, &[]);
    assert_eq!(link, "mock://T/readme", "{}", r.text());
    assert_eq!(r.json()["result"]["content"][2]["resource"]["uri"], "mock://T/secret", "{}", r.text());
    assert!(r.header("content-length").is_some() && r.header("transfer-encoding").is_none(), "{:?}", r.headers);
    // B, which reads resources, still has its links offered.
    let r = post(&edge, &[], &call("b_whoami", "{}"));
    assert_eq!(r.json()["result"]["content"][1]["uri"], "b+mock://B/readme", "{}", r.text());
    assert!(r.header("content-length").is_none(), "{:?}", r.headers);

    // 2026-07-28 has no `initialize`: T's "method not found" for a client's resources list
    // tells the route the same.
    let edge = Edge::start(&federated([&t.addr(), &b.addr()]));
    let r = post(&edge, &modern("resources/list", None), &rpc(1, "resources/list", "{}"));
    assert_eq!(listed(&r, "resources", "uri"), ["b+mock://B/readme", "b+mock://B/secret"], "{}", r.text());
    let (link, r) = whoami_link(&edge, &modern("tools/call", Some("a_whoami")));
    assert_eq!(link, "mock://T/readme", "{}", r.text());
    assert!(r.header("content-length").is_some(), "{:?}", r.headers);
}
