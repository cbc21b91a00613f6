//! `[pool.stdio]`: a pool whose servers are local processes speaking MCP over stdio, started
//! by mcp-edge from config only (never from a request) and supervised by `crate::stdio`.
//! Validated here: an absolute command, the environment (cleared, then the listed variables;
//! secrets read from files, re-read on every reload), the working directory, the user, the
//! number of processes and the restart back-off. No message echoes a value or a file's
//! content. Not owned here: starting, bridging or restarting processes (`crate::stdio`).

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::time::Duration;

use super::duration::{self, Zero};
use super::error::Collector;
use super::raw::{RawStdio, S};
use crate::auth::identity::Secret;

/// Most processes one pool may run.
pub const MAX_PROCESSES: i64 = 64;
/// Most session processes one `per_session` pool may run at once.
pub const MAX_SESSIONS: i64 = 1024;

/// How one stdio pool's processes are started; equal configs share their running processes
/// across a reload, so a changed secret file restarts them and nothing else does.
#[derive(Debug, Clone, PartialEq)]
pub struct StdioConfig {
    pub command: PathBuf,
    pub args: Vec<OsString>,
    pub cwd: Option<PathBuf>,
    /// The child's whole environment (mcp-edge's own is never inherited).
    pub env: Vec<(OsString, Secret<OsString>)>,
    /// The variable names, for `/config` (values are never shown).
    pub env_names: Vec<String>,
    pub user: Option<User>,
    pub processes: usize,
    /// How long a new process has to answer `initialize`.
    pub start_timeout: Duration,
    pub restart_backoff: Duration,
    pub max_restart_backoff: Duration,
    /// How often a running process must answer `ping` (within `start_timeout`); zero: never.
    pub ping_interval: Duration,
    /// `per_session`: one process per client session, none shared (`processes` is then 1:
    /// the one bridge that starts them).
    pub sessions: Option<Sessions>,
}

/// How a `per_session` pool's processes are bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sessions {
    /// Session processes at once; one more client `initialize` is answered 503.
    pub max: usize,
    /// A session's process is ended after this long without a request.
    pub idle: Duration,
}

/// The account a process runs as (mcp-edge must be allowed to switch to it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

