//! `per_session` stdio pools: one process of the real Python SDK server per client session,
//! started with the client's own `initialize`, ended with the session (DELETE, idle, its
//! exit), bounded by `max_sessions`, and never started by mcp-edge's own health probes. What
//! the process sends on its own (notifications, requests to the client) reaches its client on
//! the session's GET stream, and the client's answers reach the process.

use super::*;
use common::listening::Listening;

/// A `per_session` pool `name` over the py1 server, at most `max` sessions, idle after `idle`.
fn per_session(name: &str, max: usize, idle: &str) -> String {
    stdio_pool(name, &format!("per_session = true\nmax_sessions = {max}\nsession_idle = {idle:?}\n"))
}

/// A client session: the route's `Mcp-Session-Id` for a raw `initialize` naming `client` and
/// `version`.
fn open(edge: &Edge, client: &str, version: &str) -> String {
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": client, "version": "1"}}});
    let r = rpc_in(edge, None, init);
    assert_eq!(r.status, 200, "{client}: {}", r.text());
    assert_eq!(r.json()["result"]["protocolVersion"], version, "the process agreed to the client's version");
    r.header("mcp-session-id").unwrap_or_else(|| panic!("{client}: a session: {}", r.text())).to_owned()
}

fn rpc_in(edge: &Edge, session: Option<&str>, body: Value) -> RawResponse {
    let headers: Vec<(&str, &str)> = session.map(|s| ("Mcp-Session-Id", s)).into_iter().collect();
    raw::send(edge.port, &raw::post(edge.port, "/mcp", &headers, &body.to_string()))
}

/// Calls `tool` in `session` and returns its text.
fn call_in(edge: &Edge, session: &str, tool: &str) -> String {
    let r = rpc_in(
        edge,
        Some(session),
        json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":tool,"arguments":{}}}),
    );
    assert_eq!(r.status, 200, "{tool}: {}", r.text());
    r.json()["result"]["content"][0]["text"].as_str().unwrap_or_else(|| panic!("{tool}: {}", r.text())).to_owned()
}

fn pid_in(edge: &Edge, session: &str) -> u32 {
    call_in(edge, session, "pid").parse().expect("a pid")
}

fn delete(edge: &Edge, session: &str) -> u16 {
    let head = format!(
        "DELETE /mcp HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nMcp-Session-Id: {session}\r\nConnection: close\r\n\r\n",
        edge.port
    );
    raw::send(edge.port, head.as_bytes()).status
}

fn sessions_opened(edge: &Edge, pool: &str) -> u64 {
    let needle = format!("mcp_edge_stdio_sessions_total{{outcome=\"opened\",pool=\"{pool}\"}} ");
    edge.metrics().lines().find_map(|l| l.strip_prefix(&needle)?.parse().ok()).unwrap_or(0)
}

fn healthy(edge: &Edge, pool: &str) -> bool {
    let pool = format!("pool=\"{pool}\"");
    edge.metrics()
        .lines()
        .any(|l| l.starts_with("mcp_edge_upstream_healthy{") && l.contains(&pool) && l.ends_with(" 1"))
}

fn probes_ok(edge: &Edge, pool: &str) -> u64 {
    let needle = format!("mcp_edge_health_checks_total{{pool=\"{pool}\",result=\"ok\"}} ");
    edge.metrics().lines().find_map(|l| l.strip_prefix(&needle)?.parse().ok()).unwrap_or(0)
}

