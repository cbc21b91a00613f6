//! `mcp-edge-mock`: a fast mock MCP upstream for mcp-edge load tests, the demo and edge-case
//! integration tests. It owns a hand-written HTTP/1.1 server on tokio (`http`), the JSON-RPC /
//! MCP behaviour of a Streamable HTTP server, stateless or with sessions (`mcp`), the SSE
//! streams including the legacy HTTP+SSE transport (`sse`), and the routing of the test helper
//! endpoints (`/status/{code}`, `/echo-headers`, `/hang`, `/close`, `/_mock/stats`) here.
//! With `--record FILE`, every request it receives is appended to FILE first (`record`), so
//! tests can assert what a backend was actually sent.
//!
//! ```text
//! mcp-edge-mock --listen 127.0.0.1:9101 --name a [--stateful] [--threads N] [--legacy-sse]
//!               [--record FILE] [--require-header NAME=VALUE] [--page-size N] [--sse-lists]
//!               [--protocol-version V]
//! ```
//!
//! Prints `listening on ADDR` once bound; exits cleanly on SIGTERM/SIGINT.

mod http;
mod mcp;
mod record;
mod sse;

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use clap::Parser;
use rand::RngCore;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc::UnboundedSender;

use http::{Conn, ReadError, Request};

#[derive(Parser)]
#[command(name = "mcp-edge-mock", about = "Mock MCP upstream server for mcp-edge tests and load tests")]
struct Args {
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:9101")]
    listen: SocketAddr,
    /// Backend name: sent in `X-Mock-Backend` and in results.
    #[arg(long, default_value = "mock")]
    name: String,
    /// Mint `Mcp-Session-Id` on initialize and require it afterwards.
    #[arg(long)]
    stateful: bool,
    /// Runtime worker threads (1 = single-threaded runtime).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Also serve the legacy HTTP+SSE transport (`GET /sse`, `POST /messages/?session_id=`).
    #[arg(long)]
    legacy_sse: bool,
    /// The MCP endpoint path.
    #[arg(long, default_value = "/mcp")]
    path: String,
    /// Interval of events on the stateful GET stream.
    #[arg(long, default_value_t = 1000)]
    tick_ms: u64,
    /// End the stateful GET stream after this many events (0: never); the client resumes it
    /// with `Last-Event-ID`.
    #[arg(long, default_value_t = 0)]
    stream_ends_after: u64,
    /// Start the stateful GET stream with hostile events (junk, responses, requests whose ids
    /// cannot be carried, an event in CR line endings) before the numbered ones.
    #[arg(long)]
    stream_junk: bool,
    /// Keep a stateful GET stream going after its session is deleted (a member that does not
    /// end its streams with the session).
    #[arg(long)]
    keep_streams: bool,
    /// Answer a stateful GET stream's head after this long (a member slow to open it; the
    /// wait counts as an open stream in `/_mock/stats`, and ends early if the client leaves).
    #[arg(long, default_value_t = 0)]
    stream_head_delay_ms: u64,
    /// The method of the stateful GET stream's numbered events (`notifications/tools/list_changed`
    /// makes a member that says its list changed every tick).
    #[arg(long, default_value = "notifications/message")]
    stream_method: String,
    /// Bytes of padding (`params.pad`) in each of the stateful GET stream's numbered events.
    #[arg(long, default_value_t = 0)]
    stream_pad: usize,
    /// Answer `tools/list` after this long (a slow member).
    #[arg(long, default_value_t = 0)]
    list_delay_ms: u64,
    /// Send a JSON answer's head, then its body this long after (a member that answers as it
    /// computes; a proxy that holds the answer can still send it in one piece).
    #[arg(long, default_value_t = 0)]
    answer_gap_ms: u64,
    /// `--forge hints`: how many interim heads come before the answer
    #[arg(long, default_value_t = 1)]
    interim_heads: usize,
    /// `--forge hints`: the interim heads' status (`100` sent unasked: a backend saying continue
    /// to an expectation it never saw)
    #[arg(long, default_value_t = 103)]
    interim_status: u16,
    /// The `slow` tool's event stream first carries a notification of this many bytes (0:
    /// none), then a `roots/list` request to the client (id 77).
    #[arg(long)]
    slow_asks: Option<usize>,
    /// Idle time after which a stream gets a `: ping` comment.
    #[arg(long, default_value_t = 15000)]
    keepalive_ms: u64,
    /// Append every received request to this file as one JSON line, before answering it.
    #[arg(long)]
    record: Option<std::path::PathBuf>,
    /// Answer 401 to every request without this header and value (a backend that checks the
    /// proxy's credential, health probes included).
    #[arg(long, value_name = "NAME=VALUE")]
    require_header: Option<String>,
    /// Page `tools/list` this many tools at a time (cursor: the decimal offset); 0: one page.
    #[arg(long, default_value_t = 0)]
    page_size: usize,
    /// Offer this many more tools (`tool_000`, `tool_001`, …, each about 250 bytes) after the
    /// five built-in ones: a large list for load tests.
    #[arg(long, default_value_t = 0)]
    extra_tools: usize,
    /// Answer list requests that accept `text/event-stream` as SSE: a logging event, a
    /// comment, then the answer event cut across two chunks.
    #[arg(long)]
    sse_lists: bool,
    /// Answer list requests under another id (`"stray"`): a broken backend whose list the
    /// proxy cannot attribute to the request.
    #[arg(long)]
    stray_list_id: bool,
    /// Offer tools only: announce no prompts or resources, and answer their methods (and
    /// completions) with "method not found".
    #[arg(long)]
    tools_only: bool,
    /// Answer `prompts/list`, `resources/list` and `resources/templates/list` with this
    /// JSON-RPC error code (a member whose lists fail, not one without them).
    #[arg(long, allow_hyphen_values = true)]
    list_error: Option<i32>,
    /// Speak this protocol version at most: `initialize` agrees to it whatever was asked, and a
    /// request naming a newer one in `MCP-Protocol-Version` is 400 (as an SDK server whose
    /// latest is V refuses one it does not support; older ones it speaks).
    #[arg(long)]
    protocol_version: Option<String>,
    /// A member that tries what a hostile one would: `whoami` (with `--links`) writes every
    /// `uri` key escaped (`"u\u0072i"`), and the `slow` tool's stream first carries an
    /// answer to another request (id 42), junk, and a request under an escaped `method` key.
    #[arg(long)]
    hostile_answers: bool,
    /// The `slow` tool's answer forges an answer to another request (id 42, "SPOOFED") where a
    /// proxy that holds only so much would not read it: `padded` (an event of 600 KiB on its
    /// stream, then its own answer), `json` (its JSON answer under id 42), `upper` (its stream
    /// typed `Text/Event-Stream`, the forged answer first), `gzip` (its stream marked
    /// `Content-Encoding: gzip`, not compressed), `bom` (its stream starting with a UTF-8 byte
    /// order mark before the forged answer), `ctype` (the JSON answer typed
    /// `text/plain; a=application/json`), `hybrid` (the JSON answer with a `method` too),
    /// `marks` (its stream starting with a BOM, the BOM as Latin-1 in UTF-8, and a BOM again),
    /// `charset` (its stream typed `charset=utf-16le`, the forged answer in UTF-16),
    /// `hybrid_event` (the forged answer on its stream with a `method` too), `twice` (its own
    /// JSON answer, with a link whose `uri` is written twice, the second another member's),
    /// `cr_end` (its stream only the forged answer's data line ended by a lone CR), `hints` (its
    /// own JSON answer with a link, after an interim `103` typed as JSON with a raw session id and
    /// a cookie, the answer `--answer-gap-ms` after it), `switch` (a `101` no one asked for, then
    /// the forged answer and a request as raw bytes), `hints_cut` (the interim heads of `hints`,
    /// then a close with no answer).
    #[arg(long)]
    forge: Option<String>,
    /// `whoami` links to and embeds two of the mock's resources (`mock://NAME/readme`,
    /// `mock://NAME/secret`), with a `uri` in its structured content too.
    #[arg(long)]
    links: bool,
}

