//! The properties the fuzz targets check, one module per target, each a `check(&[u8])` that
//! panics when the property fails. Kept free of libFuzzer so `tests/fuzz_regressions.rs` can
//! replay the seeds and saved regressions through the same code on the stable toolchain.

pub mod classify;
pub mod config;
pub mod contents;
pub mod discovery;
pub mod envelope;
pub mod federation;
pub mod input;
pub mod listen;
pub mod message;
pub mod passing;
pub mod path;
pub mod relay;
pub mod result_cache;
pub mod session_query;
pub mod session_token;
pub mod sse_endpoint;
pub mod stdio_frame;
pub mod traceparent;
