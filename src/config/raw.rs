//! Serde mirror of the TOML file. Owns nothing but shape: every field that validation may
//! complain about is `Spanned`, so errors can point at `file:line:col`. No defaults and no
//! checks live here; `validate` turns this into the typed model.

use serde::Deserialize;
use toml::Spanned;

pub type S<T> = Spanned<T>;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub proxy: RawProxy,
    #[serde(default)]
    pub admin: RawAdmin,
    #[serde(default)]
    pub sessions: RawSessions,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub metrics: RawMetrics,
    /// `[traces]`: OpenTelemetry spans exported over OTLP; absent, tracing is off.
    pub traces: Option<S<RawTraces>>,
    #[serde(default, rename = "pool")]
    pub pools: Vec<S<RawPool>>,
    #[serde(default, rename = "route")]
    pub routes: Vec<S<RawRoute>>,
    #[serde(default, rename = "limit")]
    pub limits: Vec<S<RawLimit>>,
    pub redis: Option<S<RawRedis>>,
    #[serde(default, rename = "authenticator")]
    pub authenticators: Vec<S<RawAuthenticator>>,
}

/// `[[authenticator]]`: a named way to prove who the caller is; routes list the ones they
/// accept. `kind` decides which of the other keys apply (checked in `config::authn`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthenticator {
    pub name: S<String>,
    /// "api_key" or "jwt".
    pub kind: S<String>,
    /// api_key: "authorization" (`Authorization: Bearer <key>`, the default) or a header name.
    pub header: Option<S<String>>,
    pub keys_file: Option<S<String>>,
    #[serde(default)]
    pub key: Vec<S<RawApiKey>>,
    pub issuer: Option<S<String>>,
    pub audience: Option<S<Vec<S<String>>>>,
    pub leeway: Option<S<String>>,
    pub jwks_file: Option<S<String>>,
    pub hs256_secret_file: Option<S<String>>,
    /// A JWKS document fetched at run time, refreshed every `jwks_refresh` and on an unknown `kid`.
    pub jwks_url: Option<S<String>>,
    pub jwks_refresh: Option<S<String>>,
    pub claims: Option<S<RawClaims>>,
    // client_cert: which certificate field is the identity, which ids are admitted, and
    // what every admitted certificate gets.
    pub identity: Option<S<String>>,
    pub allow: Option<S<Vec<S<String>>>>,
    pub tenant: Option<S<String>>,
    pub roles: Option<S<Vec<S<String>>>>,
    pub scopes: Option<S<Vec<S<String>>>>,
}

/// One API key: the identity it names and the SHA-256 of the key (never the key).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApiKey {
    pub id: S<String>,
    pub tenant: Option<S<String>>,
    #[serde(default)]
    pub roles: Vec<S<String>>,
    #[serde(default)]
    pub scopes: Vec<S<String>>,
    pub sha256: S<String>,
    /// RFC 3339, e.g. "2027-01-01T00:00:00Z".
    pub not_after: Option<S<String>>,
}

/// A keys file: `[[key]]` entries of the same shape as inline keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeysFile {
    #[serde(default)]
    pub key: Vec<S<RawApiKey>>,
}

/// Which JWT claims fill the identity.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClaims {
    pub id: Option<S<String>>,
    pub tenant: Option<S<String>>,
    pub roles: Option<S<String>>,
    pub scopes: Option<S<String>>,
}

/// `[route.oauth]`: RFC 9728 protected resource metadata for the route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOAuth {
    pub authorization_servers: S<Vec<S<String>>>,
    #[serde(default)]
    pub scopes_supported: Vec<S<String>>,
}

/// `[redis]`: the shared store for limits with `backend = "redis"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedis {
    /// May carry a password: secret, never shown or logged.
    pub url: S<String>,
    pub connections: Option<S<i64>>,
    pub timeout: Option<S<String>>,
    pub retry_interval: Option<S<String>>,
    pub key_prefix: Option<S<String>>,
}

