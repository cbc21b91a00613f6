//! Logging set-up (text or JSON, level from config unless `RUST_LOG` says otherwise) and the
//! access log ([`access`]): one line per finished request. Both go through one background
//! writer. Session ids, tokens and bodies are never logged.

mod access;

pub use access::{access, Access};

use tracing_subscriber::EnvFilter;

use crate::config::model::{LogFormat, LogSettings};

/// Keeps the background log writer alive; dropping it flushes what is still queued.
pub struct LogGuard(#[allow(dead_code)] tracing_appender::non_blocking::WorkerGuard);

/// Installs the subscriber. Events are formatted on the calling thread and written by a
/// background thread through a buffer, so a request never waits on a write(2) to stderr and
/// busy periods turn into few large writes. Lines are never dropped: if the writer falls
/// behind by 128k lines, logging blocks rather than losing access records.
pub fn init(log: &LogSettings) -> LogGuard {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},pingora=warn,pingora_core=warn,pingora_proxy=warn", log.level)));
    let ansi = std::io::stderr().is_terminal();
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("mcp-edge log")
        .finish(std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr()));
    if log.access {
        access::install(writer.clone(), log.format);
    }
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    // A second init (tests in one process) keeps the first subscriber.
    let _ = match log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    LogGuard(guard)
}
