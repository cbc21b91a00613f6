//! Detached event streams: the GET stream of a legacy session is served outside Pingora's
//! request future. Stories about what the backend receives, what the client sees, how a
//! stream ends and is counted, and what a hostile backend gets for a broken answer.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::http::{self, connect, post_mcp, read_head, Stream};
use common::{pool, wait_until, Edge, Mock};

const INIT: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

/// A backend that answers `initialize` with session `sess-1`, and every GET and
/// `subscriptions/listen` with `reply`,
/// then holds the connection open (`hold`) or closes it. It records every request head.
struct Scripted {
    port: u16,
    heads: Arc<Mutex<Vec<String>>>,
    /// Held connections the proxy let go of.
    released: Arc<AtomicUsize>,
}

impl Scripted {
    fn start(reply: &[u8], hold: bool) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let released = Arc::new(AtomicUsize::new(0));
        let (seen, reply, gone) = (Arc::clone(&heads), reply.to_vec(), Arc::clone(&released));
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (seen, reply, gone) = (Arc::clone(&seen), reply.clone(), Arc::clone(&gone));
                std::thread::spawn(move || serve(conn, &seen, &reply, hold, &gone));
            }
        });
        Scripted { port, heads, released }
    }

    /// The last GET head the backend received, lower-cased.
    fn last_get(&self) -> String {
        self.last("get ")
    }

    /// Waits until the proxy let go of `n` of the connections the backend held.
    fn wait_released(&self, n: usize) {
        wait_until("the backend's connection let go", Duration::from_secs(5), || {
            self.released.load(Ordering::SeqCst) == n
        });
    }

    fn last(&self, method: &str) -> String {
        let heads = self.heads.lock().expect("heads");
        heads.iter().rev().find(|h| h.starts_with(method)).cloned().unwrap_or_default()
    }
}

fn serve(conn: TcpStream, seen: &Mutex<Vec<String>>, reply: &[u8], hold: bool, released: &AtomicUsize) {
    let mut reader = BufReader::new(conn);
    loop {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let head = head.to_ascii_lowercase();
        seen.lock().expect("heads").push(head.clone());
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let out = reader.get_mut();
        let listen = String::from_utf8_lossy(&body).contains("subscriptions/listen");
        if head.starts_with("post ") && !listen {
            let result = r#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"s","version":"1"}}}"#;
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: sess-1\r\nContent-Length: {}\r\n\r\n{result}",
                result.len()
            );
            if out.write_all(answer.as_bytes()).is_err() {
                return;
            }
            continue;
        }
        let _ = out.write_all(reply);
        if hold {
            // Until the proxy lets go of the connection.
            let _ = reader.read_to_end(&mut Vec::new());
            released.fetch_add(1, Ordering::SeqCst);
        }
        return;
    }
}

fn edge_for(backend: u16, pool_extra: &str) -> Edge {
    Edge::start(&format!(
        "[[pool]]\nname = \"p\"\nbackends = [\"127.0.0.1:{backend}\"]\npath = \"/mcp\"\n{pool_extra}\n[pool.health]\ncheck = \"none\"\n\n[[route]]\nname = \"main\"\npath = \"/mcp\"\npool = \"p\"\n"
    ))
}

fn session(edge: &Edge) -> String {
    post_mcp(edge.port, "/mcp", &[], INIT).header("mcp-session-id").expect("a session token").to_owned()
}

/// Opens the session's GET stream with `extra` header lines; returns the raw connection.
fn open_stream(edge: &Edge, token: &str, extra: &str) -> TcpStream {
    let mut s = connect(edge.port);
    let req = format!(
        "GET /mcp HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\nMcp-Session-Id: {token}\r\n{extra}\r\n"
    );
    s.write_all(req.as_bytes()).expect("send");
    s
}

/// The client sends `bytes` (after its request was read, so not in the same read as its
/// head), then closes its connection.
fn send_then_leave(mut client: TcpStream, bytes: &[u8]) {
    client.write_all(bytes).expect("send");
    client.shutdown(std::net::Shutdown::Both).expect("close");
}

