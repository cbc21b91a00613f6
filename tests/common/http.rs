//! A deliberately small HTTP/1.1 client over std sockets, so tests control every byte:
//! `Expect`, chunked uploads, raw session headers, and reading SSE events as they arrive.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }
}

pub fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    s
}

/// Sends raw request bytes and reads the whole response (the request should say close).
pub fn raw(port: u16, request: &[u8]) -> Resp {
    let mut s = connect(port);
    s.write_all(request).expect("write request");
    read_response(&mut BufReader::new(s))
}

pub fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    raw(port, &bytes)
}

/// The status of a GET, or None while nothing listens (for readiness polling).
pub fn try_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes()).ok()?;
    let mut head = String::new();
    BufReader::new(s).read_line(&mut head).ok()?;
    head.split_whitespace().nth(1)?.parse().ok()
}

pub fn get(port: u16, path: &str) -> Resp {
    request(port, "GET", path, &[], b"")
}

pub const JSON_HEADERS: [(&str, &str); 2] =
    [("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")];

/// POST a JSON-RPC body with MCP's usual headers plus `extra`.
pub fn post_mcp(port: u16, path: &str, extra: &[(&str, &str)], body: &str) -> Resp {
    let mut headers = JSON_HEADERS.to_vec();
    headers.extend_from_slice(extra);
    request(port, "POST", path, &headers, body.as_bytes())
}

pub fn read_head<R: BufRead>(r: &mut R) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).expect("header line");
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    (status, headers)
}

pub fn read_response<R: BufRead>(r: &mut R) -> Resp {
    let (mut status, mut headers) = read_head(r);
    while status == 100 {
        (status, headers) = read_head(r);
    }
    let find = |n: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        while let Some(chunk) = read_chunk(r) {
            body.extend_from_slice(&chunk);
        }
    } else if let Some(n) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(n, 0);
        r.read_exact(&mut body).expect("body");
    } else {
        let _ = r.read_to_end(&mut body);
    }
    Resp { status, headers, body }
}

/// One chunk of a chunked body; None at the terminating chunk or EOF.
pub fn read_chunk<R: BufRead>(r: &mut R) -> Option<Vec<u8>> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let size = usize::from_str_radix(line.trim(), 16).ok()?;
    let mut chunk = vec![0; size + 2];
    r.read_exact(&mut chunk).ok()?;
    chunk.truncate(size);
    (size > 0).then_some(chunk)
}

/// An open streaming response, read event by event with arrival times.
pub struct Stream {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    reader: BufReader<TcpStream>,
    pending: Vec<u8>,
    chunked: bool,
}

impl Stream {
    pub fn open(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Stream {
        let mut s = connect(port);
        let mut req =
            format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n", body.len());
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).and_then(|_| s.write_all(body)).expect("write request");
        let mut reader = BufReader::new(s);
        let (status, headers) = read_head(&mut reader);
        let chunked = headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked"));
        Stream { status, headers, reader, pending: Vec::new(), chunked }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The next complete SSE event (text up to a blank line) and when it arrived.
    pub fn next_event(&mut self) -> Option<(String, Instant)> {
        loop {
            if let Some(i) = self.pending.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = self.pending.drain(..i + 2).collect();
                return Some((String::from_utf8_lossy(&event).into_owned(), Instant::now()));
            }
            let more = if self.chunked {
                read_chunk(&mut self.reader)?
            } else {
                let mut buf = [0u8; 4096];
                let n = self.reader.read(&mut buf).ok()?;
                if n == 0 {
                    return None;
                }
                buf[..n].to_vec()
            };
            self.pending.extend_from_slice(&more);
        }
    }
}

/// One persistent keep-alive connection, to show a connection outlives config swaps.
pub struct KeepAlive {
    port: u16,
    reader: BufReader<TcpStream>,
}

impl KeepAlive {
    pub fn open(port: u16) -> KeepAlive {
        KeepAlive { port, reader: BufReader::new(connect(port)) }
    }

    pub fn post_mcp(&mut self, path: &str, body: &str) -> std::io::Result<Resp> {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n{body}",
            self.port,
            body.len()
        );
        self.reader.get_mut().write_all(req.as_bytes())?;
        Ok(read_response(&mut self.reader))
    }
}
