//! `deny_as = "unknown"` against real SDK servers: a tool hidden by the route's policy must be
//! answered as the server itself answers a tool it does not have. Each story asks the real
//! server (through mcp-edge) for an absent tool and the proxy for a hidden one, and compares
//! the two answers byte for byte once the names are swapped. Backends from `.peers/`: FastMCP
//! (Python SDK 1.x) and `server-everything` (TypeScript SDK 1.x `McpServer`). And filtered
//! discovery against a real client: the Python SDK 2.x client, walking the paged tool list of
//! the Python SDK 2.x server through mcp-edge, sees only the tools its policy allows.

mod common;

use common::peers::{PeerServer, Peers};
use common::raw::{self, RawResponse};
use common::Edge;
use sha2::{Digest, Sha256};

const KEY: &str = "ak_peer_0123456789";

/// One route on `/mcp` to `server`, with a key authenticator and a policy hiding `secret_*`
/// in `style`.
fn edge(server: &PeerServer, style: &str) -> Edge {
    let policy = format!(
        "unknown_style = \"{style}\"\n[[route.policy.rule]]\neffect = \"deny\"\ntools = [\"secret_*\"]\ndeny_as = \"unknown\"\n[[route.policy.rule]]\neffect = \"allow\"\n"
    );
    edge_with(server, &policy)
}

/// One route on `/mcp` to `server`, with a key authenticator and `policy` (the lines under
/// `[route.policy]`).
fn edge_with(server: &PeerServer, policy: &str) -> Edge {
    let digest: String = Sha256::digest(KEY.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    Edge::start(&format!(
        r#"[[pool]]
name = "main"
backends = ["{}"]
path = "/mcp"
[[authenticator]]
name = "keys"
kind = "api_key"
[[authenticator.key]]
id = "peer"
sha256 = "{digest}"
[[route]]
name = "mcp"
path = "/mcp"
pool = "main"
auth = ["keys"]
[route.policy]
{policy}"#,
        server.addr()
    ))
}

fn post(edge: &Edge, headers: &[(&str, &str)], body: &str) -> RawResponse {
    let auth = format!("Bearer {KEY}");
    let mut all = vec![("Authorization", auth.as_str())];
    all.extend_from_slice(headers);
    raw::send(edge.port, &raw::post(edge.port, "/mcp", &all, body))
}

fn call(id: u32, tool: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{{}}}}}}"#)
}

/// The JSON of an answer: the body, or the `data:` of its one SSE event.
fn json_of(r: &RawResponse) -> String {
    let text = r.text();
    match text.lines().find_map(|l| l.strip_prefix("data: ")) {
        Some(data) if r.header("content-type").is_some_and(|c| c.starts_with("text/event-stream")) => data.to_owned(),
        _ => text,
    }
}

#[test]
fn a_hidden_tool_is_answered_as_fastmcp_answers_an_absent_one() {
    let peers = Peers::load();
    let server = peers.server("PEERS_PY1_SERVER", &["--name", "py", "--stateless", "--json"]);
    let edge = edge(&server, "python-sdk");
    let absent = post(&edge, &[], &call(3, "no_such_tool"));
    let hidden = post(&edge, &[], &call(3, "secret_keys"));
    assert_eq!(absent.status, 200, "{}", absent.text());
    assert_eq!(hidden.status, absent.status);
    assert_eq!(json_of(&hidden), json_of(&absent).replace("no_such_tool", "secret_keys"));
    assert_eq!(hidden.header("content-type"), absent.header("content-type"));
}

#[test]
fn a_hidden_tool_is_answered_as_the_typescript_sdk_answers_an_absent_one_in_a_session() {
    let peers = Peers::load();
    let server = peers.server("PEERS_EVERYTHING", &["--mode", "streamableHttp"]);
    let edge = edge(&server, "typescript-sdk");
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;
    let r = post(&edge, &[], init);
    assert_eq!(r.status, 200, "{}", r.text());
    let sid = r.header("mcp-session-id").expect("a session").to_owned();
    let headers = [("Mcp-Session-Id", sid.as_str()), ("MCP-Protocol-Version", "2025-06-18")];
    let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    assert_eq!(post(&edge, &headers, initialized).status, 202);
    let absent = post(&edge, &headers, &call(3, "no_such_tool"));
    let hidden = post(&edge, &headers, &call(3, "secret_keys"));
    assert_eq!((absent.status, hidden.status), (200, 200), "{}", absent.text());
    assert_eq!(json_of(&hidden), json_of(&absent).replace("no_such_tool", "secret_keys"));
    // Both repeat the session, as the SDK does on every answer.
    assert_eq!(hidden.header("mcp-session-id"), Some(sid.as_str()));
    assert_eq!(absent.header("mcp-session-id"), Some(sid.as_str()));
}

/// The session plumbing, the lists, and a dozen of the py2 server's 66 tools (whoami, echo,
/// tool_000 .. tool_009), its greeting resource and prompt.
const READER: &str = r#"[[route.policy.rule]]
effect = "allow"
methods = ["initialize", "notifications/*", "ping", "server/discover", "tools/list", "resources/list", "resources/templates/list", "prompts/list"]
tools = ["whoami", "echo", "tool_00?"]
resources = ["res://*"]
prompts = ["greet"]
"#;

#[test]
fn the_python_sdk_client_lists_only_its_allowed_tools_in_both_eras() {
    let peers = Peers::load();
    // Stateful, answering over SSE, 25 tools a page: 66 tools in 3 pages.
    let server = peers.server("PEERS_PY2_SERVER", &["--name", "py"]);
    let edge = edge_with(&server, READER);
    let url = edge.url("/mcp");
    let auth = format!("Authorization: Bearer {KEY}");
    for scenario in ["basic", "modern"] {
        let r = peers.client("PEERS_PY2_CLIENT", &url, &["--scenario", scenario, "--header", &auth]);
        assert_eq!((r["tools_count"].as_u64(), r["pages"].as_u64()), (Some(12), Some(3)), "{scenario}: {r}");
        let names: Vec<&str> = r["tool_names"].as_array().expect("names").iter().filter_map(|n| n.as_str()).collect();
        let want =
            ["echo", "tool_000", "tool_001", "tool_002", "tool_003", "tool_004", "tool_005", "tool_006", "tool_007"];
        assert_eq!(names[..9], want, "{scenario}: {r}");
        assert_eq!((r["echo"].as_str(), r["server"].as_str()), (Some("hello proxy"), Some("py")), "{scenario}: {r}");
    }
}