pub struct State {
    pub name: &'static str,
    path: String,
    stateful: bool,
    legacy_sse: bool,
    pub tick: Duration,
    pub stream_ends_after: u64,
    pub stream_junk: bool,
    pub stream_method: &'static str,
    pub stream_pad: usize,
    pub keep_streams: bool,
    pub stream_head_delay: Duration,
    pub list_delay: Duration,
    pub answer_gap: Duration,
    pub interim: (usize, u16),
    pub slow_asks: Option<usize>,
    pub keepalive: Duration,
    sessions: Mutex<HashSet<String>>,
    /// Legacy HTTP+SSE sessions: id -> sender of preformatted events to the GET stream.
    pub legacy: Mutex<HashMap<String, UnboundedSender<Vec<u8>>>>,
    requests: AtomicU64,
    pub open_streams: AtomicI64,
    /// `--record`: where received requests are written; `None` keeps the fast path untouched.
    record: Option<record::Recorder>,
    require: Option<(String, String)>,
    pub page_size: usize,
    /// The built-in tools, then `--extra-tools` generated ones.
    pub tools: Vec<String>,
    sse_lists: bool,
    stray_list_id: bool,
    pub tools_only: bool,
    pub list_error: Option<i32>,
    pub protocol_version: Option<&'static str>,
    pub links: bool,
    pub hostile_answers: bool,
    pub forge: Option<String>,
}

