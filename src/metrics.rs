//! Every metric mcp-edge exports, on an owned registry (never the process-global one). This
//! is the only file that names metrics. Label values are bounded: routes, pools and backends
//! come from config, methods from a fixed list, tools from `[metrics] tools` or `other`, and
//! reasons from [`Reason`]. Raw client input never becomes a label.
//!
//! `upstream_attempts_total` is counted once per upstream attempt, beside the client histogram;
//! its backend label is the configured address, rendered once per pool build
//! (`Pool::backend_label`), so counting allocates nothing.
//!
//! Duration buckets (seconds) span 0.5 ms to 60 s: JSON answers sit at the low end, tool calls
//! streamed over SSE may run for minutes and land in the top bucket.
//!
//! The MCP operation histograms follow the OpenTelemetry MCP semantic conventions
//! (`mcp.server.operation.duration`, `mcp.client.operation.duration`, with the conventions'
//! buckets, 10 ms to 300 s), under the registry's `mcp_edge_` prefix like every other metric.
//! `request_duration_seconds` stays beside them: its finer low buckets (from 0.5 ms) are what
//! the status page's p50/p99 and the `McpEdgeSlowRequests` rule read, and the conventions'
//! first bucket (10 ms) would put every answered-from-memory request in one bucket.

use crate::auth::{AuthMethod, Denied};
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

const BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// The OpenTelemetry MCP semantic conventions' buckets for operation durations (seconds).
const MCP_BUCKETS: &[f64] = &[0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];

/// Labels of the server-side MCP histograms (whole request, time to first byte).
const SERVER_LABELS: &[&str] = &["route", "method", "tool", "status_class", "error_type"];
/// Labels of the per-attempt upstream histogram.
const CLIENT_LABELS: &[&str] = &["route", "pool", "method", "tool", "status_class", "error_type"];

/// How an operation failed: the `error_type` label of the MCP histograms (the conventions'
/// `error.type`), a fixed set so the label stays bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// It did not fail.
    None,
    /// An upstream connect, first-byte or idle timeout.
    Timeout,
    /// No connection to the backend could be made (refused, unreachable, TLS).
    Connect,
    /// The backend broke the exchange after the connection was made (reset, closed early,
    /// a malformed response).
    UpstreamError,
    /// The backend answered with a 5xx status.
    Upstream5xx,
    /// No usable backend in the request's pools.
    NoBackend,
    /// mcp-edge answered itself: an invalid request, a limit, auth, no route.
    Refused,
    /// The client went away (or failed its side of the request) before the answer was complete.
    ClientGone,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::None => "_none",
            ErrorType::Timeout => "timeout",
            ErrorType::Connect => "connect",
            ErrorType::UpstreamError => "upstream_error",
            ErrorType::Upstream5xx => "upstream_5xx",
            ErrorType::NoBackend => "no_backend",
            ErrorType::Refused => "refused",
            ErrorType::ClientGone => "client_gone",
        }
    }
}

/// How one upstream attempt ended: the `result` label of `upstream_attempts_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// The backend answered with a status below 400.
    Ok,
    ClientError,
    ServerError,
    /// The backend gave no complete answer: no connection, a timeout, a reset or a broken
    /// exchange (also after its header, a stream cut by the backend).
    Failed,
    /// The client went away, or one of mcp-edge's own filters stopped the request, before the
    /// backend answered: not the backend's doing.
    Cancelled,
}

impl AttemptResult {
    /// The result of an attempt that got `status` from the backend (0: none) and ended as `kind`.
    pub fn of(status: u16, kind: ErrorType) -> AttemptResult {
        match (kind, status) {
            (ErrorType::Timeout | ErrorType::Connect | ErrorType::UpstreamError, _) => AttemptResult::Failed,
            (_, 0) => AttemptResult::Cancelled,
            (_, 500..) => AttemptResult::ServerError,
            (_, 400..) => AttemptResult::ClientError,
            _ => AttemptResult::Ok,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AttemptResult::Ok => "ok",
            AttemptResult::ClientError => "4xx",
            AttemptResult::ServerError => "5xx",
            AttemptResult::Failed => "failed",
            AttemptResult::Cancelled => "cancelled",
        }
    }

    pub const ALL: [AttemptResult; 5] = [
        AttemptResult::Ok,
        AttemptResult::ClientError,
        AttemptResult::ServerError,
        AttemptResult::Failed,
        AttemptResult::Cancelled,
    ];

