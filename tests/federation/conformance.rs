//! The official MCP conformance suites' server scenarios (all 32 of 0.1.16 against
//! server-everything; the 40 of 0.2.0-alpha.12 for 2026-07-28 against the Python SDK 2.x
//! server) through a federated route with one member under its own names (`prefix_mode =
//! "never"`), against the same server reached directly: each scenario's checks must come out
//! the same, except where the route lacks a capability still to come (the gaps) or is stricter
//! than the server. Each exception is checked to still differ, so a gap closed is noticed and
//! taken off its list.

use super::*;

/// Scenarios of 0.1.16 a federated route does not pass as its server does yet, and why.
const GAPS: [(&str, &str); 1] = [(
    "server-sse-multiple-streams",
    "the route answers lists itself, as JSON; the server answers on event streams (the scenario counts streams)",
)];

/// Scenarios of the 2026-07-28 suite a federated route does not pass as its server does yet:
/// none (`server-stateless` came off with the era's checks and `subscriptions/listen`).
const MODERN_GAPS: [(&str, &str); 0] = [];

/// Scenarios the route passes where the server fails (either suite).
const STRICTER: [(&str, &str); 1] =
    [("dns-rebinding-protection", "the proxy refuses a foreign Host or Origin; the servers do not")];

/// Each check of each scenario as `id=STATUS`.
fn outcomes(peers: &Peers, url: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    outcomes_of(peers, "PEERS_CONFORMANCE", url, &[])
}

fn outcomes_of(peers: &Peers, key: &str, url: &str, extra: &[&str]) -> std::collections::BTreeMap<String, Vec<String>> {
    let suite = peers.conformance_suite(key, url, extra);
    suite
        .into_iter()
        .map(|(s, checks)| (s, checks.iter().map(|c| format!("{}={}", c.id, c.status)).collect()))
        .collect()
}

/// A route `/mcp` over one member, pool `main` at `addr`, under its own names.
fn one_member(addr: &str) -> Edge {
    Edge::start(&format!(
        "[[pool]]\nname = \"main\"\nbackends = [\"{addr}\"]\npath = \"/mcp\"\n\n[[route]]\nname = \"all\"\npath = \"/mcp\"\nprefix_mode = \"never\"\n[[route.member]]\npool = \"main\"\nprefix = \"m\"\n"
    ))
}

/// Asserts that every scenario (`scenarios` of them) comes out the same both ways, but the
/// exceptions, which must still differ.
fn assert_same(
    direct: &std::collections::BTreeMap<String, Vec<String>>,
    federated: &std::collections::BTreeMap<String, Vec<String>>,
    scenarios: usize,
    exceptions: &[(&str, &str)],
) {
    let table: Vec<String> =
        direct.iter().map(|(s, d)| format!("{s}: direct {d:?} federated {:?}", federated.get(s))).collect();
    let table = table.join("\n");
    assert_eq!((direct.len(), federated.len()), (scenarios, scenarios), "{table}");
    let passed = direct.values().filter(|d| d.iter().all(|c| c.ends_with("=SUCCESS"))).count();
    assert!(passed >= 10, "the server passes some scenarios, or the comparison proves little:\n{table}");
    for (scenario, d) in direct {
        let f = federated.get(scenario);
        match exceptions.iter().find(|(s, _)| s == scenario) {
            Some((_, why)) => {
                assert_ne!(Some(d), f, "{scenario} ({why}) now comes out as directly: take it off its list")
            }
            None => assert_eq!(Some(d), f, "{scenario}\n{table}"),
        }
    }
}

#[test]
fn a_federated_route_with_one_member_passes_the_conformance_scenarios_its_server_passes() {
    let peers = Peers::load();
    let server = peers.server("PEERS_EVERYTHING", &["--mode", "streamableHttp"]);
    let edge = one_member(&server.addr());
    let direct = outcomes(&peers, &format!("http://{}/mcp", server.addr()));
    let federated = outcomes(&peers, &edge.url("/mcp"));
    let exceptions: Vec<(&str, &str)> = GAPS.iter().chain(&STRICTER).copied().collect();
    assert_same(&direct, &federated, 32, &exceptions);
}

#[test]
fn the_2026_07_28_scenarios_through_a_federated_route_come_out_as_against_its_server() {
    let peers = Peers::load();
    let server = peers.server("PEERS_PY2_SERVER", &["--name", "main"]);
    let edge = one_member(&server.addr());
    let next = ["--spec-version", "2026-07-28"];
    let direct = outcomes_of(&peers, "PEERS_CONFORMANCE_NEXT", &format!("http://{}/mcp", server.addr()), &next);
    let federated = outcomes_of(&peers, "PEERS_CONFORMANCE_NEXT", &edge.url("/mcp"), &next);
    let exceptions: Vec<(&str, &str)> = MODERN_GAPS.iter().chain(&STRICTER).copied().collect();
    assert_same(&direct, &federated, 40, &exceptions);
}