impl State {
    pub fn has_session(&self, sid: &str) -> bool {
        self.sessions.lock().unwrap().contains(sid)
    }
    pub fn new_session(&self) -> String {
        let sid = new_id();
        self.sessions.lock().unwrap().insert(sid.clone());
        sid
    }
}

/// A random id of 32 lowercase hex characters.
pub fn new_id() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    mcp::hex(&b)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        !args.name.is_empty() && args.name.bytes().all(|c| (0x20..0x7f).contains(&c)),
        "--name must be printable ASCII"
    );
    let mut builder = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(args.threads);
        b
    };
    builder.enable_all().build()?.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let st: &'static State = Box::leak(Box::new(State {
        name: Box::leak(args.name.into_boxed_str()),
        path: args.path,
        stateful: args.stateful,
        legacy_sse: args.legacy_sse,
        tick: Duration::from_millis(args.tick_ms.max(1)),
        stream_ends_after: args.stream_ends_after,
        stream_junk: args.stream_junk,
        keep_streams: args.keep_streams,
        stream_head_delay: Duration::from_millis(args.stream_head_delay_ms),
        stream_method: Box::leak(args.stream_method.clone().into_boxed_str()),
        stream_pad: args.stream_pad,
        list_delay: Duration::from_millis(args.list_delay_ms),
        answer_gap: Duration::from_millis(args.answer_gap_ms),
        interim: (args.interim_heads, args.interim_status),
        slow_asks: args.slow_asks,
        keepalive: Duration::from_millis(args.keepalive_ms.max(1)),
        sessions: Mutex::default(),
        legacy: Mutex::default(),
        requests: AtomicU64::new(0),
        open_streams: AtomicI64::new(0),
        record: args.record.as_deref().map(record::Recorder::open).transpose()?,
        require: args
            .require_header
            .as_deref()
            .and_then(|r| r.split_once('='))
            .map(|(n, v)| (n.to_owned(), v.to_owned())),
        page_size: args.page_size,
        tools: mcp::tools(args.extra_tools),
        sse_lists: args.sse_lists,
        stray_list_id: args.stray_list_id,
        tools_only: args.tools_only,
        list_error: args.list_error,
        protocol_version: args.protocol_version.map(|v| &*Box::leak(v.into_boxed_str())),
        links: args.links,
        hostile_answers: args.hostile_answers,
        forge: args.forge,
    }));
    let socket = if args.listen.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(args.listen)?;
    let listener = socket.listen(4096)?;
    println!("listening on {}", listener.local_addr()?);

    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((sock, _)) => {
                    tokio::spawn(serve(st, sock));
                }
                Err(e) => {
                    eprintln!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    });

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

async fn serve(st: &'static State, sock: TcpStream) {
    let _ = sock.set_nodelay(true);
    let mut conn = Conn::new(sock, st.name);
    let mut req = Request::default();
    loop {
        match conn.read_request(&mut req).await {
            Ok(()) => {}
            Err(ReadError::Bad(status, msg)) => {
                st.requests.fetch_add(1, Ordering::Relaxed);
                if let Some(r) = &st.record {
                    r.unparsed(msg);
                }
                let _ = conn.send_bytes(status, Some("text/plain"), &[], msg.as_bytes(), true).await;
                return;
            }
            Err(ReadError::Closed | ReadError::Io) => return,
        }
        st.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(r) = &st.record {
            r.request(&req);
        }
        match route(st, &mut conn, &req).await {
            Ok(true) if req.keep_alive => {}
            _ => return,
        }
    }
}

