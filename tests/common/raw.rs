//! Raw-socket HTTP/1.1 for hostile tests: the request goes out exactly as written (curl and
//! reqwest would normalise the path, merge or drop headers), and every read has a deadline,
//! so a proxy that hangs fails the test instead of stalling it. A connection that closes
//! before a status line is reported as such: that is what a crashed proxy looks like.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// How long one exchange may take, from connect to the end of the last response.
pub const DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{} body is not JSON ({e}): {}", self.status, self.text()))
    }
    /// The JSON-RPC error code of a local refusal (`error.code`).
    pub fn rpc_code(&self) -> Option<i64> {
        serde_json::from_slice::<serde_json::Value>(&self.body).ok()?["error"]["code"].as_i64()
    }
}

/// One request on a fresh connection, one response. Panics (naming the likely cause) when the
/// connection closes without a response.
pub fn send(port: u16, request: &[u8]) -> RawResponse {
    match try_send(port, request) {
        Ok(r) => r,
        Err(e) => panic!("no response from :{port} ({e}); did the proxy crash?\nrequest:\n{}", show(request)),
    }
}

pub fn try_send(port: u16, request: &[u8]) -> io::Result<RawResponse> {
    let mut conn = Conn::open(port)?;
    conn.stream.write_all(request)?;
    conn.response()
}

/// One request on a fresh connection, and every byte the server sent until it closed (or the
/// deadline): for a response the server cut short, which no parser would hand over whole.
pub fn until_close(port: u16, request: &[u8]) -> Vec<u8> {
    let mut conn = Conn::open(port).unwrap_or_else(|e| panic!("connect :{port}: {e}"));
    conn.stream.write_all(request).unwrap_or_else(|e| panic!("write to :{port}: {e}"));
    loop {
        match conn.fill() {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof || e.kind() == io::ErrorKind::ConnectionReset => {
                return conn.buf;
            }
            Err(e) => panic!("reading from :{port}: {e} (after {} bytes)", conn.buf.len()),
        }
    }
}

/// How long `exchange_many` waits for each response after the first: a server that keeps the
/// connection open and sends nothing more in this time has answered all it will.
pub const NEXT_RESPONSE: Duration = Duration::from_secs(2);

/// Writes `requests` back to back on one connection (pipelining), then reads responses until
/// `requests.len()` arrived, or the server closed or fell silent (`NEXT_RESPONSE`) after at
/// least one: fewer responses than requests means the rest were never answered as requests.
pub fn exchange_many(port: u16, requests: &[&[u8]]) -> Vec<RawResponse> {
    let mut conn = Conn::open(port).unwrap_or_else(|e| panic!("connect :{port}: {e}"));
    conn.stream.write_all(&requests.concat()).unwrap_or_else(|e| panic!("write to :{port}: {e}"));
    let mut out = Vec::new();
    while out.len() < requests.len() {
        if !out.is_empty() {
            conn.deadline = Instant::now() + NEXT_RESPONSE;
        }
        match conn.response() {
            Ok(r) => out.push(r),
            Err(e) if !out.is_empty() && is_end(&e) => break,
            Err(e) => panic!("response {} from :{port}: {e}; did the proxy crash?", out.len() + 1),
        }
    }
    out
}

fn is_end(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::UnexpectedEof | io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock)
}

/// A POST with MCP's usual headers (Host, Content-Type, Accept, Content-Length, close) plus
/// `extra` lines, written as given.
pub fn post(port: u16, target: &str, extra: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut head = format!(
        "POST {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !extra.iter().any(|(k, _)| k.eq_ignore_ascii_case("connection")) {
        head.push_str("Connection: close\r\n");
    }
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

/// Like `post`, but the body goes as `Transfer-Encoding: chunked`, split into `chunks` pieces.
pub fn post_chunked(port: u16, target: &str, extra: &[(&str, &str)], body: &str, chunks: usize) -> Vec<u8> {
    let mut head = format!(
        "POST {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    let size = body.len().div_ceil(chunks.max(1)).max(1);
    for piece in body.as_bytes().chunks(size) {
        bytes.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        bytes.extend_from_slice(piece);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"0\r\n\r\n");
    bytes
}

/// A request head written line by line (no Host or anything else added), then `body`.
pub fn lines(request_line: &str, headers: &[&str], body: &str) -> Vec<u8> {
    let mut text = format!("{request_line}\r\n");
    for h in headers {
        text.push_str(h);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    text.push_str(body);
    text.into_bytes()
}

fn show(request: &[u8]) -> String {
    String::from_utf8_lossy(&request[..request.len().min(600)]).into_owned()
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    deadline: Instant,
}

impl Conn {
    fn open(port: u16) -> io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        Ok(Conn { stream, buf: Vec::new(), deadline: Instant::now() + DEADLINE })
    }

    /// Reads more bytes; EOF is an `UnexpectedEof` error.
    fn fill(&mut self) -> io::Result<()> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, format!("no complete response within {DEADLINE:?}")));
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    fn take_line(&mut self) -> io::Result<String> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..i + 2).collect();
                return Ok(String::from_utf8_lossy(&line[..i]).into_owned());
            }
            self.fill()?;
        }
    }

    fn take(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            self.fill()?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// One response; 1xx interim responses are skipped. (No HEAD requests here.)
    fn response(&mut self) -> io::Result<RawResponse> {
        loop {
            let line = self.take_line()?;
            let status = line
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("bad status line {line:?}")))?;
            let mut headers = Vec::new();
            loop {
                let l = self.take_line()?;
                if l.is_empty() {
                    break;
                }
                if let Some((k, v)) = l.split_once(':') {
                    headers.push((k.trim().to_owned(), v.trim().to_owned()));
                }
            }
            if (100..200).contains(&status) {
                continue;
            }
            let mut r = RawResponse { status, headers, body: Vec::new() };
            if status == 204 || status == 304 {
                return Ok(r);
            }
            if r.header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
                loop {
                    let size = self.take_line()?;
                    let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
                        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("bad chunk size {size:?}")))?;
                    if size == 0 {
                        while !self.take_line()?.is_empty() {} // trailers
                        break;
                    }
                    let chunk = self.take(size + 2)?;
                    r.body.extend_from_slice(&chunk[..size]);
                }
            } else if let Some(n) = r.header("content-length").and_then(|v| v.trim().parse::<usize>().ok()) {
                r.body = self.take(n)?;
            } else {
                // Delimited by close.
                while self.fill().is_ok() {}
                r.body = std::mem::take(&mut self.buf);
            }
            return Ok(r);
        }
    }
}
