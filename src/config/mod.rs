//! Configuration: one pipeline for start-up, `check` and reload.
//!
//! file bytes → `toml` into [`raw`] (serde, `deny_unknown_fields`, spans kept) → [`validate`]
//! (every error collected, each as `file:line:col: field: message` with the fix) → [`model`]
//! (typed, resolved, no serde). Nothing outside this module sees raw structs. A TOML syntax or
//! shape error stops at the first (the parser cannot go on); validation collects them all.
//!
//! No error message carries a value from the file: values may be secrets (a Redis password,
//! an API key in the wrong place), and errors reach `check`, `POST /reload`, `/status` and the
//! logs. Messages name the place, the field and the fix; names the operator chose for pools,
//! routes, limits and tiers may appear, since other parts of the config refer to them.

pub mod admin;
pub mod auth_model;
pub mod authn;
pub mod duration;
pub mod error;
pub mod federation;
pub mod header_model;
pub mod ip_filter;
pub mod jwt_keys;
pub mod limits;
pub mod lint;
pub mod logging;
pub mod model;
mod oauth_client;
pub mod origins;
pub mod policy;
pub mod policy_model;
pub mod raw;
pub mod render;
pub mod result_cache;
pub mod route_auth;
pub mod routes;
pub mod stdio;
pub mod timeouts;
pub mod tls;
mod toml_error;
pub mod traces;
pub mod upstream_headers;
pub mod upstream_tls;
pub mod validate;

#[cfg(test)]
mod auth_tests;
#[cfg(test)]
mod federation_tests;
#[cfg(test)]
mod header_tests;
#[cfg(test)]
mod policy_tests;
#[cfg(test)]
mod tests;

use std::path::Path;

use sha2::{Digest, Sha256};

pub use error::{ConfigError, ConfigErrors};
pub use model::Config;

/// Loads and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: path.display().to_string(),
            line: 0,
            col: 0,
            field: "(file)".into(),
            message: format!("cannot read: {e}"),
        }])
    })?;
    parse(path, &text)
}

/// Parses and validates config text that came from `path` (used in messages only).
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
    let mut c = error::Collector::new(path, text);
    let raw: raw::RawConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let field = toml_error::key_path(text, span.start);
            c.push(span, field, toml_error::message(e.message()));
            return Err(ConfigErrors(c.errors));
        }
    };
    let mut config = validate::validate(raw, &mut c).ok_or_else(|| ConfigErrors(std::mem::take(&mut c.errors)))?;
    config.source = Some(path.to_path_buf());
    config.digest = hex(&Sha256::digest(text.as_bytes()));
    Ok(config)
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
