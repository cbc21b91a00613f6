//! The error table: every answer the proxy makes itself, as an HTTP status, a JSON-RPC code,
//! the `reason` it is logged and counted under, and a fixed message (never client input).
//! Written by `super::reply`, the one place that writes local replies.

use crate::mcp::error::RpcCode;
use crate::metrics::Reason;

/// A request the proxy answers itself.
#[derive(Debug, Clone, Copy)]
pub struct Reject {
    pub status: u16,
    pub code: RpcCode,
    pub reason: Reason,
    pub message: &'static str,
}

impl Reject {
    const fn new(status: u16, code: RpcCode, reason: Reason, message: &'static str) -> Reject {
        Reject { status, code, reason, message }
    }

    pub const NO_ROUTE: Reject =
        Reject::new(404, RpcCode::MethodNotFound, Reason::NoRoute, "no route serves this path or host");
    pub const NO_POOL: Reject = Reject::new(
        404,
        RpcCode::MethodNotFound,
        Reason::NoRoute,
        "no rule matches this request and the route has no default pool",
    );
    pub const ORIGIN: Reject = Reject::new(403, RpcCode::InvalidRequest, Reason::Origin, "Origin not allowed");
    pub const AMBIGUOUS_SESSION: Reject = Reject::new(
        400,
        RpcCode::InvalidRequest,
        Reason::BadHead,
        "the request names its session more than once (two session_id/sessionId parameters, or the parameter and Mcp-Session-Id)",
    );
    pub const IP_DENIED: Reject = Reject::new(
        403,
        RpcCode::InvalidRequest,
        Reason::IpDenied,
        "this client address is not allowed on this route (allow_ips / deny_ips)",
    );
    pub const HOST: Reject = Reject::new(
        403,
        RpcCode::InvalidRequest,
        Reason::Host,
        "Host not allowed on this listener (DNS rebinding protection); add it to the route's allowed_hosts",
    );
    pub const DUPLICATE_HEADER: Reject = Reject::new(
        400,
        RpcCode::InvalidRequest,
        Reason::BadHead,
        "a header that must appear once (Host, Origin, MCP-Protocol-Version, Mcp-Method, Mcp-Name, Mcp-Session-Id, Last-Event-ID) appears twice, or under a spelling with `_` that CGI-style servers read as the same",
    );
    pub const CONNECTION: Reject = Reject::new(
        400,
        RpcCode::InvalidRequest,
        Reason::BadHead,
        "Connection names an end-to-end header (Host, Mcp-*, MCP-Protocol-Version, Content-*, Origin, Authorization, Accept)",
    );
    pub const METHOD_CASE: Reject = Reject::new(
        400,
        RpcCode::InvalidRequest,
        Reason::BadHead,
        "the HTTP method is a standard method in another case (methods are case-sensitive: send POST, GET, DELETE)",
    );
    pub const NO_HOST: Reject =
        Reject::new(400, RpcCode::InvalidRequest, Reason::BadHead, "HTTP/1.1 request without a Host header");
    pub const HOST_MISMATCH: Reject = Reject::new(
        400,
        RpcCode::InvalidRequest,
        Reason::BadHead,
        "the absolute-form request target names another host than the Host header",
    );
    pub const BAD_PATH: Reject = Reject::new(
        400,
        RpcCode::InvalidRequest,
        Reason::BadHead,
        "path cannot be canonicalised: it must start with /, must not contain ; or \\, and must not encode /, \\, . or NUL",
    );
    pub const BATCH: Reject = Reject::new(
        400,
        RpcCode::InvalidRequest,
        Reason::BatchRefused,
        "Invalid Request: JSON-RPC batches are not accepted (MCP removed batching in 2025-06-18)",
    );
    pub const BATCH_SPLIT: Reject = Reject::new(
        400,
        RpcCode::InvalidRequest,
        Reason::BatchRefused,
        "Invalid Request: the batch's elements route to different pools; send them separately",
    );
    pub const MISSING_TARGET: Reject = Reject::new(
        400,
        RpcCode::InvalidParams,
        Reason::InvalidParams,
        "Invalid params: tools/call and prompts/get need params.name, resources/* need params.uri",
    );
    pub const COMPLETION_REFERENCE: Reject = Reject::new(
        400,
        RpcCode::InvalidParams,
        Reason::InvalidParams,
        "Invalid params: completion/complete needs params.ref of type ref/prompt (with name) or ref/resource (with uri), each named once",
    );
    pub const CURSOR: Reject = Reject::new(
        400,
        RpcCode::InvalidParams,
        Reason::InvalidParams,
        "Invalid params: params.cursor is not a cursor this route gave for this list; list again without one",
    );
    pub const VERSION_SUFFIX: Reject = Reject::new(
        400,
        RpcCode::InvalidRequest,
        Reason::InvalidRequest,
        "Invalid Request: MCP-Protocol-Version holds a protocol version with more after it; send the version alone",
    );
    pub const PARSE: Reject =
        Reject::new(400, RpcCode::ParseError, Reason::ParseError, "Parse error: the body is not valid JSON");
    pub const INVALID: Reject = Reject::new(
        400,
        RpcCode::InvalidRequest,
        Reason::InvalidRequest,
        "Invalid Request: not a JSON-RPC 2.0 message",
    );
    pub const TOO_LARGE: Reject =
        Reject::new(413, RpcCode::InvalidRequest, Reason::BodyTooLarge, "request body exceeds proxy.max_body_bytes");
    pub const REQUEST_TIMEOUT: Reject = Reject::new(
        408,
        RpcCode::InvalidRequest,
        Reason::RequestTimeout,
        "request body not received within proxy.body_timeout",
    );
    pub const MALFORMED_BODY: Reject = Reject::new(
        400,
        RpcCode::InvalidRequest,
        Reason::MalformedBody,
        "malformed request: bad chunked encoding or Content-Length",
    );
    pub const LENGTH_REQUIRED: Reject = Reject::new(
        411,
        RpcCode::InvalidRequest,
        Reason::LengthRequired,
        "this route reads the body to route it, and a chunked body over 64 KiB cannot be replayed upstream; send Content-Length",
    );
    pub const HEADER_MISMATCH: Reject = Reject::new(
        400,
        RpcCode::HeaderMismatch,
        Reason::HeaderMismatch,
        "Header mismatch: MCP-Protocol-Version, Mcp-Method and Mcp-Name must be present (2026-07-28) and match the body",
    );
    pub const UNKNOWN_SESSION: Reject = Reject::new(
        404,
        RpcCode::SessionNotFound,
        Reason::UnknownSession,
        "Session not found: unknown, expired or forged session id; re-initialize",
    );
    pub const NO_HEALTHY: Reject =
        Reject::new(503, RpcCode::ServerError, Reason::NoHealthyBackend, "no healthy backend in the pool");
    pub const UPSTREAM: Reject =
        Reject::new(502, RpcCode::ServerError, Reason::UpstreamFailed, "upstream connection failed");
    pub const CREDENTIAL: Reject = Reject::new(
        503,
        RpcCode::ServerError,
        Reason::UpstreamCredential,
        "the proxy could not obtain its credential for the backend ([pool.oauth]); retry later",
    );
    pub const NO_SUBJECT: Reject = Reject::new(
        403,
        RpcCode::InvalidRequest,
        Reason::Forbidden,
        "this backend acts on the caller's behalf (token exchange): authenticate with a bearer token, not an API key",
    );
    pub const FEDERATED_STREAM: Reject = Reject::new(
        405,
        RpcCode::InvalidRequest,
        Reason::BadHead,
        "a federated route's GET stream needs the session's Mcp-Session-Id, Accept: text/event-stream and a member with a stream (DELETE ends a session); send POST",
    );
    pub const MEMBER_STREAMS: Reject = Reject::new(
        503,
        RpcCode::ServerError,
        Reason::ConcurrencyLimited,
        "the federated routes hold proxy.max_member_streams members' streams open; retry later",
    );
    pub const MEMBER_SESSION_GONE: Reject = Reject::new(
        404,
        RpcCode::SessionNotFound,
        Reason::UnknownSession,
        "Session not found: the server owning this tool lost its part of the session; re-initialize",
    );
    pub const FEDERATED_SESSION: Reject = Reject::new(
        503,
        RpcCode::ServerError,
        Reason::UpstreamFailed,
        "the members' sessions could not be opened as one session; retry later",
    );
    pub const FEDERATED_INCOMPLETE: Reject = Reject::new(
        503,
        RpcCode::ServerError,
        Reason::UpstreamFailed,
        "a member of this federated route did not answer, and the route is fail-closed; retry later",
    );
    pub const FEDERATED_METHOD: Reject = Reject::new(
        200,
        RpcCode::MethodNotFound,
        Reason::InvalidRequest,
        "Method not found: this federated route offers tools, prompts, resources and completions only",
    );
    /// The 2026-07-28 era's "method not found" (its removed methods too): 404, as its servers.
    pub const FEDERATED_NOT_FOUND: Reject = Reject::new(
        404,
        RpcCode::MethodNotFound,
        Reason::InvalidRequest,
        "Method not found: this federated route offers server/discover, subscriptions/listen, tools, prompts, resources and completions",
    );
    pub const LISTEN: Reject = Reject::new(
        400,
        RpcCode::InvalidParams,
        Reason::InvalidParams,
        "Invalid params: subscriptions/listen needs params.notifications (flags true or false, resourceSubscriptions: at most 256 URI strings) and params._meta",
    );
    pub const META: Reject = Reject::new(
        400,
        RpcCode::InvalidParams,
        Reason::InvalidParams,
        "Invalid params: a 2026-07-28 request's params._meta must carry io.modelcontextprotocol/protocolVersion and io.modelcontextprotocol/clientCapabilities",
    );
    pub const TIMEOUT: Reject = Reject::new(
        504,
        RpcCode::ServerError,
        Reason::UpstreamTimeout,
        "upstream timed out (connect_timeout, first_byte_timeout or idle_timeout)",
    );
}

/// The reply for a request that gets no token for its pool's backends.
pub fn for_token(refusal: crate::upstream::token::Refusal) -> Reject {
    match refusal {
        crate::upstream::token::Refusal::Unavailable => Reject::CREDENTIAL,
        crate::upstream::token::Refusal::NoSubject => Reject::NO_SUBJECT,
    }
}
