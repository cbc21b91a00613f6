//! Logging set-up (text or JSON, level from config unless `RUST_LOG` says otherwise) and the
//! access log ([`access`]): one line per finished request. Both go through one background
//! writer. Session ids, tokens and bodies are never logged.

mod access;

pub use access::{access, flush as flush_access, Access};

use tracing_subscriber::EnvFilter;

use crate::config::model::{LogFormat, LogSettings};

/// Keeps the background log writer alive; dropping it flushes what is still queued.
pub struct LogGuard(#[allow(dead_code)] tracing_appender::non_blocking::WorkerGuard);

impl Drop for LogGuard {
    fn drop(&mut self) {
        access::flush();
    }
}

/// Installs the subscriber for operational logs (rare: start, reloads, faults), written by a
/// background thread through a buffer and never dropped. Access lines bypass it (see
/// [`access`]): they are batched without waking a thread per line.
pub fn init(log: &LogSettings) -> LogGuard {
    use std::io::IsTerminal;
    // pingora_proxy is off: in mcp-edge every line it can log is either already reported by
    // mcp-edge (`fail_to_proxy` logs proxy failures once; retries are counted) or about a
    // client (a head cut short, a reply the client did not stay for), which mcp-edge counts
    // in `client_aborts_total`/`client_timeouts_total` and logs at debug. At `error` they
    // would flood the log whenever clients misbehave.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},pingora=warn,pingora_core=warn,pingora_proxy=off", log.level)));
    let ansi = std::io::stderr().is_terminal();
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("mcp-edge log")
        .finish(std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr()));
    if log.access {
        access::install(log.format);
    }
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    // A second init (tests in one process) keeps the first subscriber.
    let _ = match log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    LogGuard(guard)
}
