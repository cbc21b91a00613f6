//! A client connection that chose HTTP/2 by ALPN on a TLS listener: Pingora's HTTP/2 server
//! (its handshake and stream acceptance), each stream handed to the unchanged `HttpProxy` on
//! a task of its own, as Pingora's own `ServerApp` does (its accept loop is not public).
//!
//! Deadlines: the HTTP/2 preface and settings are due within the head deadline that already
//! ran through the TLS handshake; a connection with no open stream for `keepalive_timeout` is
//! closed. Per-stream head and body deadlines are not enforced here (Pingora's HTTP/2 limits
//! bound a stream's headers; the connection's clock sees only frames). Plain-text listeners
//! never get here: they speak HTTP/1.1 only.

use std::sync::Arc;
use std::time::Duration;

use pingora::apps::HttpServerApp;
use pingora::protocols::http::v2::server::{self, H2Accept, HttpSession};
use pingora::protocols::http::ServerSession;
use pingora::protocols::{Digest, GetProxyDigest, GetSocketDigest, GetTimingDigest, Ssl};
use pingora::proxy::HttpProxy;
use pingora::server::ShutdownWatch;
use tokio::time::Instant;

use super::conn::Conn;
use crate::proxy::Edge;

/// Serves `conn` as HTTP/2 until the client closes it, it idles for `keepalive`, or a drain
/// has let its open streams finish.
pub async fn serve(
    proxy: &Arc<HttpProxy<Edge>>,
    mut conn: Box<Conn>,
    due: Instant,
    keepalive: Duration,
    mut shutdown: ShutdownWatch,
) {
    conn.multiplex();
    let peer = conn.peer_cert();
    let digest = Arc::new(Digest {
        ssl_digest: conn.get_ssl_digest(),
        timing_digest: conn.get_timing_digest(),
        proxy_digest: conn.get_proxy_digest(),
        socket_digest: conn.get_socket_digest(),
    });
    let handshake = server::handshake(conn, proxy.h2_options());
    let mut h2 = match tokio::time::timeout_at(due, handshake).await {
        Ok(Ok(h2)) => h2,
        Ok(Err(e)) => return tracing::debug!(error = %e, "HTTP/2 handshake failed"),
        Err(_) => return tracing::debug!("client too slow: no HTTP/2 preface within proxy.header_timeout"),
    };
    // Each stream task holds a clone: the count says whether any is open.
    let streams = Arc::new(());
    let mut draining = *shutdown.borrow();
    if draining {
        h2.graceful_shutdown();
    }
    // Idle means no stream open and none accepted for a whole period: closed after between
    // one and two periods of quiet (a timer per connection, not per stream).
    let period = keepalive.max(Duration::from_secs(1));
    let mut tick = Instant::now() + period;
    let mut busy = false;
    loop {
        let accepted = tokio::select! {
            biased;
            changed = shutdown.changed(), if !draining => {
                if changed.is_err() || *shutdown.borrow() {
                    draining = true;
                    h2.graceful_shutdown();
                }
                continue;
            }
            accepted = HttpSession::from_h2_conn(&mut h2, Arc::clone(&digest)) => accepted,
            () = tokio::time::sleep_until(tick) => {
                let open = Arc::strong_count(&streams) > 1;
                if !busy && !open {
                    return tracing::debug!("HTTP/2 connection idle for proxy.keepalive_timeout: closed");
                }
                busy = open;
                tick = Instant::now() + period;
                continue;
            }
        };
        match accepted {
            Ok(Some(H2Accept::Session(stream))) => {
                busy = true;
                let proxy = Arc::clone(proxy);
                let shutdown = shutdown.clone();
                let open = Arc::clone(&streams);
                let peer = peer.clone();
                tokio::spawn(async move {
                    let _open = open;
                    let session = ServerSession::new_http2(stream);
                    super::tls::scope(peer, proxy.process_new_http(session, &shutdown)).await;
                });
            }
            Ok(Some(H2Accept::Rejected)) => {}
            Ok(None) => return,
            // Clients often drop the connection without a GOAWAY.
            Err(e) => return tracing::debug!(error = %e, "HTTP/2 connection ended"),
        }
    }
}
