//! Hot reload under load: steady JSON and SSE traffic from several clients while the config is
//! swapped many times (backends added and removed, routes added and removed, rules changed),
//! with zero failed requests, zero broken streams, and every change visible right after its
//! reload. A broken edit is refused and the old config keeps serving.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::http::{get, post_mcp, request, KeepAlive, Stream, JSON_HEADERS};
use common::{wait_until, Edge, Mock, Opts};

const WHOAMI: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}}"#;
const DEPLOY: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"deploy_app"}}"#;
const SLOW: &[u8] =
    br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"slow","arguments":{"steps":3,"delay_ms":60}}}"#;

fn pool(name: &str, mocks: &[&Mock]) -> String {
    let list: Vec<String> = mocks.iter().map(|m| format!("\"{}\"", m.addr())).collect();
    format!("[[pool]]\nname = \"{name}\"\nbackends = [{}]\npath = \"/mcp\"\n[pool.health]\ncheck = \"mcp\"\ninterval = \"1s\"\n\n", list.join(", "))
}

/// Variant A: deploy_* → `three`, no /extra. Variant B: main gains `three` and loses `two`,
/// deploy_* → `two`, and a route /extra exists.
fn variant(b: bool, one: &Mock, two: &Mock, three: &Mock) -> String {
    let rule = "[[route.rule]]\ntool = \"deploy_*\"\npool = \"deploy\"\n";
    let mcp = format!("[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"main\"\n{rule}");
    if b {
        pool("main", &[one, three])
            + &pool("deploy", &[two])
            + &mcp
            + "[[route]]\nname = \"extra\"\npath = \"/extra\"\npool = \"main\"\n"
    } else {
        pool("main", &[one, two]) + &pool("deploy", &[three]) + &mcp
    }
}