pub fn stdio(raw: &S<RawStdio>, pool: &str, c: &mut Collector<'_>) -> Option<StdioConfig> {
    let field = |f: &str| format!("pool.{pool}.stdio.{f}");
    let r = raw.get_ref();
    let before = c.errors.len();
    let command = PathBuf::from(r.command.get_ref());
    if !command.is_absolute() {
        c.push(
            r.command.span(),
            field("command"),
            "is not an absolute path; write the full path (the environment is cleared, so there is no PATH to search)",
        );
    } else if !executable(&command) {
        // Checked here so that `check` and a reload refuse it, not the first start after.
        c.push(
            r.command.span(),
            field("command"),
            "names no executable file; check the path and that its mode lets mcp-edge run it",
        );
    }
    for a in &r.args {
        if a.get_ref().contains('\0') {
            c.push(a.span(), field("args"), "holds a NUL character; remove it");
        }
    }
    let cwd = r.cwd.as_ref().map(|d| {
        if !d.get_ref().starts_with('/') {
            c.push(d.span(), field("cwd"), "is not an absolute path; write the full path of the directory");
        }
        PathBuf::from(d.get_ref())
    });
    let mut env = Vec::with_capacity(r.env.len() + r.env_file.len());
    let mut env_names = Vec::with_capacity(env.capacity());
    for (name, value) in &r.env {
        if env_name(name, value, &field("env"), c) && !value.get_ref().contains('\0') {
            env.push((OsString::from(name), Secret::new(OsString::from(value.get_ref()))));
            env_names.push(name.clone());
        } else if value.get_ref().contains('\0') {
            c.push(value.span(), field("env"), "the value holds a NUL character; remove it");
        }
    }
    for (name, file) in &r.env_file {
        if !env_name(name, file, &field("env_file"), c) {
            continue;
        }
        if r.env.contains_key(name) {
            c.push(file.span(), field("env_file"), "sets a variable `env` sets too; keep one");
            continue;
        }
        if let Some(bytes) = super::upstream_headers::from_file(file, &field("env_file"), c) {
            if bytes.contains(&0) {
                c.push(file.span(), field("env_file"), "the file holds a NUL character; write the value as text");
            } else {
                env.push((OsString::from(name), Secret::new(OsString::from_vec(bytes))));
                env_names.push(name.clone());
            }
        }
    }
    let user = r.user.as_ref().and_then(|u| user(u, &field("user"), c));
    let processes = match r.processes.as_ref() {
        None => 1,
        Some(n) if (1..=MAX_PROCESSES).contains(n.get_ref()) => *n.get_ref() as usize,
        Some(n) => {
            c.push(n.span(), field("processes"), format!("must be between 1 and {MAX_PROCESSES}"));
            1
        }
    };
    let start_timeout =
        duration::or(c, r.start_timeout.as_ref(), &field("start_timeout"), Duration::from_secs(10), Zero::Refused);
    let restart_backoff = duration::or(
        c,
        r.restart_backoff.as_ref(),
        &field("restart_backoff"),
        Duration::from_millis(500),
        Zero::Refused,
    );
    let max_restart_backoff = duration::or(
        c,
        r.max_restart_backoff.as_ref(),
        &field("max_restart_backoff"),
        Duration::from_secs(30),
        Zero::Refused,
    );
    let ping_interval =
        duration::or(c, r.ping_interval.as_ref(), &field("ping_interval"), Duration::from_secs(10), Zero::Allowed);
    let sessions = sessions(r, &field, c);
    if let (Some(_), Some(n)) = (sessions, r.processes.as_ref()) {
        c.push(
            n.span(),
            field("processes"),
            "counts shared processes, and `per_session = true` runs one per client session; remove it (`max_sessions` bounds them)",
        );
    }
    (c.errors.len() == before).then(|| StdioConfig {
        ping_interval,
        command,
        args: r.args.iter().map(|a| OsString::from(a.get_ref())).collect(),
        cwd,
        env,
        env_names,
        user,
        processes: if sessions.is_some() { 1 } else { processes },
        sessions,
        start_timeout,
        restart_backoff,
        max_restart_backoff: max_restart_backoff.max(restart_backoff),
    })
}

/// `per_session`, `max_sessions` and `session_idle`: the latter two only with the first.
fn sessions(r: &RawStdio, field: &dyn Fn(&str) -> String, c: &mut Collector<'_>) -> Option<Sessions> {
    let on = r.per_session.as_ref().is_some_and(|p| *p.get_ref());
    if !on {
        if let Some(span) = r.max_sessions.as_ref().map(S::span).or(r.session_idle.as_ref().map(S::span)) {
            let what = if r.max_sessions.is_some() { "max_sessions" } else { "session_idle" };
            c.push(span, field(what), "applies only with `per_session = true`; set that or remove this");
        }
        return None;
    }
    let max = match r.max_sessions.as_ref() {
        None => 32,
        Some(n) if (1..=MAX_SESSIONS).contains(n.get_ref()) => *n.get_ref() as usize,
        Some(n) => {
            c.push(n.span(), field("max_sessions"), format!("must be between 1 and {MAX_SESSIONS}"));
            32
        }
    };
    let idle =
        duration::or(c, r.session_idle.as_ref(), &field("session_idle"), Duration::from_secs(600), Zero::Refused);
    Some(Sessions { max, idle })
}

fn executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn env_name(name: &str, value: &S<String>, field: &str, c: &mut Collector<'_>) -> bool {
    let ok = !name.is_empty() && !name.contains(['=', '\0']);
    if !ok {
        c.push(value.span(), field, "a variable name is empty or holds `=` or NUL; use names like API_TOKEN");
    }
    ok
}

fn user(u: &S<String>, field: &str, c: &mut Collector<'_>) -> Option<User> {
    match nix::unistd::User::from_name(u.get_ref()) {
        Ok(Some(found)) => Some(User { name: found.name, uid: found.uid.as_raw(), gid: found.gid.as_raw() }),
        Ok(None) | Err(_) => {
            c.push(u.span(), field, "names no account on this machine; create it or name another");
            None
        }
    }
}
