//! The OTLP receiver the tracing tests assert with (`tests/peers/otlp_receiver.py`, through
//! `common::otlp`), proven against the generated OpenTelemetry protobuf classes: one known span
//! sent by `tests/peers/otlp_send.py` over OTLP/gRPC, OTLP/HTTP protobuf and OTLP/HTTP JSON
//! arrives with every field; `--fail-first` refuses exports on either protocol (gRPC
//! UNAVAILABLE, HTTP 503) and records none of their spans; `--delay` holds the answer.

mod common;

use std::time::{Duration, Instant};

use common::http::request;
use common::otlp::{Receiver, Span};
use common::peers::Peers;

/// Runs `otlp_send.py ARGS`: whether it exited 0, and the JSON line it printed.
fn send(args: &[&str]) -> (bool, serde_json::Value) {
    let out = Peers::load().script("PEERS_OTEL", "otlp_send.py").args(args).output().expect("run otlp_send.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let result = serde_json::from_str(last).unwrap_or_else(|_| {
        panic!("otlp_send.py {args:?} printed no JSON:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr))
    });
    (out.status.success(), result)
}

fn grpc(r: &Receiver) -> (bool, serde_json::Value) {
    send(&["--grpc", &r.grpc_port.to_string()])
}

fn http(r: &Receiver) -> (bool, serde_json::Value) {
    send(&["--http", &r.http_port.to_string()])
}

/// The span otlp_send.py sends, field by field.
fn assert_selftest_span(s: &Span) {
    assert_eq!(s.resource.get("service.name").and_then(|v| v.as_str()), Some("otlp-selftest"), "{s:#?}");
    assert_eq!(s.scope, "otlp_send");
    assert_eq!(s.trace_id, "0102030405060708090a0b0c0d0e0f10");
    assert_eq!(s.span_id, "1112131415161718");
    assert_eq!(s.parent_span_id, "");
    assert_eq!(s.name, "selftest");
    assert_eq!(s.kind, "SERVER");
    assert_eq!((s.start_ns, s.end_ns), (1_700_000_000_000_000_000, 1_700_000_000_001_500_000));
    assert_eq!((s.status.code.as_str(), s.status.message.as_str()), ("OK", ""));
    assert_eq!(s.attr_str("mcp.method.name"), Some("tools/call"));
    let status = s.attr("http.response.status_code").expect("the int attribute");
    assert!(status.is_i64() && status.as_i64() == Some(200), "an int attribute is a JSON int: {status}");
    assert_eq!(s.attr_i64("http.response.status_code"), Some(200));
    assert_eq!(s.attr("sample.ratio").and_then(|v| v.as_f64()), Some(0.5));
    assert_eq!(s.attr("cache.hit").and_then(|v| v.as_bool()), Some(true));
    assert_eq!(s.attributes.len(), 4, "{s:#?}");
    assert_eq!(s.links.len(), 1);
    assert_eq!(s.links[0].trace_id, "a".repeat(32));
    assert_eq!(s.links[0].span_id, "b".repeat(16));
    assert_eq!(s.flags, 1);
}

#[test]
fn one_span_over_grpc_http_protobuf_and_http_json_arrives_with_every_field() {
    let r = Receiver::start();
    assert!(r.spans().is_empty());

    let (ok, out) = grpc(&r);
    assert!(ok && out["status"] == "OK", "{out}");
    let spans = r.wait_spans(1);
    assert_eq!(spans[0].protocol, "grpc");

    let (ok, out) = http(&r);
    assert!(ok && out["status"] == 200, "{out}");
    let (ok, out) = send(&["--http", &r.http_port.to_string(), "--json"]);
    assert!(ok && out["status"] == 200, "{out}");

    let spans = r.wait_spans(3);
    let protocols: Vec<&str> = spans.iter().map(|s| s.protocol.as_str()).collect();
    assert_eq!(protocols, ["grpc", "http", "http"]);
    spans.iter().for_each(assert_selftest_span);
    r.assert_stays(3);

    // Not OTLP: nothing recorded.
    let text = request(r.http_port, "POST", "/v1/traces", &[("Content-Type", "text/plain")], b"x");
    assert_eq!(text.status, 415, "{}", text.text());
    let path = request(r.http_port, "POST", "/v1/metrics", &[("Content-Type", "application/x-protobuf")], b"");
    assert_eq!(path.status, 404);
    let garbage =
        request(r.http_port, "POST", "/v1/traces", &[("Content-Type", "application/x-protobuf")], b"\xff\xff");
    assert_eq!(garbage.status, 400, "{}", garbage.text());
    r.assert_stays(3);
}

#[test]
fn fail_first_refuses_exports_on_both_protocols_then_accepts() {
    let r = Receiver::start_with(&["--fail-first", "1"]);
    let (ok, out) = grpc(&r);
    assert!(!ok && out["status"] == "UNAVAILABLE", "the first export must fail: {out}");
    r.assert_stays(0);
    let (ok, out) = grpc(&r);
    assert!(ok && out["status"] == "OK", "the second export must succeed: {out}");
    let spans = r.wait_spans(1);
    assert_selftest_span(&spans[0]);
    r.assert_stays(1);

    // The count is shared: with 2, one gRPC and one HTTP export fail, then both pass.
    let r = Receiver::start_with(&["--fail-first", "2"]);
    assert_eq!(grpc(&r), (false, serde_json::json!({"ok": false, "status": "UNAVAILABLE"})));
    assert_eq!(http(&r), (false, serde_json::json!({"ok": false, "status": 503})));
    r.assert_stays(0);
    assert!(http(&r).0 && grpc(&r).0);
    let protocols: Vec<String> = r.wait_spans(2).into_iter().map(|s| s.protocol).collect();
    assert_eq!(protocols, ["http", "grpc"]);
    assert_eq!(r.log().matches("--fail-first").count(), 2, "{}", r.log());
}

#[test]
fn delay_holds_each_answer() {
    let r = Receiver::start_with(&["--delay", "1"]);
    for export in [grpc, http] {
        let t = Instant::now();
        assert!(export(&r).0);
        assert!(t.elapsed() >= Duration::from_secs(1), "answered after {:?}", t.elapsed());
    }
    r.wait_spans(2);
}
