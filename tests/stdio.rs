//! stdio pools: mcp-edge runs a real Python SDK server (FastMCP 1.x over stdin/stdout) from
//! `[pool.stdio]`, and clients reach it over HTTP like any pool: the Python and TypeScript
//! SDK clients, through a plain route and a federated one. The stories check what the process
//! was given (a cleared environment plus the configured variables, a secret from a file),
//! that progress streams through as sent, that a killed server is restarted, that a reload
//! keeps or replaces processes, and that the loopback bridge answers no one but the proxy.

mod common;
#[path = "stdio/sessions.rs"]
mod sessions;

use std::time::Duration;

use common::listening::Listening;
use common::peers::Peers;
use common::raw::{self, RawResponse};
use common::{wait_until, Edge, Mock, Opts};
use serde_json::{json, Value};

/// A stdio pool `name` running the py1 server (named `name` too), plus `extra` lines for its
/// `[pool.stdio]` table; the MCP health check probes it every 200 ms.
fn stdio_pool(name: &str, extra: &str) -> String {
    stdio_pool_of(name, &[], extra)
}

/// [`stdio_pool`] with `more` arguments for the server.
fn stdio_pool_of(name: &str, more: &[&str], extra: &str) -> String {
    let (program, args) = Peers::load().stdio_server("PEERS_PY1_SERVER", &[&["--name", name], more].concat());
    let args: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    format!(
        "[[pool]]\nname = \"{name}\"\npath = \"/mcp\"\n[pool.stdio]\ncommand = {program:?}\nargs = [{}]\nrestart_backoff = \"100ms\"\n{extra}\n[pool.health]\ncheck = \"mcp\"\ninterval = \"200ms\"\n\n",
        args.join(", ")
    )
}

fn route(pool: &str) -> String {
    format!("[[route]]\nname = \"plain\"\npath = \"/mcp\"\npool = \"{pool}\"\n")
}

fn rpc(edge: &Edge, body: Value) -> RawResponse {
    raw::send(edge.port, &raw::post(edge.port, "/mcp", &[], &body.to_string()))
}

