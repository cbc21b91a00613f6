//! The proxy's listening sockets and their accept loops, as a Pingora service.
//!
//! Why not Pingora's listening service: it spawns each connection as a task whose future
//! holds a TLS handshake and the first request's state inline (about 9 KiB per connection,
//! kept for the connection's life), and it keeps every idle keep-alive connection inside a
//! request future waiting for the next head (another 18 KiB with the head buffer). Here a
//! connection's task is small and [`super::Listener`] parks idle connections on the bare
//! socket; together that is most of what 10,000 idle connections cost.
//!
//! What it keeps from Pingora: sockets are registered in, and on a binary upgrade taken over
//! from, Pingora's table of listening descriptors under the same names Pingora uses, so an
//! upgrade works in both directions between builds with either accept loop.
//!
//! What it does not do: admission, deadlines or HTTP (see [`super::Listener`]).

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::{ListenFds, ShutdownWatch};
use pingora::services::Service;
use tokio::net::{TcpListener, TcpSocket};

use super::Listener;

/// Pending connections the kernel may queue per listener (Pingora's value).
const BACKLOG: u32 = 65535;

/// Out of descriptors: how long an accept loop pauses so open connections can finish.
const EMFILE_PAUSE: Duration = Duration::from_secs(1);

pub struct ProxyService {
    name: String,
    listen: Vec<SocketAddr>,
    threads: usize,
    app: Arc<Listener>,
}

impl ProxyService {
    pub fn new(listen: Vec<SocketAddr>, threads: usize, app: Listener) -> ProxyService {
        ProxyService { name: "mcp-edge proxy".to_owned(), listen, threads, app: Arc::new(app) }
    }
}

#[async_trait]
impl Service for ProxyService {
    async fn start_service(&mut self, fds: Option<ListenFds>, shutdown: ShutdownWatch, _per_fd: usize) {
        let mut loops = Vec::with_capacity(self.listen.len());
        for &addr in &self.listen {
            match bind(addr, fds.as_ref()) {
                Ok(listener) => {
                    loops.push(tokio::spawn(accept(listener, addr, Arc::clone(&self.app), shutdown.clone())))
                }
                Err(e) => {
                    // Pingora's own listeners abort start-up the same way: a proxy that is
                    // missing one of its listeners must not report itself ready.
                    tracing::error!(listen = %addr, error = %e, "cannot listen");
                    std::process::exit(1);
                }
            }
        }
        for l in loops {
            let _ = l.await;
        }
        self.app.drain().await;
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn threads(&self) -> Option<usize> {
        Some(self.threads)
    }

    fn listen_addresses(&self) -> Option<Vec<String>> {
        Some(self.listen.iter().map(ToString::to_string).collect())
    }
}

/// The listening socket for `addr`: the one inherited in `fds` (binary upgrade), else a new
/// one, registered in `fds` for the next upgrade.
fn bind(addr: SocketAddr, fds: Option<&ListenFds>) -> std::io::Result<TcpListener> {
    let name = addr.to_string();
    if let Some(fd) = fds.and_then(|f| f.lock().get(&name).copied()) {
        // SAFETY: the descriptor was handed over by the previous process for this address
        // and nothing else in this process owns it; Pingora's own listeners take it the same way.
        let std = unsafe { std::net::TcpListener::from_raw_fd(fd) };
        std.set_nonblocking(true)?;
        return TcpListener::from_std(std);
    }
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener = socket.listen(BACKLOG)?;
    if let Some(fds) = fds {
        fds.lock().add(name, listener.as_raw_fd());
    }
    Ok(listener)
}

/// Accepts until shutdown on the listener configured as `addr`; each connection becomes a
/// task of its own.
async fn accept(listener: TcpListener, addr: SocketAddr, app: Arc<Listener>, mut shutdown: ShutdownWatch) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            changed = shutdown.changed() => match changed {
                Ok(()) if !*shutdown.borrow() => continue,
                _ => break,
            },
        };
        match accepted {
            Ok((tcp, peer)) => {
                let app = Arc::clone(&app);
                let shutdown = shutdown.clone();
                tokio::spawn(async move { app.serve(tcp, peer, addr, shutdown).await });
            }
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) || e.raw_os_error() == Some(libc::ENFILE) => {
                tracing::warn!(error = %e, "out of file descriptors: not accepting for a second");
                tokio::time::sleep(EMFILE_PAUSE).await;
            }
            // A connection reset while queued, and the like: it concerns that client only.
            Err(e) => tracing::debug!(error = %e, "accept failed"),
        }
    }
}
