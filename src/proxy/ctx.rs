//! Per-request context: the snapshot the request started with and everything the phases
//! learn about it. `call` is the one reading of the request ([`crate::mcp::call`]); its byte
//! fields and `body` share the request body's buffer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::attempt::Attempts;
use super::failure::HeldProbe;
use super::first_byte::FirstByteTimer;
use super::request_id::RequestId;
use super::transform::Transform;
use crate::auth::identity::Identity;
use crate::config::model::Timeouts;
use crate::mcp::call::Call;
use crate::mcp::method::{Era, Method};
use crate::metrics::{ErrorType, OpenStream, Reason};
use crate::session::{Fingerprint, Member};
use crate::state::series::Labels;
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
    /// The token's fingerprint (logs, `/sessions`).
    pub fingerprint: Fingerprint,
    /// On a federated route, every member's session in the route's order (an empty id where
    /// the member issued none); `pool` and `member` are then the called member's.
    pub federated: Vec<Member>,
}

/// A federated call on its way to a member.
pub struct Forwarded {
    /// The member's place in the route.
    pub index: usize,
    /// The name (tool, prompt) or URI the call reaches the member with (the body already
    /// carries it; `Mcp-Name` gets it in `upstream_request_filter`).
    pub name: String,
    /// In a legacy session, the protocol version the member agreed to: its
    /// `MCP-Protocol-Version`, whatever the client's.
    pub version: Option<String>,
    /// A call to a cacheable tool that missed: where its result is kept
    /// (`federation::results`).
    pub cache: Option<crate::federation::results::Miss>,
}

pub struct Ctx {
    pub snap: Arc<Snapshot>,
    pub start: Instant,
    pub route: Option<usize>,
    /// The matching rule of the route, if any.
    pub rule: Option<usize>,
    pub pool: Option<usize>,
    /// What the request is: era, method, target, id (echoed in local errors), batch elements.
    pub call: Call,
    /// The canonical path, when it differs from the client's: forwarded instead.
    pub path: Option<String>,
    /// The pre-read body, replayed upstream by `request_body_filter`.
    pub body: Option<Bytes>,
    /// Whether this upstream attempt has sent the pre-read body yet.
    pub body_sent: bool,
    /// Body bytes streamed (not pre-read) so far, for the size limit.
    pub streamed: usize,
    /// Interim (`1xx`) heads the backend sent before its answer.
    pub interim: u8,
    /// On a federated route, the member the call goes to.
    pub member: Option<Forwarded>,
    pub pinned: Option<Pinned>,
    pub backend: Option<SocketAddr>,
    /// The half-open probe this attempt claimed, handed back if it ends without an outcome.
    pub probe: Option<HeldProbe>,
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
    /// The JSON-RPC error code of a reply mcp-edge made itself (none when the reply had no
    /// JSON-RPC body).
    pub rpc_code: Option<i32>,
    /// The `[[limit]]` that refused the request.
    pub limit: Option<String>,
    /// Upstream attempts made (for the client-side histogram and the access line).
    pub attempts: Attempts,
    /// The fingerprint of a session token minted for this request's response (a new session).
    pub new_session: Option<Fingerprint>,
    /// In-flight slots held for concurrency caps, released when the request ends.
    pub guards: Vec<pingora_limits::inflight::Guard>,
    /// The rewrite this response gets, if any ([`super::transform`]): a legacy stream's
    /// endpoint event, or list answers filtered per caller.
    pub transform: Option<Transform>,
    /// The client's `X-Request-Id` or one made here (see [`super::request_id`]).
    pub request_id: RequestId,
    /// When the response header went to the client (time to first byte).
    pub responded: Option<Instant>,
    /// The authenticated caller, on a route with `auth` (computed once, before limits).
    pub identity: Option<Arc<Identity>>,
    /// Held while an SSE response is streamed (the `streams_open` gauge).
    pub stream: Option<OpenStream>,
    /// The request became a detached stream ([`super::stream`]): this context is a stand-in
    /// and the stream counts and logs the request when it ends.
    pub detached: bool,
    /// This request's trace, when `[traces]` sampled it ([`crate::trace`]).
    pub trace: Option<Box<crate::trace::Trace>>,
    /// Whether the sampling decision was made (after the one reading; else at the end).
    pub trace_decided: bool,
}

impl Ctx {
    pub fn new(snap: Arc<Snapshot>) -> Ctx {
        Ctx {
            snap,
            start: Instant::now(),
            route: None,
            rule: None,
            pool: None,
            call: Call::unread(Era::Legacy),
            path: None,
            body: None,
            body_sent: false,
            streamed: 0,
            interim: 0,
            member: None,
            pinned: None,
            backend: None,
            probe: None,
            tried: Vec::new(),
            timeouts: None,
            first_byte: None,
            header_seen: false,

            reason: None,
            rpc_code: None,
            limit: None,
            attempts: Attempts::default(),
            new_session: None,
            guards: Vec::new(),
            transform: None,
            request_id: RequestId::default(),
            responded: None,
            identity: None,
            stream: None,
            detached: false,
            trace: None,
            trace_decided: false,
        }
    }

    /// Whether resending this request to another backend after it reached one is harmless:
    /// a safe method, or a tool the route declares idempotent.
    pub fn is_safe_to_resend(&self) -> bool {
        let Some(route) = self.route.and_then(|r| self.snap.router.routes().get(r)) else { return false };
        // Every element of a batch must be safe to resend.
        self.call.one.method != Method::None
            && self.call.elements().iter().all(|e| {
                e.method.is_safe()
                    || match (e.method, e.target_str()) {
                        (Method::ToolsCall, Some(tool)) => route.idempotent_tools.iter().any(|g| g.is_match(tool)),
                        _ => false,
                    }
            })
    }

    pub fn route_name(&self) -> &str {
        self.route.and_then(|r| self.snap.router.routes().get(r)).map_or("-", |r| r.name.as_str())
    }

    /// The bounded metric label for this request's tool, with its number
    /// ([`crate::state::Snapshot::tool_label`]).
    pub fn tool_label(&self) -> (usize, &str) {
        match (self.call.one.target_str(), self.call.one.method) {
            (Some(t), Method::ToolsCall) => self.snap.tool_label(t),
            (None, Method::ToolsCall) if self.call.one.target.is_some() => (1, "other"),
            _ => (0, "-"),
        }
    }

    /// This request's metric labels, with the status and error type of the request or attempt.
    pub fn labels(&self, status: u16, error: ErrorType) -> Labels<'_> {
        let (tool, tool_name) = self.tool_label();
        Labels {
            route: self.route,
            route_name: self.route_name(),
            method: self.call.one.method,
            tool,
            tool_name,
            status,
            error,
        }
    }
}