    /// Whether it counts as the backend's error on the status page (5xx or failed).
    pub fn is_error(self) -> bool {
        matches!(self, AttemptResult::ServerError | AttemptResult::Failed)
    }
}

/// Why the proxy answered a request itself instead of forwarding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    NoRoute,
    Origin,
    ParseError,
    InvalidRequest,
    BodyTooLarge,
    LengthRequired,
    HeaderMismatch,
    UnknownSession,
    NoHealthyBackend,
    UpstreamFailed,
    UpstreamTimeout,
    RateLimited,
    ConcurrencyLimited,
    LimiterUnavailable,
    /// A malformed or hostile request head: duplicate MCP headers, `Connection` naming an
    /// end-to-end header, no `Host`, a path that cannot be canonicalised.
    BadHead,
    /// A `Host` a loopback listener does not serve (DNS rebinding).
    Host,
    BatchRefused,
    InvalidParams,
    RequestTimeout,
    MalformedBody,
    /// The client's address is not allowed on the route (`allow_ips` / `deny_ips`).
    IpDenied,
    /// A route with `auth` got no valid credential.
    Unauthenticated,
    /// The route's policy denied the call (answered 403, or as an unknown tool with
    /// `deny_as = "unknown"`).
    Forbidden,
    /// The pool's `[pool.oauth]` token could not be obtained.
    UpstreamCredential,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NoRoute => "no_route",
            Reason::IpDenied => "ip_denied",
            Reason::Origin => "origin",
            Reason::ParseError => "parse_error",
            Reason::InvalidRequest => "invalid_request",
            Reason::BodyTooLarge => "body_too_large",
            Reason::LengthRequired => "length_required",
            Reason::HeaderMismatch => "header_mismatch",
            Reason::UnknownSession => "unknown_session",
            Reason::NoHealthyBackend => "no_healthy_backend",
            Reason::UpstreamFailed => "upstream_failed",
            Reason::UpstreamTimeout => "upstream_timeout",
            Reason::RateLimited => "rate_limited",
            Reason::ConcurrencyLimited => "concurrency_limited",
            Reason::LimiterUnavailable => "limiter_unavailable",
            Reason::BadHead => "bad_head",
            Reason::Host => "host",
            Reason::BatchRefused => "batch_refused",
            Reason::InvalidParams => "invalid_params",
            Reason::RequestTimeout => "request_timeout",
            Reason::MalformedBody => "malformed_body",
            Reason::Unauthenticated => "unauthenticated",
            Reason::Forbidden => "forbidden",
            Reason::UpstreamCredential => "upstream_credential",
        }
    }
}

/// Where in its request a client connection was when it gave up or ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Head,
    Body,
    Response,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Head => "head",
            Phase::Body => "body",
            Phase::Response => "response",
        }
    }
}