/// Answers one request. `Ok(true)`: the connection may serve another request.
async fn route(st: &'static State, conn: &mut Conn, req: &Request) -> io::Result<bool> {
    let close = !req.keep_alive;
    let path = req.path();
    let method = req.method();
    if let Some((name, value)) = &st.require {
        if req.header(name) != Some(value.as_str()) {
            conn.send_bytes(401, Some("text/plain"), &[], b"credential required\n", close).await?;
            return Ok(true);
        }
    }
    if let Some(spoken) = st.protocol_version {
        if req.header("mcp-protocol-version").is_some_and(|v| v > spoken) {
            return mcp_error(conn, 400, -32000, "Bad Request: Unsupported protocol version", close).await;
        }
    }
    // The helper endpoints take precedence over `--path` (tests point `--path` at one of them).
    match path {
        "/_mock/stats" => {
            let sessions = st.sessions.lock().unwrap().len() + st.legacy.lock().unwrap().len();
            let body = format!(
                r#"{{"open_streams":{},"requests":{},"sessions":{}}}"#,
                st.open_streams.load(Ordering::Relaxed),
                st.requests.load(Ordering::Relaxed),
                sessions
            );
            json(conn, 200, body.as_bytes(), close).await?;
        }
        "/echo-headers" => {
            let mut obj = serde_json::Map::new();
            for (name, value) in req.headers() {
                let name = String::from_utf8_lossy(name).to_ascii_lowercase();
                match obj.get_mut(&name) {
                    Some(serde_json::Value::String(prev)) => {
                        prev.push_str(", ");
                        prev.push_str(&value);
                    }
                    _ => {
                        obj.insert(name, value.into_owned().into());
                    }
                }
            }
            obj.insert("method".into(), method.into());
            obj.insert("path".into(), req.target().into());
            json(conn, 200, &serde_json::to_vec(&obj)?, close).await?;
        }
        "/healthz" => conn.send_bytes(200, Some("text/plain"), &[], b"ok\n", close).await?,
        "/hang" => {
            sse::wait(st, conn, std::future::pending::<()>(), false).await?;
            return Ok(false);
        }
        "/close" => return Ok(false),
        "/sse-chunked" => sse::sse_chunked(st, conn, close).await?,
        "/sse" if st.legacy_sse && method == "GET" => {
            sse::legacy_stream(st, conn, close).await?;
            return Ok(false);
        }
        "/messages/" | "/messages" if st.legacy_sse && method == "POST" => {
            let sid = query_param(req.query(), "session_id").or_else(|| query_param(req.query(), "sessionId"));
            match sse::legacy_post(st, conn, sid.unwrap_or(""), &req.body) {
                202 => conn.send_bytes(202, Some("text/plain"), &[], b"Accepted", close).await?,
                404 => conn.send_bytes(404, Some("text/plain"), &[], b"Could not find session", close).await?,
                status => conn.send(status, Some("application/json"), &[], close).await?,
            }
        }
        _ if path == st.path => return mcp_endpoint(st, conn, req, close).await,
        // `/bytes/{n}`: n bytes of `x` (at most 64 MiB), for slow-reader and large-body stories.
        _ if path.starts_with("/bytes/") => {
            let n = path.trim_start_matches("/bytes/").parse::<usize>().unwrap_or(0).min(64 << 20);
            conn.send_bytes(200, Some("application/octet-stream"), &[], &vec![b'x'; n], close).await?
        }
        _ => match path.strip_prefix("/status/").map(str::parse::<u16>) {
            Some(Ok(code)) if (200..=599).contains(&code) => status_echo(conn, code, close).await?,
            _ => conn.send_bytes(404, Some("text/plain"), &[], b"not found\n", close).await?,
        },
    }
    Ok(true)
}

async fn json(conn: &mut Conn, status: u16, body: &[u8], close: bool) -> io::Result<()> {
    conn.send_bytes(status, Some("application/json"), &[], body, close).await
}

