//! Minimal server side of HTTP/1.1 for the mock: one `Conn` per TCP connection with a reusable
//! read buffer, request parsing (request line, case-insensitive headers, Content-Length and
//! chunked bodies, `Expect: 100-continue`), and response writing into a reusable write buffer
//! (Content-Length responses, chunked streaming). No per-request allocation once the buffers
//! have grown to fit the traffic.

use std::io::{self, Write as _};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest accepted request head (request line + headers).
pub const MAX_HEAD: usize = 64 * 1024;
/// Largest accepted request body; more is answered with 413.
pub const MAX_BODY: usize = 64 * 1024 * 1024;
/// While a response streams, stop reading from the client once this much is buffered.
const MAX_BUFFERED_WHILE_STREAMING: usize = 1024 * 1024;

pub enum ReadError {
    /// Clean close between requests.
    Closed,
    /// I/O error or close in the middle of a request.
    Io,
    /// Malformed or oversized request: answer with this status, then close.
    Bad(u16, &'static str),
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        ReadError::Io
    }
}

/// One parsed request. Reused across the requests of a connection.
#[derive(Default)]
pub struct Request {
    head: Vec<u8>,
    method: (usize, usize),
    target: (usize, usize),
    headers: Vec<(usize, usize, usize, usize)>,
    pub http10: bool,
    pub keep_alive: bool,
    /// The decoded body (de-chunked), byte-exact.
    pub body: Vec<u8>,
}