pub struct Metrics {
    registry: Registry,
    /// Every registered metric's name, without the prefix.
    names: Vec<String>,
    pub requests: IntCounterVec,
    pub duration: HistogramVec,
    /// `mcp.server.operation.duration`: each request as its client sees it.
    pub server_duration: HistogramVec,
    /// `mcp.client.operation.duration`: each upstream attempt, retries observed separately.
    pub client_duration: HistogramVec,
    pub first_byte: HistogramVec,
    pub rejections: IntCounterVec,
    pub session_overrides: IntCounterVec,
    pub list_answers_refused: IntCounterVec,
    pub member_messages_cut: IntCounterVec,
    pub token_fetches: IntCounterVec,
    /// Tool lists asked of a federated route's members, by route, member prefix and result.
    pub member_lists: IntCounterVec,
    /// A federated route's merged lists: how they were served, what they hold.
    pub catalog: CatalogMetrics,
    pub results: ResultMetrics,
    pub trace_spans: IntCounterVec,
    pub sessions_opened: IntCounterVec,
    pub retries: IntCounterVec,
    pub limited: IntCounterVec,
    pub limit_admitted: IntCounterVec,
    /// Set when `/metrics` is read, from each limit's busiest keys.
    pub limit_usage: GaugeVec,
    pub retries_denied: IntCounterVec,
    pub ejections: IntCounterVec,
    /// Upstream attempts by pool, backend and [`AttemptResult`]: the status page's per-backend
    /// rates.
    pub upstream_attempts: IntCounterVec,
    pub failovers: IntCounterVec,
    pub redis_errors: IntCounterVec,
    pub redis_fallbacks: IntCounterVec,
    pub circuit: IntGaugeVec,
    pub circuit_transitions: IntCounterVec,
    pub upstream_healthy: IntGaugeVec,
    pub config_generation: IntGauge,
    pub config_reloads: IntCounterVec,
    pub config_last_success: IntGauge,
    /// Mirrors `fault::PANICS` (the panic hook cannot reach the registry).
    panics: prometheus::IntCounter,
    pub connections_open: IntGauge,
    pub streams_open: IntGauge,
    pub connections_refused: IntCounter,
    pub connections_denied: IntCounter,
    pub tls_handshake_failures: IntCounterVec,
    pub client_aborts: IntCounterVec,
    pub client_timeouts: IntCounterVec,
    /// Request and response body bytes, by route.
    pub bytes_in: IntCounterVec,
    pub bytes_out: IntCounterVec,
    /// Upstream connections per attempt, by pool and whether a pooled one was reused.
    pub upstream_connections: IntCounterVec,
    /// Health probes by pool and result, and their latency by pool.
    pub health_checks: IntCounterVec,
    pub health_check_duration: HistogramVec,
    /// Authentication outcomes by route and result.
    pub auth: IntCounterVec,
    /// Legacy sessions seen recently (set when `/metrics` is rendered).
    pub sessions_seen: IntGauge,
    /// stdio pools: processes restarted, and processes serving, by pool.
    pub stdio_restarts: IntCounterVec,
    pub stdio_up: IntGaugeVec,
    /// `per_session` stdio pools: client sessions asked for, by pool and outcome.
    pub stdio_sessions: IntCounterVec,
}

/// The catalog cache of federated routes (`federation::stats` resolves them per catalog).
pub struct CatalogMetrics {
    /// By route, list and result (`hit`, `stale`, `miss`).
    pub lookups: IntCounterVec,
    /// By route and reason (`invalidated`, `list_changed`, `size`).
    pub evictions: IntCounterVec,
    /// Entries and bytes held, by route, member and list (both eras summed).
    pub entries: IntGaugeVec,
    pub bytes: IntGaugeVec,
}

/// The tool-result cache of federated routes (`federation::results` resolves them per route).
pub struct ResultMetrics {
    /// By route and result (`hit`, `miss`).
    pub lookups: IntCounterVec,
    /// By route and reason (`expired`, `size`, `invalidated`).
    pub evictions: IntCounterVec,
    /// Results and bytes held, by route.
    pub entries: IntGaugeVec,
    pub bytes: IntGaugeVec,
}