/// `[[limit]]`: a rate and/or concurrency cap per key, attached to routes and rules by name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimit {
    pub name: S<String>,
    /// Key parts: "client_ip", "route", "method", "tool", "header:<name>".
    pub key: S<Vec<S<String>>>,
    pub rate: Option<S<String>>,
    pub burst: Option<S<i64>>,
    pub concurrency: Option<S<i64>>,
    /// Per-tool cost: an expensive tool spends several units of the budget.
    #[serde(default)]
    pub costs: std::collections::BTreeMap<String, S<i64>>,
    /// Named tiers (rate/burst/concurrency each); the key's first part picks one via `assign`.
    #[serde(default)]
    pub tiers: std::collections::BTreeMap<String, S<RawTier>>,
    pub default_tier: Option<S<String>>,
    /// Key value (e.g. an API key from a header) → tier name. Secret: never shown by /config.
    #[serde(default)]
    pub assign: std::collections::BTreeMap<String, S<String>>,
    /// "local" (default) or "redis" (one budget shared by every replica).
    pub backend: Option<S<String>>,
    /// With `backend = "redis"`, what to do while Redis is unreachable: "local", "allow", "deny".
    pub on_redis_error: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTier {
    pub rate: Option<S<String>>,
    pub burst: Option<S<i64>>,
    pub concurrency: Option<S<i64>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawProxy {
    pub listen: Option<S<Vec<S<String>>>>,
    pub threads: Option<S<i64>>,
    pub max_body_bytes: Option<S<i64>>,
    pub grace_period: Option<S<String>>,
    pub shutdown_timeout: Option<S<String>>,
    pub pid_file: Option<S<String>>,
    pub upgrade_sock: Option<S<String>>,
    pub watch_config: Option<bool>,
    pub header_timeout: Option<S<String>>,
    pub body_timeout: Option<S<String>>,
    pub keepalive_timeout: Option<S<String>>,
    pub send_timeout: Option<S<String>>,
    pub allow_ips: Option<Vec<S<String>>>,
    pub deny_ips: Option<Vec<S<String>>>,
    pub max_connections: Option<S<i64>>,
    pub max_member_streams: Option<S<i64>>,
    /// `[[proxy.tls]]`: listeners that speak TLS.
    #[serde(default)]
    pub tls: Vec<S<RawTls>>,
}

/// `[[proxy.tls]]`: TLS on one of `proxy.listen`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub listen: S<String>,
    #[serde(default)]
    pub cert: Vec<S<RawCert>>,
    pub client_ca_file: Option<S<String>>,
    pub require_client_cert: Option<S<bool>>,
}

/// `[[proxy.tls.cert]]`: one certificate chain and its key (PEM files).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCert {
    pub cert_file: S<String>,
    pub key_file: S<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub listen: Option<S<String>>,
    /// Extra `Host` values the admin API answers to (`name` or `name:port`, or `"*"`).
    pub allowed_hosts: Option<Vec<S<String>>>,
    /// File holding the bearer token every endpoint but /livez and /readyz requires.
    pub token_file: Option<S<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawSessions {
    pub key_file: Option<S<String>>,
    pub rotation_overlap: Option<S<String>>,
    /// "refuse" (the default) or "forward": session ids mcp-edge did not mint, on routes
    /// without `auth`.
    pub foreign_ids: Option<S<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub format: Option<S<String>>,
    pub level: Option<S<String>>,
    pub access: Option<bool>,
    /// Access lines go to this file instead of stderr (reopened on SIGUSR1).
    pub access_file: Option<S<String>>,
    /// Requests at least this long are logged whatever their route's `access_sample`.
    pub access_slow: Option<S<String>>,
}

