//! The stdio bridge's reading and rewriting of JSON-RPC messages: pure, no I/O, fuzzed
//! (`fuzz/fuzz_targets/stdio_frame.rs`). Many HTTP clients share one process, and their ids
//! and progress tokens may collide, so every request reaches the process under the bridge's
//! own number (and a progress token made from it), and the answer gets the client's back.
//! A line written to the process is compact JSON ending in one `\n` (serde escapes every
//! control character inside strings), so a message can never break the framing.
//! Not owned here: who waits for which number (`stdio::link`), HTTP (`stdio::bridge`).

use serde_json::{Map, Value};

/// How the bridge spells the progress token of its request number N: `mcp-edge-N`.
const TOKEN_PREFIX: &str = "mcp-edge-";

/// The id of the bridge's own `initialize`; clients' requests are numbered from 1.
pub const INIT_ID: u64 = 0;

/// A message a client sent to the bridge.
#[derive(Debug, PartialEq)]
pub enum Inbound {
    /// `initialize`: answered from the process's answer to the bridge's own initialize.
    Initialize { id: Value },
    /// Kept by the bridge: `notifications/initialized` (the bridge sent its own),
    /// `notifications/cancelled` (the client's ids mean nothing to the process; a client that
    /// goes away cancels its request instead), and responses (the bridge relays no
    /// server-to-client requests, so none is awaited).
    Kept,
    /// A notification for the process, as one line.
    Notification(Vec<u8>),
    /// A request for the process, as one line under the bridge's number; `progress` is the
    /// client's own progress token, when it sent one.
    Request { id: Value, progress: Option<Value>, line: Vec<u8> },
}

/// Why a client's message was refused (answered 400 with a JSON-RPC error).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the body is not JSON")]
    NotJson,
    #[error("batches are not relayed to stdio servers")]
    Batch,
    #[error("the body is not a JSON-RPC message")]
    NotMessage,
}

/// Reads a client's message; a request is renumbered `number`.
pub fn inbound(body: &[u8], number: u64) -> Result<Inbound, Refused> {
    let mut msg = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(msg)) => msg,
        Ok(Value::Array(_)) => return Err(Refused::Batch),
        Ok(_) => return Err(Refused::NotMessage),
        Err(_) => return Err(Refused::NotJson),
    };
    let Some(method) = msg.get("method") else {
        return Ok(Inbound::Kept);
    };
    let Some(method) = method.as_str() else {
        return Err(Refused::NotMessage);
    };
    let Some(id) = msg.get("id").cloned() else {
        return Ok(match method {
            "notifications/initialized" | "notifications/cancelled" => Inbound::Kept,
            _ => Inbound::Notification(line(&msg)),
        });
    };
    if method == "initialize" {
        return Ok(Inbound::Initialize { id });
    }
    msg.insert("id".into(), Value::from(number));
    let progress = msg
        .get_mut("params")
        .and_then(Value::as_object_mut)
        .and_then(|p| p.get_mut("_meta"))
        .and_then(Value::as_object_mut)
        .and_then(|m| m.get_mut("progressToken"))
        .map(|token| std::mem::replace(token, Value::String(format!("{TOKEN_PREFIX}{number}"))));
    Ok(Inbound::Request { id, progress, line: line(&msg) })
}

/// A line the process wrote.
#[derive(Debug, PartialEq)]
pub enum Outbound {
    /// The answer to the bridge's request `number`.
    Response { number: u64, msg: Map<String, Value> },
    /// `notifications/progress` for the bridge's request `number`.
    Progress { number: u64, msg: Map<String, Value> },
    /// A request of the server's to a client: the bridge answers it itself ([`refusal`]).
    Request { id: Value, method: String },
    /// Any other notification, or an answer to nothing the bridge asked (dropped).
    Other,
    /// Not JSON-RPC (dropped; logged once per process start).
    Unreadable,
}

pub fn outbound(line: &[u8]) -> Outbound {
    let Ok(Value::Object(msg)) = serde_json::from_slice::<Value>(line) else {
        return Outbound::Unreadable;
    };
    match (msg.get("method").map(Value::as_str), msg.get("id")) {
        (None, Some(id)) => match id.as_u64() {
            Some(number) => Outbound::Response { number, msg },
            None => Outbound::Other,
        },
        (Some(Some("notifications/progress")), None) => {
            let number = msg
                .get("params")
                .and_then(|p| p.get("progressToken"))
                .and_then(Value::as_str)
                .and_then(|t| t.strip_prefix(TOKEN_PREFIX))
                .and_then(|n| n.parse::<u64>().ok());
            match number {
                Some(number) => Outbound::Progress { number, msg },
                None => Outbound::Other,
            }
        }
        (Some(Some(method)), Some(id)) => Outbound::Request { id: id.clone(), method: method.to_owned() },
        (Some(Some(_)), None) => Outbound::Other,
        (Some(None), _) | (None, None) => Outbound::Unreadable,
    }
}

/// The process's answer with the client's id put back, as an HTTP body.
pub fn answer(mut msg: Map<String, Value>, id: Value) -> Vec<u8> {
    msg.insert("id".into(), id);
    body(&msg)
}

/// A progress notification with the client's token put back.
pub fn progress(mut msg: Map<String, Value>, token: Value) -> Vec<u8> {
    if let Some(params) = msg.get_mut("params").and_then(Value::as_object_mut) {
        params.insert("progressToken".into(), token);
    }
    body(&msg)
}

/// The answer to a client's `initialize`: the process's own result under the client's id.
pub fn initialized(id: &Value, result: &Value) -> Vec<u8> {
    body(&serde_json::json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

/// A JSON-RPC error under `id` (null when the request's id is unknown).
pub fn error(id: &Value, code: i64, message: &str) -> Vec<u8> {
    body(&serde_json::json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}))
}

/// The bridge's answer to a server-to-client request, as a line for the process: `ping` is
/// answered, anything else (sampling, elicitation, roots) is refused, as no client session
/// stands behind a shared process.
pub fn refusal(id: &Value, method: &str) -> Vec<u8> {
    let mut out = match method {
        "ping" => body(&serde_json::json!({"jsonrpc": "2.0", "id": id, "result": {}})),
        _ => error(id, -32601, "mcp-edge's stdio bridge relays no server-to-client requests"),
    };
    out.push(b'\n');
    out
}

/// The bridge's own `initialize` and `notifications/initialized`, as lines.
pub fn handshake(version: &str) -> (Vec<u8>, Vec<u8>) {
    let init = serde_json::json!({
        "jsonrpc": "2.0", "id": INIT_ID, "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": "mcp-edge", "version": env!("CARGO_PKG_VERSION")},
        },
    });
    let mut first = body(&init);
    first.push(b'\n');
    (first, b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n".to_vec())
}

fn line(msg: &Map<String, Value>) -> Vec<u8> {
    let mut out = body(msg);
    out.push(b'\n');
    out
}

fn body<T: serde::Serialize + ?Sized>(v: &T) -> Vec<u8> {
    // Serializing a `Value` or `Map` cannot fail (string keys only).
    serde_json::to_vec(v).unwrap_or_default()
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