#[derive(Debug, thiserror::Error)]
#[error("metrics registry: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl Metrics {
    pub fn new() -> Result<Metrics, MetricsError> {
        let registry = Registry::new_custom(Some("mcp_edge".into()), None)?;
        let names = std::cell::RefCell::new(Vec::new());
        // Every registration goes through here, so `names` lists them all.
        let register = |c: Box<dyn prometheus::core::Collector>| -> Result<(), prometheus::Error> {
            names.borrow_mut().extend(c.desc().iter().map(|d| d.fq_name.trim_start_matches("mcp_edge_").to_owned()));
            registry.register(c)
        };
        let counter = |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, MetricsError> {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            register(Box::new(c.clone()))?;
            Ok(c)
        };
        let requests = counter(
            "requests_total",
            "Requests finished, by route, JSON-RPC method, tool and HTTP status.",
            &["route", "method", "tool", "status"],
        )?;
        let rejections = counter("rejections_total", "Requests answered by the proxy itself, by reason.", &["reason"])?;
        let session_overrides = counter(
            "session_overrides_total",
            "Requests whose session pinned them to a backend other than the one their rule named.",
            &["route"],
        )?;
        let sessions_opened =
            counter("sessions_opened_total", "Backend sessions wrapped into proxy tokens, by pool.", &["pool"])?;
        let list_answers_refused = counter(
            "list_answers_refused_total",
            "List answers a policy route could not filter and refused, by route and reason.",
            &["route", "reason"],
        )?;
        let member_lists = counter(
            "federation_member_lists_total",
            "Lists a federated route asked of its members (every page), by route, member prefix, list (tools, prompts, resources, resourceTemplates) and result (ok, failed).",
            &["route", "member", "list", "result"],
        )?;
        let member_messages_cut = counter(
            "federation_member_messages_cut_total",
            "Federated calls whose member answer was cut (or, before its head, answered 502) because a message in it may not pass, by route, member prefix and reason (foreign_answer, second_answer, not_jsonrpc, not_json, key_twice, key_alias, too_deep, unfinished, encoded, content_type, uri_twice).",
            &["route", "member", "reason"],
        )?;
        let catalog_gauge = |name: &str, help: &str| -> Result<IntGaugeVec, MetricsError> {
            let g = IntGaugeVec::new(Opts::new(name, help), &["route", "member", "list"])?;
            register(Box::new(g.clone()))?;
            Ok(g)
        };
        let catalog = CatalogMetrics {
            lookups: counter(
                "federation_catalog_lookups_total",
                "Merged lists a federated route's clients asked for, by route, list and result: hit (fresh), stale (served while one refresh runs in the background), miss (the caller waited for the members).",
                &["route", "list", "result"],
            )?,
            evictions: counter(
                "federation_catalog_evictions_total",
                "Merged lists made cold before their catalog_ttl, by route and reason (invalidated: POST /cache/invalidate; list_changed: a member said so on a federated session's stream; size: catalog_max_bytes).",
                &["route", "reason"],
            )?,
            entries: catalog_gauge(
                "federation_catalog_entries",
                "Entries a federated route's latest merged lists hold, by route, member prefix and list (both protocol eras summed).",
            )?,
            bytes: catalog_gauge(
                "federation_catalog_bytes",
                "Bytes of entries a federated route's latest merged lists hold, by route, member prefix and list (both protocol eras summed; as offered).",
            )?,
        };
        let route_gauge = |name: &str, help: &str| -> Result<IntGaugeVec, MetricsError> {
            let g = IntGaugeVec::new(Opts::new(name, help), &["route"])?;
            register(Box::new(g.clone()))?;
            Ok(g)
        };
        let results = ResultMetrics {
            lookups: counter(
                "federation_result_cache_lookups_total",
                "Calls to a cacheable tool on a federated route, by route and result: hit (answered from [route.result_cache]), miss (sent to the member).",
                &["route", "result"],
            )?,
            evictions: counter(
                "federation_result_cache_evictions_total",
                "Cached tool results dropped, by route and reason (expired: past their ttl; size: max_bytes; invalidated: POST /cache/invalidate).",
                &["route", "reason"],
            )?,
            entries: route_gauge("federation_result_cache_entries", "Tool results a federated route's result cache holds, by route.")?,
            bytes: route_gauge("federation_result_cache_bytes", "Bytes of tool results a federated route's result cache holds, by route (with the keys).")?,
        };
        let stdio_restarts = counter(
            "stdio_restarts_total",
            "stdio server processes started again after one exited or failed to start, by pool.",
            &["pool"],
        )?;
        let stdio_up = IntGaugeVec::new(
            Opts::new("stdio_up", "stdio server processes serving (started and initialized), by pool."),
            &["pool"],
        )?;
        register(Box::new(stdio_up.clone()))?;
        let stdio_sessions = counter(
            "stdio_sessions_total",
            "Client sessions a per_session stdio pool was asked to open, by pool and outcome (opened; full: max_sessions running; failed: the process did not start).",
            &["pool", "outcome"],
        )?;
        let token_fetches = counter(
            "upstream_token_fetches_total",
            "Token requests to a pool's [pool.oauth] token endpoint, by pool and result (ok, refused, invalid, unreachable).",
            &["pool", "result"],
        )?;
        let trace_spans = counter(
            "trace_spans_total",
            "Trace spans by what became of them: exported (the collector took them), failed (an export failed or timed out; not retried), dropped (the export queue was full).",
            &["result"],
        )?;
        let limited = counter(
            "limit_rejections_total",
            "Requests refused by a [[limit]], by route, limit and reason (rate_limited, concurrency_limited, limiter_unavailable).",
            &["route", "limit", "reason"],
        )?;
        let limit_admitted = counter(
            "limit_admitted_total",
            "Checks a [[limit]] let through, by limit (with limit_rejections_total: the share of traffic a limit refuses).",
            &["limit"],
        )?;
        let limit_usage = GaugeVec::new(
            Opts::new(
                "limit_usage_ratio",
                "The busiest key's use of its quota in the last minute, by limit: 1 is the whole quota (0 while no key reached half of it).",
            ),
            &["limit"],
        )?;
        register(Box::new(limit_usage.clone()))?;
        let retries_denied = counter(
            "upstream_retries_denied_total",
            "Failed attempts not retried because the pool's retry budget was spent, by pool.",
            &["pool"],
        )?;
        let ejections = counter(
            "upstream_ejections_total",
            "Backends ejected by their circuit breaker (passive health), by pool and backend.",
            &["pool", "backend"],
        )?;
        let upstream_attempts = counter(
            "upstream_attempts_total",
            "Upstream attempts (each retry is one more), by pool, backend and result: ok (answered below 400), 4xx, 5xx, failed (no complete answer: connect error, timeout, reset), cancelled (the client left, or mcp-edge stopped the request, before the backend answered).",
            &["pool", "backend", "result"],
        )?;
        let failovers = counter(
            "failovers_total",
            "Requests sent to a fallback pool because the first had no usable backend, by route and pool.",
            &["route", "pool"],
        )?;
        let redis_errors = counter(
            "redis_limit_errors_total",
            "Redis limit checks that failed (timeout, error) or were skipped while Redis was marked down (down), by limit.",
            &["limit", "kind"],
        )?;
        let redis_fallbacks = counter(
            "redis_limit_fallbacks_total",
            "Requests a Redis-backed limit decided without Redis, by limit and on_redis_error policy (local, allow, deny).",
            &["limit", "policy"],
        )?;
        let circuit = IntGaugeVec::new(
            Opts::new("upstream_circuit_state", "Circuit breaker state per backend: 0 closed, 1 open, 2 half-open."),
            &["pool", "backend"],
        )?;
        register(Box::new(circuit.clone()))?;
        let retries = counter(
            "upstream_retries_total",
            "Failed attempts resent to another backend (connect failures; safe requests after reaching one), by pool.",
            &["pool"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "request_duration_seconds",
                "Time from request start to the last response byte, by route and method.",
            )
            .buckets(BUCKETS.to_vec()),
            &["route", "method"],
        )?;
        register(Box::new(duration.clone()))?;
        let histogram = |name: &str, help: &str, labels: &[&str]| -> Result<HistogramVec, MetricsError> {
            let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(MCP_BUCKETS.to_vec()), labels)?;
            register(Box::new(h.clone()))?;
            Ok(h)
        };
        let server_duration = histogram(
            "mcp_server_operation_duration_seconds",
            "MCP requests as their clients see them, from the request's start to its last response byte (OpenTelemetry mcp.server.operation.duration), by route, method, tool, status class and error type.",
            SERVER_LABELS,
        )?;
        let client_duration = histogram(
            "mcp_client_operation_duration_seconds",
            "Upstream attempts, from connecting to the backend to the end of its response or the attempt's failure; each retry is one more (OpenTelemetry mcp.client.operation.duration), by route, pool, method, tool, status class and error type.",
            CLIENT_LABELS,
        )?;
        let first_byte = histogram(
            "time_to_first_byte_seconds",
            "From the request's start to its response header going to the client, by route, method, tool, status class and error type.",
            SERVER_LABELS,
        )?;
        let upstream_healthy = IntGaugeVec::new(
            Opts::new("upstream_healthy", "1 when the backend passes its health check, else 0."),
            &["pool", "backend"],
        )?;
        register(Box::new(upstream_healthy.clone()))?;
        let config_generation =
            IntGauge::new("config_generation", "Generation of the running config (1 at start, +1 per reload).")?;
        register(Box::new(config_generation.clone()))?;
        let config_reloads =
            counter("config_reloads_total", "Config reloads attempted, by result (ok, error).", &["result"])?;
        let config_last_success = IntGauge::new(
            "config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful reload (0: none since start).",
        )?;
        register(Box::new(config_last_success.clone()))?;
        let panics = prometheus::IntCounter::new(
            "panics_total",
            "Panics contained since start: each ended only the request (task) that hit it; every one is a bug.",
        )?;
        register(Box::new(panics.clone()))?;
        let connections_open = IntGauge::new("connections_open", "Client connections open now.")?;
        register(Box::new(connections_open.clone()))?;
        let streams_open = IntGauge::new(
            "streams_open",
            "SSE responses being streamed to clients now (GET streams of legacy sessions, streamed tool calls, HTTP+SSE, federated merged streams and listens).",
        )?;
        register(Box::new(streams_open.clone()))?;
        let connections_refused = IntCounter::new(
            "connections_refused_total",
            "Client connections answered 503 and closed because proxy.max_connections were open.",
        )?;
        register(Box::new(connections_refused.clone()))?;
        let tls_handshake_failures = counter(
            "tls_handshake_failures_total",
            "Client connections to a TLS listener that did not become a TLS session, by reason (timeout, plaintext, failed).",
            &["reason"],
        )?;
        let connections_denied = IntCounter::new(
            "connections_denied_total",
            "Client connections closed at accept because proxy.allow_ips / proxy.deny_ips do not admit the address.",
        )?;
        register(Box::new(connections_denied.clone()))?;
        let client_aborts = counter(
            "client_aborts_total",
            "Requests the client abandoned by closing or resetting its connection, by phase (head, body, response).",
            &["phase"],
        )?;
        let client_timeouts = counter(
            "client_timeouts_total",
            "Requests cut off by proxy.header_timeout (head) or proxy.body_timeout (body), by phase.",
            &["phase"],
        )?;

        let bytes_in =
            counter("request_body_bytes_total", "Request body bytes read from clients, by route.", &["route"])?;
        let bytes_out =
            counter("response_body_bytes_total", "Response body bytes sent to clients, by route.", &["route"])?;
        let upstream_connections = counter(
            "upstream_connections_total",
            "Upstream attempts by the connection they used: reused (\"true\", from the keep-alive pool) or new (\"false\"), by pool.",
            &["pool", "reused"],
        )?;
        let circuit_transitions = counter(
            "upstream_circuit_transitions_total",
            "Circuit breaker transitions by pool, backend and the state entered (half_open: a probe let through; closed: the probe succeeded); openings are upstream_ejections_total. Exported with the health loop's pass, so up to one interval late.",
            &["pool", "backend", "to"],
        )?;
        let health_checks = counter(
            "health_checks_total",
            "Active health probes by pool and result (ok, failed).",
            &["pool", "result"],
        )?;
        let health_check_duration = HistogramVec::new(
            HistogramOpts::new("health_check_duration_seconds", "Active health probe latency, by pool.")
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["pool"],
        )?;
        register(Box::new(health_check_duration.clone()))?;
        let auth = counter(
            "auth_total",
            "Authentication on routes with `auth`, by route, method (the authenticator kind that decided: api_key, jwt, client_cert; none when no credential was presented) and result (ok, missing: no credential, invalid: a credential no authenticator accepts, duplicate: a credential header sent twice).",
            &["route", "method", "result"],
        )?;
        let sessions_seen = IntGauge::new(
            "sessions_seen",
            "Legacy sessions seen recently (the admin /sessions list; bounded, oldest forgotten first).",
        )?;
        register(Box::new(sessions_seen.clone()))?;
        let build_info = IntGaugeVec::new(
            Opts::new("build_info", "Always 1; the running build's version in a label."),
            &["version"],
        )?;
        register(Box::new(build_info.clone()))?;
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let names = names.into_inner();
        Ok(Metrics {
            registry,
            names,
            requests,
            duration,
            server_duration,
            client_duration,
            first_byte,
            rejections,
            session_overrides,
            list_answers_refused,
            member_messages_cut,
            token_fetches,
            member_lists,
            catalog,
            results,
            stdio_restarts,
            stdio_up,
            stdio_sessions,
            trace_spans,
            sessions_opened,
            retries,
            limited,
            limit_admitted,
            limit_usage,
            retries_denied,
            ejections,
            upstream_attempts,
            failovers,
            redis_errors,
            redis_fallbacks,
            circuit,

            upstream_healthy,
            config_generation,
            config_reloads,
            config_last_success,
            panics,
            connections_open,
            streams_open,
            connections_refused,
            connections_denied,
            tls_handshake_failures,
            client_aborts,
            client_timeouts,
            bytes_in,
            bytes_out,
            circuit_transitions,
            upstream_connections,
            health_checks,
            health_check_duration,
            auth,
            sessions_seen,
        })
    }

    /// The names of every registered metric, without the `mcp_edge_` prefix (for the check
    /// that the README documents each one).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The Prometheus text exposition of everything registered.
    pub fn render(&self) -> Vec<u8> {
        let seen = crate::fault::PANICS.load(std::sync::atomic::Ordering::Relaxed);
        self.panics.inc_by(seen.saturating_sub(self.panics.get()));
        let mut out = Vec::with_capacity(8192);
        // Encoding into a Vec only fails on invalid metric families, which we never build.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        out
    }
}

