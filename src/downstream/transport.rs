//! The byte stream under one client connection: the TCP socket itself, or a TLS session over
//! it. [`super::conn::Conn`] puts its deadlines, head limit and send timeout on top of this, so
//! on TLS they count and time plaintext (a request's bytes, not records). It does not
//! handshake (see [`super::tls`]) or know about requests.
//!
//! The one difference the connection must care about is waiting for the next request: rustls
//! may already hold decrypted bytes of it (read from the socket together with the last
//! request's end), so "the socket is readable" is not the only way a request can be waiting
//! ([`Transport::readable`]).

use std::io::{self, Write as _};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pingora::protocols::tls::SslDigest;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::tls::PeerCert;

pub enum Transport {
    Tcp(TcpStream),
    /// Boxed: a TLS session is a few hundred bytes that a plain connection should not carry.
    Tls(Box<Tls>),
}

/// A TLS session after its handshake, with what the proxy may learn about it.
pub struct Tls {
    pub stream: TlsStream<TcpStream>,
    pub digest: Arc<SslDigest>,
    /// ALPN chose HTTP/2.
    pub h2: bool,
    /// The verified client certificate (mTLS), if one was presented.
    pub peer: Option<Arc<PeerCert>>,
}

impl Transport {
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Tcp(tcp) => tcp,
            Transport::Tls(tls) => tls.stream.get_ref().0,
        }
    }

    pub fn tls(&self) -> Option<&Tls> {
        match self {
            Transport::Tcp(_) => None,
            Transport::Tls(tls) => Some(tls),
        }
    }

    /// Waits until reading would make progress: rustls holds decrypted bytes, or the socket
    /// is readable. Holds nothing while it waits.
    pub async fn readable(&mut self) -> io::Result<()> {
        if let Transport::Tls(tls) = self {
            let (_, session) = tls.stream.get_mut();
            // An error (a corrupt record) is returned by the read that follows.
            if session.process_new_packets().map_or(true, |s| s.plaintext_bytes_to_read() > 0) {
                return Ok(());
            }
        }
        self.tcp().readable().await
    }

    /// Writes `bytes` if the socket takes them now, never waiting (a last answer before
    /// closing: 408, 431). On TLS they are sealed into records first.
    pub fn try_send(&mut self, bytes: &[u8]) {
        match self {
            Transport::Tcp(tcp) => {
                let _ = tcp.try_write(bytes);
            }
            Transport::Tls(tls) => {
                let (tcp, session) = tls.stream.get_mut();
                if session.writer().write_all(bytes).is_err() {
                    return;
                }
                let mut socket = NonBlocking(tcp);
                while session.wants_write() {
                    if !matches!(session.write_tls(&mut socket), Ok(n) if n > 0) {
                        return;
                    }
                }
            }
        }
    }
}

/// A tokio socket as a `std::io::Write` that never waits (for rustls' `write_tls`).
struct NonBlocking<'a>(&'a TcpStream);

impl io::Write for NonBlocking<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsRawFd for Transport {
    fn as_raw_fd(&self) -> RawFd {
        self.tcp().as_raw_fd()
    }
}

impl AsyncRead for Transport {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Transport::Tls(tls) => Pin::new(&mut tls.stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Tcp(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Transport::Tls(tls) => Pin::new(&mut tls.stream).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(tcp) => Pin::new(tcp).poll_flush(cx),
            Transport::Tls(tls) => Pin::new(&mut tls.stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Transport::Tls(tls) => Pin::new(&mut tls.stream).poll_shutdown(cx),
        }
    }
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Tcp(tcp) => f.debug_tuple("Tcp").field(tcp).finish(),
            Transport::Tls(tls) => {
                f.debug_struct("Tls").field("tcp", tls.stream.get_ref().0).field("h2", &tls.h2).finish()
            }
        }
    }
}
