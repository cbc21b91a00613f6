//! Per-request context: the snapshot the request started with and everything the phases
//! learn about it. Byte fields (`id`, `target`, `body`) are slices of the request body, not
//! copies.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::first_byte::FirstByteTimer;
use super::sse_event::EndpointSniff;
use crate::config::model::Timeouts;
use crate::mcp::method::{Era, Method};
use crate::metrics::Reason;
use crate::session::Member;
use crate::state::Snapshot;

/// A request bound to the backend holding its session.
#[derive(Debug)]
pub struct Pinned {
    pub pool: usize,
    pub member: Member,
    /// The token the client sent, handed back unchanged when the backend echoes the session.
    pub token: String,
    /// Legacy HTTP+SSE: the token travels in the query string, not in `Mcp-Session-Id`.
    pub via_query: bool,
}

pub struct Ctx {
    pub snap: Arc<Snapshot>,
    pub start: Instant,
    pub route: Option<usize>,
    /// The matching rule of the route, if any.
    pub rule: Option<usize>,
    pub pool: Option<usize>,
    pub era: Era,
    pub method: Method,
    /// Tool or prompt name, or resource URI.
    pub target: Option<Bytes>,
    /// Raw JSON of the request id, echoed in local errors.
    pub id: Option<Bytes>,
    /// The pre-read body, replayed upstream by `request_body_filter`.
    pub body: Option<Bytes>,
    /// Whether this upstream attempt has sent the pre-read body yet.
    pub body_sent: bool,
    /// Body bytes streamed (not pre-read) so far, for the size limit.
    pub streamed: usize,
    pub strip_expect: bool,
    pub pinned: Option<Pinned>,
    pub backend: Option<SocketAddr>,
    /// Backends that failed this request (refused, or failed a safe request) and are
    /// skipped when it is retried.
    pub tried: Vec<SocketAddr>,
    /// The upstream timeouts in force: the pool's with the route's and rule's overrides.
    pub timeouts: Option<Timeouts>,
    /// Running while the current upstream attempt waits for its response header.
    pub first_byte: Option<FirstByteTimer>,
    /// A response header came from upstream: from here on nothing may be resent.
    pub header_seen: bool,
    pub reason: Option<Reason>,
    /// In-flight slots held for concurrency caps, released when the request ends.
    pub guards: Vec<pingora_limits::inflight::Guard>,
    /// Legacy HTTP+SSE: the start of a GET stream, held until its first event is complete.
    pub endpoint_sniff: Option<EndpointSniff>,
}

impl Ctx {
    pub fn new(snap: Arc<Snapshot>) -> Ctx {
        Ctx {
            snap,
            start: Instant::now(),
            route: None,
            rule: None,
            pool: None,
            era: Era::Legacy,
            method: Method::None,
            target: None,
            id: None,
            body: None,
            body_sent: false,
            streamed: 0,
            strip_expect: false,
            pinned: None,
            backend: None,
            tried: Vec::new(),
            timeouts: None,
            first_byte: None,
            header_seen: false,

            reason: None,
            guards: Vec::new(),
            endpoint_sniff: None,
        }
    }

    /// Whether resending this request to another backend after it reached one is harmless:
    /// a safe method, or a tool the route declares idempotent.
    pub fn is_safe_to_resend(&self) -> bool {
        if self.method.is_safe() {
            return true;
        }
        let Some(route) = self.route.and_then(|r| self.snap.router.routes().get(r)) else { return false };
        let tool = self.target.as_deref().and_then(|t| std::str::from_utf8(t).ok());
        match (self.method, tool) {
            (Method::ToolsCall, Some(tool)) => route.idempotent_tools.iter().any(|g| g.is_match(tool)),
            _ => false,
        }
    }

    pub fn route_name(&self) -> &str {
        self.route.and_then(|r| self.snap.router.routes().get(r)).map_or("-", |r| r.name.as_str())
    }

    /// The bounded metric label for this request's tool.
    pub fn tool_label(&self) -> &str {
        match (&self.target, self.method) {
            (Some(t), Method::ToolsCall) => std::str::from_utf8(t).map_or("other", |t| self.snap.tool_label(t)),
            _ => "-",
        }
    }
}