#[test]
fn each_client_session_gets_a_process_of_its_own_started_with_its_own_initialize() {
    let edge = Edge::start(&(per_session("mine", 2, "10m") + &route("mine")));
    // mcp-edge started one trial process to see that they start; the health probe (every
    // 200 ms) vouches from its answer: no process per probe, and none counted as a client's.
    wait_until("the pool healthy", Duration::from_secs(15), || healthy(&edge, "mine"));
    let probes = probes_ok(&edge, "mine");
    wait_until("more probes", Duration::from_secs(5), || probes_ok(&edge, "mine") >= probes + 3);
    edge.wait_metric("mcp_edge_stdio_up{pool=\"mine\"} 0");
    assert_eq!(sessions_opened(&edge, "mine"), 0, "no client session opened yet");

    let (alice, bob) = (open(&edge, "alice", "2025-06-18"), open(&edge, "bob", "2025-03-26"));
    edge.wait_metric("mcp_edge_stdio_up{pool=\"mine\"} 2");
    let (pa, pb) = (pid_in(&edge, &alice), pid_in(&edge, &bob));
    assert_ne!(pa, pb, "a process each");
    assert_eq!(pid_in(&edge, &alice), pa, "a session keeps its process");
    assert_eq!(call_in(&edge, &alice, "client"), "alice 2025-06-18", "the process got alice's own initialize");
    assert_eq!(call_in(&edge, &bob, "client"), "bob 2025-03-26");

    // max_sessions = 2: a third waits for a place.
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"carol","version":"1"}}});
    let r = rpc_in(&edge, None, init);
    assert_eq!((r.status, r.header("retry-after")), (503, Some("1")), "{}", r.text());
    edge.wait_metric("mcp_edge_stdio_sessions_total{outcome=\"full\",pool=\"mine\"} 1");

    // DELETE ends alice's process and session; her place goes to carol.
    assert_eq!(delete(&edge, &alice), 200);
    wait_until("alice's process ended", Duration::from_secs(10), || !alive(pa));
    let r = rpc_in(
        &edge,
        Some(&alice),
        json!({"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"pid","arguments":{}}}),
    );
    assert_eq!(r.status, 404, "an ended session is not found, so the client starts anew: {}", r.text());
    assert_eq!(r.json()["id"], 8, "the error answers the request: {}", r.text());
    // The place comes back once the process group is reaped, a moment after the process died
    // (a client asking meanwhile is told to retry: seen under load in CI).
    wait_until("alice's place given back", Duration::from_secs(10), || {
        edge.metrics().contains("mcp_edge_stdio_up{pool=\"mine\"} 1")
    });
    let carol = open(&edge, "carol", "2025-06-18");
    let pc = pid_in(&edge, &carol);
    assert!(![pa, pb].contains(&pc), "a new process");

    // A session whose process dies is gone too (nothing restarts it: it held the state).
    let _ = std::process::Command::new("kill").args(["-9", &pc.to_string()]).status();
    wait_until("carol's session gone", Duration::from_secs(10), || {
        rpc_in(&edge, Some(&carol), json!({"jsonrpc":"2.0","id":9,"method":"ping"})).status == 404
    });
    assert_eq!(call_in(&edge, &bob, "client"), "bob 2025-03-26", "bob's untouched");
    edge.wait_metric("mcp_edge_stdio_up{pool=\"mine\"} 1");
    assert_eq!(edge.metrics().matches("mcp_edge_stdio_restarts_total{pool=\"mine\"} 0").count(), 1, "none restarted");
}

#[test]
fn an_idle_session_ends_and_the_sdk_clients_each_get_their_own_process() {
    let edge = Edge::start(&(per_session("idle", 8, "1s") + &route("idle")));
    let quiet = open(&edge, "quiet", "2025-06-18");
    let pid = pid_in(&edge, &quiet);
    // Requests keep it; a second without one ends it.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(pid_in(&edge, &quiet), pid);
    }
    wait_until("the idle session's process ended", Duration::from_secs(10), || !alive(pid));
    assert_eq!(rpc_in(&edge, Some(&quiet), json!({"jsonrpc":"2.0","id":1,"method":"ping"})).status, 404);

    // Real SDK clients: each session is a process, and each client's DELETE at its end ends it.
    let (peers, url) = (Peers::load(), edge.url("/mcp"));
    let before = sessions_opened(&edge, "idle");
    let py = peers.client("PEERS_PY2_CLIENT", &url, &["--scenario", "basic"]);
    assert_eq!((py["echo"].as_str(), py["server"].as_str()), (Some("hello proxy"), Some("idle")), "{py}");
    let ts = peers.client("PEERS_TS_CLIENT", &url, &["--scenario", "basic"]);
    assert_eq!(ts["server"], "idle", "{ts}");
    assert!(sessions_opened(&edge, "idle") >= before + 2, "a process per client session");
    edge.wait_metric("mcp_edge_stdio_up{pool=\"idle\"} 0");
}