/// `[traces]`: where spans go and which requests get them (validated in `config::traces`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTraces {
    /// The collector: `http://host:4317` (gRPC) or `http://host:4318/v1/traces` (HTTP).
    pub endpoint: S<String>,
    /// "grpc" (the default) or "http" (OTLP/HTTP with protobuf bodies).
    pub protocol: Option<S<String>>,
    /// The share of requests traced on routes without their own `trace_sample`.
    pub sample: Option<S<f64>>,
    /// "follow" (the default): a client's sampled context is traced whatever the ratio;
    /// "ratio": the ratio alone decides.
    pub parent: Option<S<String>>,
    /// Spans held for export; past it new spans are dropped and counted.
    pub queue: Option<S<i64>>,
    /// Spans per export call.
    pub batch: Option<S<i64>>,
    /// The longest wait for one export.
    pub timeout: Option<S<String>>,
    /// How often a partial batch is sent.
    pub interval: Option<S<String>>,
    /// `service.name` of the spans' resource.
    pub service_name: Option<S<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// Tool names that get their own label value; every other tool is counted as `other`.
    pub tools: Option<Vec<S<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPool {
    pub name: S<String>,
    /// Absent when `stdio` runs the pool's servers instead.
    pub backends: Option<S<Vec<S<RawBackend>>>>,
    pub stdio: Option<S<RawStdio>>,
    pub path: Option<S<String>>,
    pub host: Option<S<String>>,
    pub tls: Option<bool>,
    pub sni: Option<S<String>>,
    /// PEM CAs that verify the backends (instead of the system roots).
    pub ca_file: Option<S<String>>,
    /// The client certificate (PEM chain) and key the proxy presents to backends.
    pub client_cert_file: Option<S<String>>,
    pub client_key_file: Option<S<String>>,
    pub connect_timeout: Option<S<String>>,
    pub first_byte_timeout: Option<S<String>>,
    pub idle_timeout: Option<S<String>>,
    pub health: Option<S<RawHealth>>,
    pub breaker: Option<S<RawBreaker>>,
    pub retry: Option<S<RawRetry>>,
    // Upstream headers (see `config::upstream_headers`).
    #[serde(default)]
    pub credential: Vec<S<RawCredential>>,
    pub headers: Option<S<RawHeaderRules>>,
    pub forward_identity: Option<S<RawForwardIdentity>>,
    pub oauth: Option<S<RawPoolOAuth>>,
}

/// `[pool.stdio]`: local MCP servers the proxy starts and supervises (see `config::stdio`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStdio {
    pub command: S<String>,
    #[serde(default)]
    pub args: Vec<S<String>>,
    pub cwd: Option<S<String>>,
    /// Plain variables; the child's environment is cleared first.
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, S<String>>,
    /// Variables whose values are read from files (secrets), re-read on every reload.
    #[serde(default)]
    pub env_file: std::collections::BTreeMap<String, S<String>>,
    pub user: Option<S<String>>,
    pub processes: Option<S<i64>>,
    pub start_timeout: Option<S<String>>,
    pub restart_backoff: Option<S<String>>,
    pub max_restart_backoff: Option<S<String>>,
    pub ping_interval: Option<S<String>>,
    /// One process per client session instead of `processes` shared ones.
    pub per_session: Option<S<bool>>,
    pub max_sessions: Option<S<i64>>,
    pub session_idle: Option<S<String>>,
}

/// `[pool.oauth]`: the proxy's own OAuth token for the pool's backends (see
/// `config::oauth_client`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPoolOAuth {
    pub grant: Option<S<String>>,
    pub subject_token_type: Option<S<String>>,
    pub token_url: S<String>,
    pub client_id: S<String>,
    pub client_secret_env: Option<S<String>>,
    pub client_secret_file: Option<S<String>>,
    pub client_auth: Option<S<String>>,
    pub scope: Option<S<String>>,
    pub resource: Option<S<String>>,
    pub audience: Option<S<String>>,
}

/// `[pool.retry]`: the connect-retry budget and back-off.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    pub budget: Option<S<f64>>,
    pub min_per_window: Option<S<i64>>,
    pub backoff: Option<S<String>>,
    pub max_backoff: Option<S<String>>,
}

