//! Traces end to end: mcp-edge exports its SERVER and CLIENT spans over OTLP (gRPC and HTTP)
//! to a real receiver (`tests/peers/otlp_receiver.py`, the Python `opentelemetry-proto` and
//! `grpcio` packages), continues the client's context from `params._meta` or `traceparent`,
//! and tells the backend its own context: asserted on what the backend received. Hostile
//! trace contexts start a new trace and never break a request; a collector that fails or
//! stalls never slows one.

mod common;

use common::otlp::{Receiver, Span};
use common::peers::{PeerServer, Peers};
use common::raw::{self, RawResponse};
use common::recording::{self, Recording};
use common::{Edge, Mock};

const MODERN: &str = "2026-07-28";
const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const META_PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const HTTP_PARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

/// `[traces]` sending to `receiver` over `protocol`, plus `extra` lines.
fn traces(receiver: &Receiver, protocol: &str, extra: &str) -> String {
    let endpoint = if protocol == "grpc" { receiver.grpc_url() } else { receiver.http_url() };
    format!("[traces]\nendpoint = \"{endpoint}\"\nprotocol = \"{protocol}\"\ninterval = \"100ms\"\n{extra}\n\n")
}

/// Route `/mcp` to one backend at `addr`, with `route_extra` lines on the route.
fn route_to(addr: &str, route_extra: &str) -> String {
    format!(
        "[[pool]]\nname = \"main\"\nbackends = [\"{addr}\"]\npath = \"/mcp\"\n[pool.health]\ncheck = \"none\"\n\n[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"main\"\n{route_extra}\n"
    )
}

/// A modern-era `tools/call` of `tool` with id "t1", `_meta.traceparent` when given, and the
/// extra HTTP headers.
fn call(edge: &Edge, tool: &str, meta_parent: Option<&str>, extra: &[(&str, &str)]) -> RawResponse {
    let meta = meta_parent.map_or(String::new(), |p| format!(r#","traceparent":"{p}""#));
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":"t1","method":"tools/call","params":{{"name":"{tool}","arguments":{{}},"_meta":{{"io.modelcontextprotocol/protocolVersion":"{MODERN}","io.modelcontextprotocol/clientCapabilities":{{}}{meta}}}}}}}"#
    );
    let mut headers = vec![("MCP-Protocol-Version", MODERN), ("Mcp-Method", "tools/call"), ("Mcp-Name", tool)];
    headers.extend_from_slice(extra);
    raw::send(edge.port, &raw::post(edge.port, "/mcp", &headers, &body))
}

fn by_kind<'a>(spans: &'a [Span], kind: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.kind == kind).collect()
}

fn recording_backend() -> (Mock, Recording) {
    recording::mock("main")
}

