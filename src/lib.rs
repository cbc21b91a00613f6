//! mcp-edge: an MCP-aware edge proxy on Pingora.
//!
//! Layout, from the outside in:
//! - [`server`] assembles the process: proxy service, [`admin`] listener, health loop, SIGHUP (reload),
//!   SIGUSR1 (reopen the access log).
//! - [`downstream`] admits client connections (`max_connections`) and times their requests.
//! - [`proxy`] is the `ProxyHttp` implementation; each phase delegates to a small module.
//! - [`state`] holds the current [`state::Snapshot`] (config, [`router`], [`upstream`] pools)
//!   behind an `ArcSwap`, plus [`metrics`] and the [`session`] key.
//! - [`auth`] proves who the caller is, [`policy`] decides what it may call, [`discovery`]
//!   shows it only that in lists, [`audit`] writes both decisions' events.
//! - [`mcp`] parses JSON-RPC envelopes and knows MCP's methods and eras; [`config`] loads and
//!   validates TOML; [`glob`] compiles name patterns; [`telemetry`] sets up logging; [`fault`]
//!   keeps a panic inside the request that hit it.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod config;
pub mod discovery;
pub mod downstream;
pub mod fault;
pub mod federation;
pub mod glob;
pub mod limits;
pub mod mcp;
pub mod metrics;
pub mod policy;
pub mod proxy;
pub mod router;
pub mod server;
pub mod session;
pub mod state;
pub mod stdio;
pub mod systemd;
pub mod telemetry;
pub mod trace;
pub mod upgrade;
pub mod upstream;
