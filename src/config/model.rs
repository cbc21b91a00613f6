//! The validated, typed configuration. Built only by `validate`; nothing here parses text or
//! knows about TOML. Pools and routes refer to each other by index, already resolved.

pub use super::ip_filter::IpFilter;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::glob::Glob;

pub use super::auth_model::*;
pub use super::header_model::*;
pub use super::policy_model::*;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this came from (None for the embedded demo default).
    pub source: Option<PathBuf>,
    /// Hex SHA-256 of the file's bytes: identifies what is running.
    pub digest: String,
    pub proxy: ProxySettings,
    pub admin: AdminSettings,
    pub sessions: SessionSettings,
    pub log: LogSettings,
    pub tool_labels: Vec<String>,
    pub pools: Vec<PoolConfig>,
    pub routes: Vec<RouteConfig>,
    pub limits: Vec<LimitConfig>,
    pub redis: Option<RedisSettings>,
    pub authenticators: Vec<AuthenticatorConfig>,
    /// `[traces]`: None, tracing is off and costs nothing.
    pub traces: Option<TraceSettings>,
}

/// `[traces]`: OTLP export of spans and the head-sampling rules.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSettings {
    pub endpoint: String,
    pub protocol: OtlpProtocol,
    /// The share of requests traced where the route does not say.
    pub sample: f64,
    /// A client's sampled context (`traceparent`, `_meta`) is traced whatever the ratio.
    pub follow_parent: bool,
    pub queue: usize,
    pub batch: usize,
    pub timeout: Duration,
    pub interval: Duration,
    pub service_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    Grpc,
    /// OTLP/HTTP with protobuf bodies.
    Http,
}

/// `[redis]`: where limits with `backend = "redis"` keep their shared counters.
#[derive(Clone, PartialEq)]
pub struct RedisSettings {
    /// Secret (may hold a password): shown only through [`RedisSettings::display_url`].
    pub url: String,
    /// Multiplexed connections; each carries many concurrent calls.
    pub connections: usize,
    /// Longest wait for one limit check before the limit's `on_redis_error` applies.
    pub timeout: Duration,
    /// After a failure, how long limits decide without Redis before trying it again.
    pub retry_interval: Duration,
    pub key_prefix: String,
}

impl RedisSettings {
    /// The URL with credentials replaced, for `/config`, `/status` and logs: user and
    /// password before `@`, and the whole query (Unix-socket URLs carry `?pass=` there).
    pub fn display_url(&self) -> String {
        let Some((scheme, rest)) = self.url.split_once("://") else { return "<redacted>".into() };
        let (rest, query) = match rest.split_once('?') {
            Some((r, _)) => (r, "?<redacted>"),
            None => (rest, ""),
        };
        match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://<redacted>@{host}{query}"),
            None => format!("{scheme}://{rest}{query}"),
        }
    }
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &self.display_url())
            .field("connections", &self.connections)
            .field("timeout", &self.timeout)
            .field("retry_interval", &self.retry_interval)
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

/// Where a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitBackend {
    /// In this process, with pingora-limits estimators.
    Local,
    /// In Redis, shared by every replica; `on_error` decides while Redis is unreachable.
    Redis { on_error: RedisFailure },
}

/// What a Redis-backed limit does when Redis cannot answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisFailure {
    /// Count in this process instead (each replica then allows the full rate).
    Local,
    /// Fail open: admit.
    Allow,
    /// Fail closed: refuse with 503.
    Deny,
}

impl RedisFailure {
    /// As written in the config (`on_redis_error`), in `/config` and as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            RedisFailure::Local => "local",
            RedisFailure::Allow => "allow",
            RedisFailure::Deny => "deny",
        }
    }
}

/// One part of a limit's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    ClientIp,
    Route,
    Method,
    Tool,
    /// A request header (lowercased name); absent counts as an empty value.
    Header(String),
    /// The authenticated identity's id (empty when the route has no `auth`).
    Identity,
    /// The identity's tenant (`claim:tenant`; empty when it has none).
    Tenant,
}

