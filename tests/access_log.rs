//! The access log and the MCP latency histograms through the real binary: every field the
//! operator follows a request by (upstream attempts, the JSON-RPC code of a local reply, the
//! limit that refused, a session fingerprint that never shows the token, an empty trace id) in
//! both formats; the file destination, reopened on SIGUSR1 after logrotate's rename and
//! switched by a reload; per-route sampling that drops successes but never errors; and the
//! request and per-attempt histograms with their labels.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::http::{post_mcp, request, Resp};
use common::{wait_until, Edge, Mock, DEAD_BACKEND};

const INIT: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
const CALL: &str =
    r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}"#;
/// Not JSON-RPC 2.0 (no `jsonrpc`): mcp-edge answers 400 with -32600 itself.
const NOT_JSON_RPC: &str = r#"{"id":7,"method":"ping"}"#;

/// `[log]` lines, then a pool whose first backend refuses every connection (no health check
/// and a patient breaker keep it in, so requests spread over it are retried on the live one),
/// a route `/limited` that admits one request a minute, and the route `/mcp`.
fn config(mock: &Mock, log: &str, route_extra: &str) -> String {
    format!(
        r#"[log]
{log}

[metrics]
tools = ["echo"]

[[pool]]
name = "main"
backends = ["{DEAD_BACKEND}", "{}"]
path = "/mcp"
[pool.health]
check = "none"
[pool.breaker]
failures = 1000

[[limit]]
name = "one-a-minute"
key = ["route"]
rate = "1/min"

[[route]]
name = "limited"
path = "/limited"
pool = "main"
limits = ["one-a-minute"]

[[route]]
name = "main"
path = "/mcp"
pool = "main"
{route_extra}
"#,
        mock.addr()
    )
}

fn send(edge: &Edge, path: &str, id: &str, extra: &[(&str, &str)], body: &str) -> Resp {
    let mut headers = vec![("X-Request-Id", id)];
    headers.extend_from_slice(extra);
    post_mcp(edge.port, path, &headers, body)
}

/// The access lines in `text`, each as field → value under the JSON format's names (text's
/// `id` and `rpc` renamed); text's `-` and JSON's `null` both read `-`.
fn access_lines(text: &str) -> Vec<HashMap<String, String>> {
    text.lines()
        .filter_map(|line| {
            if let Some((_, rest)) = line.split_once(" access id=") {
                return Some(text_fields(&format!("id={rest}")));
            }
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            (v["target"] == "mcp_edge::access").then(|| json_fields(&v))
        })
        .collect()
}

fn text_fields(mut rest: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    while let Some((key, after)) = rest.split_once('=') {
        let (value, tail) = if after.starts_with('"') {
            // A JSON string literal: up to the first quote not escaped.
            let mut end = 1;
            let bytes = after.as_bytes();
            while end < bytes.len() && bytes[end] != b'"' {
                end += if bytes[end] == b'\\' { 2 } else { 1 };
            }
            let literal = &after[..=end];
            (serde_json::from_str::<String>(literal).expect("a JSON string"), &after[end + 1..])
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (after[..end].to_owned(), &after[end..])
        };
        let key = match key.trim() {
            "id" => "request_id",
            "rpc" => "rpc_code",
            other => other,
        };
        out.insert(key.to_owned(), value);
        rest = tail.trim_start();
    }
    out
}

fn json_fields(v: &serde_json::Value) -> HashMap<String, String> {
    let object = v.as_object().expect("an object");
    object
        .iter()
        .map(|(k, v)| {
            let value = match v {
                serde_json::Value::Null => "-".to_owned(),
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), value)
        })
        .collect()
}

