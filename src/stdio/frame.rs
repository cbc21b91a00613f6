//! The stdio bridge's reading and rewriting of JSON-RPC messages: pure, no I/O, fuzzed
//! (`fuzz/fuzz_targets/stdio_frame.rs`). Many HTTP clients share one process, and their ids
//! and progress tokens may collide, so every request reaches the process under the bridge's
//! own number (and a progress token made from it), and the answer gets the client's back.
//! A line written to the process is compact JSON ending in one `\n` (serde escapes every
//! control character inside strings), so a message can never break the framing.
//! Not owned here: who waits for which number (`stdio::link`), HTTP (`stdio::bridge`).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// How the bridge spells the progress token of its request number N: `mcp-edge-N`.
const TOKEN_PREFIX: &str = "mcp-edge-";

/// The id of the bridge's own `initialize`; clients' requests are numbered from 1.
pub const INIT_ID: u64 = 0;

/// A message as read: each member's value as it was written, so numbers keep their spelling
/// however long (a client's `123456789012345678901234567890` reaches the process as that, and
/// its id comes back as it sent it), and only what the bridge rewrites is read further.
pub type Msg = BTreeMap<String, Box<RawValue>>;

/// A message a client sent to the bridge.
#[derive(Debug)]
pub enum Inbound {
    /// `initialize`: answered from the process's answer to the bridge's own initialize (a
    /// shared process), or sent to a new session's process as `line` (numbered [`INIT_ID`]).
    Initialize { id: Box<RawValue>, line: Vec<u8> },
    /// Kept by the bridge: `notifications/initialized` (the bridge sent its own),
    /// `notifications/cancelled` (the client's ids mean nothing to the process; a client that
    /// goes away cancels its request instead), and a body without `method` that is no answer.
    Kept,
    /// A client's answer (`result` or `error` under an `id`) to a request of the server's, as
    /// one line: a session's process gets it (its request ids are its own: one client), a
    /// shared process's bridge keeps it (it relays no server-to-client requests).
    Answer(Vec<u8>),
    /// A notification for the process, as one line.
    Notification(Vec<u8>),
    /// A request for the process, as one line under the bridge's number; `progress` is the
    /// client's own progress token, when it sent one.
    Request { id: Box<RawValue>, progress: Option<Box<RawValue>>, line: Vec<u8> },
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
    let Ok(mut msg) = serde_json::from_slice::<Msg>(body) else {
        // Not an object: why, read again only on this path.
        return Err(match serde_json::from_slice::<Value>(body) {
            Ok(Value::Array(_)) => Refused::Batch,
            Ok(_) => Refused::NotMessage,
            Err(_) => Refused::NotJson,
        });
    };
    let Some(method) = msg.get("method") else {
        let answer = msg.contains_key("id") && (msg.contains_key("result") || msg.contains_key("error"));
        return Ok(if answer { Inbound::Answer(line(&msg)) } else { Inbound::Kept });
    };
    // Borrowed unless the method is spelled with escapes.
    let Ok(method) = serde_json::from_str::<std::borrow::Cow<'_, str>>(method.get()) else {
        return Err(Refused::NotMessage);
    };
    let Some(id) = msg.get("id").map(|id| compact(id)) else {
        return Ok(match method.as_ref() {
            "notifications/initialized" | "notifications/cancelled" => Inbound::Kept,
            _ => Inbound::Notification(line(&msg)),
        });
    };
    if method == "initialize" {
        msg.insert("id".into(), raw(&INIT_ID));
        return Ok(Inbound::Initialize { id, line: line(&msg) });
    }
    msg.insert("id".into(), raw(&number));
    let progress = swap_token(&mut msg, &format!("{TOKEN_PREFIX}{number}"));
    Ok(Inbound::Request { id, progress, line: line(&msg) })
}

