//! The one HTTP connector for requests the proxy makes on its own behalf (federated members'
//! lists, session DELETEs from the admin API, OAuth token and metadata fetches): built once per
//! process, so its TLS roots are read once, and its keep-alive pool lets a member's next page
//! or the next refresh reuse a connection. Per-peer settings (CA, SNI, client certificate,
//! timeouts) travel on each `HttpPeer`, so one connector serves every pool. Not owned here:
//! what is sent (callers) or the proxied traffic (Pingora's own connector).

use std::sync::LazyLock;

use pingora::connectors::http::Connector;

/// Reading the platform's trust roots takes milliseconds; a connector per request paid it on
/// every request (10 ms of a federated route's first list).
static CONNECTOR: LazyLock<Connector> = LazyLock::new(|| Connector::new(None));

pub fn connector() -> &'static Connector {
    &CONNECTOR
}
