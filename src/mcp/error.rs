//! JSON-RPC error codes the proxy answers with, and the error body they travel in.

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
}