/// `/status/{code}`: that status, body `{"status":code}` (empty for 202/204/304).
async fn status_echo(conn: &mut Conn, code: u16, close: bool) -> io::Result<()> {
    const RM: &str = r#"Bearer resource_metadata="http://x/.well-known/oauth-protected-resource""#;
    let extra: &[(&str, &str)] = if code == 401 { &[("WWW-Authenticate", RM)] } else { &[] };
    if matches!(code, 202 | 204 | 304) {
        return conn.send_bytes(code, None, extra, b"", close).await;
    }
    let body = format!(r#"{{"status":{code}}}"#);
    conn.send_bytes(code, Some("application/json"), extra, body.as_bytes(), close).await
}

/// The MCP endpoint: POST (JSON-RPC), GET (stateful event stream), DELETE (end session).
async fn mcp_endpoint(st: &'static State, conn: &mut Conn, req: &Request, close: bool) -> io::Result<bool> {
    let session = req.header("mcp-session-id");
    match req.method() {
        "POST" => {
            let ctx = mcp::Ctx { session, sessions: st.stateful };
            match mcp::handle(st, &req.body, &mut conn.obuf, &ctx) {
                mcp::Outcome::Accepted => {
                    conn.obuf.clear();
                    conn.send(202, None, &[], close).await?;
                }
                mcp::Outcome::Json(status) if !st.answer_gap.is_zero() => {
                    conn.send_split(status, "application/json", st.answer_gap, close).await?
                }
                mcp::Outcome::Json(status) => conn.send(status, Some("application/json"), &[], close).await?,
                mcp::Outcome::Listed => {
                    if !st.list_delay.is_zero() && req.body.windows(12).any(|w| w == b"\"tools/list\"") {
                        tokio::time::sleep(st.list_delay).await;
                    }
                    if st.stray_list_id {
                        restamp(&mut conn.obuf);
                    }
                    let sse = req.header("accept").is_some_and(|a| a.contains("text/event-stream"));
                    if st.sse_lists && sse {
                        let answer = std::mem::take(&mut conn.obuf);
                        return sse::list_stream(st, conn, &answer, close).await;
                    }
                    conn.send(200, Some("application/json"), &[], close).await?
                }
                mcp::Outcome::Initialized(sid) => {
                    conn.send(200, Some("application/json"), &[("Mcp-Session-Id", &sid)], close).await?
                }
                mcp::Outcome::Listen(id) => return sse::listen_stream(st, conn, &id, close).await,
                mcp::Outcome::Slow(call) => {
                    if st.forge.is_some() {
                        return sse::forged(st, conn, &call, close).await;
                    }
                    let sse = req.header("accept").is_some_and(|a| a.contains("text/event-stream"));
                    if sse {
                        return sse::slow_stream(st, conn, &call, close).await;
                    }
                    let total = Duration::from_millis(call.delay_ms.saturating_mul(call.steps));
                    if sse::wait(st, conn, tokio::time::sleep(total), false).await?.is_none() {
                        return Ok(false);
                    }
                    conn.obuf.clear();
                    mcp::slow_result(&call, &mut conn.obuf);
                    conn.send(200, Some("application/json"), &[], close).await?;
                }
            }
            Ok(true)
        }
        m @ ("GET" | "DELETE") if st.stateful => {
            let sid = match session {
                None => {
                    return mcp_error(conn, 400, -32000, "Bad Request: Mcp-Session-Id header is required", close).await
                }
                Some(s) if !st.has_session(s) => return mcp_error(conn, 404, -32001, "Session not found", close).await,
                Some(s) => s,
            };
            if m == "DELETE" {
                st.sessions.lock().unwrap().remove(sid);
                conn.send_bytes(200, None, &[], b"", close).await?;
                return Ok(true);
            }
            let last = req.header("last-event-id").and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0);
            sse::session_stream(st, conn, sid, last, close).await?;
            Ok(false)
        }
        _ => {
            conn.obuf.clear();
            mcp::error(&mut conn.obuf, None, -32000, "Method not allowed");
            let allow = if st.stateful { "GET, POST, DELETE" } else { "POST" };
            conn.send(405, Some("application/json"), &[("Allow", allow)], close).await?;
            Ok(true)
        }
    }
}

async fn mcp_error(conn: &mut Conn, status: u16, code: i32, msg: &str, close: bool) -> io::Result<bool> {
    mcp::error(&mut conn.obuf, None, code, msg);
    conn.send(status, Some("application/json"), &[], close).await?;
    Ok(true)
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
}

/// Replaces the id of the JSON-RPC answer in `answer` by `"stray"` (`--stray-list-id`).
fn restamp(answer: &mut Vec<u8>) {
    if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(answer) {
        v["id"] = serde_json::Value::from("stray");
        if let Ok(out) = serde_json::to_vec(&v) {
            *answer = out;
        }
    }
}
