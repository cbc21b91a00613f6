//! An event stream (a session's GET stream, a listen's answer) on a raw socket, read as it
//! arrives: its head, its messages so far, its end.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Edge;

/// An event stream (a session's GET stream, a listen's answer), read as it arrives.
pub struct Listening {
    conn: TcpStream,
    raw: Vec<u8>,
}

impl Listening {
    pub fn open(edge: &Edge, token: &str, accept: &str) -> Listening {
        let req = format!(
            "GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAccept: {accept}\r\nMcp-Session-Id: {token}\r\n\r\n",
            edge.port
        );
        Listening::sent(edge, req.as_bytes())
    }

    /// The answer to raw request `req`.
    pub fn sent(edge: &Edge, req: &[u8]) -> Listening {
        let mut conn = TcpStream::connect(("127.0.0.1", edge.port)).expect("connect");
        conn.write_all(req).expect("send");
        conn.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
        Listening { conn, raw: Vec::new() }
    }

    /// The client sends `bytes` on the stream's connection.
    pub fn send(&mut self, bytes: &[u8]) {
        self.conn.write_all(bytes).expect("send");
    }

    /// The client sends FIN and reads on.
    pub fn half_close(&self) {
        self.conn.shutdown(std::net::Shutdown::Write).expect("shutdown");
    }

    /// Reads until `done` holds of the messages received (or the stream ends), within 10 s.
    pub fn until(&mut self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let messages = self.messages();
            if done(&messages) {
                return messages;
            }
            assert!(Instant::now() < deadline, "{what}; received:\n{}", String::from_utf8_lossy(&self.raw));
            if let Got::Closed = self.read_some() {
                panic!("{what}: the stream ended; received:\n{}", String::from_utf8_lossy(&self.raw));
            }
        }
    }

    /// Reads until the stream ends (its last chunk, or the connection closed), within 10 s.
    pub fn until_end(&mut self, why: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.ended() {
            assert!(Instant::now() < deadline, "the stream did not end after {why}");
            if let Got::Closed = self.read_some() {
                return;
            }
        }
    }

    /// Whether the last chunk came.
    pub fn ended(&self) -> bool {
        self.raw.ends_with(b"0\r\n\r\n")
    }

    /// Reads until the response head came, within 10 s.
    pub fn until_head(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.raw.windows(4).any(|w| w == b"\r\n\r\n") {
            assert!(Instant::now() < deadline, "no head; received:\n{}", String::from_utf8_lossy(&self.raw));
            if let Got::Closed = self.read_some() {
                panic!("closed before its head: {}", String::from_utf8_lossy(&self.raw));
            }
        }
        self.head()
    }

    /// One read (up to its 100 ms timeout) of what arrived.
    fn read_some(&mut self) -> Got {
        let mut buf = [0u8; 16 << 10];
        match self.conn.read(&mut buf) {
            Ok(0) => Got::Closed,
            Ok(n) => {
                self.raw.extend_from_slice(&buf[..n]);
                Got::Some
            }
            // Closed with bytes unread: the proxy's side resets the connection.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Got::Closed,
            Err(_) => Got::Some,
        }
    }

    pub fn head(&self) -> String {
        let text = String::from_utf8_lossy(&self.raw);
        text.split("\r\n\r\n").next().unwrap_or_default().to_owned()
    }

    /// Whether the head says the body is chunked.
    pub fn chunked(&self) -> bool {
        self.head().to_ascii_lowercase().contains("transfer-encoding: chunked")
    }

    /// The body's text so far (chunked framing removed when the head says chunked; else the
    /// body is framed by the connection's close, as for an HTTP/1.0 client).
    pub fn body(&self) -> String {
        let Some(at) = self.raw.windows(4).position(|w| w == b"\r\n\r\n") else { return String::new() };
        let mut rest = &self.raw[at + 4..];
        if !self.chunked() {
            return String::from_utf8_lossy(rest).into_owned();
        }
        let mut out = Vec::new();
        while let Some(line) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..line]).unwrap_or("x").trim(), 16);
            let Ok(size) = size else { break };
            let Some(chunk) = rest.get(line + 2..line + 2 + size) else { break };
            out.extend_from_slice(chunk);
            rest = rest.get(line + 4 + size..).unwrap_or_default();
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Every event's data, read as JSON (anything else is the test's failure).
    pub fn messages(&self) -> Vec<Value> {
        let body = self.body();
        let events = body.split("\n\n").filter(|e| e.lines().any(|l| l.starts_with("data:")));
        let data = |e: &str| e.lines().filter_map(|l| l.strip_prefix("data: ")).collect::<Vec<_>>().join("\n");
        events.map(|e| serde_json::from_str(&data(e)).unwrap_or_else(|err| panic!("not JSON ({err}): {e:?}"))).collect()
    }
}

/// What one read found.
enum Got {
    Some,
    Closed,
}