fn reload(edge: &Edge) -> u64 {
    let r = request(edge.admin, "POST", "/reload", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["generation"].as_u64().expect("generation")
}

#[test]
fn many_reloads_under_json_and_sse_load_fail_nothing_and_apply_at_once() {
    let (one, two, three) = (Mock::start("one", false), Mock::start("two", false), Mock::start("three", false));
    let edge = Edge::start(&variant(false, &one, &two, &three));
    let (stop, ok, failed) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let streams = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for i in 0..6 {
        let (stop, ok, failed, streams, port) = (stop.clone(), ok.clone(), failed.clone(), streams.clone(), edge.port);
        clients.push(thread::spawn(move || {
            let mut keep = KeepAlive::open(port);
            while !stop.load(Ordering::Relaxed) {
                let good = match i % 3 {
                    // A keep-alive connection that lives through every swap.
                    0 => keep.post_mcp("/mcp", WHOAMI).is_ok_and(|r| r.status == 200),
                    // A fresh connection per request.
                    1 => post_mcp(port, "/mcp", &[], WHOAMI).status == 200,
                    // An SSE stream: three progress events, then the result, all of them.
                    _ => {
                        let mut s = Stream::open(port, "POST", "/mcp", &JSON_HEADERS, SLOW);
                        let events: Vec<String> = std::iter::from_fn(|| s.next_event().map(|e| e.0)).take(4).collect();
                        let complete = s.status == 200 && events.len() == 4 && events[3].contains("\"result\"");
                        streams.fetch_add(complete as usize, Ordering::Relaxed);
                        complete
                    }
                };
                if good {
                    ok.fetch_add(1, Ordering::Relaxed)
                } else {
                    failed.fetch_add(1, Ordering::Relaxed)
                };
            }
        }));
    }

    let reloads = 30;
    let start = Instant::now();
    for n in 1..=reloads {
        let b = n % 2 == 1;
        edge.rewrite(&variant(b, &one, &two, &three), &Opts::default());
        assert_eq!(reload(&edge), n as u64 + 1);
        // The change is in force for the very next request.
        let deploy = post_mcp(edge.port, "/mcp", &[], DEPLOY);
        assert_eq!(deploy.header("x-mock-backend"), Some(if b { "two" } else { "three" }), "reload {n}");
        assert_eq!(post_mcp(edge.port, "/extra", &[], WHOAMI).status, if b { 200 } else { 404 }, "reload {n}");
        thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client thread");
    }
    let (ok, failed, streams) =
        (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed), streams.load(Ordering::Relaxed));
    eprintln!(
        "{reloads} reloads in {:?}: {ok} requests ok ({streams} complete SSE streams), {failed} failed",
        start.elapsed()
    );
    assert_eq!(failed, 0, "no request may fail across reloads");
    assert!(ok > 300 && streams > 20, "the load really ran: {ok} ok, {streams} streams");
    edge.wait_metric(&format!(r#"mcp_edge_config_reloads_total{{result="ok"}} {reloads}"#));
    let status = get(edge.admin, "/status").json();
    assert_eq!(status["config"]["generation"], reloads + 1);
    // The reload log line names what changed.
    edge.wait_log("backends added [");
    edge.wait_log("route extra added");
}

#[test]
fn a_broken_edit_is_refused_and_the_old_config_keeps_serving() {
    let (one, two, three) = (Mock::start("one", false), Mock::start("two", false), Mock::start("three", false));
    let edge = Edge::start(&variant(false, &one, &two, &three));
    edge.rewrite(
        &variant(false, &one, &two, &three)
            .replace("pool = \"deploy\"", "pool = \"nope\"")
            .replace("interval = \"1s\"", "interval = \"1 sec\""),
        &Opts::default(),
    );
    edge.proc.signal("HUP");
    wait_until("the refused reload in /status", Duration::from_secs(10), || {
        get(edge.admin, "/status").json()["config"]["last_error"].is_string()
    });
    let status = get(edge.admin, "/status").json();
    let error = status["config"]["last_error"].as_str().expect("error");
    assert!(error.contains("no pool named `nope`") && error.contains("interval"), "every error is reported: {error}");
    assert!(error.contains("mcp-edge.toml:"), "with file and line: {error}");
    assert_eq!(status["config"]["generation"], 1);
    edge.wait_metric(r#"mcp_edge_config_reloads_total{result="error"} 1"#);
    edge.wait_log("config reload refused");

    assert_eq!(post_mcp(edge.port, "/mcp", &[], DEPLOY).header("x-mock-backend"), Some("three"), "old config serves");

    // Log settings (like listeners and threads) cannot change on reload; the refusal names them.
    edge.rewrite(&format!("[log]\nformat = \"json\"\n\n{}", variant(false, &one, &two, &three)), &Opts::default());
    let r = request(edge.admin, "POST", "/reload", &[], b"");
    assert_eq!(r.status, 400);
    assert!(
        r.json()["error"].as_str().is_some_and(|e| e.contains("cannot change without a restart: log")),
        "{}",
        r.text()
    );
}

#[test]
fn file_watch_reloads_an_edited_file_once_it_settles() {
    let (one, two, three) = (Mock::start("one", false), Mock::start("two", false), Mock::start("three", false));
    let opts = Opts { proxy: "watch_config = true", ..Opts::default() };
    let edge = Edge::start_opts(&variant(false, &one, &two, &three), Opts { ..opts });
    // Editors write a new file and rename it over the old one.
    let tmp = edge.dir.path().join("edit.tmp");
    let opts = Opts { proxy: "watch_config = true", ..Opts::default() };
    edge.rewrite(&variant(true, &one, &two, &three), &opts);
    std::fs::copy(&edge.config, &tmp).expect("copy");
    std::fs::rename(&tmp, &edge.config).expect("rename over");
    wait_until("generation 2", Duration::from_secs(10), || {
        get(edge.admin, "/status").json()["config"]["generation"] == 2
    });
    assert_eq!(post_mcp(edge.port, "/mcp", &[], DEPLOY).header("x-mock-backend"), Some("two"));
}

#[test]
fn sessions_survive_reloads_and_key_rotation_keeps_old_tokens_for_the_overlap() {
    let a = Mock::start("a", true);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("session.key");
    std::fs::write(&key, "first-key-0123456789abcdef0123456789abcdef").expect("key");
    let body = pool("main", &[&a]) + "[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"main\"\n";
    let edge = Edge::start_opts(&body, Opts { key: Some(&key), ..Opts::default() });
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let old_token = post_mcp(edge.port, "/mcp", &[], init).header("mcp-session-id").expect("token").to_owned();
    let call = |token: &str| post_mcp(edge.port, "/mcp", &[("Mcp-Session-Id", token)], WHOAMI).status;

    edge.rewrite(&(body.clone() + "\n"), &Opts { key: Some(&key), ..Opts::default() });
    reload(&edge);
    assert_eq!(call(&old_token), 200, "a reload with the same key keeps sessions");

    std::fs::write(&key, "second-key-0123456789abcdef0123456789abcdef").expect("key");
    reload(&edge);
    assert_eq!(call(&old_token), 200, "the previous key is accepted during the overlap");
    let new_token = post_mcp(edge.port, "/mcp", &[], init).header("mcp-session-id").expect("token").to_owned();
    assert_eq!(call(&new_token), 200);
    assert_eq!(get(edge.admin, "/status").json()["sessions"]["previous_key_accepted"], true);

    // With no overlap, the rotation retires old tokens at once.
    std::fs::write(&key, "third-key-0123456789abcdef0123456789abcdef0").expect("key");
    edge.rewrite(&body, &Opts { key: Some(&key), sessions: "rotation_overlap = \"0s\"", ..Opts::default() });
    reload(&edge);
    assert_eq!(call(&new_token), 404);
}