/// Puts `token` in place of the request's `params._meta.progressToken`, if it has one, and
/// returns the client's.
fn swap_token(msg: &mut Msg, token: &str) -> Option<Box<RawValue>> {
    let params = msg.get("params")?.get();
    // Most requests ask for no progress: their params are not read a second time. A key may be
    // spelled with escapes (`progress\u0054oken`), which the process decodes: any backslash
    // means reading them.
    if !params.contains("progressToken") && !params.contains('\\') {
        return None;
    }
    let mut params: Msg = serde_json::from_str(params).ok()?;
    let mut meta: Msg = serde_json::from_str(params.get("_meta")?.get()).ok()?;
    let theirs = std::mem::replace(meta.get_mut("progressToken")?, raw(token));
    params.insert("_meta".into(), raw(&meta));
    msg.insert("params".into(), raw(&params));
    Some(compact(&theirs))
}

/// A line the process wrote.
#[derive(Debug)]
pub enum Outbound {
    /// The answer to the bridge's request `number`.
    Response { number: u64, msg: Msg },
    /// `notifications/progress` for the bridge's request `number`.
    Progress { number: u64, msg: Msg },
    /// A request of the server's to a client: relayed to a session's client ([`relayed`]),
    /// else answered by the bridge itself ([`refusal`]).
    Request { id: Box<RawValue>, method: String, msg: Msg },
    /// `notifications/{tools,prompts,resources}/list_changed`: relayed to a session's client;
    /// from a shared process, it also makes the federated routes' lists of it stale.
    Changed { lists: Lists, msg: Msg },
    /// Any other notification: relayed to a session's client, else dropped.
    Notification(Msg),
    /// An answer to nothing the bridge asked (dropped).
    Other,
    /// Not JSON-RPC (dropped; logged once per process start).
    Unreadable,
}

/// Which of a server's lists a `list_changed` notification names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lists {
    Tools,
    Prompts,
    /// Resources and their templates.
    Resources,
}

impl Lists {
    fn changed(method: &str) -> Option<Lists> {
        match method {
            "notifications/tools/list_changed" => Some(Lists::Tools),
            "notifications/prompts/list_changed" => Some(Lists::Prompts),
            "notifications/resources/list_changed" => Some(Lists::Resources),
            _ => None,
        }
    }
}

pub fn outbound(line: &[u8]) -> Outbound {
    let Ok(msg) = serde_json::from_slice::<Msg>(line) else {
        return Outbound::Unreadable;
    };
    let method = msg.get("method").map(|m| serde_json::from_str::<String>(m.get()).ok());
    match (method, msg.get("id")) {
        (None, Some(id)) => match serde_json::from_str::<u64>(id.get()) {
            Ok(number) => Outbound::Response { number, msg },
            Err(_) => Outbound::Other,
        },
        // A request or notification carrying an answer too is neither: a client could take it
        // for the answer to its own request under that id (found by a review).
        (Some(Some(_)), _) if msg.contains_key("result") || msg.contains_key("error") => Outbound::Other,
        (Some(Some(method)), None) if method == "notifications/progress" => {
            let number = msg
                .get("params")
                .and_then(|p| serde_json::from_str::<Msg>(p.get()).ok())
                .and_then(|p| p.get("progressToken").and_then(|t| serde_json::from_str::<String>(t.get()).ok()))
                .and_then(|t| t.strip_prefix(TOKEN_PREFIX).and_then(|n| n.parse::<u64>().ok()));
            match number {
                Some(number) => Outbound::Progress { number, msg },
                None => Outbound::Notification(msg),
            }
        }
        (Some(Some(method)), Some(id)) => Outbound::Request { id: compact(id), method, msg },
        (Some(Some(method)), None) => match Lists::changed(&method) {
            Some(lists) => Outbound::Changed { lists, msg },
            None => Outbound::Notification(msg),
        },
        (Some(None), _) | (None, None) => Outbound::Unreadable,
    }
}

/// Whether `id` (compact, as [`outbound`] gives it) is one a client can answer under: a
/// string of at most 1 KiB as written, or an integer.
pub fn plain_id(id: &RawValue) -> bool {
    let id = id.get();
    let digits = id.strip_prefix('-').unwrap_or(id);
    id.len() <= 1024 && (id.starts_with('"') || (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())))
}