#[test]
fn a_federated_route_gives_each_client_session_its_own_stdio_member_process() {
    let mock = Mock::start("web", false);
    let body = format!(
        "{}[[pool]]\nname = \"web\"\nbackends = [\"{}\"]\npath = \"/mcp\"\n\n[[route]]\nname = \"all\"\npath = \"/mcp\"\n[[route.member]]\npool = \"web\"\nprefix = \"w\"\n[[route.member]]\npool = \"local\"\nprefix = \"s\"\n",
        per_session("local", 4, "10m"),
        mock.addr()
    );
    let edge = Edge::start(&body);
    let (one, two) = (open(&edge, "one", "2025-06-18"), open(&edge, "two", "2025-11-25"));
    let (p1, p2) = (call_in(&edge, &one, "s_pid"), call_in(&edge, &two, "s_pid"));
    assert_ne!(p1, p2, "a member process per client session");
    assert_eq!(call_in(&edge, &one, "s_pid"), p1);
    assert_eq!(call_in(&edge, &two, "s_client"), "two 2025-11-25", "the member process got the client's initialize");
    assert_eq!(delete(&edge, &one), 204, "the route ended every member's session");
    let p1: u32 = p1.parse().expect("a pid");
    wait_until("one's member process ended", Duration::from_secs(10), || !alive(p1));
}

#[test]
fn one_clients_bad_initializes_and_a_full_pool_lock_no_other_session_out() {
    // Found by an attack: five of these opened the bridge's circuit breaker, and every
    // session got 404 while its process ran on.
    let edge = Edge::start(&(per_session("shared", 2, "10m") + &route("shared")));
    let victim = open(&edge, "victim", "2025-06-18");
    let pid = pid_in(&edge, &victim);
    let bad = json!({"jsonrpc":"2.0","id":1,"method":"initialize"});
    for _ in 0..6 {
        let r = rpc_in(&edge, None, bad.clone());
        assert_eq!(r.status, 400, "the server refused the client's own initialize: {}", r.text());
    }
    let _filler = open(&edge, "filler", "2025-06-18");
    let full = json!({"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}});
    for _ in 0..6 {
        assert_eq!(rpc_in(&edge, None, full.clone()).status, 503);
    }
    for _ in 0..3 {
        assert_eq!(pid_in(&edge, &victim), pid, "the victim's session serves on");
    }
}

#[test]
fn a_client_whose_initialize_kills_its_server_takes_no_one_elses_pool_down() {
    // The server exits on an initialize from a client named "crash": that client's failures
    // are its own, and the health probes (every 200 ms) keep vouching for the pool.
    let dir = tempfile::tempdir().expect("tempdir");
    let (python, _) = Peers::load().stdio_server("PEERS_PY1_SERVER", &[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/stdio_misbehaves.py");
    let pids = dir.path().join("pids").display().to_string();
    let pool = format!(
        "[[pool]]\nname = \"fragile\"\npath = \"/mcp\"\n[pool.stdio]\ncommand = {python:?}\nargs = [{script:?}, \"fragile\", {pids:?}]\nper_session = true\nmax_sessions = 64\n[pool.health]\ncheck = \"mcp\"\ninterval = \"200ms\"\n\n"
    );
    let edge = Edge::start(&(pool + &route("fragile")));
    let port = edge.port;
    let attacker = std::thread::spawn(move || {
        let crash = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"crash","version":"1"}}});
        let until = std::time::Instant::now() + Duration::from_millis(2500);
        let mut refused = 0;
        while std::time::Instant::now() < until {
            refused += u32::from(raw::send(port, &raw::post(port, "/mcp", &[], &crash.to_string())).status == 502);
        }
        refused
    });
    std::thread::sleep(Duration::from_millis(1500));
    // Probes have run many times meanwhile: the pool is still up for everyone else.
    let other = open(&edge, "other", "2025-06-18");
    assert!(!call_in(&edge, &other, "whoami").is_empty());
    assert!(attacker.join().expect("attacker") > 0, "the crashing client's own initializes failed");
    let after = open(&edge, "later", "2025-06-18");
    assert!(!call_in(&edge, &after, "whoami").is_empty());
}

