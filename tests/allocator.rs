//! The binary runs on jemalloc with the options `src/main.rs` sets: a thread cache that keeps
//! Pingora's 64 KiB body buffers (a renamed configuration symbol would silently drop them).

mod common;

use std::process::Command;

#[test]
fn jemalloc_caches_pingoras_body_buffers_per_thread() {
    let conf = concat!(env!("CARGO_MANIFEST_DIR"), "/conf/demo.toml");
    let out = Command::new(common::MCP_EDGE)
        .args(["check", "--config", conf])
        // Prints jemalloc's options in force when the process exits.
        .env("_RJEM_MALLOC_CONF", "stats_print:true")
        .output()
        .expect("run check");
    let stats = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stats}");
    assert!(
        stats.contains("opt.tcache_max: 131072"),
        "jemalloc options not in force:\n{}",
        &stats[..stats.len().min(2000)]
    );
}