/// A message of the process's for its session's client, as it wrote it but on one line (an
/// SSE event's one `data` line).
pub fn relayed(msg: &Msg) -> Vec<u8> {
    squeezed(msg)
}

/// The process's answer with the client's id put back, as an HTTP body.
pub fn answer(mut msg: Msg, id: Box<RawValue>) -> Vec<u8> {
    msg.insert("id".into(), id);
    squeezed(&msg)
}

/// A progress notification with the client's token put back.
pub fn progress(mut msg: Msg, token: Box<RawValue>) -> Vec<u8> {
    let params = msg.get("params").and_then(|p| serde_json::from_str::<Msg>(p.get()).ok());
    if let Some(mut params) = params {
        params.insert("progressToken".into(), token);
        msg.insert("params".into(), raw(&params));
    }
    squeezed(&msg)
}

#[derive(Serialize)]
struct Answered<'a, T: Serialize> {
    jsonrpc: &'static str,
    id: &'a RawValue,
    result: T,
}

#[derive(Serialize)]
struct Failed<'a> {
    jsonrpc: &'static str,
    id: &'a RawValue,
    error: Failure<'a>,
}

#[derive(Serialize)]
struct Failure<'a> {
    code: i64,
    message: &'a str,
}

/// The answer to a client's `initialize`: the process's own result under the client's id.
pub fn initialized(id: &RawValue, result: &Value) -> Vec<u8> {
    squeezed(&Answered { jsonrpc: "2.0", id, result })
}

/// A JSON-RPC error under `id` (`RawValue::NULL` when the request's id is unknown).
pub fn error(id: &RawValue, code: i64, message: &str) -> Vec<u8> {
    squeezed(&Failed { jsonrpc: "2.0", id, error: Failure { code, message } })
}

/// The bridge's answer to a server-to-client request, as a line for the process: `ping` is
/// answered, anything else (sampling, elicitation, roots) is refused, as no client session
/// stands behind a shared process, and a session's client has no stream open to take it (or
/// is too far behind on it).
pub fn refusal(id: &RawValue, method: &str) -> Vec<u8> {
    let mut out = match method {
        "ping" => squeezed(&Answered { jsonrpc: "2.0", id, result: serde_json::json!({}) }),
        _ => error(id, -32601, "no client stream is open in mcp-edge's stdio bridge to take this request"),
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
    let mut first = squeezed(&init);
    first.push(b'\n');
    (first, INITIALIZED.to_vec())
}

/// The `notifications/initialized` line the bridge sends after a process answered.
pub const INITIALIZED: &[u8] = b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n";

fn line(msg: &Msg) -> Vec<u8> {
    let mut out = squeezed(msg);
    out.push(b'\n');
    out
}

/// `v` as JSON without whitespace between tokens: values kept as written may hold newlines
/// (a pretty-printed body), which would break a line to the process or an SSE event.
fn squeezed<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    // Serializing string-keyed maps and raw values cannot fail.
    squeeze(&serde_json::to_vec(v).unwrap_or_default())
}

/// JSON text without the whitespace outside its strings (inside, JSON has no raw newline).
fn squeeze(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for &b in json {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            out.push(b);
        } else if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            in_string = b == b'"';
            out.push(b);
        }
    }
    out
}

/// A value kept as written, without whitespace between its tokens.
fn compact(v: &RawValue) -> Box<RawValue> {
    // Squeezing valid JSON removes only ASCII whitespace: still valid UTF-8 and JSON.
    String::from_utf8(squeeze(v.get().as_bytes()))
        .ok()
        .and_then(|s| RawValue::from_string(s).ok())
        .unwrap_or_else(|| v.to_owned())
}

/// `v` as a raw value (numbers, strings and maps of raw values always serialize).
fn raw<T: Serialize + ?Sized>(v: &T) -> Box<RawValue> {
    serde_json::value::to_raw_value(v).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