/// A `per_session` pool `name` over the py1 server with its stream tools (`add_tool`,
/// `ask_client`, `touch`), at most 4 sessions.
fn per_session_changes(name: &str) -> String {
    stdio_pool_of(name, &["--changes"], "per_session = true\nmax_sessions = 4\nsession_idle = \"10m\"\n")
}

/// The py1 client's `changes` story (a tool added, sampling asked on the session's stream and
/// for a call, a resource updated, a log line) through `edge`; tools named with `prefix`. The
/// added tool is listed only where the list is the session's process's own: a federated
/// route's catalog is the member's, read from a process of the proxy's own session.
fn changes_reach_the_client(edge: &Edge, prefix: &str) {
    let own_list = prefix.is_empty();
    let r = Peers::load().client("PEERS_PY1_CLIENT", &edge.url("/mcp"), &["--scenario", "changes", "--tool", "fresh"]);
    let names = |key: &str| -> Vec<String> {
        r[key].as_array().expect(key).iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()
    };
    let fresh = format!("{prefix}fresh");
    assert!(!names("before").contains(&fresh), "{r}");
    assert_eq!(names("after").contains(&fresh), own_list, "{r}");
    assert_eq!(r["added"], "added fresh", "{r}");
    assert!(names("methods").contains(&"notifications/tools/list_changed".to_owned()), "{r}");
    assert_eq!(
        (r["sampled"].as_str(), r["sampled_inline"].as_str()),
        (Some("sampled: two plus two"), Some("sampled: three")),
        "the process asked the client, and got its answers: {r}"
    );
    let uri = if prefix.is_empty() { "res://greeting".to_owned() } else { format!("{}+res://greeting", &prefix[..1]) };
    assert_eq!(names("uris"), [uri], "{r}");
    assert!(names("logs").iter().any(|l| l == "touched res://greeting"), "{r}");
    assert!(edge.metrics().contains("mcp_edge_panics_total 0"));
}

#[test]
fn a_session_process_reaches_its_client_on_the_sessions_stream_and_hears_its_answers() {
    let edge = Edge::start(&(per_session_changes("mine") + &route("mine")));
    changes_reach_the_client(&edge, "");
}

#[test]
fn a_federated_session_hears_its_stdio_member_process_on_the_merged_stream() {
    let mock = Mock::start("web", false);
    let body = format!(
        "{}[[pool]]\nname = \"web\"\nbackends = [\"{}\"]\npath = \"/mcp\"\n\n[[route]]\nname = \"all\"\npath = \"/mcp\"\ncatalog_ttl = \"10m\"\n[[route.member]]\npool = \"web\"\nprefix = \"w\"\n[[route.member]]\npool = \"local\"\nprefix = \"s\"\n",
        per_session_changes("local"),
        mock.addr()
    );
    let edge = Edge::start(&body);
    changes_reach_the_client(&edge, "s_");
    // The catalog is kept ten minutes: the process's list_changed made it stale.
    let evicted = r#"mcp_edge_federation_catalog_evictions_total{reason="list_changed",route="all"} "#;
    let metrics = edge.metrics();
    let count = metrics.lines().find_map(|l| l.strip_prefix(evicted)).and_then(|v| v.parse::<u64>().ok());
    assert!(count.is_some_and(|c| c >= 1), "the merged tool list was made stale: {count:?}");
}

#[test]
fn a_session_process_asking_a_client_with_no_stream_open_is_refused_at_once() {
    let edge = Edge::start(&(per_session_changes("mine") + &route("mine")));
    let session = open(&edge, "quiet", "2025-11-25");
    let ask = json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"ask_client","arguments":{"question":"q"}}});
    let r = rpc_in(&edge, Some(&session), ask);
    assert_eq!(r.status, 200, "{}", r.text());
    let answer = r.json();
    assert_eq!(answer["result"]["isError"], true, "the server's request was refused, and its tool said so: {answer}");
    // The process still serves the session.
    assert!(call_in(&edge, &session, "pid").parse::<u32>().is_ok());
}

