//! Refusals that come before the body is read (foreign Host, a limit that needs no body,
//! head checks, a bad path) must not leave the body on the connection to be parsed as the
//! next request: the body here is itself a complete request for a `deploy_*` tool.
//! Either the proxy closes the connection or it drains the body; it never answers twice, and
//! the deploy pool never sees the smuggled call.

use crate::common::raw;
use crate::common::Edge;
use crate::story::*;

/// A keep-alive request with `lines` whose body is a whole second request (`deploy_smuggled`).
fn carrier(edge: &Edge, request_line: &str, lines: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let inner = raw::post(edge.port, "/mcp", &[("Connection", "keep-alive")], &call("deploy_smuggled"));
    let mut head = format!("{request_line}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n", inner.len());
    for l in lines {
        head.push_str(l);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    (head.into_bytes(), inner)
}

#[test]
fn a_body_left_unread_by_a_refusal_is_never_parsed_as_a_request() {
    let (main, deploy) = (backend("main"), backend("deploy"));
    let limit = "[[limit]]\nname = \"once\"\nkey = [\"client_ip\"]\nrate = \"1/h\"\n\n";
    let routes = "[[route]]\nname = \"limited\"\npath = \"/limited\"\npool = \"main\"\nlimits = [\"once\"]\n\n[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"main\"\n[[route.rule]]\ntool = \"deploy_*\"\npool = \"deploy\"\n";
    let edge = Edge::start(&format!("{limit}{}{}{routes}", pool("main", &main), pool("deploy", &deploy)));
    let ok = host(&edge);
    let h = format!("Host: {ok}");
    let first = post(&edge, "/limited", &[], &call("echo"));
    assert_eq!(first.header("x-mock-backend"), Some("main"), "the hour's one request reaches main");
    let cases: [(&str, &str, Vec<&str>, u16); 5] = [
        ("foreign Host", "POST /mcp HTTP/1.1", vec!["Host: evil.example.com"], 403),
        ("limit without body", "POST /limited HTTP/1.1", vec![&h], 429),
        ("duplicate Mcp-Name", "POST /mcp HTTP/1.1", vec![&h, "Mcp-Name: a", "Mcp-Name: b"], 400),
        ("Connection names Mcp-Name", "POST /mcp HTTP/1.1", vec![&h, "Connection: keep-alive, Mcp-Name"], 400),
        ("encoded slash", "POST /%2Fmcp HTTP/1.1", vec![&h], 400),
    ];
    for (what, line, lines, status) in cases {
        let (outer, inner) = carrier(&edge, line, &lines);
        let answers = raw::exchange_many(edge.port, &[&outer, &inner]);
        let got: Vec<u16> = answers.iter().map(|a| a.status).collect();
        assert_eq!(got, vec![status], "{what}: one answer, the refusal");
        assert_local(&answers[0]);
    }
    deploy.rec.assert_nothing();
    main.rec.assert_stays(1);
}