#[test]
fn a_tools_call_to_a_real_python_server_is_a_server_and_a_client_span_under_the_clients_meta_context() {
    let peers = Peers::load();
    let server: PeerServer = peers.server("PEERS_PY2_SERVER", &["--name", "main"]);
    let receiver = Receiver::start();
    let edge = Edge::start(&(traces(&receiver, "grpc", "sample = 0.0") + &route_to(&server.addr(), "")));

    let r = call(&edge, "whoami", Some(META_PARENT), &[("traceparent", HTTP_PARENT)]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("main"), "the real server answered: {}", r.text());

    let spans = receiver.wait_spans(2);
    let (server_spans, client_spans) = (by_kind(&spans, "SERVER"), by_kind(&spans, "CLIENT"));
    assert_eq!((server_spans.len(), client_spans.len()), (1, 1), "{spans:#?}");
    let (s, c) = (server_spans[0], client_spans[0]);
    // `_meta` wins for the MCP span (sampled there, though the route samples nothing); the
    // HTTP context is linked.
    assert_eq!((s.trace_id.as_str(), s.parent_span_id.as_str()), (CLIENT_TRACE, "00f067aa0ba902b7"));
    assert_eq!(s.links.len(), 1, "{s:#?}");
    assert_eq!(
        (s.links[0].trace_id.as_str(), s.links[0].span_id.as_str()),
        ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
    );
    assert_eq!(s.name, "tools/call whoami");
    for (key, want) in [
        ("mcp.method.name", "tools/call"),
        ("gen_ai.tool.name", "whoami"),
        ("jsonrpc.request.id", "t1"),
        ("mcp.protocol.version", MODERN),
        ("mcp_edge.route", "mcp"),
        ("mcp_edge.pool", "main"),
        ("client.address", "127.0.0.1"),
    ] {
        assert_eq!(s.attr_str(key), Some(want), "SERVER {key}: {s:#?}");
    }
    assert_eq!(s.attr_i64("http.response.status_code"), Some(200));
    assert!(s.attr("mcp.session.id").is_none(), "no session in the 2026-07-28 era: {s:#?}");
    assert!(s.attr("error.type").is_none() && s.status.code == "UNSET", "{s:#?}");
    assert_eq!(s.resource.get("service.name").and_then(|v| v.as_str()), Some("mcp-edge"));
    assert_eq!(s.scope, "mcp-edge");
    // Sampled, with a remote parent (0x300: the parent's remoteness is known, and remote).
    assert_eq!((s.flags, c.flags), (0x301, 0x101), "{spans:#?}");

    assert_eq!((c.trace_id.as_str(), c.parent_span_id.as_str()), (CLIENT_TRACE, s.span_id.as_str()));
    assert_eq!(c.name, "tools/call whoami");
    assert_eq!(c.attr_str("server.address"), Some("127.0.0.1"));
    assert_eq!(c.attr_i64("server.port"), Some(i64::from(server.port)));
    assert_eq!(c.attr_i64("mcp_edge.attempt"), Some(1));
    assert!(s.start_ns <= c.start_ns && c.end_ns <= s.end_ns, "the attempt lies within the request: {spans:#?}");
    assert!(s.attributes.keys().chain(c.attributes.keys()).all(|k| !k.contains("argument") && !k.contains("result")));
}

