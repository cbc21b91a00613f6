//! JSON-RPC / MCP handling for the mock: parses a POST body with borrowed serde_json (ids and
//! params stay `RawValue`s, strings borrow from the body) and writes the JSON-RPC response
//! straight into a byte buffer, so the hot path (ping, tools/call) builds no JSON tree and, once
//! the buffers are warm, allocates nothing.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::State;

/// What the HTTP layer must do after `handle`.
pub enum Outcome {
    /// 202 with an empty body (notification or JSON-RPC response).
    Accepted,
    /// The JSON body in `out`, with this HTTP status.
    Json(u16),
    /// 200 with the initialize result in `out`; send this new `Mcp-Session-Id`.
    Initialized(String),
    /// A `slow` tool call: stream progress (or wait) and then answer.
    Slow(SlowCall),
    /// 200 with a list answer in `out` (`--sse-lists`: sent as an SSE stream instead).
    Listed,
    /// `subscriptions/listen` (raw JSON of its id): an event stream of everything a listen
    /// could carry, asked for or not (`sse::listen_stream`).
    Listen(String),
}

pub struct SlowCall {
    /// Raw JSON of the request id.
    pub id: String,
    /// Raw JSON of the progress token (`_meta.progressToken`, else the request id).
    pub token: String,
    pub steps: u64,
    pub delay_ms: u64,
}

/// Request context from the HTTP layer.
pub struct Ctx<'a> {
    /// `Mcp-Session-Id` header of the request.
    pub session: Option<&'a str>,
    /// Enforce and mint Streamable HTTP sessions (stateful mode, `/mcp` only).
    pub sessions: bool,
}

#[derive(Deserialize)]
struct Msg<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
    #[serde(default)]
    result: Option<IgnoredAny>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

#[derive(Deserialize, Default)]
struct InitParams<'a> {
    #[serde(borrow, default, rename = "protocolVersion")]
    protocol_version: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct CallParams<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    arguments: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "_meta")]
    meta: Option<Meta<'a>>,
    /// A retry's answers to the input this mock asked for (`echo` with text "confirm").
    #[serde(borrow, default, rename = "inputResponses")]
    input_responses: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "requestState")]
    request_state: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Meta<'a> {
    #[serde(borrow, default, rename = "progressToken")]
    progress_token: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
struct EchoArgs<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
struct SlowArgs {
    #[serde(default)]
    steps: Option<u64>,
    #[serde(default)]
    delay_ms: Option<u64>,
}

#[derive(Deserialize)]
struct NameParams<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
}

#[derive(Deserialize)]
struct UriParams<'a> {
    #[serde(borrow)]
    uri: Cow<'a, str>,
}

const DEFAULT_VERSION: &str = "2025-06-18";

const TOOLS: [&str; 5] = [
    r#"{"name":"echo","description":"Returns arguments.text","inputSchema":{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]},"annotations":{"readOnlyHint":true}}"#,
    r#"{"name":"whoami","description":"Returns the name of the backend that served the call","inputSchema":{"type":"object","properties":{}},"annotations":{"readOnlyHint":true,"idempotentHint":true}}"#,
    r#"{"name":"slow","description":"Sends `steps` progress notifications `delay_ms` apart, then the result","inputSchema":{"type":"object","properties":{"steps":{"type":"integer"},"delay_ms":{"type":"integer"}}},"annotations":{"readOnlyHint":true}}"#,
    r#"{"name":"bytes","description":"Returns the length and SHA-256 of the raw HTTP request body","inputSchema":{"type":"object"},"annotations":{"readOnlyHint":true}}"#,
    r#"{"name":"deploy_app","description":"Pretends to deploy an application","inputSchema":{"type":"object","properties":{"app":{"type":"string"},"env":{"type":"string"}}},"annotations":{"readOnlyHint":false,"destructiveHint":true,"idempotentHint":false}}"#,
];

#[derive(Deserialize, Default)]
struct ListParams<'a> {
    #[serde(borrow, default)]
    cursor: Option<Cow<'a, str>>,
}