/// How many of `messages` say a resource was updated.
fn touched(messages: &[Value]) -> usize {
    messages.iter().filter(|m| m["method"] == "notifications/resources/updated").count()
}

#[test]
fn a_newer_stream_of_the_session_takes_over_and_the_older_ends() {
    let edge = Edge::start(&(per_session_changes("mine") + &route("mine")));
    let session = open(&edge, "reconnecting", "2025-11-25");
    let mut first = Listening::open(&edge, &session, "text/event-stream");
    assert!(first.until_head().starts_with("HTTP/1.1 200"), "{}", first.head());
    assert_eq!(call_in(&edge, &session, "touch"), "touched");
    let heard = first.until("the update on the first stream", |m| touched(m) == 1);
    let log = heard.iter().find(|m| m["method"] == "notifications/message").expect("the log line");
    assert_eq!(log["params"]["data"], "touched res://greeting", "as the process wrote it: {log}");
    // The client reconnects: its newer stream takes over, the older one ends.
    let mut second = Listening::open(&edge, &session, "text/event-stream");
    assert!(second.until_head().starts_with("HTTP/1.1 200"), "{}", second.head());
    first.until_end("a newer stream took over");
    assert_eq!(call_in(&edge, &session, "touch"), "touched");
    second.until("the update on the newer stream", |m| touched(m) == 1);
    // The stream ends with the session.
    assert_eq!(delete(&edge, &session), 200, "the bridge's answer to DELETE, through a plain route");
    second.until_end("the session ended");
}

/// A `per_session` pool over `tests/peers/stdio_misbehaves.py <mode>`.
fn misbehaving_sessions(mode: &str, pids: &std::path::Path) -> String {
    misbehaving_pool("bad", mode, pids, "per_session = true\nmax_sessions = 4\n") + &route("bad")
}

#[test]
fn a_process_flooding_a_client_that_does_not_read_its_stream_is_not_held_in_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No liveness ping: reading 96 MB of output may keep its answer waiting past a second.
    let config = misbehaving_sessions("flood", &dir.path().join("pids"));
    let edge = Edge::start(&config.replace("ping_interval = \"200ms\"", "ping_interval = \"0s\""));
    let session = open(&edge, "slow-reader", "2025-11-25");
    // A stream the client never reads from.
    let mut stream = Listening::open(&edge, &session, "text/event-stream");
    assert!(stream.until_head().starts_with("HTTP/1.1 200"), "{}", stream.head());
    let before = edge.rss_mib();
    // 32 notifications of 3 MB before the answer: 96 MB, past what the stream may hold.
    assert_eq!(call_in(&edge, &session, "t"), "flooded");
    let after = edge.rss_mib();
    assert!(after < before + 48, "mcp-edge grew from {before} to {after} MiB");
    drop(stream);
    assert!(edge.metrics().contains("mcp_edge_panics_total 0"));
}

#[test]
fn a_process_that_stops_reading_holds_no_more_than_its_input_queue_of_the_bridges_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pids = dir.path().join("pids");
    // No liveness ping: it would end the process, and free what it held, before the count.
    let config = misbehaving_sessions("deaf", &pids).replace("ping_interval = \"200ms\"", "ping_interval = \"0s\"");
    let edge = Edge::start(&config);
    let session = open(&edge, "quiet", "2025-11-25");
    let before = edge.rss_mib();
    // 300 requests to the client with 1 MB ids, refused by the bridge (no stream is open, and
    // no client answers such an id), while the process reads nothing: each refusal echoes its id.
    let call = json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"t","arguments":{}}});
    let headers = [("Mcp-Session-Id", session.as_str())];
    let _call = Listening::sent(&edge, &raw::post(edge.port, "/mcp", &headers, &call.to_string()));
    // Written through a pipe of 64 KiB: once the process wrote them all, the bridge read them.
    let sent = pids.with_extension("sent");
    wait_until("the process wrote its requests", Duration::from_secs(30), || sent.exists());
    let after = edge.rss_mib();
    assert!(after < before + 96, "mcp-edge grew from {before} to {after} MiB");
}
