//! One running stdio server: started from config (cleared environment, its own process group,
//! killed if mcp-edge dies), initialized with the `initialize` it is given, its stdout read
//! line by line (bounded) into the [`Link`], its stderr into the log under the pool's name,
//! watched (exit, stdout closed, unanswered liveness `ping`), and on end its whole process
//! group ended (SIGTERM, then SIGKILL), so helpers a server started go too.
//! Not owned here: restarting (`stdio::shared`), sessions (`stdio::session`), HTTP
//! (`stdio::bridge`).

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio_util::codec::{AnyDelimiterCodec, FramedRead};

use super::frame;
use super::link::{Gone, Line, Link, STDIN_QUEUE};
use crate::config::stdio::StdioConfig;

/// Longest line a process may write to stdout (a whole JSON-RPC message).
const MAX_LINE: usize = 8 * 1024 * 1024;
/// Longest stderr line logged as one; longer output is drained unlogged.
const MAX_LOG_LINE: usize = 16 * 1024;
/// stderr lines logged per second and process; more are counted, not logged.
const LOG_LINES_PER_SEC: u32 = 100;
/// How long a process group has between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(2);

/// Whose process, in the log: the pool, and the slot's index (or a session's number).
#[derive(Clone)]
pub struct Who {
    pub pool: String,
    pub index: usize,
    /// A shared process's: told when it says its lists changed. A session's process tells
    /// its own client (on the session's stream) instead.
    pub changes: Option<super::Changes>,
}

/// Why a process did not start.
#[derive(Debug, thiserror::Error)]
pub enum Failed {
    #[error("cannot run the command: {0}")]
    Spawn(std::io::Error),
    #[error(transparent)]
    Start(Gone),
}

/// Why a started process stopped serving.
pub enum Exit {
    Exited(Option<std::process::ExitStatus>),
    ClosedStdout,
    Hung(Gone),
    /// Whoever started it stopped it.
    Stopped,
}

/// A process started and initialized: its link, and what [`Process::end`] ends.
pub struct Process {
    child: Child,
    pub pid: u32,
    pub link: Arc<Link>,
    writer: tokio::task::JoinHandle<()>,
    reader: tokio::task::JoinHandle<()>,
    who: Who,
}

/// Starts `config`'s command and initializes it with `init` (the `initialize` line numbered
/// [`frame::INIT_ID`], then `notifications/initialized`), within `start_timeout` or until
/// `stop` completes; a process that did not start is ended before this returns.
pub async fn start(
    config: &StdioConfig,
    who: &Who,
    init: (Vec<u8>, Vec<u8>),
    stop: impl std::future::Future<Output = ()>,
) -> Result<Process, Failed> {
    let mut child = spawn(config).map_err(Failed::Spawn)?;
    let pid = child.id().unwrap_or(0);
    let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        end(who, &mut child, pid).await;
        return Err(Failed::Start(Gone::Exited));
    };
    let (tx, rx) = mpsc::channel(STDIN_QUEUE);
    let link = Link::new(tx);
    let writer = tokio::spawn(write(stdin, rx));
    let reader = tokio::spawn(read(stdout, Arc::clone(&link), who.clone()));
    tokio::spawn(log(stderr, who.pool.clone(), who.index));
    let mut process = Process { child, pid, link, writer, reader, who: who.clone() };
    let ready = tokio::select! {
        ready = process.link.handshake(init, config.start_timeout) => ready,
        _ = process.child.wait() => Err(Gone::Exited),
        _ = stop => Err(Gone::Exited),
    };
    match ready {
        Ok(()) => Ok(process),
        Err(e) => {
            process.end().await;
            Err(Failed::Start(e))
        }
    }
}

impl Process {
    /// Waits until the process exits, closes its stdout, leaves a liveness ping unanswered,
    /// or `stop` completes.
    pub async fn wait(&mut self, config: &StdioConfig, stop: impl std::future::Future) -> Exit {
        tokio::select! {
            status = self.child.wait() => Exit::Exited(status.ok()),
            _ = &mut self.reader => Exit::ClosedStdout,
            hung = watch_liveness(&self.link, config) => Exit::Hung(hung),
            _ = stop => Exit::Stopped,
        }
    }

    /// Ends the process: requests still waiting get "exited" now (not when their clients give
    /// up), then its process group and every descendant end.
    pub async fn end(mut self) {
        self.link.close();
        self.writer.abort();
        self.reader.abort();
        end(&self.who, &mut self.child, self.pid).await;
    }
}