impl Request {
    fn text(&self, (a, b): (usize, usize)) -> &str {
        std::str::from_utf8(&self.head[a..b]).unwrap_or("")
    }
    pub fn method(&self) -> &str {
        self.text(self.method)
    }
    /// Request target as sent (path plus query).
    pub fn target(&self) -> &str {
        self.text(self.target)
    }
    pub fn path(&self) -> &str {
        let t = self.target();
        t.split_once('?').map_or(t, |(p, _)| p)
    }
    pub fn query(&self) -> &str {
        self.target().split_once('?').map_or("", |(_, q)| q)
    }
    /// First value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|&(na, nb, va, vb)| {
            if self.head[na..nb].eq_ignore_ascii_case(name.as_bytes()) {
                std::str::from_utf8(&self.head[va..vb]).ok()
            } else {
                None
            }
        })
    }
    /// All headers in arrival order, values decoded lossily.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], std::borrow::Cow<'_, str>)> {
        self.headers.iter().map(|&(na, nb, va, vb)| (&self.head[na..nb], String::from_utf8_lossy(&self.head[va..vb])))
    }
    /// Whether a comma-separated header contains `token` (case-insensitive).
    fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers.iter().any(|&(na, nb, va, vb)| {
            self.head[na..nb].eq_ignore_ascii_case(name.as_bytes())
                && self.head[va..vb]
                    .split(|&c| c == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    }
}

pub struct Conn {
    pub stream: TcpStream,
    rbuf: Vec<u8>,
    rpos: usize,
    rend: usize,
    wbuf: Vec<u8>,
    /// Scratch buffer for response bodies (filled by handlers, sent by `send`).
    pub obuf: Vec<u8>,
    /// Time of the last write; streams send keepalive comments relative to it.
    pub last_write: Instant,
    backend: &'static str,
}

impl Conn {
    pub fn new(stream: TcpStream, backend: &'static str) -> Self {
        Conn {
            stream,
            rbuf: vec![0; 16 * 1024],
            rpos: 0,
            rend: 0,
            wbuf: Vec::with_capacity(16 * 1024),
            obuf: Vec::with_capacity(4 * 1024),
            last_write: Instant::now(),
            backend,
        }
    }

    /// Reads more bytes into the read buffer; returns 0 on EOF.
    async fn fill(&mut self) -> io::Result<usize> {
        if self.rpos == self.rend {
            self.rpos = 0;
            self.rend = 0;
        }
        if self.rend == self.rbuf.len() {
            if self.rpos > 0 {
                self.rbuf.copy_within(self.rpos..self.rend, 0);
                self.rend -= self.rpos;
                self.rpos = 0;
            } else {
                let n = self.rbuf.len();
                self.rbuf.resize(n * 2, 0);
            }
        }
        let n = self.stream.read(&mut self.rbuf[self.rend..]).await?;
        self.rend += n;
        Ok(n)
    }

    /// While a response streams: resolves when the client sent something (kept for the next
    /// request, `Ok(true)`) or went away (`Ok(false)`). Cancel-safe.
    pub async fn watch_peer(&mut self) -> bool {
        if self.rend - self.rpos > MAX_BUFFERED_WHILE_STREAMING {
            return std::future::pending().await;
        }
        matches!(self.fill().await, Ok(n) if n > 0)
    }

    /// Returns the range of the next line (without CR LF) once it is fully buffered.
    async fn line(&mut self, max: usize) -> Result<(usize, usize), ReadError> {
        loop {
            if let Some(i) = self.rbuf[self.rpos..self.rend].iter().position(|&c| c == b'\n') {
                let (a, mut b) = (self.rpos, self.rpos + i);
                self.rpos = b + 1;
                if b > a && self.rbuf[b - 1] == b'\r' {
                    b -= 1;
                }
                return Ok((a, b));
            }
            if self.rend - self.rpos > max {
                return Err(ReadError::Bad(400, "line too long"));
            }
            if self.fill().await? == 0 {
                return Err(ReadError::Io);
            }
        }
    }

    /// Appends exactly `n` body bytes: first what is buffered, the rest read straight into `body`.
    async fn read_exact_into(&mut self, body: &mut Vec<u8>, n: usize) -> Result<(), ReadError> {
        let take = (self.rend - self.rpos).min(n);
        body.extend_from_slice(&self.rbuf[self.rpos..self.rpos + take]);
        self.rpos += take;
        if n > take {
            let old = body.len();
            body.resize(old + n - take, 0);
            self.stream.read_exact(&mut body[old..]).await?;
        }
        Ok(())
    }

    /// Reads the next request (head and whole body) into `req`.
    pub async fn read_request(&mut self, req: &mut Request) -> Result<(), ReadError> {
        // Head: everything up to the first empty line (leading empty lines are skipped).
        let mut scanned = 0; // bytes after rpos already searched
        let head_len = loop {
            while self.rpos < self.rend && matches!(self.rbuf[self.rpos], b'\r' | b'\n') {
                self.rpos += 1;
                scanned = 0;
            }
            let buf = &self.rbuf[self.rpos..self.rend];
            if let Some(n) = find_head_end(buf, scanned) {
                break n;
            }
            scanned = buf.len().saturating_sub(3);
            if buf.len() > MAX_HEAD {
                return Err(ReadError::Bad(431, "request head too large"));
            }
            let had = buf.len();
            if self.fill().await? == 0 {
                return Err(if had == 0 { ReadError::Closed } else { ReadError::Io });
            }
        };
        req.head.clear();
        req.head.extend_from_slice(&self.rbuf[self.rpos..self.rpos + head_len]);
        self.rpos += head_len;
        parse_head(req)?;

        // Framing.
        req.body.clear();
        let chunked = req.header("transfer-encoding").is_some();
        if chunked && !req.has_token("transfer-encoding", "chunked") {
            return Err(ReadError::Bad(501, "unsupported transfer-encoding"));
        }
        let length = match (chunked, req.header("content-length")) {
            (false, Some(v)) => match v.trim().parse::<usize>() {
                Ok(n) => n,
                Err(_) => return Err(ReadError::Bad(400, "bad content-length")),
            },
            _ => 0,
        };
        if length > MAX_BODY {
            return Err(ReadError::Bad(413, "request body too large"));
        }
        if (chunked || length > 0) && !req.http10 && req.has_token("expect", "100-continue") {
            self.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
        }
        if chunked {
            self.read_chunked(&mut req.body).await?;
        } else if length > 0 {
            self.read_exact_into(&mut req.body, length).await?;
        }
        Ok(())
    }

    async fn read_chunked(&mut self, body: &mut Vec<u8>) -> Result<(), ReadError> {
        loop {
            let (a, b) = self.line(4096).await?;
            let size_text = self.rbuf[a..b].split(|&c| c == b';').next().unwrap_or(&[]).trim_ascii();
            let size = std::str::from_utf8(size_text)
                .ok()
                .and_then(|s| usize::from_str_radix(s, 16).ok())
                .ok_or(ReadError::Bad(400, "bad chunk size"))?;
            if size == 0 {
                // Trailer section, ends with an empty line.
                loop {
                    let (a, b) = self.line(MAX_HEAD).await?;
                    if a == b {
                        return Ok(());
                    }
                }
            }
            if body.len() + size > MAX_BODY {
                return Err(ReadError::Bad(413, "request body too large"));
            }
            self.read_exact_into(body, size).await?;
            let (a, b) = self.line(2).await?;
            if a != b {
                return Err(ReadError::Bad(400, "bad chunk terminator"));
            }
        }
    }

    /// Writes a status line and the common headers into the write buffer.
    /// `len`: `Some(n)` for Content-Length, `None` for chunked.
    pub fn head(&mut self, status: u16, ctype: Option<&str>, extra: &[(&str, &str)], len: Option<usize>, close: bool) {
        let w = &mut self.wbuf;
        w.clear();
        let _ = write!(w, "HTTP/1.1 {} {}\r\nX-Mock-Backend: {}\r\n", status, reason(status), self.backend);
        if let Some(ct) = ctype {
            let _ = write!(w, "Content-Type: {ct}\r\n");
        }
        for (k, v) in extra {
            let _ = write!(w, "{k}: {v}\r\n");
        }
        match len {
            Some(_) if status == 204 || status == 304 => {}
            Some(n) => {
                let _ = write!(w, "Content-Length: {n}\r\n");
            }
            None => w.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        }
        if close {
            w.extend_from_slice(b"Connection: close\r\n");
        }
        w.extend_from_slice(b"\r\n");
    }

    /// Sends a complete response whose body is `self.obuf`.
    pub async fn send(
        &mut self,
        status: u16,
        ctype: Option<&str>,
        extra: &[(&str, &str)],
        close: bool,
    ) -> io::Result<()> {
        let len = self.obuf.len();
        self.head(status, ctype, extra, Some(len), close);
        if status != 204 && status != 304 {
            self.wbuf.extend_from_slice(&self.obuf);
        }
        self.flush().await
    }

    /// Sends a complete response whose body is `self.obuf`: its head, then its body `gap` later.
    pub async fn send_split(
        &mut self,
        status: u16,
        ctype: &str,
        gap: std::time::Duration,
        close: bool,
    ) -> io::Result<()> {
        self.head(status, Some(ctype), &[], Some(self.obuf.len()), close);
        self.flush().await?;
        tokio::time::sleep(gap).await;
        self.wbuf.extend_from_slice(&self.obuf);
        self.flush().await
    }

    /// Sends a complete response with the given body.
    pub async fn send_bytes(
        &mut self,
        status: u16,
        ctype: Option<&str>,
        extra: &[(&str, &str)],
        body: &[u8],
        close: bool,
    ) -> io::Result<()> {
        self.obuf.clear();
        self.obuf.extend_from_slice(body);
        self.send(status, ctype, extra, close).await
    }

    /// Sends `bytes` as they are (an interim head, say).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.wbuf.extend_from_slice(bytes);
        self.flush().await
    }

    /// Writes out the write buffer.
    pub async fn flush(&mut self) -> io::Result<()> {
        self.stream.write_all(&self.wbuf).await?;
        self.wbuf.clear();
        self.last_write = Instant::now();
        Ok(())
    }

    /// Sends one chunk (of a chunked response) and flushes it.
    pub async fn chunk(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let _ = write!(self.wbuf, "{:x}\r\n", data.len());
        self.wbuf.extend_from_slice(data);
        self.wbuf.extend_from_slice(b"\r\n");
        self.flush().await
    }

    /// Ends a chunked response.
    pub async fn end_chunks(&mut self) -> io::Result<()> {
        self.wbuf.extend_from_slice(b"0\r\n\r\n");
        self.flush().await
    }
}