/// Waits until the access line of every id in `ids` is written, then returns each.
fn lines_of(log: impl Fn() -> String, ids: &[&str]) -> HashMap<String, HashMap<String, String>> {
    let mut found = HashMap::new();
    wait_until(&format!("access lines of {ids:?}"), Duration::from_secs(5), || {
        found = access_lines(&log())
            .into_iter()
            .filter_map(|f| Some((f.get("request_id")?.clone(), f)))
            .filter(|(id, _)| ids.contains(&id.as_str()))
            .collect();
        found.len() == ids.len()
    });
    found
}

/// One story per format: a session, a local -32600, a limit's 429, and calls spread over a
/// dead and a live backend.
fn every_new_field_has_its_value(format: &str) {
    let (mock, stateful) = (Mock::start("m", false), Mock::start("s", true));
    let sessions = format!(
        "\n[[pool]]\nname = \"sessions\"\nbackends = [\"{}\"]\npath = \"/mcp\"\n\n[[route]]\nname = \"sessions\"\npath = \"/sessions\"\npool = \"sessions\"\n",
        stateful.addr()
    );
    let edge = Edge::start(&config(&mock, &format!("format = \"{format}\""), &sessions));

    let token = send(&edge, "/sessions", "init", &[], INIT).header("mcp-session-id").expect("a session").to_owned();
    for id in ["call-1", "call-2"] {
        assert_eq!(send(&edge, "/sessions", id, &[("Mcp-Session-Id", &token)], CALL).status, 200);
    }
    assert_eq!(send(&edge, "/mcp", "not-json-rpc", &[], NOT_JSON_RPC).status, 400);
    assert_eq!(send(&edge, "/limited", "admitted", &[], CALL).status, 200);
    assert_eq!(send(&edge, "/limited", "refused", &[], CALL).status, 429);
    // Round robin over [dead, live]: of two calls, at least one meets the dead backend first.
    for id in ["spread-1", "spread-2"] {
        assert_eq!(send(&edge, "/mcp", id, &[], CALL).status, 200);
    }

    let ids = ["init", "call-1", "call-2", "not-json-rpc", "admitted", "refused", "spread-1", "spread-2"];
    let lines = lines_of(|| edge.log(), &ids);
    let field = |id: &str, key: &str| lines[id].get(key).cloned().unwrap_or_else(|| panic!("{key} in {:?}", lines[id]));

    let session = field("call-1", "session");
    assert_eq!((session.len(), field("call-2", "session")), (16, session.clone()), "one session, one fingerprint");
    assert_eq!(field("init", "session"), session, "the session's first line names it too");
    assert!(!edge.log().contains(&token), "never the token");
    assert_eq!(field("spread-1", "session"), "-", "no session, no fingerprint");

    assert_eq!((field("not-json-rpc", "status"), field("not-json-rpc", "rpc_code")), ("400".into(), "-32600".into()));
    assert_eq!((field("not-json-rpc", "attempts"), field("not-json-rpc", "limit")), ("0".into(), "-".into()));
    assert_eq!((field("refused", "status"), field("refused", "limit")), ("429".into(), "one-a-minute".into()));
    assert_eq!(field("refused", "rpc_code"), "-32000");
    assert_eq!((field("admitted", "limit"), field("admitted", "rpc_code")), ("-".into(), "-".into()));

    let spread: Vec<String> = ["spread-1", "spread-2"].iter().map(|id| field(id, "attempts")).collect();
    assert!(spread.contains(&"2".to_owned()), "a call retried after the dead backend: {spread:?}");
    assert!(spread.iter().all(|a| a == "1" || a == "2"), "{spread:?}");
    for id in ids {
        assert_eq!(field(id, "trace_id"), "-", "{id}: a trace id awaits tracing");
    }
}

#[test]
fn every_new_access_field_has_its_value_in_text_lines() {
    every_new_field_has_its_value("text");
}

#[test]
fn every_new_access_field_has_its_value_in_json_lines() {
    every_new_field_has_its_value("json");
}