#[test]
fn the_backend_gets_the_attempts_context_in_the_header_and_in_meta_and_the_body_keeps_its_length() {
    let (backend, rec) = recording_backend();
    let receiver = Receiver::start();
    let edge = Edge::start(&(traces(&receiver, "http", "") + &route_to(&backend.addr(), "")));
    let r = call(&edge, "echo", Some(META_PARENT), &[("tracestate", "vendor=abc")]);
    assert_eq!(r.status, 200, "{}", r.text());

    let spans = receiver.wait_spans(2);
    let c = by_kind(&spans, "CLIENT")[0];
    assert_eq!(c.protocol, "http", "exported over OTLP/HTTP");
    let sent = &rec.wait_count(1)[0];
    let ours = format!("00-{CLIENT_TRACE}-{}-01", c.span_id);
    assert_eq!(sent.header("traceparent"), Some(ours.as_str()), "the backend's parent is the CLIENT span");
    assert!(sent.body.contains(&format!(r#""traceparent":"{ours}""#)), "_meta rewritten: {}", sent.body);
    assert!(!sent.body.contains(META_PARENT), "{}", sent.body);
    assert_eq!(sent.header("content-length").map(str::to_owned), Some(sent.body.len().to_string()));
    assert_eq!(sent.header("tracestate"), None, "the header's state belonged to no context the proxy continued");
    edge.wait_log(&format!("trace_id={CLIENT_TRACE}"));
}

#[test]
fn an_unsampled_request_passes_the_clients_context_untouched_and_exports_nothing() {
    let (backend, rec) = recording_backend();
    let receiver = Receiver::start();
    let body = traces(&receiver, "grpc", "sample = 0.0\nparent = \"ratio\"") + &route_to(&backend.addr(), "");
    let edge = Edge::start(&body);
    let r = call(&edge, "echo", Some(META_PARENT), &[("traceparent", HTTP_PARENT), ("tracestate", "v=1")]);
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = &rec.wait_count(1)[0];
    assert_eq!((sent.header("traceparent"), sent.header("tracestate")), (Some(HTTP_PARENT), Some("v=1")));
    assert!(sent.body.contains(META_PARENT), "{}", sent.body);
    receiver.assert_stays(0);
    edge.wait_metric("mcp_edge_trace_spans_total{result=\"exported\"} 0");
}

#[test]
fn a_routes_own_ratio_decides_for_its_requests() {
    let (backend, _rec) = recording_backend();
    let receiver = Receiver::start();
    let routes = route_to(&backend.addr(), "trace_sample = 1.0")
        + "[[route]]\nname = \"quiet\"\npath = \"/quiet\"\npool = \"main\"\ntrace_sample = 0.0\n";
    let edge = Edge::start(&(traces(&receiver, "grpc", "sample = 0.5\nparent = \"ratio\"") + &routes));
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    for _ in 0..5 {
        assert_eq!(raw::send(edge.port, &raw::post(edge.port, "/quiet", &[], list)).status, 200);
    }
    assert_eq!(raw::send(edge.port, &raw::post(edge.port, "/mcp", &[], list)).status, 200);
    let spans = receiver.wait_spans(2);
    receiver.assert_stays(2);
    assert!(spans.iter().all(|s| s.attr_str("mcp_edge.route") == Some("mcp") || s.kind == "CLIENT"), "{spans:#?}");
    assert_eq!(by_kind(&spans, "SERVER")[0].name, "tools/list");
}

#[test]
fn hostile_trace_contexts_start_a_new_trace_and_the_request_is_served() {
    let (backend, rec) = recording_backend();
    let receiver = Receiver::start();
    let edge = Edge::start(&(traces(&receiver, "grpc", "") + &route_to(&backend.addr(), "")));
    let upper = HTTP_PARENT.to_uppercase();
    let long = format!("{HTTP_PARENT}{}", "x".repeat(4000));
    // (a `_meta` traceparent, the request's headers)
    type Case<'a> = (Option<&'a str>, Vec<(&'a str, &'a str)>);
    let hostile: [Case; 6] = [
        (None, vec![("traceparent", upper.as_str())]),
        (None, vec![("traceparent", "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]),
        (None, vec![("traceparent", "00-00000000000000000000000000000000-b7ad6b7169203331-01")]),
        (None, vec![("traceparent", HTTP_PARENT), ("traceparent", HTTP_PARENT)]),
        (None, vec![("traceparent", long.as_str())]),
        (Some("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"), vec![]),
    ];
    for (n, (meta, headers)) in hostile.iter().enumerate() {
        let r = call(&edge, "echo", *meta, headers);
        assert_eq!(r.status, 200, "{n}: {}", r.text());
        let spans = receiver.wait_spans(2 * (n + 1));
        let s = by_kind(&spans[2 * n..], "SERVER")[0];
        assert_eq!(s.parent_span_id, "", "{n}: a root span, not a child of a bad context: {s:#?}");
        assert!(s.trace_id != CLIENT_TRACE && s.trace_id != "0af7651916cd43dd8448eb211c80319c", "{n}: {s:#?}");
        let sent = &rec.wait_count(n + 1)[n];
        assert_eq!(sent.header_all("traceparent").len(), 1, "{n}: one context upstream");
        assert!(sent.header("traceparent").is_some_and(|t| t.contains(&s.trace_id)), "{n}: {sent:#?}");
    }
}

#[test]
fn a_refused_request_is_a_server_span_with_its_error_type() {
    let (backend, rec) = recording_backend();
    let receiver = Receiver::start();
    let edge = Edge::start(&(traces(&receiver, "grpc", "") + &route_to(&backend.addr(), "")));
    let r = raw::send(edge.port, &raw::post(edge.port, "/nowhere", &[("traceparent", HTTP_PARENT)], "{}"));
    assert_eq!(r.status, 404);
    let spans = receiver.wait_spans(1);
    let s = &spans[0];
    assert_eq!((s.kind.as_str(), s.parent_span_id.as_str()), ("SERVER", "b7ad6b7169203331"));
    assert_eq!((s.attr_str("error.type"), s.status.code.as_str()), (Some("refused"), "ERROR"), "{s:#?}");
    assert_eq!(s.attr_i64("http.response.status_code"), Some(404));
    rec.assert_nothing();
}

#[test]
fn a_stalled_collector_drops_spans_and_never_slows_a_request() {
    let (backend, _rec) = recording_backend();
    let receiver = Receiver::start_with(&["--delay", "30"]);
    let settings = "queue = 4\nbatch = 2\ntimeout = \"20s\"";
    let edge = Edge::start(&(traces(&receiver, "grpc", settings) + &route_to(&backend.addr(), "")));
    for n in 0..40 {
        let r = call(&edge, "echo", None, &[]);
        assert_eq!(r.status, 200, "request {n} while the collector stalls: {}", r.text());
    }
    // Counted when each request is logged, just after its client has the answer.
    let dropped = || -> u64 {
        let metrics = edge.metrics();
        let line = metrics.lines().find_map(|l| l.strip_prefix("mcp_edge_trace_spans_total{result=\"dropped\"} "));
        line.and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    };
    let enough = "80 spans, a queue of 4 and one stalled batch of 2: at least 74 dropped";
    common::wait_until(enough, std::time::Duration::from_secs(5), || dropped() >= 74);
}

#[test]
fn a_reload_that_moves_the_collector_sends_later_spans_to_the_new_one_and_keeps_the_rest() {
    let (backend, _rec) = recording_backend();
    let (old, new) = (Receiver::start(), Receiver::start());
    let edge = Edge::start(&(traces(&old, "grpc", "") + &route_to(&backend.addr(), "")));
    assert_eq!(call(&edge, "echo", None, &[]).status, 200);
    old.wait_spans(2);

    edge.rewrite(&(traces(&new, "http", "") + &route_to(&backend.addr(), "")), &common::Opts::default());
    let r = common::http::request(edge.admin, "POST", "/reload", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(call(&edge, "echo", None, &[]).status, 200);
    let spans = new.wait_spans(2);
    assert!(spans.iter().all(|s| s.protocol == "http"), "{spans:#?}");
    old.assert_stays(2);
    let config = common::http::get(edge.admin, "/config").json();
    assert_eq!(config["traces"]["protocol"], "http", "{config}");
}

#[test]
fn client_chosen_values_are_cut_and_a_doubled_meta_context_is_refused() {
    let (backend, rec) = recording_backend();
    let receiver = Receiver::start();
    let edge = Edge::start(&(traces(&receiver, "grpc", "") + &route_to(&backend.addr(), "")));
    // A 1,000-byte HTTP method: answered (by the backend: 405 or so), and cut in the spans.
    let method = "A".repeat(1000);
    let r = raw::send(
        edge.port,
        &raw::lines(&format!("{method} /mcp HTTP/1.1"), &["Host: localhost", "Content-Length: 0"], ""),
    );
    assert!(r.status > 0, "answered");
    let spans = receiver.wait_spans(1);
    for s in &spans {
        assert!(s.name.len() <= 256, "span name of {} bytes", s.name.len());
        assert!(s.attr_str("http.request.method").is_none_or(|m| m.len() <= 256), "{s:#?}");
    }
    // Two `traceparent` keys in `_meta`: a backend may read the other one; refused.
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":"t1","method":"tools/call","params":{{"name":"echo","_meta":{{"traceparent":"{META_PARENT}","traceparent":"{HTTP_PARENT}"}}}}}}"#
    );
    let r = raw::send(edge.port, &raw::post(edge.port, "/mcp", &[], &body));
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.header("x-mock-backend"), None);
    let first = rec.count();
    assert!(
        rec.lines().iter().take(first).all(|l| !l.body.contains(META_PARENT)),
        "the doubled context reached no backend"
    );
}

#[test]
fn spans_still_queued_at_a_graceful_stop_reach_the_collector() {
    let (backend, _rec) = recording_backend();
    let receiver = Receiver::start();
    // A minute between partial batches: only the stop's flush can send these spans.
    let body = traces(&receiver, "grpc", "").replace("interval = \"100ms\"", "interval = \"60s\"");
    let mut edge = Edge::start(&(body + &route_to(&backend.addr(), "")));
    assert_eq!(call(&edge, "echo", None, &[]).status, 200);
    receiver.assert_stays(0);
    edge.proc.signal("TERM");
    assert!(edge.proc.wait_exit(std::time::Duration::from_secs(10)).is_some_and(|s| s.success()), "{}", edge.log());
    let spans = receiver.wait_spans(2);
    assert_eq!(by_kind(&spans, "SERVER").len(), 1, "{spans:#?}");
}