/// Length of the head (including the blank line) if it is complete. `from`: bytes already searched.
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(p) = buf[i..].iter().position(|&c| c == b'\n') {
        let nl = i + p;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

fn parse_head(req: &mut Request) -> Result<(), ReadError> {
    const BAD: ReadError = ReadError::Bad(400, "malformed request head");
    let head = &req.head;
    req.headers.clear();
    let mut lines = LineIter { buf: head, pos: 0 };
    let (a, b) = lines.next().ok_or(BAD)?;
    let line = &head[a..b];
    if !line.is_ascii() {
        return Err(BAD);
    }
    let mut parts = line.split(|&c| c == b' ').filter(|p| !p.is_empty());
    let (m, t, v) = (parts.next().ok_or(BAD)?, parts.next().ok_or(BAD)?, parts.next().ok_or(BAD)?);
    let off = |s: &[u8]| s.as_ptr() as usize - head.as_ptr() as usize;
    req.method = (off(m), off(m) + m.len());
    req.target = (off(t), off(t) + t.len());
    req.http10 = match v {
        b"HTTP/1.1" => false,
        b"HTTP/1.0" => true,
        _ => return Err(ReadError::Bad(505, "unsupported HTTP version")),
    };
    for (a, b) in lines {
        if a == b {
            break;
        }
        let line = &head[a..b];
        if matches!(line[0], b' ' | b'\t') {
            return Err(BAD); // obsolete line folding
        }
        let colon = line.iter().position(|&c| c == b':').ok_or(BAD)?;
        let name = &line[..colon];
        if name.is_empty() || name.iter().any(|c| c.is_ascii_whitespace()) {
            return Err(BAD);
        }
        let value = line[colon + 1..].trim_ascii();
        let vs = if value.is_empty() { b } else { off(value) };
        req.headers.push((a, a + colon, vs, vs + value.len()));
    }
    req.keep_alive =
        if req.http10 { req.has_token("connection", "keep-alive") } else { !req.has_token("connection", "close") };
    Ok(())
}

/// Iterates over line ranges (CR LF or LF terminated, terminator excluded).
struct LineIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Iterator for LineIter<'_> {
    type Item = (usize, usize);
    fn next(&mut self) -> Option<(usize, usize)> {
        let rest = &self.buf[self.pos..];
        let i = rest.iter().position(|&c| c == b'\n')?;
        let a = self.pos;
        let mut b = a + i;
        self.pos = b + 1;
        if b > a && self.buf[b - 1] == b'\r' {
            b -= 1;
        }
        Some((a, b))
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}
