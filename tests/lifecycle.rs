//! The process around the proxy: SIGTERM and SIGINT drain in-flight streams and exit 0, a
//! taken port fails the start loudly, a graceful binary upgrade hands the sockets over with
//! traffic running and refuses nothing, and systemd hears READY, RELOADING, STOPPING and the
//! watchdog over NOTIFY_SOCKET.

mod common;

use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::http::{self, post_mcp, request, Stream, JSON_HEADERS};
use common::{pool, port_open, wait_until, Edge, Mock, Opts, Proc, MCP_EDGE};

const SLOW: &[u8] = br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"slow","arguments":{"steps":3,"delay_ms":300}}}"#;
const WHOAMI: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}}"#;

fn route(mock: &Mock) -> String {
    pool("p", &[mock], "") + "[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"p\"\n"
}

/// Reads a whole SSE response; true when its last event is the JSON-RPC result.
fn stream_completes(mut s: Stream) -> bool {
    let events: Vec<String> = std::iter::from_fn(|| s.next_event().map(|e| e.0)).collect();
    events.last().is_some_and(|e| e.contains("\"result\""))
}

fn drains_then_exits_zero(signal: &str) {
    let mock = Mock::start("m", false);
    let mut edge = Edge::start(&route(&mock));
    let stream = Stream::open(edge.port, "POST", "/mcp", &JSON_HEADERS, SLOW);
    assert_eq!(stream.status, 200);
    edge.proc.signal(signal);
    let reader = thread::spawn(move || stream_completes(stream));
    wait_until("the listener to close", Duration::from_secs(5), || !port_open(edge.port));
    assert!(reader.join().expect("reader"), "the in-flight stream finished during the drain");
    let status = edge.proc.wait_exit(Duration::from_secs(15)).expect("exited");
    assert_eq!(status.code(), Some(0), "{signal}: {}", edge.log());
}

#[test]
fn sigterm_drains_in_flight_streams_and_exits_zero() {
    drains_then_exits_zero("TERM");
}

#[test]
fn sigint_drains_too() {
    drains_then_exits_zero("INT");
}

#[test]
fn a_taken_port_fails_the_start_with_a_clear_message() {
    let mock = Mock::start("m", false);
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("edge.toml");
    std::fs::write(
        &config,
        format!(
            "[proxy]\nlisten = [\"127.0.0.1:{port}\"]\n[admin]\nlisten = \"127.0.0.1:{}\"\n{}",
            common::free_port(),
            route(&mock)
        ),
    )
    .expect("config");
    let out = Command::new(MCP_EDGE).args(["--config"]).arg(&config).stdin(Stdio::null()).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("cannot listen on 127.0.0.1:{port} (proxy.listen)")), "{stderr}");
}

#[test]
fn graceful_upgrade_hands_over_the_sockets_without_refusing_a_connection() {
    let mock = Mock::start("m", false);
    let mut old = Edge::start(&route(&mock));
    let (stop, ok, failed) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let traffic = {
        let (stop, ok, failed, port) = (stop.clone(), ok.clone(), failed.clone(), old.port);
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let good = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                    && post_mcp(port, "/mcp", &[], WHOAMI).status == 200;
                if good {
                    ok.fetch_add(1, Ordering::Relaxed)
                } else {
                    failed.fetch_add(1, Ordering::Relaxed)
                };
            }
        })
    };
    let in_flight = Stream::open(old.port, "POST", "/mcp", &JSON_HEADERS, SLOW);
    let in_flight = thread::spawn(move || stream_completes(in_flight));

    // The new binary waits on the upgrade socket; SIGQUIT makes the old one send its listeners.
    let log = std::fs::File::create(old.dir.path().join("new.log")).expect("log");
    let mut new = Proc::spawn(
        "mcp-edge (new)",
        Command::new(MCP_EDGE).arg("--upgrade").arg("--config").arg(&old.config).stderr(log),
    );
    let upgrade_sock = old.dir.path().join("upgrade.sock");
    wait_until("the new process to listen on the upgrade socket", Duration::from_secs(10), || upgrade_sock.exists());
    old.proc.signal("QUIT");
    let exited = old.proc.wait_exit(Duration::from_secs(30)).expect("the old process exits after handing over");
    assert_eq!(exited.code(), Some(0));
    assert!(in_flight.join().expect("stream"), "a stream in flight on the old process completed");
    let before = ok.load(Ordering::Relaxed);
    wait_until("traffic on the new process", Duration::from_secs(5), || ok.load(Ordering::Relaxed) > before + 20);
    stop.store(true, Ordering::Relaxed);
    traffic.join().expect("traffic");
    eprintln!("upgrade: {} requests ok, {} failed", ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));

    assert_eq!(failed.load(Ordering::Relaxed), 0, "no connection refused or request failed during the upgrade");
    assert_eq!(http::get(old.admin, "/readyz").status, 200, "the new process serves the admin port too");
    assert!(new.wait_exit(Duration::from_millis(10)).is_none(), "the new process keeps running");
}

