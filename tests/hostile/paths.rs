//! Paths and listeners that must select the route a request really addresses: spellings of
//! `/mcp` that a backend treats as `/mcp` must not slip past the exact route onto a catch-all
//! (D2), and a route bound to a wildcard listener must serve it (D9).
//!
//! Case: route paths match ASCII-case-insensitively, and the forwarded path keeps the
//! client's case. So `/MCP` lands on the exact route and is forwarded as `/MCP`; every other
//! variant here is forwarded as `/mcp` (percent-decoded unreserved bytes, dot segments
//! removed, empty segments and a trailing slash dropped).

use crate::common::{Edge, Opts};
use crate::story::*;

/// A path only the catch-all serves, and that the mock answers (200) whatever the body.
const CATCH_ALL_PROBE: &str = "/status/200";

/// `/mcp` (limited, to `exact`) and a pass-through catch-all (to `catchall`).
fn exact_and_catch_all(exact: &Backend, catchall: &Backend) -> Edge {
    Edge::start(&format!(
        "[[limit]]\nname = \"per-client\"\nkey = [\"client_ip\"]\nrate = \"1000/h\"\n\n{}{}[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"exact\"\nlimits = [\"per-client\"]\n\n[[route]]\nname = \"rest\"\npath_prefix = \"/\"\npool = \"catchall\"\ninspect = \"never\"\n",
        pool("exact", exact),
        pool("catchall", catchall)
    ))
}

#[test]
fn d2_spellings_of_the_exact_path_land_on_the_exact_route() {
    let (exact, catchall) = (backend("exact"), backend("catchall"));
    let edge = exact_and_catch_all(&exact, &catchall);
    let variants = [
        ("/%6Dcp", "/mcp"),
        ("/MCP", "/MCP"),
        // The trailing slash is kept (`router::path`): the exact route matches it, and the
        // backend is as likely to distinguish it as not.
        ("/mcp/", "/mcp/"),
        ("//mcp", "/mcp"),
        ("/./mcp", "/mcp"),
        ("/x/../mcp", "/mcp"),
    ];
    // All spellings first, then one comparison: a failure shows the whole table.
    let answered: Vec<(&str, Option<String>)> = variants
        .iter()
        .map(|(sent, _)| (*sent, post(&edge, sent, &[], &call("echo")).header("x-mock-backend").map(str::to_owned)))
        .collect();
    let exact_everywhere: Vec<(&str, Option<String>)> =
        variants.iter().map(|(sent, _)| (*sent, Some("exact".into()))).collect();
    assert_eq!(answered, exact_everywhere, "which backend answered each spelling");
    let forwarded: Vec<String> = exact.rec.wait_count(variants.len()).into_iter().map(|l| l.target).collect();
    assert_eq!(forwarded, variants.map(|(_, canonical)| canonical), "paths as forwarded, in canonical form");
    // The catch-all still works, and that probe is all it ever received.
    assert_alive_and_only_probe(&edge, CATCH_ALL_PROBE, &catchall);
}

#[test]
fn d2_encoded_slashes_and_dot_segments_are_refused() {
    let (exact, catchall) = (backend("exact"), backend("catchall"));
    let edge = exact_and_catch_all(&exact, &catchall);
    let paths = ["/%2Fmcp", "/%2e/mcp", "/mcp%2F.."];
    let answered: Vec<(&str, u16, Option<String>)> = paths
        .iter()
        .map(|path| {
            let r = post(&edge, path, &[], &call("echo"));
            (*path, r.status, r.header("x-mock-backend").map(str::to_owned))
        })
        .collect();
    assert_eq!(answered, paths.map(|p| (p, 400, None)), "(path, status, backend that answered)");
    assert_alive_and_only_probe(&edge, "/mcp", &exact);
    assert_alive_and_only_probe(&edge, CATCH_ALL_PROBE, &catchall);
}

#[test]
fn d9_a_route_bound_to_a_wildcard_listener_serves_it() {
    let main = backend("main");
    let port = crate::common::free_port();
    let routes =
        format!("[[route]]\nname = \"mcp\"\nlistener = \"0.0.0.0:{port}\"\npath = \"/mcp\"\npool = \"main\"\n");
    let edge = Edge::start_opts(
        &(pool("main", &main) + &routes),
        Opts { listen_ip: Some("0.0.0.0"), port: Some(port), ..Opts::default() },
    );
    assert_alive_and_only_probe(&edge, "/mcp", &main);
}
