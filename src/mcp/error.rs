//! JSON-RPC error codes the proxy answers with, and the error body they travel in.

use super::method::{Method, TargetKind};

/// The JSON-RPC error codes mcp-edge uses in local replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpcCode {
    ParseError = -32700,
    InvalidRequest = -32600,
    MethodNotFound = -32601,
    InvalidParams = -32602,
    /// A list answer the proxy could not filter (filtered discovery).
    InternalError = -32603,
    /// Implementation-defined server error: proxy-side failures (no backend, upstream down).
    ServerError = -32000,
    /// Unknown session (SDK servers use -32001 for "Session not found").
    SessionNotFound = -32001,
    /// 2026-07-28 HeaderMismatch.
    HeaderMismatch = -32020,
    /// 2026-07-28 UnsupportedProtocolVersion.
    UnsupportedProtocolVersion = -32022,
    /// MCP's "Resource not found".
    ResourceNotFound = -32002,
}

/// Whose answer for something a server does not have `deny_as = "unknown"` copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownStyle {
    /// MCP's own examples: an unknown tool or prompt is -32602 naming it, an unknown resource
    /// -32002 with its URI in `data`.
    Spec,
    /// The TypeScript SDK 1.x `McpServer`: an unknown tool is an `isError` result (`MCP error
    /// -32602: Tool <name> not found`), a prompt or resource a -32602 error.
    TypeScriptSdk,
    /// The Python SDK 1.x FastMCP: an unknown tool is an `isError` result (`Unknown tool:
    /// <name>`), a prompt or resource an error with code 0.
    PythonSdk,
}

/// The answer a server in `style` gives for the tool, prompt, resource or method `method` and
/// `target` name, byte for byte where the SDKs were read (field order included): what a denial
/// with `deny_as = "unknown"` sends, so a caller cannot tell a hidden tool from an absent one.
/// Any other method is -32601 `Method not found` in every style.
pub fn unknown_body(id: Option<&[u8]>, method: Method, target: Option<&str>, style: UnknownStyle) -> Vec<u8> {
    use UnknownStyle::*;
    let Some(name) = target else { return error_body(id, RpcCode::MethodNotFound, "Method not found") };
    let invalid = RpcCode::InvalidParams as i32;
    match (style, method.target_kind()) {
        (Spec, Some(TargetKind::Tool)) => error_with(id, invalid, &format!("Unknown tool: {name}"), None),
        (Spec, Some(TargetKind::Prompt)) => error_with(id, invalid, &format!("Unknown prompt: {name}"), None),
        (Spec, Some(TargetKind::Resource)) => {
            error_with(id, RpcCode::ResourceNotFound as i32, "Resource not found", Some(name))
        }
        (TypeScriptSdk, Some(TargetKind::Tool)) => {
            tool_error(id, &format!("MCP error -32602: Tool {name} not found"), ResultFirst::Yes)
        }
        (TypeScriptSdk, Some(TargetKind::Prompt)) => {
            error_with(id, invalid, &format!("MCP error -32602: Prompt {name} not found"), None)
        }
        (TypeScriptSdk, Some(TargetKind::Resource)) => {
            error_with(id, invalid, &format!("MCP error -32602: Resource {name} not found"), None)
        }
        (PythonSdk, Some(TargetKind::Tool)) => tool_error(id, &format!("Unknown tool: {name}"), ResultFirst::No),
        (PythonSdk, Some(TargetKind::Prompt)) => error_with(id, 0, &format!("Unknown prompt: {name}"), None),
        (PythonSdk, Some(TargetKind::Resource)) => error_with(id, 0, &format!("Unknown resource: {name}"), None),
        (_, None) => error_body(id, RpcCode::MethodNotFound, "Method not found"),
    }
}

/// Whether `result` comes before `jsonrpc` (the TypeScript SDK builds `{result, jsonrpc, id}`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum ResultFirst {
    Yes,
    No,
}