/// Rate over a window (`count` per `per`) with a burst allowance, and/or an in-flight cap.
#[derive(Debug, Clone, PartialEq)]
pub struct Quota {
    pub rate: Option<(u64, Duration)>,
    pub burst: u64,
    pub concurrency: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LimitConfig {
    pub name: String,
    pub key: Vec<KeyPart>,
    /// The default tier's quota (the limit's own rate/burst/concurrency when it has no tiers).
    pub quota: Quota,
    pub tiers: Vec<(String, Quota)>,
    /// Key value → index into `tiers`.
    pub assign: Vec<(String, usize)>,
    pub costs: Vec<(String, u64)>,
    pub backend: LimitBackend,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProxySettings {
    pub listen: Vec<SocketAddr>,
    pub threads: usize,
    pub max_body_bytes: usize,
    pub grace_period: Duration,
    pub shutdown_timeout: Duration,
    pub pid_file: String,
    pub upgrade_sock: String,
    /// Reload when the config file changes on disk (debounced).
    pub watch_config: bool,
    /// Whole-request-head deadline, from the first byte (from accept for a connection's first
    /// request); a client that misses it gets 408 and is closed.
    pub header_timeout: Duration,
    /// Whole-request-body deadline, from the end of the head.
    pub body_timeout: Duration,
    /// How long a connection may wait for its next request; zero closes after each response.
    pub keepalive_timeout: Duration,
    /// How long a write may wait on a client that does not read; then the connection closes.
    pub send_timeout: Duration,
    /// Client connections open at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// Members' streams the federated routes' merged streams (GET and `subscriptions/listen`)
    /// hold open at once; a merged stream that would pass it is answered 503.
    pub max_member_streams: usize,
    /// Client addresses the proxy's listeners accept; others are closed at accept.
    pub ips: IpFilter,
    /// Listeners that speak TLS (each one of `listen`), certificates loaded.
    pub tls: Vec<TlsListener>,
}

/// `[[proxy.tls]]`: TLS on one listener. The certificates were read when the config was
/// loaded, so every reload re-reads them.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsListener {
    pub listen: SocketAddr,
    pub cert_files: Vec<PathBuf>,
    pub client_ca_file: Option<PathBuf>,
    pub require_client_cert: bool,
    pub server: crate::downstream::tls::TlsServer,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AdminSettings {
    pub listen: SocketAddr,
    /// `Host` values allowed besides the loopback names and the listen address.
    pub allowed_hosts: Vec<HostRule>,
    pub token_file: Option<PathBuf>,
    /// The bearer token read from `token_file` when the config was loaded (so every reload
    /// re-reads it); None: no token required.
    pub token: Option<AdminToken>,
}

/// One `admin.allowed_hosts` entry, lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRule {
    /// `"*"`: any Host (for scraping by a changing address; pair it with a token).
    Any,
    /// `name` (also with the admin port) or `name:port` (exactly).
    Name { host: String, port: Option<u16> },
}

/// The admin bearer token, kept only as its SHA-256 digest: comparing digests in constant
/// time hides both the token and its length from timing, and nothing can print it.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken {
    digest: [u8; 32],
}

impl AdminToken {
    pub fn new(token: &[u8]) -> AdminToken {
        use sha2::Digest;
        AdminToken { digest: sha2::Sha256::digest(token).into() }
    }

