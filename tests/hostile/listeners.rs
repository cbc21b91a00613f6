//! A dual-stack listener (`[::]:port`) sees an IPv4 client as `::ffff:a.b.c.d`. Whatever the
//! proxy decides by the connection's addresses must read them canonically: the loopback Host
//! rule (a DNS-rebinding page resolves its name to 127.0.0.1, not to ::1) and tiers assigned
//! to client addresses as written (`"127.0.0.1" = "gold"`).

use crate::common::raw::{self, RawResponse};
use crate::common::{Edge, Opts};
use crate::story::*;

fn dual_stack(body: &str) -> Edge {
    Edge::start_opts(body, Opts { listen_ip: Some("[::]"), ..Opts::default() })
}

#[test]
fn dns_rebinding_over_ipv4_to_a_dual_stack_listener_is_forbidden() {
    let main = backend("main");
    let edge =
        dual_stack(&format!("{}[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"main\"\n", pool("main", &main)));
    // The story's helpers connect to 127.0.0.1.
    let rebound = [("Host", "rebind.evil.example"), ("Origin", "http://rebind.evil.example")];
    let r = raw_post_with_host(&edge, &rebound);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_local(&r);
    assert_alive_and_only_probe(&edge, "/mcp", &main);
}

#[test]
fn tiers_assigned_to_an_ipv4_client_apply_on_a_dual_stack_listener() {
    let main = backend("main");
    let limit = "[[limit]]\nname = \"per-ip\"\nkey = [\"client_ip\"]\ndefault_tier = \"free\"\n[limit.tiers.free]\nrate = \"1/h\"\n[limit.tiers.gold]\nrate = \"1000/h\"\n[limit.assign]\n\"127.0.0.1\" = \"gold\"\n\n";
    let edge = dual_stack(&format!(
        "{limit}{}[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"main\"\nlimits = [\"per-ip\"]\n",
        pool("main", &main)
    ));
    for i in 0..3 {
        let r = post(&edge, "/mcp", &[], &call("echo"));
        assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("main")), "request {i}: {}", r.text());
    }
}

/// A POST of `call("echo")` to `/mcp` whose Host and other headers are exactly `headers`.
fn raw_post_with_host(edge: &Edge, headers: &[(&str, &str)]) -> RawResponse {
    let body = call("echo");
    let mut lines: Vec<String> = headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    lines.extend([
        "Content-Type: application/json".into(),
        "Accept: application/json, text/event-stream".into(),
        format!("Content-Length: {}", body.len()),
        "Connection: close".into(),
    ]);
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    raw::send(edge.port, &raw::lines("POST /mcp HTTP/1.1", &lines, &body))
}
