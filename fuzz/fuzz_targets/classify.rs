#![no_main]

// Known envelope divergences are skipped here (see `envelope::KNOWN`); `check` replays them.
libfuzzer_sys::fuzz_target!(|data: &[u8]| mcp_edge_fuzz::classify::check_new_only(data));