/// A pool's upstream counters, each series resolved on its first use and then held, so
/// counting an attempt hashes no labels (series still appear only once used).
pub struct PoolCounters {
    pool: String,
    backends: Vec<String>,
    attempts_vec: IntCounterVec,
    connections_vec: IntCounterVec,
    /// Per backend (the pool's order), per [`AttemptResult::ALL`].
    attempts: Vec<[std::sync::OnceLock<IntCounter>; 5]>,
    /// New, reused.
    connections: [std::sync::OnceLock<IntCounter>; 2],
}

impl PoolCounters {
    pub fn new(m: &Metrics, pool: &str, backends: Vec<String>) -> PoolCounters {
        PoolCounters {
            pool: pool.to_owned(),
            attempts: backends.iter().map(|_| Default::default()).collect(),
            backends,
            attempts_vec: m.upstream_attempts.clone(),
            connections_vec: m.upstream_connections.clone(),
            connections: Default::default(),
        }
    }

    /// The `backend` label of the backend at `index`.
    pub fn backend_label(&self, index: usize) -> Option<&str> {
        self.backends.get(index).map(String::as_str)
    }

    /// Counts an attempt of the backend at `index` (the pool's order).
    pub fn attempt(&self, index: usize, result: AttemptResult) {
        let (Some(slots), Some(backend)) = (self.attempts.get(index), self.backends.get(index)) else { return };
        let i = AttemptResult::ALL.iter().position(|r| *r == result).unwrap_or(0);
        let series = || self.attempts_vec.with_label_values(&[&self.pool, backend, result.as_str()]);
        slots[i].get_or_init(series).inc();
    }