    /// Whether `presented` is the token, in time independent of where they differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        use sha2::Digest;
        use subtle::ConstantTimeEq;
        let digest: [u8; 32] = sha2::Sha256::digest(presented).into();
        digest.ct_eq(&self.digest).into()
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SessionSettings {
    /// File holding the HMAC key (at least 32 bytes). None: a random key per process.
    pub key_file: Option<PathBuf>,
    /// After a key rotation, how long tokens sealed with the previous key still open.
    pub rotation_overlap: Duration,
    /// Session ids mcp-edge did not mint are forwarded untouched on routes without `auth`
    /// (else, and always on routes with `auth`, they get 404).
    pub forward_foreign: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
    /// One access-log line per request.
    pub access: bool,
    /// Where access lines go; None: stderr.
    pub access_file: Option<PathBuf>,
    /// Requests at least this long are logged whatever their route's `access_sample`.
    pub access_slow: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BackendConfig {
    pub addr: SocketAddr,
    pub weight: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthKind {
    Mcp,
    Http,
    Tcp,
    None,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HealthConfig {
    pub kind: HealthKind,
    pub interval: Duration,
    pub timeout: Duration,
    /// Request path for `http` checks (`mcp` checks use the pool's path).
    pub path: String,
    pub rise: usize,
    pub fall: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    pub name: String,
    /// For a stdio pool: empty in the validated config, its bridges' addresses once running
    /// (`state::snapshot`).
    pub backends: Vec<BackendConfig>,
    /// `[pool.stdio]`: the local servers mcp-edge runs for this pool.
    pub stdio: Option<super::stdio::StdioConfig>,
    /// Upstream MCP endpoint path; None keeps the client's path.
    pub path: Option<String>,
    /// Host header to send upstream; None preserves the client's Host.
    pub host: Option<String>,
    pub tls: bool,
    pub sni: String,
    /// CA bundle and client certificate for TLS to the backends, loaded.
    pub upstream_tls: super::upstream_tls::UpstreamTls,
    pub timeouts: Timeouts,
    pub health: HealthConfig,
    pub breaker: BreakerConfig,
    pub retry: RetryConfig,
    // Upstream headers: what the pool adds to requests, not how it connects (see `same_connections`).
    /// `[[pool.credential]]`, sent last on every request and health check.
    pub credentials: Vec<Credential>,
    /// `[pool.oauth]`: the proxy's own OAuth token, sent as `Authorization`.
    pub oauth: Option<OAuthClient>,
    pub headers: HeaderRules,
}

impl PoolConfig {
    /// Whether a pool built from `other` would connect, balance and check health like one
    /// built from `self`, credentials and header rules aside: then the pool's health, circuit
    /// and retry state carry over (`Pool::carry`), so rotating a credential resets nothing.
    pub fn same_connections(&self, other: &PoolConfig) -> bool {
        // Destructured without `..`: a new field must be placed on one side of this line.
        let PoolConfig {
            name,
            backends,
            stdio,
            path,
            host,
            tls,
            sni,
            upstream_tls,
            timeouts,
            health,
            breaker,
            retry,
            credentials: _,
            oauth: _,
            headers: _,
        } = self;
        *name == other.name
            && *backends == other.backends
            && *stdio == other.stdio
            && *path == other.path
            && *host == other.host
            && *tls == other.tls
            && *sni == other.sni
            && *upstream_tls == other.upstream_tls
            && *timeouts == other.timeouts
            && *health == other.health
            && *breaker == other.breaker
            && *retry == other.retry
    }
}

/// Upstream timeouts of a pool; routes and rules may override each one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeouts {
    /// Per connection attempt.
    pub connect: Duration,
    /// From sending the request until the response header arrives (a hung backend). Only
    /// shortens the wait: at or above `idle`, `idle` bounds it.
    pub first_byte: Duration,
    /// Longest silence on any upstream read once the response started (SSE streams).
    pub idle: Duration,
}

/// A route's or rule's replacements for some of its pool's timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TimeoutOverrides {
    pub connect: Option<Duration>,
    pub first_byte: Option<Duration>,
    pub idle: Option<Duration>,
}

impl Timeouts {
    pub fn with(self, o: &TimeoutOverrides) -> Timeouts {
        Timeouts {
            connect: o.connect.unwrap_or(self.connect),
            first_byte: o.first_byte.unwrap_or(self.first_byte),
            idle: o.idle.unwrap_or(self.idle),
        }
    }
}

/// Connect retries: at most `budget` x recent requests (+ `min_per_window` per 10 s), with a
/// jittered back-off doubling from `backoff` up to `max_backoff`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryConfig {
    pub budget: f64,
    pub min_per_window: u64,
    pub backoff: Duration,
    pub max_backoff: Duration,
}

/// Passive health: consecutive failures that eject a backend, and the ejection's length
/// (doubling with each ejection in a row, up to `max_cooldown`).
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    pub failures: u32,
    pub cooldown: Duration,
    pub max_cooldown: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PathMatch {
    Exact(String),
    Prefix(String),
}

/// Whether the proxy reads POST bodies before choosing an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inspect {
    /// Every POST (the default, also spelled "auto"): validated at the edge, classified,
    /// routed, limited and counted by what the body says.
    Always,
    /// Never: an explicit opaque pass-through (legacy SSE catch-alls, non-MCP paths). Nothing
    /// on such a route may depend on the method or target.
    Never,
}

