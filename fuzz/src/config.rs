//! `config`: arbitrary UTF-8 through what start-up, `check` and reload do with a file: parse
//! and validate, and for a valid config build the router, render `/config` and diff it.
//! Errors are expected; a panic is a proxy that cannot start or dies on a reload.

use std::path::Path;

use mcp_edge::config::{self, render};
use mcp_edge::router::Router;
use mcp_edge::state::reload;

pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match config::parse(Path::new("fuzz.toml"), text) {
        Ok(config) => {
            let _ = Router::new(&config);
            let _ = render::to_json(&config);
            assert!(reload::changes(&config, &config).is_empty(), "a config differs from itself");
            assert!(reload::non_reloadable(&config, &config).is_empty(), "a config differs from itself");
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "a refused config names at least one error");
            let _ = errors.to_string();
        }
    }
}
