//! The names of the HTTP headers of the MCP transport, parsed once at compile time. A lookup by
//! `&str` parses and lower-cases the name on every call; the request path looks these up
//! several times per request.

use http::HeaderName;

pub const MCP_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
pub const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
pub const MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");
pub const MCP_SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
/// SSE resumption (a reconnecting GET stream names the last event it saw).
pub const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");