/// Calls `tool` and returns its text (the JSON or SSE answer's first content item).
fn call(edge: &Edge, tool: &str, args: Value) -> String {
    let r = rpc(edge, json!({"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{"name":tool,"arguments":args}}));
    assert_eq!(r.status, 200, "{tool}: {}", r.text());
    let answer = r.json();
    assert_eq!(answer["id"], "c1", "the client's id comes back: {answer}");
    answer["result"]["content"][0]["text"].as_str().unwrap_or_else(|| panic!("{tool}: {answer}")).to_owned()
}

fn pid(edge: &Edge) -> u32 {
    call(edge, "pid", json!({})).parse().expect("a pid")
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z ")
}

#[test]
fn a_real_sdk_server_over_stdio_serves_the_python_and_typescript_clients() {
    let secret = tempfile::NamedTempFile::new().expect("file");
    std::fs::write(secret.path(), "s3cret-from-file\n").expect("write");
    let extra = format!("env = {{ GREETING = \"hi\" }}\nenv_file = {{ API_TOKEN = {:?} }}\n", secret.path());
    let edge = Edge::start_opts(
        &(stdio_pool("files", &extra) + &route("files")),
        Opts { env: &[("MCP_EDGE_PARENT_ONLY", "leak")], ..Opts::default() },
    );
    edge.wait_metric("mcp_edge_stdio_up{pool=\"files\"} 1");

    assert_eq!(call(&edge, "whoami", json!({})), "files");
    assert_eq!(call(&edge, "env", json!({"name": "GREETING"})), "hi");
    assert_eq!(call(&edge, "env", json!({"name": "API_TOKEN"})), "s3cret-from-file", "read from the file, trimmed");
    for inherited in ["MCP_EDGE_PARENT_ONLY", "PATH", "HOME", "RUST_LOG"] {
        assert_eq!(
            call(&edge, "env", json!({"name": inherited})),
            "<unset>",
            "{inherited}: the environment is cleared"
        );
    }
    edge.wait_log("files: serving MCP over stdio");
    assert!(edge.log().contains("pool=files"), "stderr is logged under the pool's name");

    let peers = Peers::load();
    let url = edge.url("/mcp");
    let py = peers.client("PEERS_PY2_CLIENT", &url, &["--scenario", "basic"]);
    assert_eq!((py["echo"].as_str(), py["server"].as_str()), (Some("hello proxy"), Some("files")), "{py}");
    assert_eq!(py["resource_text"], "Hello from files", "{py}");
    let ts = peers.client("PEERS_TS_CLIENT", &url, &["--scenario", "basic"]);
    assert_eq!(ts["server"], "files", "{ts}");

    // Both clients each opened their own "session"; the process saw one initialize, the
    // bridge's own, and nobody's secret reached /config.
    let config = common::http::get(edge.admin, "/config").text();
    assert!(!config.contains("s3cret-from-file"), "{config}");
    assert!(config.contains("\"API_TOKEN\""), "variable names are shown: {config}");
}

#[test]
fn progress_from_a_stdio_server_streams_as_it_is_sent() {
    let edge = Edge::start(&(stdio_pool("slow", "") + &route("slow")));
    edge.wait_metric("mcp_edge_stdio_up{pool=\"slow\"} 1");
    let out = Peers::load().client("PEERS_PY2_CLIENT", &edge.url("/mcp"), &["--scenario", "progress"]);
    let events = out["progress"].as_array().unwrap_or_else(|| panic!("{out}"));
    assert_eq!(events.len(), 3, "{out}");
    let (first, result) = (events[0]["t"].as_f64().unwrap_or(99.0), out["result_t"].as_f64().unwrap_or(0.0));
    assert!(first + 0.8 < result, "the first progress came {first}s in, the result {result}s: not held back");
    assert_eq!(out["result"], "done");

    // Two clients using the same id and progress token at once each get their own.
    let handles: Vec<_> = (0..2)
        .map(|i| {
            let port = edge.port;
            std::thread::spawn(move || {
                let body = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":format!("client {i}")},"_meta":{"progressToken":"same"}}});
                raw::send(port, &raw::post(port, "/mcp", &[], &body.to_string())).text()
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let text = h.join().expect("client");
        assert!(text.contains(&format!("client {i}")) && text.contains("\"id\":1"), "{text}");
    }
}

#[test]
fn a_killed_stdio_server_is_restarted_and_a_reload_keeps_or_replaces_it() {
    let body = stdio_pool("tools", "") + &route("tools");
    let edge = Edge::start(&body);
    edge.wait_metric("mcp_edge_stdio_up{pool=\"tools\"} 1");
    let first = pid(&edge);
    common::signal_pid(first, "KILL");
    let mut second = first;
    wait_until("a new process answering", Duration::from_secs(20), || {
        second = raw::try_send(
            edge.port,
            &raw::post(
                edge.port,
                "/mcp",
                &[],
                &json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"pid","arguments":{}}})
                    .to_string(),
            ),
        )
        .ok()
        .and_then(|r| r.json()["result"]["content"][0]["text"].as_str().and_then(|t| t.parse().ok()))
        .unwrap_or(first);
        second != first
    });
    edge.wait_metric("mcp_edge_stdio_restarts_total{pool=\"tools\"} 1");
    assert!(!alive(first));

    // The same [pool.stdio]: the same process. Another environment: a new one, the old ended.
    reload(&edge, &body);
    assert_eq!(pid(&edge), second, "an unchanged pool keeps its process across a reload");
    let status = common::http::get(edge.admin, "/status").json();
    assert_eq!(status["config"]["last_changes"], json!([]), "nothing reported changed: {status}");
    reload(&edge, &(stdio_pool("tools", "env = { MODE = \"b\" }") + &route("tools")));
    let third = pid(&edge);
    assert_ne!(third, second);
    assert_eq!(call(&edge, "env", json!({"name": "MODE"})), "b");
    wait_until("the replaced process ended after its drain", Duration::from_secs(15), || !alive(second));
}

#[test]
fn the_bridge_answers_the_proxy_only() {
    let edge = Edge::start(&(stdio_pool("locked", "") + &route("locked")));
    edge.wait_metric("mcp_edge_stdio_up{pool=\"locked\"} 1");
    let config: Value = common::http::get(edge.admin, "/config").json();
    let addr = config["pools"][0]["backends"][0]["addr"].as_str().expect("the bridge's address").to_owned();
    let port: u16 = addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port");
    let call =
        json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}).to_string();
    for extra in [&[][..], &[("X-Mcp-Edge-Bridge", "guess")][..], &[("X-Mcp-Edge-Bridge", "")][..]] {
        let r = raw::send(port, &raw::post(port, "/mcp", extra, &call));
        assert_eq!(r.status, 403, "{extra:?}: {}", r.text());
    }
    let cred = &config["pools"][0]["credentials"][0];
    assert_eq!((cred["stdio_bridge"].as_bool(), cred["value"].as_str()), (Some(true), Some("<redacted>")), "{cred}");
}

#[test]
fn a_federated_route_offers_a_stdio_member_beside_an_http_one() {
    let mock = Mock::start("web", false);
    let body = format!(
        "{}[[pool]]\nname = \"web\"\nbackends = [\"{}\"]\npath = \"/mcp\"\n\n[[route]]\nname = \"all\"\npath = \"/mcp\"\n[[route.member]]\npool = \"web\"\nprefix = \"w\"\n[[route.member]]\npool = \"local\"\nprefix = \"s\"\n",
        stdio_pool("local", ""),
        mock.addr()
    );
    let edge = Edge::start(&body);
    edge.wait_metric("mcp_edge_stdio_up{pool=\"local\"} 1");
    let out =
        Peers::load().client("PEERS_PY2_CLIENT", &edge.url("/mcp"), &["--scenario", "catalog", "--tool", "s_whoami"]);
    assert_eq!(out["text"], "local", "{out}");
    let names: Vec<&str> = out["tool_names"].as_array().expect("tools").iter().filter_map(|t| t.as_str()).collect();
    assert!(names.contains(&"s_pid") && names.contains(&"w_echo"), "{names:?}");
    let servers: Value = common::http::get(edge.admin, "/servers").json();
    let transports: Vec<&str> = servers["routes"][0]["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["transport"].as_str())
        .collect();
    assert_eq!(transports, ["http", "stdio"], "{servers}");
}

/// A 2026-07-28 request (no session): `method` with `params`, and `name` in `Mcp-Name`.
fn modern(edge: &Edge, method: &str, name: Option<&str>, mut params: Value) -> Value {
    params["_meta"] =
        json!({"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}});
    let mut headers = vec![("MCP-Protocol-Version", "2026-07-28"), ("Mcp-Method", method)];
    headers.extend(name.map(|n| ("Mcp-Name", n)));
    let body = json!({"jsonrpc":"2.0","id":1,"method":method,"params":params});
    let r = raw::send(edge.port, &raw::post(edge.port, "/mcp", &headers, &body.to_string()));
    assert_eq!(r.status, 200, "{method}: {}", r.text());
    r.json()
}

/// The tool names of the route's merged list.
fn tool_names(edge: &Edge) -> Vec<String> {
    let r = modern(edge, "tools/list", None, json!({}));
    let tools = r["result"]["tools"].as_array().cloned().unwrap_or_else(|| panic!("a list: {r}"));
    tools.iter().filter_map(|t| t["name"].as_str().map(str::to_owned)).collect()
}

/// The text `tool` answers with.
fn modern_call(edge: &Edge, tool: &str, args: Value) -> String {
    let r = modern(edge, "tools/call", Some(tool), json!({"name": tool, "arguments": args}));
    r["result"]["content"][0]["text"].as_str().unwrap_or_else(|| panic!("{tool}: {r}")).to_owned()
}

#[test]
fn a_shared_stdio_members_list_changed_makes_the_federated_list_fresh_and_reaches_open_streams() {
    // A stateful HTTP member, so a legacy session has a stream to open; the stdio member has
    // none: what its one process says, the proxy tells.
    let mock = Mock::start("web", true);
    let body = format!(
        "{}[[pool]]\nname = \"web\"\nbackends = [\"{}\"]\npath = \"/mcp\"\n\n[[route]]\nname = \"all\"\npath = \"/mcp\"\ncatalog_ttl = \"10m\"\n[[route.member]]\npool = \"web\"\nprefix = \"w\"\n[[route.member]]\npool = \"local\"\nprefix = \"s\"\n",
        stdio_pool_of("local", &["--changes"], ""),
        mock.addr()
    );
    let edge = Edge::start(&body);
    edge.wait_metric("mcp_edge_stdio_up{pool=\"local\"} 1");
    assert!(!tool_names(&edge).contains(&"s_fresh".to_owned()), "the list is warm, kept ten minutes");
    let mut session_stream = Listening::open(&edge, &legacy_session(&edge), "text/event-stream");
    assert!(session_stream.until_head().starts_with("HTTP/1.1 200"), "{}", session_stream.head());
    let mut listen = listen_to_tools(&edge);
    listen.until("the listen acknowledged", |m| !m.is_empty());
    // The one process every client shares adds a tool and says so.
    assert_eq!(modern_call(&edge, "s_add_tool", json!({"name": "fresh"})), "added fresh");
    let changed = |m: &[Value]| m.iter().any(|m| m["method"] == "notifications/tools/list_changed");
    let heard = listen.until("the listen told", changed);
    let told = heard.iter().find(|m| m["method"] == "notifications/tools/list_changed").expect("told");
    assert_eq!(told["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "sub-1", "{told}");
    // Told once the list is new: the client's next list has the tool, and it is routed.
    assert!(tool_names(&edge).contains(&"s_fresh".to_owned()), "listed at once");
    assert_eq!(modern_call(&edge, "s_fresh", json!({})), "fresh", "and routed to its member");
    session_stream.until("the legacy session told", changed);
    edge.wait_metric(r#"mcp_edge_federation_catalog_evictions_total{reason="list_changed",route="all"} 1"#);
}

/// A legacy client session on the federated route `/mcp`.
fn legacy_session(edge: &Edge) -> String {
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    let r = rpc(edge, init);
    r.header("mcp-session-id").unwrap_or_else(|| panic!("a session: {}", r.text())).to_owned()
}

/// A 2026-07-28 listen for the tool list's changes, under subscription id `"sub-1"`.
fn listen_to_tools(edge: &Edge) -> Listening {
    let body = json!({"jsonrpc":"2.0","id":"sub-1","method":"subscriptions/listen","params":{
        "notifications":{"toolsListChanged":true},
        "_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}});
    let headers = [("MCP-Protocol-Version", "2026-07-28"), ("Mcp-Method", "subscriptions/listen")];
    Listening::sent(edge, &raw::post(edge.port, "/mcp", &headers, &body.to_string()))
}

fn reload(edge: &Edge, body: &str) {
    edge.rewrite(body, &Opts::default());
    let r = common::http::request(edge.admin, "POST", "/reload", &[], b"");
    assert_eq!(r.status, 200, "reload: {}", r.text());
}

/// A pool `name` running `tests/peers/stdio_misbehaves.py <mode> <pidfile>`, pinged every
/// 200 ms and given 1 s to answer.
fn misbehaving_pool(name: &str, mode: &str, pidfile: &std::path::Path, extra: &str) -> String {
    let (python, _) = Peers::load().stdio_server("PEERS_PY1_SERVER", &[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/stdio_misbehaves.py");
    format!(
        "[[pool]]\nname = \"{name}\"\npath = \"/mcp\"\n[pool.stdio]\ncommand = {python:?}\nargs = [{script:?}, {mode:?}, {:?}]\nrestart_backoff = \"100ms\"\nstart_timeout = \"1s\"\nping_interval = \"200ms\"\n{extra}\n[pool.health]\ncheck = \"none\"\n\n",
        pidfile.display().to_string()
    )
}

#[test]
fn a_server_that_stops_answering_is_restarted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pids = dir.path().join("pids");
    let edge = Edge::start(&(misbehaving_pool("hung", "hang", &pids, "") + &route("hung")));
    // It answers initialize, then reads nothing: only the supervisor's ping can tell.
    edge.wait_metric("mcp_edge_stdio_restarts_total{pool=\"hung\"} 1");
    wait_until("the hung process ended", Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&pids).unwrap_or_default();
        text.lines().next().and_then(|p| p.parse().ok()).is_some_and(|first: u32| !alive(first))
    });
    edge.wait_log("stdio server stopped answering ping; restarting it");
}

#[test]
fn helpers_a_server_started_end_with_it_even_outside_its_process_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let helper_file = dir.path().join("helper");
    let edge = Edge::start(&(misbehaving_pool("d", "daemon", &helper_file, "") + &route("d")));
    edge.wait_metric("mcp_edge_stdio_up{pool=\"d\"} 1");
    let mut helper = 0u32;
    wait_until("the helper's pid", Duration::from_secs(10), || {
        helper = std::fs::read_to_string(&helper_file).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0);
        helper > 0
    });
    assert!(alive(helper));
    // A reload that changes the pool ends the old server, and its setsid helper with it.
    reload(&edge, &(misbehaving_pool("d", "daemon", &helper_file, "env = { X = \"2\" }") + &route("d")));
    wait_until("the old server's helper ended", Duration::from_secs(15), || !alive(helper));
    // The new server's helper outlives a killed mcp-edge (only a service manager's cgroup
    // catches that): ended here.
    if let Ok(text) = std::fs::read_to_string(&helper_file) {
        let _ = std::process::Command::new("kill").args(["-9", text.trim()]).status();
    }
}

/// The bridge's address, from `/config`.
fn bridge_port(edge: &Edge) -> u16 {
    let config: Value = common::http::get(edge.admin, "/config").json();
    let addr = config["pools"][0]["backends"][0]["addr"].as_str().expect("the bridge's address").to_owned();
    addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port")
}

#[test]
fn strangers_holding_connections_to_the_bridge_do_not_keep_the_proxy_out() {
    let edge = Edge::start(&(stdio_pool("held", "") + &route("held")));
    edge.wait_metric("mcp_edge_stdio_up{pool=\"held\"} 1");
    let port = bridge_port(&edge);
    // Another local process opens connections and sends nothing, more than the bridge would
    // ever hold, and opens new ones as its old ones are closed (7 s: past the head timeout).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let holder = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut held = std::collections::VecDeque::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(c) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                    held.push_back(c);
                }
                if held.len() > 1400 {
                    held.pop_front();
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            held.len()
        })
    };
    let start = std::time::Instant::now();
    let mut calls = 0;
    while start.elapsed() < Duration::from_secs(7) {
        assert_eq!(call(&edge, "whoami", json!({})), "held", "call {calls} at {:?}", start.elapsed());
        calls += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let held = holder.join().expect("the holder");
    assert!(held >= 1024 && calls >= 20, "{held} connections held, {calls} calls");
    assert!(!edge.metrics().contains("mcp_edge_backend_ejections_total{"), "{}", edge.metrics());
}

#[test]
fn a_server_behind_on_its_input_is_answered_429_and_not_ejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pids = dir.path().join("pids");
    // It reads nothing after initialize, and no ping restarts it here.
    let edge = Edge::start(
        &(misbehaving_pool("slow", "hang", &pids, "").replace("ping_interval = \"200ms\"", "ping_interval = \"0s\"")
            + &route("slow")),
    );
    edge.wait_metric("mcp_edge_stdio_up{pool=\"slow\"} 1");
    let pad = "x".repeat(3 << 20);
    let body =
        json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"pad":pad}}}).to_string();
    let request = raw::post(edge.port, "/mcp", &[], &body);
    // Bodies that wait for the process's input fill its queue (16 MiB); they stay unanswered.
    for _ in 0..6 {
        let (port, request) = (edge.port, request.clone());
        std::thread::spawn(move || raw::try_send(port, &request));
    }
    // One more is refused at once; a call that found room waits with the others (not joined).
    let mut last = (0, None);
    wait_until("a 429 once the queue is full", Duration::from_secs(20), || {
        let (tx, rx) = std::sync::mpsc::channel();
        let (port, request) = (edge.port, request.clone());
        std::thread::spawn(move || {
            tx.send(raw::try_send(port, &request).map(|r| (r.status, r.header("retry-after").map(str::to_owned))))
        });
        last = rx.recv_timeout(Duration::from_secs(2)).ok().and_then(Result::ok).map_or((0, None), |r| r);
        last.0 == 429
    });
    assert_eq!(last, (429, Some("1".to_owned())));
    assert!(!edge.metrics().contains("mcp_edge_backend_ejections_total{"), "{}", edge.metrics());
}

#[test]
fn a_clients_id_comes_back_as_it_wrote_it_however_long() {
    let edge = Edge::start(&(stdio_pool("ids", "") + &route("ids")));
    edge.wait_metric("mcp_edge_stdio_up{pool=\"ids\"} 1");
    for id in ["123456789012345678901234567890", "1e0", "-0", r#""\u0031""#] {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"x"}}}}}}"#
        );
        let r = raw::send(edge.port, &raw::post(edge.port, "/mcp", &[("Accept", "application/json")], &body));
        assert_eq!(r.status, 200, "{id}: {}", r.text());
        assert!(r.text().contains(&format!(r#""id":{id}"#)), "{id}: {}", r.text());
    }
}
