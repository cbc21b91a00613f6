//! MCP and JSON-RPC knowledge: envelope parsing (borrowed, one pass), the one reading of a
//! request ([`call`]), method names and eras,
//! and the error codes of local replies. No I/O and no routing decisions.

pub mod call;
pub mod envelope;
pub mod error;
pub mod fold;
pub mod header;
pub mod method;