#[test]
fn systemd_hears_ready_reloading_stopping_and_the_watchdog() {
    let mock = Mock::start("m", false);
    let dir = tempfile::tempdir().expect("tempdir");
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("notify socket");
    sock.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let path = sock_path.to_str().expect("utf8").to_owned();
    let env = [("NOTIFY_SOCKET", path.as_str()), ("WATCHDOG_USEC", "400000")];
    let mut edge = Edge::start_opts(&route(&mock), Opts { env: &env, ..Opts::default() });
    let mut seen = Vec::new();
    let next_until = |want: &str, seen: &mut Vec<String>| {
        let mut buf = [0u8; 512];
        loop {
            let n = sock.recv(&mut buf).unwrap_or_else(|e| panic!("waiting for {want}: {e}; seen {seen:?}"));
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            seen.push(msg.clone());
            if msg.contains(want) {
                return msg;
            }
        }
    };
    assert!(next_until("READY=1", &mut seen).contains("STATUS=serving"));
    next_until("WATCHDOG=1", &mut seen);
    assert_eq!(request(edge.admin, "POST", "/reload", &[], b"").status, 200);
    let reloading = next_until("RELOADING=1", &mut seen);
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    next_until("READY=1", &mut seen);
    edge.proc.signal("TERM");
    next_until("STOPPING=1", &mut seen);
    assert_eq!(edge.proc.wait_exit(Duration::from_secs(15)).and_then(|s| s.code()), Some(0));
}

#[test]
fn sigusr2_upgrades_in_place_and_the_successor_announces_itself_to_systemd() {
    let mock = Mock::start("m", false);
    let dir = tempfile::tempdir().expect("tempdir");
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("notify socket");
    sock.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let path = sock_path.to_str().expect("utf8").to_owned();
    let mut old = Edge::start_opts(&route(&mock), Opts { env: &[("NOTIFY_SOCKET", path.as_str())], ..Opts::default() });
    let old_pid = old.proc.child.id();
    let main_pid = |msg: &str| msg.lines().find_map(|l| l.strip_prefix("MAINPID=")).and_then(|p| p.parse::<u32>().ok());
    let recv = || {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert_eq!(main_pid(&recv()), Some(old_pid));

    let failed = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let (stop, failed, port) = (stop.clone(), failed.clone(), old.port);
        thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                failed.fetch_add((post_mcp(port, "/mcp", &[], WHOAMI).status != 200) as usize, Ordering::Relaxed);
                n += 1;
            }
            n
        })
    };
    old.proc.signal("USR2");
    let new_pid = loop {
        let msg = recv();
        if let Some(pid) = main_pid(&msg).filter(|p| *p != old_pid && msg.contains("READY=1")) {
            break pid;
        }
    };
    // The successor was started by the old process, not by the test: stop it when done.
    struct Kill(u32);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = Command::new("kill").arg(self.0.to_string()).status();
        }
    }
    let _successor = Kill(new_pid);
    assert_eq!(
        old.proc.wait_exit(Duration::from_secs(30)).and_then(|s| s.code()),
        Some(0),
        "the old process hands over and exits"
    );
    stop.store(true, Ordering::Relaxed);
    let sent = traffic.join().expect("traffic");
    assert_eq!(failed.load(Ordering::Relaxed), 0, "{sent} requests during the upgrade, none failed");
    assert_eq!(post_mcp(old.port, "/mcp", &[], WHOAMI).status, 200, "the successor serves");
}