fn spawn(config: &StdioConfig) -> std::io::Result<Child> {
    let mut cmd = Command::new(&config.command);
    cmd.args(&config.args)
        .env_clear()
        .envs(config.env.iter().map(|(k, v)| (k, v.expose())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = &config.cwd {
        cmd.current_dir(dir);
    }
    if let Some(user) = &config.user {
        cmd.uid(user.uid).gid(user.gid);
    }
    // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no memory of the parent.
    // It kills the process when the thread that started it (a supervisor worker, which lives
    // as long as mcp-edge) dies: a crashed mcp-edge leaves no server behind (SIGKILL: one that
    // ignores SIGTERM too). Helpers a server started are the server's to end.
    unsafe {
        cmd.pre_exec(|| nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from));
    }
    cmd.spawn()
}

/// Pings the process every `ping_interval` (a hung server accepts connections through its
/// bridge but answers nothing); returns when a ping goes unanswered for `start_timeout`.
/// Never returns when `ping_interval` is zero.
async fn watch_liveness(link: &Arc<Link>, config: &StdioConfig) -> Gone {
    if config.ping_interval.is_zero() {
        return std::future::pending().await;
    }
    loop {
        tokio::time::sleep(config.ping_interval).await;
        match link.ping(config.start_timeout).await {
            // A full queue is a process far behind, not a hung one: asked again next time.
            Ok(()) | Err(Gone::Full) => {}
            Err(gone) => return gone,
        }
    }
}

/// Ends the process group, and every descendant that left it (`setsid`): SIGTERM, a grace
/// period, SIGKILL.
async fn end(who: &Who, child: &mut Child, pid: u32) {
    let group = Pid::from_raw(pid as i32);
    // Found while the server lives: a daemon's parent is the server until the server is gone.
    let descendants = if pid > 0 { super::tree::descendants(pid) } else { Vec::new() };
    let signal_all = |signal| {
        if pid > 0 {
            let _ = killpg(group, signal);
        }
        // Each checked first: a helper that ended may have left its pid to another process.
        for d in descendants.iter().filter(|d| d.still_there()) {
            let _ = killpg(Pid::from_raw(d.pid as i32), signal);
            let _ = nix::sys::signal::kill(Pid::from_raw(d.pid as i32), signal);
        }
    };
    signal_all(Signal::SIGTERM);
    if tokio::time::timeout(TERM_GRACE, child.wait()).await.is_err() {
        tracing::warn!(pool = %who.pool, process = who.index, pid, "stdio server ignored SIGTERM; killing it");
    }
    // Also whatever the server started and left running.
    signal_all(Signal::SIGKILL);
    let _ = child.wait().await;
}

async fn write(mut stdin: ChildStdin, mut lines: mpsc::Receiver<Line>) {
    while let Some(line) = lines.recv().await {
        if stdin.write_all(&line.bytes).await.is_err() || stdin.flush().await.is_err() {
            return;
        }
    }
}

/// Hands each stdout line to the link; ends at EOF or at a line over `MAX_LINE`. The first
/// line that is not JSON-RPC is logged (once per process: a server printing banners to stdout
/// breaks the protocol, and says why here).
async fn read(stdout: impl AsyncRead + Unpin, link: Arc<Link>, who: Who) {
    let pool = &who.pool;
    let mut lines =
        FramedRead::new(stdout, AnyDelimiterCodec::new_with_max_length(b"\n".to_vec(), Vec::new(), MAX_LINE));
    let mut told = false;
    while let Some(Ok(line)) = lines.next().await {
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        if line.trim_ascii().is_empty() {
            continue;
        }
        match frame::outbound(line) {
            frame::Outbound::Unreadable if !told => {
                told = true;
                tracing::warn!(pool = %pool, bytes = line.len(), "stdio server wrote a line to stdout that is not JSON-RPC (dropped; logs belong on stderr)");
            }
            frame::Outbound::Changed { lists, msg } => {
                if let Some(changed) = who.changes.as_ref().and_then(|c| c.get()) {
                    tracing::debug!(pool = %pool, ?lists, "stdio server said its lists changed");
                    changed(pool, lists);
                }
                link.dispatch(frame::Outbound::Changed { lists, msg });
            }
            out => link.dispatch(out),
        }
    }
}

/// Logs each stderr line under the pool's name (escaped: a server cannot forge log lines), at
/// most `LOG_LINES_PER_SEC` a second (a chatty or hostile server must not fill the disk); the
/// rest are counted in one line per second.
async fn log(stderr: impl AsyncRead + Unpin, pool: String, index: usize) {
    let mut lines =
        FramedRead::new(stderr, AnyDelimiterCodec::new_with_max_length(b"\n".to_vec(), Vec::new(), MAX_LOG_LINE));
    let (mut window, mut logged, mut dropped) = (Instant::now(), 0u32, 0u64);
    loop {
        let line = match lines.next().await {
            Some(Ok(line)) => line,
            None => return,
            // A line too long to log: said so, and reading goes on after it (the reader
            // starts again mid-line, so its tail is logged as a line of its own).
            Some(Err(_)) => {
                tracing::warn!(target: "mcp_edge::stdio", pool = %pool, process = index, "stdio server wrote a stderr line over {MAX_LOG_LINE} bytes; not logged");
                lines = FramedRead::new(
                    lines.into_inner(),
                    AnyDelimiterCodec::new_with_max_length(b"\n".to_vec(), Vec::new(), MAX_LOG_LINE),
                );
                continue;
            }
        };
        if window.elapsed() >= Duration::from_secs(1) {
            if dropped > 0 {
                tracing::warn!(target: "mcp_edge::stdio", pool = %pool, process = index, dropped, "stdio server stderr lines not logged (over {LOG_LINES_PER_SEC} a second)");
            }
            (window, logged, dropped) = (Instant::now(), 0, 0);
        }
        if logged < LOG_LINES_PER_SEC {
            logged += 1;
            let text = String::from_utf8_lossy(&line);
            tracing::info!(target: "mcp_edge::stdio", pool = %pool, process = index, line = ?text.trim_end(), "stdio server stderr");
        } else {
            dropped += 1;
        }
    }
}