/// `[pool.breaker]`: passive health from live traffic.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBreaker {
    pub failures: Option<S<i64>>,
    pub cooldown: Option<S<String>>,
    pub max_cooldown: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawBackend {
    Addr(String),
    Table(RawBackendTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackendTable {
    pub addr: String,
    pub weight: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealth {
    pub check: Option<S<String>>,
    pub interval: Option<S<String>>,
    pub timeout: Option<S<String>>,
    pub path: Option<S<String>>,
    pub rise: Option<S<i64>>,
    pub fall: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: S<String>,
    pub path: Option<S<String>>,
    pub path_prefix: Option<S<String>>,
    pub host: Option<S<String>>,
    pub listener: Option<S<String>>,
    pub pool: Option<S<String>>,
    #[serde(default)]
    pub fallback: Vec<S<String>>,
    pub inspect: Option<S<String>>,
    pub batches: Option<bool>,
    pub allowed_origins: Option<Vec<S<String>>>,
    pub allowed_hosts: Option<Vec<S<String>>>,
    pub allow_ips: Option<Vec<S<String>>>,
    pub deny_ips: Option<Vec<S<String>>>,
    #[serde(default)]
    pub limits: Vec<S<String>>,
    #[serde(default)]
    pub rule: Vec<S<RawRule>>,
    pub connect_timeout: Option<S<String>>,
    pub first_byte_timeout: Option<S<String>>,
    pub idle_timeout: Option<S<String>>,
    #[serde(default)]
    pub idempotent_tools: Vec<S<String>>,
    /// Names of `[[authenticator]]`s, any of which may admit the caller.
    pub auth: Option<S<Vec<S<String>>>>,
    pub pass_token: Option<S<bool>>,
    pub public_url: Option<S<String>>,
    /// The fraction of successful requests that get an access line (0 to 1).
    pub access_sample: Option<S<f64>>,
    /// The share of this route's requests traced (overrides `[traces] sample`).
    pub trace_sample: Option<S<f64>>,
    pub oauth: Option<S<RawOAuth>>,
    // Upstream headers (see `config::upstream_headers`).
    pub headers: Option<S<RawHeaderRules>>,
    pub forward_identity: Option<S<RawForwardIdentity>>,
    /// Who may call what on this route (checked in `config::policy`).
    pub policy: Option<S<RawPolicy>>,
    /// Federation: the pools whose tools this route offers under their prefixes (checked in
    /// `config::federation`).
    #[serde(default)]
    pub member: Vec<S<RawMember>>,
    pub catalog_ttl: Option<S<String>>,
    /// Federation: `"open"` (default) or `"closed"` (checked in `config::federation`).
    pub failure_mode: Option<S<String>>,
    /// Federation: entries in a page of a merged list (checked in `config::federation`).
    pub page_size: Option<S<i64>>,
    /// Federation: the most bytes the route's merged lists may hold (checked in
    /// `config::federation`).
    pub catalog_max_bytes: Option<S<i64>>,
    /// Federation: `"always"` (default), `"conflicts"` or `"never"` (checked in
    /// `config::federation`).
    pub prefix_mode: Option<S<String>>,
    /// Federation: the tools whose results are kept (checked in `config::result_cache`).
    pub result_cache: Option<S<RawResultCache>>,
}

/// `[route.result_cache]`: results of read-only tools served again to the same caller asking
/// the same.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResultCache {
    #[serde(default)]
    pub tools: Vec<S<String>>,
    pub read_only_hint: Option<S<bool>>,
    pub ttl: Option<S<String>>,
    pub max_bytes: Option<S<i64>>,
}

/// `[[route.member]]`: a pool whose tools a federated route offers as `<prefix>_<tool>`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMember {
    pub pool: S<String>,
    pub prefix: S<String>,
}

/// `[route.policy]`: rules over the caller's identity and the call; first match wins, and a
/// call no rule matches is denied.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// How a denial answers unless its rule says otherwise: "forbidden" or "unknown".
    pub deny_as: Option<S<String>>,
    /// Whose "does not exist" answer `deny_as = "unknown"` copies: "spec", "typescript-sdk",
    /// "python-sdk".
    pub unknown_style: Option<S<String>>,
    /// A broader scope → the narrower scopes it implies (expanded transitively at load).
    #[serde(default)]
    pub scope_implies: std::collections::BTreeMap<String, S<Vec<S<String>>>>,
    #[serde(default)]
    pub rule: Vec<S<RawPolicyRule>>,
}