/// A tool result with `isError: true` and one text item.
fn tool_error(id: Option<&[u8]>, text: &str, order: ResultFirst) -> Vec<u8> {
    let mut result = br#"{"content":[{"type":"text","text":"#.to_vec();
    json_str(&mut result, text);
    result.extend_from_slice(br#"}],"isError":true}"#);
    let id = id.unwrap_or(b"null");
    let mut out = Vec::with_capacity(result.len() + id.len() + 40);
    match order {
        ResultFirst::Yes => {
            out.extend_from_slice(br#"{"result":"#);
            out.extend_from_slice(&result);
            out.extend_from_slice(br#","jsonrpc":"2.0","id":"#);
            out.extend_from_slice(id);
        }
        ResultFirst::No => {
            out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
            out.extend_from_slice(id);
            out.extend_from_slice(br#","result":"#);
            out.extend_from_slice(&result);
        }
    }
    out.push(b'}');
    out
}

/// `{"jsonrpc":"2.0","id":<id|null>,"error":{"code":<code>,"message":<message>}}`.
/// `id` is the raw JSON of the request id, echoed byte for byte.
pub fn error_body(id: Option<&[u8]>, code: RpcCode, message: &str) -> Vec<u8> {
    error_with(id, code as i32, message, None)
}

/// 2026-07-28's UnsupportedProtocolVersion: the versions the server speaks, and the one the
/// request named (the client's own header, escaped as a JSON string).
pub fn unsupported_version_body(id: Option<&[u8]>, supported: &[&str], requested: &str) -> Vec<u8> {
    let mut data = br#"{"supported":["#.to_vec();
    for (i, v) in supported.iter().enumerate() {
        if i > 0 {
            data.push(b',');
        }
        json_str(&mut data, v);
    }
    data.extend_from_slice(br#"],"requested":"#);
    json_str(&mut data, requested);
    data.push(b'}');
    let mut out = Vec::with_capacity(96 + data.len());
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    out.extend_from_slice(id.unwrap_or(b"null"));
    out.extend_from_slice(br#","error":{"code":-32022,"message":"Unsupported protocol version","data":"#);
    out.extend_from_slice(&data);
    out.extend_from_slice(b"}}");
    out
}

/// An error body with any code, and `data: {"uri": <uri>}` when given.
fn error_with(id: Option<&[u8]>, code: i32, message: &str, uri: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + message.len() + id.map_or(4, <[u8]>::len));
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    out.extend_from_slice(id.unwrap_or(b"null"));
    out.extend_from_slice(br#","error":{"code":"#);
    out.extend_from_slice(code.to_string().as_bytes());
    out.extend_from_slice(br#","message":"#);
    json_str(&mut out, message);
    if let Some(uri) = uri {
        out.extend_from_slice(br#","data":{"uri":"#);
        json_str(&mut out, uri);
        out.push(b'}');
    }
    out.extend_from_slice(b"}}");
    out
}

fn json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a &str to a Vec cannot fail; the fallback keeps the body valid JSON regardless.
    if serde_json::to_writer(&mut *out, s).is_err() {
        out.extend_from_slice(br#""error""#);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_echoes_raw_id_and_escapes_message() {
        let body = error_body(Some(br#""req-1""#), RpcCode::ParseError, r#"bad "json""#);
        let v: serde_json::Value = serde_json::from_slice(&body).expect("valid json");
        assert_eq!(v["id"], "req-1");
        assert_eq!(v["error"]["code"], -32700);
        assert_eq!(v["error"]["message"], r#"bad "json""#);
        let v: serde_json::Value =
            serde_json::from_slice(&error_body(None, RpcCode::MethodNotFound, "x")).expect("json");
        assert!(v["id"].is_null());
    }

    #[test]
    fn unknown_answers_copy_each_style_byte_for_byte() {
        use UnknownStyle::*;
        let text = |b: Vec<u8>| String::from_utf8(b).expect("utf8");
        let tool = |style| text(unknown_body(Some(b"7"), Method::ToolsCall, Some("x\"y"), style));
        assert_eq!(tool(Spec), r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"Unknown tool: x\"y"}}"#);
        assert_eq!(
            tool(TypeScriptSdk),
            r#"{"result":{"content":[{"type":"text","text":"MCP error -32602: Tool x\"y not found"}],"isError":true},"jsonrpc":"2.0","id":7}"#
        );
        assert_eq!(
            tool(PythonSdk),
            r#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"Unknown tool: x\"y"}],"isError":true}}"#
        );
        let res = |style| text(unknown_body(Some(br#""r""#), Method::ResourcesRead, Some("file:///a"), style));
        assert_eq!(
            res(Spec),
            r#"{"jsonrpc":"2.0","id":"r","error":{"code":-32002,"message":"Resource not found","data":{"uri":"file:///a"}}}"#
        );
        assert_eq!(
            res(PythonSdk),
            r#"{"jsonrpc":"2.0","id":"r","error":{"code":0,"message":"Unknown resource: file:///a"}}"#
        );
        let prompt = text(unknown_body(Some(b"1"), Method::PromptsGet, Some("p"), TypeScriptSdk));
        assert_eq!(
            prompt,
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"MCP error -32602: Prompt p not found"}}"#
        );
        let other = text(unknown_body(Some(b"1"), Method::Other, None, PythonSdk));
        assert_eq!(other, r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"Method not found"}}"#);
    }

    #[test]
    fn an_unsupported_version_names_what_is_spoken_and_echoes_what_was_asked_escaped() {
        let body = unsupported_version_body(Some(b"9"), &["2026-07-28", "2025-11-25"], "v\"9\u{1}");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("valid json");
        assert_eq!(v["id"], 9);
        assert_eq!(v["error"]["code"], -32022);
        assert_eq!(v["error"]["data"]["supported"], serde_json::json!(["2026-07-28", "2025-11-25"]));
        assert_eq!(v["error"]["data"]["requested"], "v\"9\u{1}");
    }
}