#[test]
fn sampling_at_zero_drops_successful_lines_but_keeps_errors() {
    let mock = Mock::start("m", false);
    let edge = Edge::start(&config(&mock, "", "access_sample = 0.0"));
    assert_eq!(send(&edge, "/mcp", "fine", &[], CALL).status, 200);
    // Counted in the same call that would log it: once counted, its line would be written.
    edge.wait_metric(r#"mcp_edge_requests_total{method="tools/call",route="main",status="200",tool="echo"} 1"#);
    assert_eq!(send(&edge, "/mcp", "broken", &[], NOT_JSON_RPC).status, 400);
    let lines = lines_of(|| edge.log(), &["broken"]);
    assert_eq!(lines["broken"]["status"], "400");
    let ids: Vec<String> = access_lines(&edge.log()).iter().filter_map(|f| f.get("request_id").cloned()).collect();
    assert_eq!(ids, vec!["broken".to_owned()], "the success is sampled out, the error kept");
}

/// Runs `mcp-edge check` on a config with `[log] access_file = path`.
fn check_with_access_file(dir: &Path, path: &str) -> std::process::Output {
    let config = dir.join("check.toml");
    let text = format!(
        "[log]\naccess_file = \"{path}\"\n\n[[pool]]\nname = \"p\"\nbackends = [\"127.0.0.1:1\"]\n\n[[route]]\nname = \"r\"\npool = \"p\"\n"
    );
    std::fs::write(&config, text).expect("write config");
    Command::new(common::MCP_EDGE).args(["check", "--config"]).arg(&config).output().expect("run check")
}

#[test]
fn an_access_file_that_cannot_be_written_is_a_config_error_with_its_place_and_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = check_with_access_file(dir.path(), "/nonexistent-mcp-edge-dir/access.log");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("check.toml:2:15: log.access_file: cannot be opened for appending"), "{err}");
    assert!(err.contains("create its directory"), "the fix: {err}");
    let ok = check_with_access_file(dir.path(), &dir.path().join("a.log").display().to_string());
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(!dir.path().join("a.log").exists(), "check leaves no file behind (run as root, it would be root's)");
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn the_access_file_is_reopened_on_sigusr1_after_a_rename_and_moved_by_a_reload() {
    let mock = Mock::start("m", false);
    let logs = tempfile::tempdir().expect("tempdir");
    let (file, rotated, moved) =
        (logs.path().join("access.log"), logs.path().join("access.log.1"), logs.path().join("moved.log"));
    let log_conf = |f: &Path| format!("access_file = \"{}\"", f.display());
    let edge = Edge::start(&config(&mock, &log_conf(&file), ""));
    edge.wait_log("SIGUSR1 handler ready");

    assert_eq!(send(&edge, "/mcp", "before", &[], CALL).status, 200);
    lines_of(|| read(&file), &["before"]);
    assert!(!edge.log().contains("before"), "access lines go to the file, not stderr");

    // logrotate without copytruncate: rename, then SIGUSR1; the next lines start a new file.
    std::fs::rename(&file, &rotated).expect("rename");
    edge.proc.signal("USR1");
    wait_until("a new access.log", Duration::from_secs(5), || file.exists());
    assert_eq!(send(&edge, "/mcp", "after", &[], CALL).status, 200);
    lines_of(|| read(&file), &["after"]);
    assert!(read(&rotated).contains("before") && !read(&rotated).contains("after"), "{}", read(&rotated));

    edge.rewrite(&config(&mock, &log_conf(&moved), ""), &common::Opts::default());
    assert_eq!(request(edge.admin, "POST", "/reload", &[], b"").status, 200, "{}", edge.log());
    assert_eq!(send(&edge, "/mcp", "reloaded", &[], CALL).status, 200);
    lines_of(|| read(&moved), &["reloaded"]);
    assert!(!read(&file).contains("reloaded"), "the reload moved the access log");
}