/// `tools/list`: every tool, or with `--page-size N` N per page, the cursor being the decimal
/// offset of the page (`nextCursor` on every page but the last).
fn tools_list(st: &State, params: Option<&RawValue>, out: &mut Vec<u8>) {
    let all = &st.tools;
    let page = if st.page_size == 0 { all.len() } else { st.page_size };
    let p: ListParams = parse(params).unwrap_or_default();
    let from = p.cursor.and_then(|c| c.parse::<usize>().ok()).unwrap_or(0).min(all.len());
    let to = from.saturating_add(page).min(all.len());
    out.extend_from_slice(br#"{"tools":["#);
    out.extend_from_slice(all[from..to].join(",").as_bytes());
    out.push(b']');
    if to < all.len() {
        out.extend_from_slice(format!(r#","nextCursor":"{to}""#).as_bytes());
    }
    out.push(b'}');
}

/// The built-in tools and `extra` generated ones.
pub fn tools(extra: usize) -> Vec<String> {
    let generated = (0..extra).map(|i| {
        format!(
            r#"{{"name":"tool_{i:03}","description":"Generated tool {i} for load tests: takes a query and returns it","inputSchema":{{"type":"object","properties":{{"query":{{"type":"string"}}}},"required":["query"]}},"annotations":{{"readOnlyHint":true}}}}"#
        )
    });
    TOOLS.iter().map(|t| (*t).to_owned()).chain(generated).collect()
}

const CAPABILITIES: &str = r#"{"tools":{},"resources":{},"prompts":{}}"#;
/// `--tools-only`.
const TOOLS_ONLY: &str = r#"{"tools":{}}"#;

/// Handles one POST body. `out` receives the response body (for `Json` and `Initialized`).
pub fn handle(st: &State, body: &[u8], out: &mut Vec<u8>, ctx: &Ctx) -> Outcome {
    out.clear();
    if body.iter().find(|c| !c.is_ascii_whitespace()) == Some(&b'[') {
        return batch(st, body, out, ctx);
    }
    let msg: Msg = match serde_json::from_slice(body) {
        Ok(m) => m,
        Err(e) => return bad_json(out, &e),
    };
    if ctx.sessions && msg.method.as_deref() != Some("initialize") {
        if let Some(status) = check_session(st, ctx, msg.id, out) {
            return Outcome::Json(status);
        }
    }
    one(st, &msg, body, out, ctx.sessions)
}

fn bad_json(out: &mut Vec<u8>, e: &serde_json::Error) -> Outcome {
    if e.is_data() {
        error(out, None, -32600, "Invalid Request");
    } else {
        error(out, None, -32700, "Parse error");
    }
    Outcome::Json(400)
}

/// Stateful mode: 400 without a session header, 404 for an unknown session.
fn check_session(st: &State, ctx: &Ctx, id: Option<&RawValue>, out: &mut Vec<u8>) -> Option<u16> {
    match ctx.session {
        None => {
            error(out, id, -32000, "Bad Request: Mcp-Session-Id header is required");
            Some(400)
        }
        Some(s) if !st.has_session(s) => {
            error(out, id, -32001, "Session not found");
            Some(404)
        }
        Some(_) => None,
    }
}

/// 2025-03-26 batches: a JSON array of messages; the responses as an array, 202 if none.
/// A `slow` call inside a batch answers at once (no progress, no delay).
fn batch(st: &State, body: &[u8], out: &mut Vec<u8>, ctx: &Ctx) -> Outcome {
    let items: Vec<&RawValue> = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return bad_json(out, &e),
    };
    if items.is_empty() {
        error(out, None, -32600, "Invalid Request");
        return Outcome::Json(400);
    }
    if ctx.sessions {
        if let Some(status) = check_session(st, ctx, None, out) {
            return Outcome::Json(status);
        }
    }
    let mut one_out = Vec::new();
    out.push(b'[');
    for item in items {
        one_out.clear();
        let outcome = match serde_json::from_str::<Msg>(item.get()) {
            Ok(msg) => one(st, &msg, body, &mut one_out, false),
            Err(e) => bad_json(&mut one_out, &e),
        };
        if let Outcome::Slow(call) = outcome {
            slow_result(&call, &mut one_out);
        }
        if !one_out.is_empty() {
            if out.len() > 1 {
                out.push(b',');
            }
            out.extend_from_slice(&one_out);
        }
    }
    if out.len() == 1 {
        out.clear();
        return Outcome::Accepted;
    }
    out.push(b']');
    Outcome::Json(200)
}

fn one(st: &State, msg: &Msg, body: &[u8], out: &mut Vec<u8>, mint_session: bool) -> Outcome {
    let (method, id) = match (&msg.method, msg.id) {
        (Some(_), None) => return Outcome::Accepted, // notification
        (None, _) if msg.result.is_some() || msg.error.is_some() => return Outcome::Accepted, // response
        (None, id) => {
            error(out, id, -32600, "Invalid Request");
            return Outcome::Json(400);
        }
        (Some(m), Some(id)) => (m.as_ref(), id),
    };
    let params = msg.params;
    let capabilities = if st.tools_only { TOOLS_ONLY } else { CAPABILITIES };
    if st.tools_only
        && (method.starts_with("prompts/") || method.starts_with("resources/") || method.starts_with("completion/"))
    {
        error(out, Some(id), -32601, "Method not found");
        return Outcome::Json(200);
    }
    if let Some(code) = st.list_error.filter(|_| method.ends_with("/list") && method != "tools/list") {
        error(out, Some(id), code, "the list failed");
        return Outcome::Json(200);
    }
    match method {
        "tools/call" => return tools_call(st, id, params, body, out),
        "ping" => {
            result_start(out, id);
            out.extend_from_slice(b"{}}");
        }
        "initialize" => {
            let p: InitParams = parse(params).unwrap_or_default();
            result_start(out, id);
            out.extend_from_slice(br#"{"protocolVersion":""#);
            esc(out, st.protocol_version.or(p.protocol_version.as_deref()).unwrap_or(DEFAULT_VERSION));
            out.extend_from_slice(br#"","capabilities":"#);
            out.extend_from_slice(capabilities.as_bytes());
            server_info(st, out);
            out.extend_from_slice(b"}}");
            if mint_session {
                return Outcome::Initialized(st.new_session());
            }
        }
        "subscriptions/listen" => return Outcome::Listen(id.get().to_owned()),
        "server/discover" => {
            result_start(out, id);
            out.extend_from_slice(br#"{"supportedVersions":["2026-07-28","2025-11-25","2025-06-18","2025-03-26","2024-11-05"],"capabilities":"#);
            out.extend_from_slice(capabilities.as_bytes());
            server_info(st, out);
            out.extend_from_slice(b"}}");
        }
        "tools/list" => {
            result_start(out, id);
            tools_list(st, params, out);
            out.push(b'}');
            return Outcome::Listed;
        }
        "resources/list" => {
            result_start(out, id);
            out.extend_from_slice(br#"{"resources":[{"uri":"mock://"#);
            esc(out, st.name);
            out.extend_from_slice(br#"/readme","name":"readme","mimeType":"text/plain"},{"uri":"mock://"#);
            esc(out, st.name);
            out.extend_from_slice(br#"/secret","name":"secret","mimeType":"text/plain"}]}}"#);
            return Outcome::Listed;
        }
        "resources/templates/list" => {
            result_start(out, id);
            out.extend_from_slice(br#"{"resourceTemplates":[{"uriTemplate":"mock://"#);
            esc(out, st.name);
            out.extend_from_slice(
                br#"/files/{path}","name":"files"},{"uriTemplate":"secret://{id}","name":"secrets"}]}}"#,
            );
            return Outcome::Listed;
        }
        "prompts/list" => {
            result_start(out, id);
            out.extend_from_slice(br#"{"prompts":[{"name":"greet","description":"A greeting","arguments":[{"name":"who","required":false}]},{"name":"secret_plan","description":"Not for everyone"}]}}"#);
            return Outcome::Listed;
        }
        "completion/complete" => {
            result_start(out, id);
            out.extend_from_slice(br#"{"completion":{"values":["world"],"total":1,"hasMore":false}}}"#);
        }
        "resources/read" => {
            let Some(p) = parse::<UriParams>(params) else {
                return invalid_params(out, id);
            };
            result_start(out, id);
            out.extend_from_slice(br#"{"contents":[{"uri":""#);
            esc(out, &p.uri);
            out.extend_from_slice(br#"","mimeType":"text/plain","text":"resource "#);
            esc(out, &p.uri);
            out.extend_from_slice(b" from ");
            esc(out, st.name);
            out.extend_from_slice(br#""}]}}"#);
        }
        "prompts/get" => {
            let Some(p) = parse::<NameParams>(params) else {
                return invalid_params(out, id);
            };
            result_start(out, id);
            out.extend_from_slice(br#"{"description":"prompt "#);
            esc(out, &p.name);
            out.extend_from_slice(b" from ");
            esc(out, st.name);
            out.extend_from_slice(br#"","messages":[{"role":"user","content":{"type":"text","text":"prompt "#);
            esc(out, &p.name);
            out.extend_from_slice(b" from ");
            esc(out, st.name);
            out.extend_from_slice(br#""}}]}}"#);
        }
        _ => error(out, Some(id), -32601, "Method not found"),
    }
    Outcome::Json(200)
}

fn tools_call(st: &State, id: &RawValue, params: Option<&RawValue>, body: &[u8], out: &mut Vec<u8>) -> Outcome {
    let Some(p) = parse::<CallParams>(params) else {
        return invalid_params(out, id);
    };
    match p.name.as_ref() {
        "whoami" if st.links => {
            // Its own resources linked and embedded, and a `uri` of its own data beside them.
            let n = st.name;
            let key = if st.hostile_answers { r"u\u0072i" } else { "uri" };
            result_start(out, id);
            out.extend_from_slice(
                format!(
                    r#"{{"content":[{{"type":"text","text":"{n}"}},{{"type":"resource_link","{key}":"mock://{n}/readme","name":"readme"}},{{"type":"resource","resource":{{"{key}":"mock://{n}/secret","text":"s"}}}}],"structuredContent":{{"{key}":"mock://{n}/readme"}},"isError":false}}}}"#
                )
                .as_bytes(),
            );
        }
        "whoami" => text_result(out, id, &[st.name]),
        "echo" => {
            let Some(a) = parse_or_default::<EchoArgs>(p.arguments) else {
                return invalid_params(out, id);
            };
            let text = a.text.as_deref().unwrap_or("");
            match (text, p.input_responses) {
                // 2026-07-28 multi-round-trip: first ask for a confirmation, with a state of
                // this member's; the retry carries the answers and the state back.
                ("confirm", None) => {
                    result_start(out, id);
                    let n = st.name;
                    out.extend_from_slice(
                        format!(
                            r#"{{"resultType":"input_required","inputRequests":{{"ok":{{"method":"elicitation/create","params":{{"message":"confirm?","requestedSchema":{{"type":"object","properties":{{}}}}}}}}}},"requestState":"{n}-state"}}}}"#
                        )
                        .as_bytes(),
                    );
                }
                ("confirm", Some(_)) => {
                    let state = p.request_state.as_deref().unwrap_or("none");
                    text_result(out, id, &["confirmed by ", st.name, ", state ", state]);
                }
                _ => text_result(out, id, &[text]),
            }
        }
        "bytes" => {
            let hex = hex(&Sha256::digest(body));
            let len = body.len().to_string();
            let json = format!(r#"{{"len":{len},"sha256":"{hex}"}}"#);
            result_start(out, id);
            out.extend_from_slice(br#"{"content":[{"type":"text","text":""#);
            esc(out, &json);
            out.extend_from_slice(br#""}],"structuredContent":"#);
            out.extend_from_slice(json.as_bytes());
            out.extend_from_slice(br#","isError":false}}"#);
        }
        "slow" => {
            let Some(a) = parse_or_default::<SlowArgs>(p.arguments) else {
                return invalid_params(out, id);
            };
            let token = p.meta.and_then(|m| m.progress_token).unwrap_or(id);
            return Outcome::Slow(SlowCall {
                id: id.get().to_owned(),
                token: token.get().to_owned(),
                steps: a.steps.unwrap_or(3).min(1_000_000),
                delay_ms: a.delay_ms.unwrap_or(100),
            });
        }
        name => text_result(out, id, &["called ", name, " on ", st.name]),
    }
    Outcome::Json(200)
}

fn parse<'a, T: Deserialize<'a>>(params: Option<&'a RawValue>) -> Option<T> {
    serde_json::from_str(params?.get()).ok()
}

/// Like `parse`, but absent (or null) params give the default.
fn parse_or_default<'a, T: Deserialize<'a> + Default>(params: Option<&'a RawValue>) -> Option<T> {
    match params {
        None => Some(T::default()),
        Some(p) => serde_json::from_str(p.get()).ok(),
    }
}

fn invalid_params(out: &mut Vec<u8>, id: &RawValue) -> Outcome {
    error(out, Some(id), -32602, "Invalid params");
    Outcome::Json(200)
}

fn server_info(st: &State, out: &mut Vec<u8>) {
    out.extend_from_slice(br#","serverInfo":{"name":""#);
    esc(out, st.name);
    out.extend_from_slice(br#"","version":"0"}"#);
}

fn result_start(out: &mut Vec<u8>, id: &RawValue) {
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    out.extend_from_slice(id.get().as_bytes());
    out.extend_from_slice(br#","result":"#);
}

/// A tool result with one text content item made of `parts` concatenated.
fn text_result(out: &mut Vec<u8>, id: &RawValue, parts: &[&str]) {
    result_start(out, id);
    out.extend_from_slice(br#"{"content":[{"type":"text","text":""#);
    for p in parts {
        esc(out, p);
    }
    out.extend_from_slice(br#""}],"isError":false}}"#);
}

/// A JSON-RPC error response (`id` null when unknown).
pub fn error(out: &mut Vec<u8>, id: Option<&RawValue>, code: i32, message: &str) {
    out.clear();
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    out.extend_from_slice(id.map_or("null", |i| i.get()).as_bytes());
    out.extend_from_slice(br#","error":{"code":"#);
    out.extend_from_slice(code.to_string().as_bytes());
    out.extend_from_slice(br#","message":""#);
    esc(out, message);
    out.extend_from_slice(br#""}}"#);
}

/// The final result of a `slow` call.
pub fn slow_result(call: &SlowCall, out: &mut Vec<u8>) {
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    out.extend_from_slice(call.id.as_bytes());
    out.extend_from_slice(br#","result":{"content":[{"type":"text","text":"slow done: "#);
    out.extend_from_slice(call.steps.to_string().as_bytes());
    out.extend_from_slice(br#" steps"}],"isError":false}}"#);
}

/// A `notifications/progress` message for step `n` of a `slow` call.
pub fn progress(call: &SlowCall, n: u64, out: &mut Vec<u8>) {
    use std::io::Write as _;
    let _ = write!(
        out,
        r#"{{"jsonrpc":"2.0","method":"notifications/progress","params":{{"progressToken":{},"progress":{},"total":{}}}}}"#,
        call.token, n, call.steps
    );
}

/// Appends the JSON string escape of `s` (without quotes).
pub fn esc(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let rep: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&b[start..i]);
        if rep.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]]);
        } else {
            out.extend_from_slice(rep);
        }
        start = i + 1;
    }
    out.extend_from_slice(&b[start..]);
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
