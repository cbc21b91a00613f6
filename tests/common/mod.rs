//! Helpers the integration tests are built from: start the real binaries on free loopback
//! ports, wait for readiness by polling with a deadline (never a fixed sleep), and talk HTTP.
#![allow(dead_code)]

pub mod browser;
pub mod http;
pub mod listening;
pub mod otlp;
pub mod peers;
pub mod raw;
pub mod recording;
pub mod redis;
pub mod tls;

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const MCP_EDGE: &str = env!("CARGO_BIN_EXE_mcp-edge");
pub const MOCK: &str = env!("CARGO_BIN_EXE_mcp-edge-mock");

/// A loopback port that was free a moment ago (Pingora cannot report an ephemeral port).
///
/// Never the same port twice in one test binary: two tests running at once could otherwise be
/// given one port (it is free again between `free_port` and the child's bind), and one of
/// them would talk to the other's server. Test binaries run one after another.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = l.local_addr().expect("local addr").port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Polls `ready` until it holds or `limit` passes.
pub fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A backend address where nothing listens and nothing we start ever will: port 1 (tcpmux) is
/// never served on these machines. (A port from `free_port` could be taken by a later listener.)
pub const DEAD_BACKEND: &str = "127.0.0.1:1";

pub fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_millis(200)).is_ok()
}

/// A child process killed when the test ends, pass or fail.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command) -> Proc {
        let child = cmd.stdin(Stdio::null()).spawn().unwrap_or_else(|e| panic!("start {name}: {e}"));
        Proc { child, name: name.to_owned() }
    }

    /// Waits for the process to exit, polling until `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Sends a signal by name (libc-free: through kill(1)).
    pub fn signal(&self, sig: &str) {
        let ok =
            Command::new("kill").args([&format!("-{sig}"), &self.child.id().to_string()]).status().map(|s| s.success());
        assert_eq!(ok.ok(), Some(true), "kill -{sig} {}", self.name);
    }
}

/// Sends a signal by name to any process (through kill(1)).
pub fn signal_pid(pid: u32, sig: &str) {
    let ok = Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]).status().map(|s| s.success());
    assert_eq!(ok.ok(), Some(true), "kill -{sig} {pid}");
}

/// The fast mock MCP server from this repository.
pub struct Mock {
    pub port: u16,
    pub name: String,
    _proc: Proc,
}

impl Mock {
    pub fn start(name: &str, stateful: bool) -> Mock {
        Mock::start_with(name, stateful, &[])
    }

    pub fn start_with(name: &str, stateful: bool, extra: &[&str]) -> Mock {
        Mock::start_on(free_port(), name, stateful, extra)
    }

    /// On a given port: to bring a "crashed" backend back where the config expects it.
    pub fn start_on(port: u16, name: &str, stateful: bool, extra: &[&str]) -> Mock {
        let mut cmd = Command::new(MOCK);
        cmd.args(["--listen", &format!("127.0.0.1:{port}"), "--name", name]).args(extra).stdout(Stdio::null());
        if stateful {
            cmd.arg("--stateful");
        }
        let proc = Proc::spawn(name, &mut cmd);
        wait_until(&format!("mock {name} on :{port}"), Duration::from_secs(10), || port_open(port));
        Mock { port, name: name.to_owned(), _proc: proc }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn stop(self) {}

    /// Sends the mock a signal (`STOP` makes a backend that accepts but never answers).
    #[allow(dead_code)]
    pub fn signal(&self, sig: &str) {
        self._proc.signal(sig);
    }
}

/// A running mcp-edge with its own temp dir, config file and ports.
pub struct Edge {
    pub port: u16,
    pub admin: u16,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub proc: Proc,
}

/// The last `n` lines of `bytes`, for a failed test's report.
pub fn tail(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A failed test shows what mcp-edge logged: the assertion alone rarely says why.
impl Drop for Edge {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- mcp-edge log (last 40 lines) ---\n{}", tail(self.log().as_bytes(), 40));
        }
    }
}

