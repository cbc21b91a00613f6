//! One request's fault stays in that request.
//!
//! The decision: release builds unwind (`panic = "unwind"` in Cargo.toml). Pingora runs each
//! downstream connection as its own tokio task, and tokio catches a panic at the task boundary,
//! so a bug reached by one request drops that request's connection and nothing else: every
//! other connection, stream and the process live on. With `panic = "abort"` (the choice until
//! 2026-11) one such bug took every connection down with it; a dependency (Pingora, serde_json,
//! bytes) can panic on input our own code never sees, so "prove none is reachable" cannot be
//! complete, while containment is.
//!
//! The first line of defence stays: no `unwrap`/`expect`/indexing on the request path, hostile
//! input tests and fuzzing. This module is the second: a panic hook that logs each panic once,
//! as a server fault (location and message; the message is cut short, since a payload might
//! echo request bytes), and counts it in `mcp_edge_panics_total`, so containment never hides a
//! bug.
//!
//! Proof: `tests/fault.rs` makes the real binary panic inside a request (through the
//! operator-only `MCP_EDGE_FAULT_PATH` variable: a client cannot turn it on) and checks that
//! the other requests and streams are unaffected.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Panics since start, exported by `metrics` as `panics_total`.
pub static PANICS: AtomicU64 = AtomicU64::new(0);

/// Longest panic message logged: enough to find the bug, too short to carry a body.
const MESSAGE_CAP: usize = 200;

/// Installs the hook (once; later calls do nothing).
pub fn install_hook() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        std::panic::set_hook(Box::new(|info| {
            PANICS.fetch_add(1, Ordering::Relaxed);
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(non-string payload)");
            let cut: String = message.chars().take(MESSAGE_CAP).collect();
            let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
            let thread = std::thread::current();
            tracing::error!(
                thread = thread.name().unwrap_or("-"),
                location,
                message = cut,
                "panic contained: the task that hit it ended; everything else runs on"
            );
        }));
    });
}

/// The path that panics on purpose, from `MCP_EDGE_FAULT_PATH` (read once, at start-up).
/// Tests use it to prove containment on the real binary; unset, it costs one `Option` check.
pub fn injected_path() -> Option<&'static str> {
    static PATH: OnceLock<Option<String>> = OnceLock::new();
    PATH.get_or_init(|| std::env::var("MCP_EDGE_FAULT_PATH").ok().filter(|p| p.starts_with('/'))).as_deref()
}
