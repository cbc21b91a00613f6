//! Validation of `[log]`: the format, the level, and the access log's switch, destination and
//! slow-request threshold. An `access_file` is checked for appending here, so a path the
//! process cannot write is a config error with its place and fix, at start, in `mcp-edge check`
//! and on reload, not a surprise after the swap.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::duration::{self, Zero};
use super::error::Collector;
use super::model::{LogFormat, LogSettings};
use super::raw::{RawLog, S};

/// Requests at least this long are always logged, whatever the route's `access_sample`.
const DEFAULT_SLOW: Duration = Duration::from_secs(1);

pub fn settings(l: &RawLog, c: &mut Collector<'_>) -> LogSettings {
    let format = match l.format.as_ref().map(|f| (f.get_ref().as_str(), f.span())) {
        None | Some(("text", _)) => LogFormat::Text,
        Some(("json", _)) => LogFormat::Json,
        Some((_, span)) => {
            c.push(span, "log.format", "unknown format; use \"text\" or \"json\"");
            LogFormat::Text
        }
    };
    LogSettings {
        format,
        level: l.level.as_ref().map_or("info".into(), |s| s.get_ref().clone()),
        access: l.access.unwrap_or(true),
        access_file: l.access_file.as_ref().and_then(|f| access_file(f, c)),
        access_slow: duration::or(c, l.access_slow.as_ref(), "log.access_slow", DEFAULT_SLOW, Zero::Refused),
    }
}

fn access_file(file: &S<String>, c: &mut Collector<'_>) -> Option<PathBuf> {
    let field = "log.access_file";
    let path = PathBuf::from(file.get_ref());
    if file.get_ref().is_empty() || file.get_ref().ends_with('/') {
        c.push(file.span(), field, "names no file; give a file path such as \"/var/log/mcp-edge/access.log\", or remove the key to log to stderr");
        return None;
    }
    match writable(&path) {
        Ok(()) => Some(path),
        Err(e) => {
            // The io error names the failure (not found, permission denied), never a value.
            c.push(
                file.span(),
                field,
                format!("cannot be opened for appending ({e}); create its directory and let the user mcp-edge runs as write there, or remove the key to log to stderr"),
            );
            None
        }
    }
}

/// Whether the process can append to `path`, leaving no file behind that was not there: a
/// `mcp-edge check` run as root must not create a root-owned log the service cannot open.
fn writable(path: &Path) -> io::Result<()> {
    match std::fs::OpenOptions::new().append(true).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::OpenOptions::new().append(true).create_new(true).open(path)?;
            // Ours alone (create_new): removing it undoes the probe.
            let _ = std::fs::remove_file(path);
            Ok(())
        }
        Err(e) => Err(e),
    }
}