impl Edge {
    /// mcp-edge's resident memory, in MiB.
    pub fn rss_mib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.proc.child.id())).unwrap_or_default();
        let kib = status.lines().find_map(|l| l.strip_prefix("VmRSS:")?.trim().strip_suffix("kB")?.trim().parse().ok());
        kib.unwrap_or(0) / 1024
    }

    /// Starts mcp-edge with `body` (TOML without [proxy]/[admin] listen, which this fills in)
    /// and waits until `/readyz` answers 200.
    pub fn start(body: &str) -> Edge {
        Edge::start_with_key(body, None)
    }

    pub fn start_with_key(body: &str, key: Option<&Path>) -> Edge {
        Edge::start_opts(body, Opts { key, ..Opts::default() })
    }

    pub fn start_opts(body: &str, opts: Opts<'_>) -> Edge {
        // A port `free_port` found free can be taken by another test before mcp-edge binds
        // it: such a start is tried again on new ports.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let dir = tempfile::tempdir().expect("tempdir");
            let (port, admin) = (opts.port.unwrap_or_else(free_port), free_port());
            let config = dir.path().join("mcp-edge.toml");
            write_config(&config, port, admin, dir.path(), &opts, body);
            let log = std::fs::File::create(dir.path().join("mcp-edge.log")).expect("log file");
            let proc = Proc::spawn(
                "mcp-edge",
                Command::new(MCP_EDGE)
                    .args(["--config", config.to_str().expect("utf8 path")])
                    .env("RUST_LOG", "info")
                    .envs(opts.env.iter().copied())
                    .stderr(log),
            );
            let mut edge = Edge { port, admin, dir, config, proc };
            match edge.wait_ready() {
                Ok(()) => return edge,
                Err(log) if attempt < 4 && log.contains("Address already in use") => continue,
                Err(log) => panic!("mcp-edge exited before it was ready; its log:\n{log}"),
            }
        }
    }

    /// Polls `/readyz` until 200; returns at once, with the log, if mcp-edge exited (a config
    /// error, say) instead of waiting out the deadline.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while http::try_status(self.admin, "/readyz") != Some(200) {
            if let Ok(Some(_)) = self.proc.child.try_wait() {
                return Err(self.log());
            }
            assert!(Instant::now() < deadline, "timed out waiting for mcp-edge /readyz; its log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(25));
        }
        Ok(())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Rewrites the config body (ports kept) for a reload.
    pub fn rewrite(&self, body: &str, opts: &Opts<'_>) {
        write_config(&self.config, self.port, self.admin, self.dir.path(), opts, body);
    }

    /// Everything mcp-edge logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mcp-edge.log")).unwrap_or_default()
    }

    /// Waits (with a deadline) until the log holds `needle` (logs are written in the background).
    pub fn wait_log(&self, needle: &str) {
        wait_until(&format!("{needle:?} in the log"), Duration::from_secs(5), || self.log().contains(needle));
    }

    /// Waits (with a deadline) until `/metrics` shows `line`: requests are counted in the
    /// logging phase, just after the client has its response.
    pub fn wait_metric(&self, line: &str) {
        let mut last = String::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            last = self.metrics();
            if last.contains(line) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("metric {line:?} not seen; /metrics:\n{last}");
    }

    pub fn metrics(&self) -> String {
        http::get(self.admin, "/metrics").text()
    }
}

/// What a test may add to the generated config.
#[derive(Default)]
pub struct Opts<'a> {
    pub key: Option<&'a Path>,
    /// Extra lines for the [proxy] table, such as `max_body_bytes = 1000`.
    pub proxy: &'a str,
    /// Extra lines for the [sessions] table (written with `key`).
    pub sessions: &'a str,
    /// Environment for the mcp-edge process.
    pub env: &'a [(&'a str, &'a str)],
    /// The proxy listener's IP; `None` is 127.0.0.1.
    pub listen_ip: Option<&'a str>,
    /// The proxy listener's port, when the config must name it; `None` is a free one.
    pub port: Option<u16>,
}

fn write_config(path: &Path, port: u16, admin: u16, dir: &Path, opts: &Opts<'_>, body: &str) {
    let mut f = std::fs::File::create(path).expect("create config");
    let d = dir.display();
    writeln!(
        f,
        "[proxy]\nlisten = [\"{}:{port}\"]\nthreads = 2\npid_file = \"{d}/pid\"\nupgrade_sock = \"{d}/upgrade.sock\"\ngrace_period = \"1s\"\nshutdown_timeout = \"1s\"\n{}\n\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n",
        opts.listen_ip.unwrap_or("127.0.0.1"),
        opts.proxy
    )
    .expect("write config");
    if let Some(key) = opts.key {
        writeln!(f, "[sessions]\nkey_file = \"{}\"\n{}\n", key.display(), opts.sessions).expect("write config");
    }
    f.write_all(body.as_bytes()).expect("write config");
}

/// One pool of backends plus a route: the common shape of test configs.
pub fn pool(name: &str, backends: &[&Mock], extra: &str) -> String {
    let list: Vec<String> = backends.iter().map(|m| format!("\"{}\"", m.addr())).collect();
    format!("[[pool]]\nname = \"{name}\"\nbackends = [{}]\npath = \"/mcp\"\n{extra}\n[pool.health]\ncheck = \"mcp\"\ninterval = \"1s\"\n\n", list.join(", "))
}
