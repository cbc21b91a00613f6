//! Replays the fuzz seeds and every saved regression (`fuzz/seeds/<target>/`,
//! `fuzz/regressions/<target>/`) through the fuzz targets' own properties, on the stable
//! toolchain: an input that once broke a property keeps being checked by `cargo test`, without
//! nightly or cargo-fuzz.

#[path = "../fuzz/src/classify.rs"]
mod classify;
#[path = "../fuzz/src/config.rs"]
mod config;
#[path = "../fuzz/src/contents.rs"]
mod contents;
#[path = "../fuzz/src/discovery.rs"]
mod discovery;
#[path = "../fuzz/src/envelope.rs"]
mod envelope;
#[path = "../fuzz/src/federation.rs"]
mod federation;
#[path = "../fuzz/src/input.rs"]
mod input;
#[path = "../fuzz/src/listen.rs"]
mod listen;
#[path = "../fuzz/src/message.rs"]
mod message;
#[path = "../fuzz/src/passing.rs"]
mod passing;
#[path = "../fuzz/src/path.rs"]
mod path;
#[path = "../fuzz/src/relay.rs"]
mod relay;
#[path = "../fuzz/src/result_cache.rs"]
mod result_cache;
#[path = "../fuzz/src/session_query.rs"]
mod session_query;
#[path = "../fuzz/src/session_token.rs"]
mod session_token;
#[path = "../fuzz/src/sse_endpoint.rs"]
mod sse_endpoint;
#[path = "../fuzz/src/stdio_frame.rs"]
mod stdio_frame;
#[path = "../fuzz/src/traceparent.rs"]
mod traceparent;

use std::path::Path;

/// Runs `check` on every file saved for `target` (files only: subfolders are their own sets);
/// a panic names the file.
fn replay(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut seen = 0;
    for kind in ["seeds", "regressions"] {
        let Ok(dir) = std::fs::read_dir(root.join(kind).join(target)) else {
            continue;
        };
        let mut files: Vec<_> = dir.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
        files.sort();
        for file in files {
            let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            eprintln!("replaying {}", file.display());
            check(&data);
            seen += 1;
        }
    }
    assert!(seen > 0, "no seeds for fuzz target {target}");
}

#[test]
fn discovery_inputs_keep_their_property() {
    replay("discovery", discovery::check);
}

#[test]
fn config_inputs_keep_their_property() {
    replay("config", config::check);
}

#[test]
fn envelope_inputs_read_as_json_reads_them() {
    replay("envelope", envelope::check);
}

#[test]
fn session_token_inputs_round_trip_and_refuse_forgeries() {
    replay("session_token", session_token::check);
}

#[test]
fn session_query_inputs_name_every_session_a_backend_reads() {
    replay("session_query", session_query::check);
}

#[test]
fn sse_endpoint_inputs_forward_every_byte_once() {
    replay("sse_endpoint", sse_endpoint::check);
}

#[test]
fn traceparent_inputs_read_strictly_and_write_back() {
    replay("traceparent", traceparent::check);
}

#[test]
fn classify_inputs_read_as_json_reads_them() {
    replay("classify", classify::check);
}

#[test]
fn path_inputs_canonicalise_to_a_fixed_point() {
    replay("path", path::check);
}

/// The fuzz runs' own check (which skips `envelope::KNOWN` kinds) holds on every saved input.
#[test]
fn the_fuzz_runs_check_what_the_replays_check() {
    replay("envelope", envelope::check_new_only);
    replay("classify", classify::check_new_only);
}

#[test]
fn federation_inputs_reach_the_member_as_the_call_the_proxy_read() {
    replay("federation", federation::check);
}

#[test]
fn stdio_frame_inputs_reach_the_process_as_one_line_under_the_bridges_number() {
    replay("stdio_frame", stdio_frame::check);
}

#[test]
fn passing_messages_are_read_as_a_client_reads_them_whole() {
    replay("passing", passing::check);
}

#[test]
fn relay_inputs_reach_the_client_under_ids_that_lead_back_to_their_member() {
    replay("relay", relay::check);
}

#[test]
fn contents_inputs_change_only_the_uris_of_an_answer() {
    replay("contents", contents::check);
}

#[test]
fn listen_inputs_reach_members_as_one_request_and_clients_only_as_asked() {
    replay("listen", listen::check);
}

#[test]
fn result_cache_inputs_keep_and_serve_only_complete_results_within_the_bound() {
    replay("result_cache", result_cache::check);
}
