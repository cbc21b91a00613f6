#![no_main]

// Known divergences are skipped here (see `envelope::KNOWN`); the strict `check` replays them.
libfuzzer_sys::fuzz_target!(|data: &[u8]| mcp_edge_fuzz::envelope::check_new_only(data));
