//! Logging set-up (text or JSON, level from config unless `RUST_LOG` says otherwise) and the
//! access log ([`access`]): one line per finished request, to stderr or `[log] access_file`
//! ([`sink`], reopened on SIGUSR1 by [`reopen`]), sampled per route ([`sample`]). Session ids,
//! tokens and bodies are never logged.

mod access;
pub mod reopen;
mod sample;
pub mod sink;
mod timestamp;

pub use access::{access, flush as flush_access, Access};
pub use sample::sampled;

use tracing_subscriber::EnvFilter;

use crate::config::model::{LogFormat, LogSettings};

/// Keeps the background log writer alive; dropping it flushes what is still queued.
pub struct LogGuard(#[allow(dead_code)] tracing_appender::non_blocking::WorkerGuard);

impl Drop for LogGuard {
    fn drop(&mut self) {
        access::flush();
    }
}

/// The log filter: `level` and the Pingora defaults (see [`init`]), then `RUST_LOG`'s
/// directives on top. `RUST_LOG` overrides what it names (a later directive for the same
/// target wins), so `RUST_LOG=info` changes the level and keeps `pingora_proxy` off, while
/// `RUST_LOG=pingora_proxy=debug` still turns it on. One that does not parse is ignored.
fn filter(level: &str, rust_log: Option<&str>) -> EnvFilter {
    let base = format!("{level},pingora=warn,pingora_core=warn,pingora_proxy=off");
    match rust_log.map(str::trim).filter(|d| !d.is_empty()) {
        Some(extra) => EnvFilter::try_new(format!("{base},{extra}")).unwrap_or_else(|_| EnvFilter::new(&base)),
        None => EnvFilter::new(base),
    }
}

/// Installs the subscriber for operational logs (rare: start, reloads, faults), written by a
/// background thread through a buffer and never dropped. Access lines bypass it (see
/// [`access`]): they are batched without waking a thread per line. Fails only when
/// `access_file` cannot be opened.
pub fn init(log: &LogSettings) -> std::io::Result<LogGuard> {
    use std::io::IsTerminal;
    // pingora_proxy is off: in mcp-edge every line it can log is either already reported by
    // mcp-edge (`fail_to_proxy` logs proxy failures once; retries are counted) or about a
    // client (a head cut short, a reply the client did not stay for), which mcp-edge counts
    // in `client_aborts_total`/`client_timeouts_total` and logs at debug. At `error` they
    // would flood the log whenever clients misbehave.
    let filter = filter(&log.level, std::env::var("RUST_LOG").ok().as_deref());
    let ansi = std::io::stderr().is_terminal();
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("mcp-edge log")
        .finish(std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr()));
    if log.access {
        sink::set(log.access_file.as_deref())?;
        access::install(log.format);
    }
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    // A second init (tests in one process) keeps the first subscriber.
    let _ = match log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    Ok(LogGuard(guard))
}

#[cfg(test)]
mod tests {
    use super::filter;

    #[test]
    fn rust_log_adds_to_the_defaults_instead_of_replacing_them() {
        let shown = |rust_log| filter("info", rust_log).to_string();
        assert!(shown(None).contains("pingora_proxy=off"), "{}", shown(None));
        // Setting the level keeps client-caused Pingora lines off.
        for rust_log in ["warn", "info", "debug", " mcp_edge=debug "] {
            assert!(shown(Some(rust_log)).contains("pingora_proxy=off"), "{rust_log}: {}", shown(Some(rust_log)));
        }
        // Naming the target still wins, and a filter that does not parse is ignored.
        assert!(shown(Some("pingora_proxy=debug")).contains("pingora_proxy=debug"));
        assert!(!shown(Some("pingora_proxy=debug")).contains("pingora_proxy=off"));
        assert_eq!(shown(Some("mcp_edge=not-a-level")), shown(None));
    }
}
