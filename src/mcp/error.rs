//! JSON-RPC error codes the proxy answers with, and the error body they travel in.

use super::method::{Method, TargetKind};

/// The JSON-RPC error codes mcp-edge uses in local replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpcCode {
    ParseError = -32700,
    InvalidRequest = -32600,
    MethodNotFound = -32601,
    InvalidParams = -32602,
    /// Implementation-defined server error: proxy-side failures (no backend, upstream down).
    ServerError = -32000,
    /// Unknown session (SDK servers use -32001 for "Session not found").
    SessionNotFound = -32001,
    /// 2026-07-28 HeaderMismatch.
    HeaderMismatch = -32020,
    /// MCP's "Resource not found".
    ResourceNotFound = -32002,
}

/// The answer a server gives for something it does not have, in the shape of MCP's own
/// examples: an unknown tool or prompt is -32602 naming it, an unknown resource -32002 with
/// its URI in `data`, any other method -32601. What a denial with `deny_as = "unknown"` sends,
/// so a caller cannot tell a hidden tool from an absent one.
pub fn unknown_body(id: Option<&[u8]>, method: Method, target: Option<&str>) -> Vec<u8> {
    match (method.target_kind(), target) {
        (Some(TargetKind::Tool), Some(name)) => {
            error_body(id, RpcCode::InvalidParams, &format!("Unknown tool: {name}"))
        }
        (Some(TargetKind::Prompt), Some(name)) => {
            error_body(id, RpcCode::InvalidParams, &format!("Unknown prompt: {name}"))
        }
        (Some(TargetKind::Resource), Some(uri)) => {
            let mut out = error_body(id, RpcCode::ResourceNotFound, "Resource not found");
            // `...}}` becomes `...,"data":{"uri":<uri>}}}`.
            out.truncate(out.len().saturating_sub(2));
            out.extend_from_slice(br#","data":{"uri":"#);
            if serde_json::to_writer(&mut out, uri).is_err() {
                out.extend_from_slice(br#""""#);
            }
            out.extend_from_slice(b"}}}");
            out
        }
        _ => error_body(id, RpcCode::MethodNotFound, "Method not found"),
    }
}

/// `{"jsonrpc":"2.0","id":<id|null>,"error":{"code":<code>,"message":<message>}}`.
/// `id` is the raw JSON of the request id, echoed byte for byte.
pub fn error_body(id: Option<&[u8]>, code: RpcCode, message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + message.len() + id.map_or(4, <[u8]>::len));
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    out.extend_from_slice(id.unwrap_or(b"null"));
    out.extend_from_slice(br#","error":{"code":"#);
    out.extend_from_slice((code as i32).to_string().as_bytes());
    out.extend_from_slice(br#","message":"#);
    // Writing a &str to a Vec cannot fail; the fallback keeps the body valid JSON regardless.
    if serde_json::to_writer(&mut out, message).is_err() {
        out.extend_from_slice(br#""error""#);
    }
    out.extend_from_slice(b"}}");
    out
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
    fn unknown_answers_name_what_was_asked_for_like_a_server_would() {
        let json = |b: Vec<u8>| serde_json::from_slice::<serde_json::Value>(&b).expect("valid json");
        let tool = json(unknown_body(Some(b"7"), Method::ToolsCall, Some("deploy \"x\"")));
        let want =
            serde_json::json!({"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"Unknown tool: deploy \"x\""}});
        assert_eq!(tool, want);
        let prompt = json(unknown_body(Some(b"7"), Method::PromptsGet, Some("p")));
        assert_eq!(prompt["error"]["message"], "Unknown prompt: p");
        let res = json(unknown_body(Some(br#""r""#), Method::ResourcesRead, Some("file:///a")));
        let want = serde_json::json!({"jsonrpc":"2.0","id":"r","error":{"code":-32002,"message":"Resource not found","data":{"uri":"file:///a"}}});
        assert_eq!(res, want);
        assert_eq!(json(unknown_body(None, Method::Other, None))["error"]["code"], -32601);
    }
}
