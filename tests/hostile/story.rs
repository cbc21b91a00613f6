//! The pieces every hostile story is built from: recording backends, config snippets, the
//! shape of a local refusal, and the "still alive, and the backend saw only the probe" check.

use crate::common::raw::{self, RawResponse};
use crate::common::recording::{self, Recording};
use crate::common::{http, Edge, Mock};

/// The protocol version whose requests carry `Mcp-Method`/`Mcp-Name`.
pub const MODERN: &str = "2026-07-28";

/// A recording mock: `rec` holds every request it received.
pub struct Backend {
    pub mock: Mock,
    pub rec: Recording,
}

pub fn backend(name: &str) -> Backend {
    let (mock, rec) = recording::mock(name);
    Backend { mock, rec }
}

/// A pool over one backend. No `path`, so the forwarded path is the proxy's own choice, and
/// no health checks: the recording holds nothing but traffic, and these stories are about what
/// clients send (a TCP probe lost on a loaded CI machine took the only backend out for 5 s and
/// turned a story's liveness probe into a 503).
pub fn pool(name: &str, b: &Backend) -> String {
    format!("[[pool]]\nname = \"{name}\"\nbackends = [\"{}\"]\n[pool.health]\ncheck = \"none\"\n\n", b.mock.addr())
}

/// A `tools/call` of `tool` with id `"c-<tool>"`.
pub fn call(tool: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":"c-{tool}","method":"tools/call","params":{{"name":"{tool}","arguments":{{}}}}}}"#
    )
}

/// Headers of a modern-era `tools/call` of `name`.
pub fn modern_call(name: &str) -> Vec<(&'static str, &str)> {
    vec![("MCP-Protocol-Version", MODERN), ("Mcp-Method", "tools/call"), ("Mcp-Name", name)]
}

pub fn post(edge: &Edge, path: &str, extra: &[(&str, &str)], body: &str) -> RawResponse {
    raw::send(edge.port, &raw::post(edge.port, path, extra, body))
}

/// Asserts that mcp-edge itself refused: `status`, JSON-RPC `code`, and no backend's mark.
pub fn assert_refused(r: &RawResponse, status: u16, code: i64) {
    assert_eq!(
        (r.status, r.rpc_code()),
        (status, Some(code)),
        "expected a local {status} {code}, got: {} {}",
        r.status,
        r.text()
    );
    assert_local(r);
}

/// Asserts that the answer came from mcp-edge, not from a backend.
pub fn assert_local(r: &RawResponse) {
    assert_eq!(r.header("x-mock-backend"), None, "a backend answered: {} {}", r.status, r.text());
}

/// The proxy is alive (`/livez` 200, a normal request on `path` is answered by `b`) and `b`
/// received that probe and nothing before it: since the probe's answer comes after the
/// attack's, anything the attack had smuggled through would be recorded too.
pub fn assert_alive_and_only_probe(edge: &Edge, path: &str, b: &Backend) {
    assert_alive_and_only_probe_as(edge, path, b, &[]);
}

/// [`assert_alive_and_only_probe`], the probe sent with `extra` headers (a credential).
pub fn assert_alive_and_only_probe_as(edge: &Edge, path: &str, b: &Backend, extra: &[(&str, &str)]) {
    assert_eq!(http::try_status(edge.admin, "/livez"), Some(200), "mcp-edge /livez");
    let r = post(edge, path, extra, r#"{"jsonrpc":"2.0","id":"probe","method":"tools/list"}"#);
    assert_eq!((r.status, r.header("x-mock-backend")), (200, Some(b.rec.name.as_str())), "probe: {}", r.text());
    let lines = b.rec.wait_count(1);
    assert!(
        lines.len() == 1 && lines[0].body.contains(r#""probe""#),
        "{} received more than the probe: {lines:#?}",
        b.rec.name
    );
}

/// A loopback Host header for this edge.
pub fn host(edge: &Edge) -> String {
    format!("127.0.0.1:{}", edge.port)
}