/// The value of the sample in `/metrics` that starts with `series` (labels in Prometheus'
/// order, sorted by name), or 0 when there is none.
fn sample(metrics: &str, series: &str) -> u64 {
    metrics.lines().find_map(|l| l.strip_prefix(series)?.trim().parse().ok()).unwrap_or(0)
}

#[test]
fn latency_histograms_observe_each_request_and_each_upstream_attempt_with_their_labels() {
    let mock = Mock::start("m", false);
    let edge = Edge::start(&config(&mock, "", ""));
    for id in ["one", "two"] {
        assert_eq!(send(&edge, "/mcp", id, &[], CALL).status, 200);
    }
    assert_eq!(send(&edge, "/mcp", "bad", &[], NOT_JSON_RPC).status, 400);
    let server = "mcp_edge_mcp_server_operation_duration_seconds_count";
    edge.wait_metric(&format!(
        r#"{server}{{error_type="_none",method="tools/call",route="main",status_class="2xx",tool="echo"}} 2"#
    ));
    edge.wait_metric(&format!(
        r#"{server}{{error_type="refused",method="-",route="main",status_class="4xx",tool="-"}} 1"#
    ));
    edge.wait_metric(
        r#"mcp_edge_time_to_first_byte_seconds_count{error_type="_none",method="tools/call",route="main",status_class="2xx",tool="echo"} 2"#,
    );

    // Each attempt observed once: the two that answered, and every refused connection that
    // was retried (one or two, by where round robin starts).
    let m = edge.metrics();
    let client = "mcp_edge_mcp_client_operation_duration_seconds_count";
    let labels = |error: &str, class: &str| {
        format!(
            r#"{client}{{error_type="{error}",method="tools/call",pool="main",route="main",status_class="{class}",tool="echo"}}"#
        )
    };
    let retries = sample(&m, r#"mcp_edge_upstream_retries_total{pool="main"}"#);
    assert!((1..=2).contains(&retries), "{m}");
    assert_eq!(sample(&m, &labels("_none", "2xx")), 2, "{m}");
    assert_eq!(sample(&m, &labels("connect", "0")), retries, "{m}");
    assert!(
        m.contains(&format!(r#"{}{{error_type="_none",method="tools/call",pool="main",route="main",status_class="2xx",tool="echo",le="0.01"}}"#, client.replace("_count", "_bucket"))),
        "the conventions' buckets: {m}"
    );
    assert!(
        !m.contains(r#"mcp_client_operation_duration_seconds_count{error_type="_none",method="-""#),
        "the local reply made no attempt: {m}"
    );
}

#[test]
fn a_legacy_sse_stream_and_its_posts_share_one_session_fingerprint() {
    let mock = Mock::start_with("legacy", false, &["--legacy-sse"]);
    let edge = Edge::start(&format!(
        "{}[[route]]\nname = \"legacy\"\npath_prefix = \"/\"\npool = \"p\"\ninspect = \"never\"\n",
        common::pool("p", &[&mock], "")
    ));
    let headers = [("Accept", "text/event-stream"), ("X-Request-Id", "sse-stream")];
    let mut stream = common::http::Stream::open(edge.port, "GET", "/sse", &headers, b"");
    let (event, _) = stream.next_event().expect("endpoint event");
    let url = event.lines().find_map(|l| l.strip_prefix("data: ")).expect("data line").trim().to_owned();
    let token = url.split_once("session_id=").map(|(_, t)| t.split('&').next().unwrap_or(t)).expect("a token");
    assert_eq!(send(&edge, &url, "sse-post", &[], CALL).status, 202);
    drop(stream);

    let lines = lines_of(|| edge.log(), &["sse-stream", "sse-post"]);
    let session = &lines["sse-post"]["session"];
    assert_eq!(session.len(), 16, "{:?}", lines["sse-post"]);
    assert_eq!(&lines["sse-stream"]["session"], session, "the stream that opened the session names it");
    assert!(!edge.log().contains(token), "never the token");
}