/// Which `Origin` values a route accepts (an absent `Origin` always passes: it is not a
/// browser's cross-site request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origins {
    /// The default: the request's own authority (`Origin` host and port equal `Host`), plus
    /// loopback origins on loopback connections.
    SameHost,
    /// `allowed_origins = ["*"]`: any origin (an explicit opt-out).
    Any,
    /// These origins, normalised (`scheme://host[:port]`, lower case, no trailing `/`).
    List(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleConfig {
    /// Protocol era the rule applies to (None: both).
    pub era: Option<crate::mcp::method::Era>,
    /// `MCP-Protocol-Version` pattern (`2025-03-26` when the header is absent).
    pub protocol_version: Option<Glob>,
    pub method: Option<Glob>,
    pub tool: Option<Glob>,
    pub resource: Option<Glob>,
    pub prompt: Option<Glob>,
    /// None: the rule only adds limits; the pool comes from the route.
    pub pool: Option<usize>,
    /// Pools tried in order when `pool` has no usable backend.
    pub fallback: Vec<usize>,
    /// Indexes into `Config::limits`.
    pub limits: Vec<usize>,
    pub timeouts: TimeoutOverrides,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteConfig {
    pub name: String,
    pub path: PathMatch,
    pub host: Option<Glob>,
    pub listener: Option<SocketAddr>,
    pub pool: Option<usize>,
    /// Pools tried in order when `pool` has no usable backend.
    pub fallback: Vec<usize>,
    pub inspect: Inspect,
    /// JSON-RPC batches (2025-03-26) are accepted: every element is classified, limited and
    /// charged, and all must route to one pool. Off: batches get -32600.
    pub batches: bool,
    pub origins: Origins,
    /// Extra `Host` values accepted on loopback connections, besides loopback names and the
    /// route's own `host` pattern (the MCP DNS-rebinding rule).
    pub allowed_hosts: Vec<String>,
    /// Client addresses this route serves; others get 403.
    pub ips: IpFilter,
    pub limits: Vec<usize>,
    pub rules: Vec<RuleConfig>,
    pub timeouts: TimeoutOverrides,
    /// Tools whose calls may be resent to another backend after reaching one (they change
    /// nothing), like the safe methods `tools/list` or `resources/read` always may.
    pub idempotent_tools: Vec<Glob>,

    /// Whether routing or limits need the JSON-RPC method or target (rules, limits keyed by
    /// method or tool, tool costs, idempotent tools): refused on pass-through routes.
    pub needs_call: bool,
    /// Every pool a request on this route may be sent to: its pool and fallbacks, and each
    /// pool-choosing rule's pool and fallbacks (sorted, no repeats). A session token is
    /// honoured only on a route that serves its pool.
    pub serves: Vec<usize>,
    pub auth: RouteAuth,
    /// `[route.policy]`, compiled; None: every authenticated caller may call anything.
    pub policy: Option<PolicyConfig>,
    /// The fraction of successful requests that get an access line; errors, refusals and
    /// slow requests always do.
    pub access_sample: f64,
    /// The share of requests traced; None: `[traces] sample`.
    pub trace_sample: Option<f64>,
    /// `[route.headers]` and `forward_identity`, applied before the pool's.
    pub headers: HeaderRules,
    /// `[[route.member]]`s: the route offers their tools as one MCP server.
    pub federation: Option<Federation>,
}

/// A federated route's members and how long their merged tool list is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Federation {
    pub members: Vec<Member>,
    pub catalog_ttl: std::time::Duration,
    /// `failure_mode = "closed"`: a list missing a member's part, or a session a member did not
    /// join, is refused (503) rather than served partial.
    pub fail_closed: bool,
    /// Entries in a page of a merged list (0: the whole list is one page).
    pub page_size: usize,
    /// The most bytes the route's merged lists hold at once (entries and rendered pages).
    pub catalog_max_bytes: usize,
    /// When a member's names are offered under its prefix.
    pub prefix_mode: PrefixMode,
    /// `[route.result_cache]`: tools whose results are served again.
    pub results: Option<ResultCache>,
}

/// `[route.result_cache]`: a result is kept for `ttl` when its tool matches `tools` (offered
/// names) or, with `read_only_hint`, its member annotates it `readOnlyHint: true`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultCache {
    pub tools: Vec<crate::glob::Glob>,
    pub read_only_hint: bool,
    pub ttl: std::time::Duration,
    pub max_bytes: usize,
}

/// `prefix_mode`: when a member's tools, prompts and resources are offered under its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PrefixMode {
    /// Every name is `<prefix>_<name>` (URIs `<prefix>+<uri>`).
    #[default]
    Always,
    /// A name is prefixed only where several members offer it; the rest keep their own.
    Conflicts,
    /// Names are the members' own; a name two members offer goes to the first (in member
    /// order), and the conflict is logged and counted.
    Never,
}

impl PrefixMode {
    pub fn key(self) -> &'static str {
        match self {
            PrefixMode::Always => "always",
            PrefixMode::Conflicts => "conflicts",
            PrefixMode::Never => "never",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub pool: usize,
    /// Letters, digits and '-': the first '_' of an offered name ends it.
    pub prefix: String,
}

impl RouteConfig {
    /// Whether a request on this route may be sent to pool `pool`.
    pub fn serves(&self, pool: usize) -> bool {
        self.serves.binary_search(&pool).is_ok()
    }
}
