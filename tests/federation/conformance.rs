//! The official MCP conformance suite's server scenarios (all 32 of 0.1.16) through a
//! federated route with one member under its own names (`prefix_mode = "never"`), against the
//! same server reached directly: each scenario's checks must come out the same, except where
//! the route lacks a capability still to come ([`GAPS`]) or is stricter than the server
//! ([`STRICTER`]). Each exception is checked to still differ, so a gap closed is noticed and
//! taken off its list.

use super::*;

/// How many server scenarios the pinned suite has: none may go missing unseen.
const SCENARIOS: usize = 32;

/// Scenarios a federated route does not pass as its server does yet, and why.
const GAPS: [(&str, &str); 4] = [
    ("logging-set-level", "the route offers no logging: `logging/setLevel` is not fanned out"),
    ("resources-subscribe", "the route offers no subscriptions: no member stream is relayed"),
    ("resources-unsubscribe", "the route offers no subscriptions: no member stream is relayed"),
    ("server-sse-multiple-streams", "the route has no GET stream: members' streams are not merged"),
];

/// Scenarios the route passes where the server fails.
const STRICTER: [(&str, &str); 1] =
    [("dns-rebinding-protection", "the proxy refuses a foreign Host or Origin; server-everything does not")];

/// Each check of each scenario as `id=STATUS`.
fn outcomes(peers: &Peers, url: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    let suite = peers.conformance_suite(url);
    suite
        .into_iter()
        .map(|(s, checks)| (s, checks.iter().map(|c| format!("{}={}", c.id, c.status)).collect()))
        .collect()
}

#[test]
fn a_federated_route_with_one_member_passes_the_conformance_scenarios_its_server_passes() {
    let peers = Peers::load();
    let server = peers.server("PEERS_EVERYTHING", &["--mode", "streamableHttp"]);
    let edge = Edge::start(&format!(
        "[[pool]]\nname = \"everything\"\nbackends = [\"{}\"]\npath = \"/mcp\"\n\n[[route]]\nname = \"all\"\npath = \"/mcp\"\nprefix_mode = \"never\"\n[[route.member]]\npool = \"everything\"\nprefix = \"ev\"\n",
        server.addr()
    ));
    let direct = outcomes(&peers, &format!("http://{}/mcp", server.addr()));
    let federated = outcomes(&peers, &edge.url("/mcp"));
    let table: Vec<String> =
        direct.iter().map(|(s, d)| format!("{s}: direct {d:?} federated {:?}", federated.get(s))).collect();
    let table = table.join("\n");
    assert_eq!((direct.len(), federated.len()), (SCENARIOS, SCENARIOS), "{table}");
    let passed = direct.values().filter(|d| d.iter().all(|c| c.ends_with("=SUCCESS"))).count();
    assert!(passed >= 10, "the server passes some scenarios, or the comparison proves little:\n{table}");
    for (scenario, d) in &direct {
        let f = federated.get(scenario);
        let exception = GAPS.iter().chain(&STRICTER).find(|(s, _)| s == scenario);
        match exception {
            Some((_, why)) => {
                assert_ne!(Some(d), f, "{scenario} ({why}) now comes out as directly: take it off its list")
            }
            None => assert_eq!(Some(d), f, "{scenario}\n{table}"),
        }
    }
}