/// `[[route.policy.rule]]`: who (every condition given must hold), what (any of the lists may
/// match; none given: every call), and the effect.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicyRule {
    /// "allow" or "deny".
    pub effect: S<String>,
    pub ids: Option<S<Vec<S<String>>>>,
    pub tenants: Option<S<Vec<S<String>>>>,
    pub roles: Option<S<Vec<S<String>>>>,
    pub scopes: Option<S<Vec<S<String>>>>,
    /// Claim name → accepted values (the caller's claim must hold one of them).
    #[serde(default)]
    pub claims: std::collections::BTreeMap<String, S<Vec<S<String>>>>,
    pub methods: Option<S<Vec<S<String>>>>,
    pub tools: Option<S<Vec<S<String>>>>,
    pub resources: Option<S<Vec<S<String>>>>,
    pub prompts: Option<S<Vec<S<String>>>>,
    /// Scopes an allowed call needs; a caller lacking one gets 403 `insufficient_scope`.
    pub require_scopes: Option<S<Vec<S<String>>>>,
    pub deny_as: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub era: Option<S<String>>,
    pub protocol_version: Option<S<String>>,
    pub method: Option<S<String>>,
    pub tool: Option<S<String>>,
    pub resource: Option<S<String>>,
    pub prompt: Option<S<String>>,
    pub pool: Option<S<String>>,
    #[serde(default)]
    pub fallback: Vec<S<String>>,
    #[serde(default)]
    pub limits: Vec<S<String>>,
    pub connect_timeout: Option<S<String>>,
    pub first_byte_timeout: Option<S<String>>,
    pub idle_timeout: Option<S<String>>,
}

// --- Upstream headers: pool credentials, header transforms, identity forwarding ---

/// `[[pool.credential]]`: a header the proxy sends to every backend of the pool (and with its
/// health checks), its value read from an environment variable or a file (trimmed). Never
/// an inline value: non-secret headers go in `[pool.headers] set`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCredential {
    pub header: S<String>,
    pub env: Option<S<String>>,
    pub file: Option<S<String>>,
    /// Literal text before the secret, e.g. "Bearer ".
    pub prefix: Option<S<String>>,
}

/// `[route.headers]` / `[pool.headers]`: header names map to templates that may name
/// `{identity.id}` and `{identity.tenant}`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawHeaderRules {
    #[serde(default)]
    pub remove: Vec<S<String>>,
    #[serde(default)]
    pub set: std::collections::BTreeMap<String, S<String>>,
    #[serde(default)]
    pub add: std::collections::BTreeMap<String, S<String>>,
    #[serde(default)]
    pub response_remove: Vec<S<String>>,
    #[serde(default)]
    pub response_set: std::collections::BTreeMap<String, S<String>>,
}

/// `forward_identity = { id = "X-MCP-Identity", tenant = "X-MCP-Tenant", sign_with = {...} }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawForwardIdentity {
    pub id: Option<S<String>>,
    pub tenant: Option<S<String>>,
    pub sign_with: Option<S<RawSignWith>>,
}

/// HMAC-SHA256 over the forwarded identity, so a backend can trust it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSignWith {
    pub key_file: S<String>,
    pub header: Option<S<String>>,
    pub timestamp_header: Option<S<String>>,
}