    /// Counts an upstream connection, new or reused.
    pub fn connection(&self, reused: bool) {
        let label = if reused { "true" } else { "false" };
        let series = || self.connections_vec.with_label_values(&[&self.pool, label]);
        self.connections[usize::from(reused)].get_or_init(series).inc();
    }
}

/// `auth_total` for one route with `auth`, by authenticator kind and result; each series
/// resolved on first use (no label hashing per request, no zero series for kinds the route
/// does not accept).
pub struct AuthCounters {
    route: String,
    vec: IntCounterVec,
    /// Per [`AuthMethod::ALL`], per result (`ok`, then [`Denied::ALL`]).
    cells: [[std::sync::OnceLock<IntCounter>; 4]; 4],
}

impl AuthCounters {
    pub fn new(m: &Metrics, route: &str) -> AuthCounters {
        AuthCounters { route: route.to_owned(), vec: m.auth.clone(), cells: Default::default() }
    }

    pub fn count(&self, method: AuthMethod, result: Result<(), Denied>) {
        let m = AuthMethod::ALL.iter().position(|k| *k == method).unwrap_or(3);
        let (r, label) = match result {
            Ok(()) => (0, "ok"),
            Err(d) => (1 + Denied::ALL.iter().position(|k| *k == d).unwrap_or(0), d.as_str()),
        };
        let series = || self.vec.with_label_values(&[&self.route, method.as_str(), label]);
        if let Some(cell) = self.cells.get(m).and_then(|row| row.get(r)) {
            cell.get_or_init(series).inc();
        }
    }
}

/// One SSE response counted in `streams_open` for as long as this lives.
pub struct OpenStream(IntGauge);

impl OpenStream {
    pub fn new(gauge: &IntGauge) -> OpenStream {
        gauge.inc();
        OpenStream(gauge.clone())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A status code as a label without allocating for the common ones.
// The exact codes come first on purpose; the ranges catch the rest.
#[allow(clippy::match_overlapping_arm)]
pub fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        202 => "202",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        406 => "406",
        408 => "408",
        411 => "411",
        413 => "413",
        421 => "421",
        429 => "429",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        0 => "0",
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The status class label of the MCP histograms: `2xx` and so on, `0` when no status was sent.
pub fn status_class(status: u16) -> &'static str {
    match status {
        0 => "0",
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}
