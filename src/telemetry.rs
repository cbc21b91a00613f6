//! Logging set-up (text or JSON, level from config unless `RUST_LOG` says otherwise) and the
//! one access-log event written per finished request. Session ids, tokens and bodies are
//! never logged.

use tracing_subscriber::EnvFilter;

use crate::config::model::{LogFormat, LogSettings};

pub fn init(log: &LogSettings) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{},pingora=warn,pingora_core=warn,pingora_proxy=warn",
            log.level
        ))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests in one process) keeps the first subscriber.
    let _ = match log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// What one finished request looked like; logged once, in the proxy's `logging` phase.
pub struct Access<'a> {
    pub route: &'a str,
    pub http_method: &'a str,
    pub path: &'a str,
    pub mcp_method: &'static str,
    pub tool: &'a str,
    pub status: u16,
    pub upstream: Option<std::net::SocketAddr>,
    pub client: Option<std::net::SocketAddr>,
    pub duration_ms: f64,
    pub reason: Option<&'static str>,
    pub era: &'static str,
}

pub fn access(a: &Access<'_>) {
    tracing::info!(
        target: "mcp_edge::access",
        route = a.route,
        http_method = a.http_method,
        path = a.path,
        mcp_method = a.mcp_method,
        tool = a.tool,
        era = a.era,
        status = a.status,
        upstream = a.upstream.map(tracing::field::display),
        client = a.client.map(tracing::field::display),
        duration_ms = a.duration_ms,
        reason = a.reason,
        "request"
    );
}