/// Everything the client receives until the proxy closes the connection.
fn read_all(s: TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut out = Vec::new();
    let _ = BufReader::new(s).read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Waits until the per-attempt histogram has an observation with `error_type`.
fn wait_attempt_outcome(edge: &Edge, error_type: &str) {
    let needle = format!("error_type=\"{error_type}\"");
    wait_until(&format!("an attempt ending {error_type}"), Duration::from_secs(5), || {
        edge.metrics()
            .lines()
            .any(|l| l.starts_with("mcp_edge_mcp_client_operation_duration_seconds_count{") && l.contains(&needle))
    });
}

fn status_of(reply: &str) -> u16 {
    reply.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[test]
fn a_stream_is_counted_while_open_and_logged_once_when_the_client_leaves() {
    let mock = Mock::start_with("m", true, &["--tick-ms", "100"]);
    let edge =
        Edge::start(&format!("{}[[route]]\nname = \"main\"\npath = \"/mcp\"\npool = \"p\"\n", pool("p", &[&mock], "")));
    let token = post_mcp(edge.port, "/mcp", &[], INIT).header("mcp-session-id").expect("session").to_owned();
    let mut s =
        Stream::open(edge.port, "GET", "/mcp", &[("Mcp-Session-Id", &token), ("Accept", "text/event-stream")], b"");
    assert_eq!(s.status, 200);
    assert!(s.next_event().is_some() && s.next_event().is_some(), "events keep arriving");
    assert_eq!(s.header("connection"), Some("close"), "a detached stream ends its connection");
    assert!(s.header("x-request-id").is_some());
    edge.wait_metric("mcp_edge_streams_open 1");
    assert!(!edge.log().contains(" method=GET"), "logged only when it ends");
    drop(s);
    edge.wait_metric("mcp_edge_streams_open 0");
    edge.wait_metric("mcp_edge_client_aborts_total{phase=\"response\"} 1");
    wait_attempt_outcome(&edge, "client_gone");
    edge.wait_log(" method=GET");
    let line = edge.log().lines().find(|l| l.contains(" method=GET")).unwrap_or_default().to_owned();
    assert!(line.contains("status=200") && !line.contains("out=0 "), "{line}");
}

#[test]
fn the_backend_gets_its_own_session_id_and_no_connection_scoped_fields() {
    let backend = Scripted::start(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\n", false);
    let edge = edge_for(backend.port, "");
    let token = session(&edge);
    let extra = "Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\nAuthorization: Bearer caller-secret\r\nX-Request-Id: stream-1\r\n";
    let reply = read_all(open_stream(&edge, &token, extra));
    assert_eq!(status_of(&reply), 200, "{reply}");
    assert!(reply.ends_with("data: 1\n\n"), "{reply}");
    let head = backend.last_get();
    assert!(head.contains("mcp-session-id: sess-1\r\n"), "the backend's own id: {head}");
    assert!(head.contains("x-request-id: stream-1\r\n") && head.contains("connection: close\r\n"), "{head}");
    for field in ["keep-alive", "te:", "proxy-connection", "authorization", &token.to_ascii_lowercase()] {
        assert!(!head.contains(field), "{field} must not reach the backend: {head}");
    }
}

#[test]
fn the_backend_framing_passes_untouched_and_its_connection_fields_do_not() {
    let reply = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: keep-alive, X-Hop\r\nX-Hop: internal\r\nKeep-Alive: timeout=5\r\nContent-Length: 9\r\n\r\ndata: 1\n\n";
    // The backend keeps its connection open: the proxy must stop at Content-Length.
    let backend = Scripted::start(reply, true);
    let edge = edge_for(backend.port, "");
    let token = session(&edge);
    let started = Instant::now();
    let reply = read_all(open_stream(&edge, &token, ""));
    assert!(started.elapsed() < Duration::from_secs(5), "ended at its length, not at a timeout");
    assert!(reply.ends_with("\r\n\r\ndata: 1\n\n"), "{reply}");
    let head = reply.to_ascii_lowercase();
    assert!(head.contains("content-length: 9\r\n") && head.contains("connection: close\r\n"), "{reply}");
    assert!(!head.contains("x-hop") && !head.contains("keep-alive"), "{reply}");

    let chunked = Scripted::start(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n9\r\ndata: 2\n\n\r\n0\r\n\r\n",
        false,
    );
    let edge = edge_for(chunked.port, "");
    let token = session(&edge);
    let mut s = BufReader::new(open_stream(&edge, &token, ""));
    let (status, _) = read_head(&mut s);
    assert_eq!(status, 200);
    assert_eq!(http::read_chunk(&mut s).as_deref(), Some(&b"data: 2\n\n"[..]));
    assert_eq!(http::read_chunk(&mut s), None, "the last chunk arrives as the backend sent it");
}

#[test]
fn a_length_beside_chunked_coding_does_not_reach_the_client() {
    // A client trusting the length would read the rest of the body as a second response.
    let backend = Scripted::start(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n9\r\ndata: 3\n\n\r\n0\r\n\r\n",
        false,
    );
    let edge = edge_for(backend.port, "");
    let token = session(&edge);
    let reply = read_all(open_stream(&edge, &token, ""));
    assert_eq!(status_of(&reply), 200, "{reply}");
    let head = reply.to_ascii_lowercase();
    assert!(head.contains("transfer-encoding: chunked\r\n") && !head.contains("content-length"), "{reply}");
    assert!(reply.ends_with("9\r\ndata: 3\n\n\r\n0\r\n\r\n"), "{reply}");
}

#[test]
fn a_backend_connection_header_cannot_remove_what_the_proxy_adds() {
    let backend = Scripted::start(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: X-Request-Id, Cache-Control\r\nContent-Length: 9\r\n\r\ndata: 1\n\n",
        false,
    );
    let edge = edge_for(backend.port, "[pool.headers]\nresponse_set = { \"Cache-Control\" = \"no-store\" }");
    let token = session(&edge);
    let reply = read_all(open_stream(&edge, &token, "X-Request-Id: stream-2\r\n")).to_ascii_lowercase();
    assert!(reply.contains("x-request-id: stream-2\r\n"), "{reply}");
    assert!(reply.contains("cache-control: no-store\r\n") && reply.ends_with("data: 1\n\n"), "{reply}");
    assert!(backend.last_get().contains("x-request-id: stream-2\r\n"), "the backend got the GET");
}

#[test]
fn a_client_asking_to_close_still_gets_its_stream() {
    // Pingora does not hand back a connection its client asked to close: such a stream must
    // take Pingora's path, not be detached and dropped unanswered.
    let backend = Scripted::start(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\n", false);
    let edge = edge_for(backend.port, "");
    let token = session(&edge);
    let reply = read_all(open_stream(&edge, &token, "Connection: close\r\n"));
    assert_eq!(status_of(&reply), 200, "{reply}");
    assert!(reply.contains("data: 1\n\n"), "{reply}");
    assert!(backend.last_get().contains("mcp-session-id: sess-1\r\n"), "the backend got the GET");
}

#[test]
fn an_interim_answer_read_together_with_the_head_starts_the_stream() {
    // One write: the proxy reads both heads at once, and the backend then stays silent.
    let backend = Scripted::start(
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\n",
        true,
    );
    let edge = edge_for(backend.port, "first_byte_timeout = \"3s\"");
    let token = session(&edge);
    let s = open_stream(&edge, &token, "");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut s = BufReader::new(s);
    let (status, _) = read_head(&mut s);
    assert_eq!(status, 200, "the final head, not a first-byte timeout");
    let mut event = String::new();
    s.read_line(&mut event).expect("the first event");
    assert_eq!(event, "data: 1\n");
}

#[test]
fn broken_stream_answers_get_502_and_the_proxy_lives_on() {
    let mut huge = b"HTTP/1.1 200 OK\r\n".to_vec();
    huge.extend(std::iter::repeat_n(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".as_slice(), 2000).flatten());
    // A backend looping interim answers (then a valid head it never gets to).
    let mut interims = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(20);
    interims.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\n");
    let answers: [&[u8]; 7] = [
        &interims,
        b"HELLO\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
        &huge,
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n",
    ];
    for answer in answers {
        let backend = Scripted::start(answer, false);
        let edge = edge_for(backend.port, "");
        let token = session(&edge);
        let reply = read_all(open_stream(&edge, &token, ""));
        assert_eq!(
            status_of(&reply),
            502,
            "for {:?}: {reply}",
            String::from_utf8_lossy(&answer[..answer.len().min(40)])
        );
        assert_eq!(post_mcp(edge.port, "/mcp", &[], INIT).status, 200, "alive");
    }
}

#[test]
fn a_backend_that_never_starts_its_stream_gets_504_after_first_byte_timeout() {
    let backend = Scripted::start(b"", true);
    let edge = edge_for(backend.port, "first_byte_timeout = \"500ms\"");
    let token = session(&edge);
    let started = Instant::now();
    let reply = read_all(open_stream(&edge, &token, ""));
    assert_eq!(status_of(&reply), 504, "{reply}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_client_that_leaves_before_its_stream_opens_lets_go_of_the_backend_at_once() {
    // The backend never answers the stream's head; the client gives up waiting.
    let backend = Scripted::start(b"", true);
    let edge = edge_for(backend.port, "first_byte_timeout = \"60s\"");
    let token = session(&edge);
    let client = open_stream(&edge, &token, "");
    wait_until("the backend got the stream's request", Duration::from_secs(5), || !backend.last_get().is_empty());
    drop(client);
    edge.wait_metric("mcp_edge_connections_open 0");
    backend.wait_released(1);
    edge.wait_metric("mcp_edge_client_aborts_total{phase=\"response\"} 1");
}

#[test]
fn a_client_that_sends_more_then_leaves_before_its_stream_opens_lets_go_of_the_backend_at_once() {
    // Found by the ninth attack round: bytes sent while the head was awaited were kept as the
    // start of a next request, and the wait for the client ended there: its close went
    // unnoticed until the backend's head (up to first_byte_timeout).
    let backend = Scripted::start(b"", true);
    let edge = edge_for(backend.port, "first_byte_timeout = \"60s\"");
    let token = session(&edge);
    let client = open_stream(&edge, &token, "");
    wait_until("the backend got the stream's request", Duration::from_secs(5), || !backend.last_get().is_empty());
    send_then_leave(client, b"XXXXXXXXXX");
    backend.wait_released(1);
    edge.wait_metric("mcp_edge_connections_open 0");
}

#[test]
fn a_client_pingora_serves_that_sends_more_then_leaves_before_the_head_lets_go_of_the_backend() {
    // Found by the tenth attack round: a client asking to close is served through Pingora (not
    // detached), as is any request waiting for its header; Pingora stops reading a client once
    // bytes of a next request arrive, so its close went unnoticed until the head came.
    let backend = Scripted::start(b"", true);
    let edge = edge_for(backend.port, "first_byte_timeout = \"60s\"\n[pool.breaker]\nfailures = 1");
    let token = session(&edge);
    let client = open_stream(&edge, &token, "Connection: close\r\n");
    wait_until("the backend got the stream's request", Duration::from_secs(5), || !backend.last_get().is_empty());
    send_then_leave(client, b"X");
    backend.wait_released(1);
    edge.wait_metric("mcp_edge_client_aborts_total{phase=\"response\"} 1");
    edge.wait_metric("mcp_edge_connections_open 0");
    // The client's leaving is no fault of the backend's: its circuit (one failure opens it)
    // stays closed, and nothing was sent again.
    assert!(!edge.metrics().contains("mcp_edge_upstream_ejections_total{"), "{}", edge.metrics());
    let gets = backend.heads.lock().expect("heads").iter().filter(|h| h.starts_with("get ")).count();
    assert_eq!(gets, 1, "not sent again");
}

#[test]
fn a_silent_stream_is_closed_after_idle_timeout() {
    let backend = Scripted::start(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\n", true);
    let edge = edge_for(backend.port, "idle_timeout = \"1s\"\nfirst_byte_timeout = \"500ms\"");
    let token = session(&edge);
    let started = Instant::now();
    let reply = read_all(open_stream(&edge, &token, ""));
    assert!(reply.ends_with("data: 1\n\n"), "{reply}");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(5), "closed after {took:?}");
    wait_until("the stream to be logged", Duration::from_secs(5), || edge.log().contains(" method=GET"));
    edge.wait_metric("mcp_edge_streams_open 0");
    wait_attempt_outcome(&edge, "timeout");
}

#[test]
fn a_modern_listen_stream_is_detached_with_its_body_and_logged_when_it_ends() {
    let backend = Scripted::start(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n", true);
    let edge = edge_for(backend.port, "");
    let body = r#"{"jsonrpc":"2.0","id":7,"method":"subscriptions/listen","params":{}}"#;
    let headers = [
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "subscriptions/listen"),
        ("Accept", "application/json, text/event-stream"),
        ("Content-Type", "application/json"),
    ];
    let mut s = Stream::open(edge.port, "POST", "/mcp", &headers, body.as_bytes());
    assert_eq!(s.status, 200);
    assert_eq!(s.header("connection"), Some("close"), "a detached stream ends its connection");
    let (event, _) = s.next_event().expect("the first notification");
    assert!(event.contains("list_changed"), "{event}");
    edge.wait_metric("mcp_edge_streams_open 1");
    let head = backend.last("post ");
    assert!(
        head.contains(&format!("content-length: {}\r\n", body.len())) && head.contains("connection: close\r\n"),
        "{head}"
    );
    drop(s);
    edge.wait_metric("mcp_edge_streams_open 0");
    edge.wait_log(" method=POST");
    let line = edge.log().lines().find(|l| l.contains(" method=POST")).unwrap_or_default().to_owned();
    assert!(line.contains("mcp=subscriptions/listen") && line.contains(&format!("in={}", body.len())), "{line}");
}
