//! MCP and JSON-RPC knowledge: envelope parsing (borrowed, one pass), method names and eras,
//! and the error codes of local replies. No I/O and no routing decisions.

pub mod envelope;
pub mod error;
pub mod method;
