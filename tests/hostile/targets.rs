//! Request lines the proxy must read exactly as the backend will, found by attacking the built
//! binary: a standard method in another case, a target that is neither origin- nor
//! absolute-form, path parameters (`;`) that servlet containers strip before routing, and an
//! absolute-form target without `Host`, whose host the backend would otherwise never see; and
//! the fully qualified spelling of a host (`a.tenant.example.`), which must not skip its route.

use crate::common::raw::{self, RawResponse};
use crate::common::Edge;
use crate::story::*;

/// `/mcp` (tools `deploy_*` to `deploy`, the rest to `exact`) and a pass-through catch-all to
/// `catchall`: the shape where a target the catch-all takes can skip the exact route's rules.
fn exact_and_catch_all(exact: &Backend, deploy: &Backend, catchall: &Backend) -> Edge {
    Edge::start(&format!(
        "{}{}{}[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"exact\"\n[[route.rule]]\ntool = \"deploy_*\"\npool = \"deploy\"\n\n[[route]]\nname = \"rest\"\npath_prefix = \"/\"\npool = \"catchall\"\ninspect = \"never\"\n",
        pool("exact", exact),
        pool("deploy", deploy),
        pool("catchall", catchall)
    ))
}

fn post_target(edge: &Edge, target: &str, host: Option<&str>, body: &str) -> RawResponse {
    send_as(edge, "POST", target, host, body)
}

fn send_as(edge: &Edge, method: &str, target: &str, host: Option<&str>, body: &str) -> RawResponse {
    let host = host.map(|h| format!("Host: {h}"));
    let len = format!("Content-Length: {}", body.len());
    let mut lines: Vec<&str> = host.iter().map(String::as_str).collect();
    lines.extend(["Content-Type: application/json", "Accept: application/json, text/event-stream", &len]);
    lines.push("Connection: close");
    raw::send(edge.port, &raw::lines(&format!("{method} {target} HTTP/1.1"), &lines, body))
}

#[test]
fn a_standard_method_in_another_case_is_refused_not_forwarded_unread() {
    let (exact, deploy, catchall) = (backend("exact"), backend("deploy"), backend("catchall"));
    let edge = exact_and_catch_all(&exact, &deploy, &catchall);
    // `post` is not POST to the proxy, so its body was never read and the deploy rule never
    // ran; ASP.NET Core routing (the C# SDK) matches methods ignoring case and runs the call.
    for method in ["post", "Post", "pOST"] {
        let r = send_as(&edge, method, "/mcp", Some(&host(&edge)), &call("deploy_x"));
        assert_refused(&r, 400, -32600);
    }
    deploy.rec.assert_nothing();
    catchall.rec.assert_nothing();
    assert_alive_and_only_probe(&edge, "/mcp", &exact);
}

#[test]
fn a_target_that_is_not_origin_form_is_refused_not_forwarded_as_sent() {
    let (exact, deploy, catchall) = (backend("exact"), backend("deploy"), backend("catchall"));
    let edge = exact_and_catch_all(&exact, &deploy, &catchall);
    // Pingora reads these as the path `/` (the catch-all) but would send them upstream as
    // written, where `new URL("mcp", base)` is `/mcp`.
    for target in ["mcp", "?/mcp", "mcp?x=1"] {
        let r = post_target(&edge, target, Some(&host(&edge)), &call("deploy_x"));
        assert_refused(&r, 400, -32600);
    }
    catchall.rec.assert_nothing();
    deploy.rec.assert_nothing();
    assert_alive_and_only_probe(&edge, "/mcp", &exact);
}

#[test]
fn path_parameters_are_refused_since_servlet_backends_strip_them() {
    let (exact, deploy, catchall) = (backend("exact"), backend("deploy"), backend("catchall"));
    let edge = exact_and_catch_all(&exact, &deploy, &catchall);
    // Tomcat, Jetty and Spring route every one of these to `/mcp`.
    for target in ["/mcp;x", "/mcp;jsessionid=1", "/x/..;/mcp", "/;/mcp", "/mcp;/"] {
        let r = post_target(&edge, target, Some(&host(&edge)), &call("deploy_x"));
        assert_refused(&r, 400, -32600);
    }
    catchall.rec.assert_nothing();
    deploy.rec.assert_nothing();
    assert_alive_and_only_probe(&edge, "/mcp", &exact);
}

#[test]
fn an_absolute_form_target_without_host_forwards_its_authority_as_host() {
    let (exact, deploy, catchall) = (backend("exact"), backend("deploy"), backend("catchall"));
    let edge = exact_and_catch_all(&exact, &deploy, &catchall);
    let authority = format!("localhost:{}", edge.port);
    let r = post_target(&edge, &format!("http://{authority}/mcp"), None, &call("echo"));
    assert_eq!((r.status, r.header("x-mock-backend")), (200, Some("exact")), "{}", r.text());
    let got = exact.rec.wait_count(1);
    assert_eq!((got[0].target.as_str(), got[0].header_all("host")), ("/mcp", vec![authority.as_str()]));
    // A Host the client did send is the one forwarded, never doubled.
    let r = post_target(&edge, &format!("http://{authority}/mcp"), Some(&authority), &call("echo"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(exact.rec.wait_count(2)[1].header_all("host"), vec![authority.as_str()]);
    catchall.rec.assert_nothing();
}

#[test]
fn a_host_with_a_trailing_dot_stays_on_its_host_route() {
    let (main, tenant) = (backend("main"), backend("tenant"));
    // The generic route takes these hosts, as it takes any host on a public listener (here
    // the loopback Host rule would otherwise refuse them before the story is told).
    let routes = "[[route]]\nname = \"tenant\"\nhost = \"*.tenant.example\"\npath = \"/mcp\"\npool = \"tenant\"\n\n[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"main\"\nallowed_hosts = [\"a.tenant.example.\", \"a.tenant.example.:8443\"]\n";
    let edge = Edge::start(&format!("{}{}{routes}", pool("main", &main), pool("tenant", &tenant)));
    // `a.tenant.example.` is `a.tenant.example` to DNS and to servers routing by host: it must
    // not skip the tenant route (its pool, rules, limits and origins) for the generic one.
    for (i, host) in ["a.tenant.example.", "a.tenant.example.:8443"].into_iter().enumerate() {
        let r = post_target(&edge, "/mcp", Some(host), &call("echo"));
        assert_eq!(r.header("x-mock-backend"), Some("tenant"), "Host {host}: {} {}", r.status, r.text());
        assert_eq!(tenant.rec.wait_count(i + 1).len(), i + 1);
    }
    main.rec.assert_nothing();
}
