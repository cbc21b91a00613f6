//! Real MCP implementations as backends and clients, installed by `scripts/peers.sh` into
//! `.peers/` and described by `.peers/env`: the Python SDK 2.x and 1.x (FastMCP) servers and
//! clients, `@modelcontextprotocol/server-everything` and the TypeScript SDK client.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{free_port, port_open, wait_until, Proc};

pub struct Peers {
    env: HashMap<String, String>,
}

/// A real MCP server on a free loopback port, stopped when dropped.
pub struct PeerServer {
    pub port: u16,
    _proc: Proc,
    stderr: tempfile::NamedTempFile,
}

/// A failed test shows what the server wrote to stderr.
impl Drop for PeerServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let text = std::fs::read(self.stderr.path()).unwrap_or_default();
            eprintln!("--- {} on :{} stderr ---\n{}", self._proc.name, self.port, super::tail(&text, 20));
        }
    }
}

impl PeerServer {
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Peers {
    pub fn load() -> Peers {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/.peers/env");
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{path}: {e}; run `make test` (it runs scripts/peers.sh)"));
        let env = text
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
            .collect();
        Peers { env }
    }

    /// The command `key` names. Its scripts come from this checkout's `tests/peers`, not from
    /// the one `.peers` was installed from (a worktree may share another's `.peers`).
    fn command(&self, key: &str) -> Command {
        let value = self.env.get(key).unwrap_or_else(|| panic!("{key} missing from .peers/env"));
        let scripts = self.env.get("PEERS_SCRIPTS").map(String::as_str).filter(|s| !s.is_empty());
        let here = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers");
        let mut parts = value.split(' ').map(|p| match scripts.and_then(|s| p.strip_prefix(s)) {
            Some(rest) => format!("{here}{rest}"),
            None => p.to_owned(),
        });
        let mut cmd = Command::new(parts.next().expect("a program"));
        cmd.args(parts);
        cmd
    }

    /// `key` is PEERS_PY2_SERVER, PEERS_PY1_SERVER or PEERS_EVERYTHING; `args` its flags.
    pub fn server(&self, key: &str, args: &[&str]) -> PeerServer {
        let port = free_port();
        let mut cmd = self.command(key);
        let stderr = tempfile::NamedTempFile::new().expect("a file for stderr");
        let into = stderr.reopen().expect("reopen the stderr file");
        cmd.args(["--port", &port.to_string()]).args(args).stdout(Stdio::null()).stderr(into);
        let proc = Proc::spawn(key, &mut cmd);
        wait_until(&format!("{key} {args:?} on :{port}"), Duration::from_secs(30), || port_open(port));
        PeerServer { port, _proc: proc, stderr }
    }

    /// The program and arguments that run the server `key` names over stdio (`--stdio`), for
    /// a `[pool.stdio]` table: mcp-edge starts it, not the test.
    pub fn stdio_server(&self, key: &str, args: &[&str]) -> (String, Vec<String>) {
        let cmd = self.command(key);
        let program = cmd.get_program().to_string_lossy().into_owned();
        let mut all: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        all.push("--stdio".into());
        all.extend(args.iter().map(|a| a.to_string()));
        (program, all)
    }

    /// Runs a client scenario (`key`: PEERS_PY2_CLIENT, PEERS_PY1_CLIENT, PEERS_TS_CLIENT) and
    /// returns the JSON it printed last; fails the test when the scenario failed.
    pub fn client(&self, key: &str, url: &str, args: &[&str]) -> serde_json::Value {
        let mut cmd = self.command(key);
        cmd.args(["--url", url, "--timeout", "60"]).args(args);
        run_json(&format!("{key} {args:?} against {url}"), &mut cmd)
    }

    /// `script` (a file in this checkout's `tests/peers`) run by the interpreter `key` names
    /// (PEERS_PY2, PEERS_PY1 or PEERS_NODE), with `PEERS_NODE_MODULES` in its environment.
    pub fn script(&self, key: &str, script: &str) -> Command {
        let interpreter = self.env.get(key).unwrap_or_else(|| panic!("{key} missing from .peers/env"));
        let mut cmd = Command::new(interpreter);
        cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/").to_owned() + script);
        if let Some(modules) = self.env.get("PEERS_NODE_MODULES") {
            cmd.env("PEERS_NODE_MODULES", modules);
        }
        cmd
    }
}

/// Runs a peer client that prints one JSON object on its last stdout line and returns it;
/// fails the test, with the client's output, unless it exited 0 with `"ok": true`.
pub fn run_json(what: &str, cmd: &mut Command) -> serde_json::Value {
    let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("run {what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let result: serde_json::Value = serde_json::from_str(last)
        .unwrap_or_else(|_| panic!("{what} printed no JSON:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert!(out.status.success() && result["ok"] == true, "{what} failed: {result}\n{}", super::tail(&out.stderr, 15));
    result
}

/// One check of an official conformance scenario, as its `checks.json` reports it.
#[derive(Debug)]
pub struct Check {
    pub id: String,
    pub status: String,
    pub detail: serde_json::Value,
}

impl Peers {
    /// Runs the official MCP conformance suite's server `scenario` against `url`
    /// (`PEERS_CONFORMANCE`, `@modelcontextprotocol/conformance`) and returns its checks.
    /// The CLI exits non-zero when a check fails, so the checks are read from its result file.
    pub fn conformance(&self, scenario: &str, url: &str) -> Vec<Check> {
        let out_dir = tempfile::tempdir().expect("tempdir");
        let out_path = out_dir.path().to_str().expect("utf8 path");
        let out = self
            .command("PEERS_CONFORMANCE")
            .args(["server", "--url", url, "--scenario", scenario, "-o", out_path])
            .output()
            .expect("run the conformance CLI");
        let log = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), super::tail(&out.stderr, 15));
        let file = find_file(out_dir.path(), "checks.json")
            .unwrap_or_else(|| panic!("conformance {scenario} wrote no checks.json:\n{log}"));
        let text = std::fs::read_to_string(&file).expect("read checks.json");
        let checks: Vec<serde_json::Value> =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("checks.json ({e}): {text}\n{log}"));
        checks
            .into_iter()
            .map(|c| Check {
                id: c["id"].as_str().unwrap_or_default().to_owned(),
                status: c["status"].as_str().unwrap_or_default().to_owned(),
                detail: c,
            })
            .collect()
    }
}

impl Peers {
    /// Runs every server scenario of a conformance suite (`key`: PEERS_CONFORMANCE, or
    /// PEERS_CONFORMANCE_NEXT for the 2026-07-28 scenarios; `--suite all`, one run, plus
    /// `extra` arguments) against `url`: each scenario's name with its checks, in name order.
    pub fn conformance_suite(
        &self,
        key: &str,
        url: &str,
        extra: &[&str],
    ) -> std::collections::BTreeMap<String, Vec<Check>> {
        let out_dir = tempfile::tempdir().expect("tempdir");
        let out_path = out_dir.path().to_str().expect("utf8 path");
        let out = self
            .command(key)
            .args(["server", "--url", url, "--suite", "all", "-o", out_path])
            .args(extra)
            .output()
            .expect("run the conformance CLI");
        let mut found = std::collections::BTreeMap::new();
        for entry in std::fs::read_dir(out_dir.path()).expect("the output directory").flatten() {
            // `server-<scenario>-<timestamp: 24 characters>`
            let dir = entry.file_name().to_string_lossy().into_owned();
            let scenario = dir.strip_prefix("server-").and_then(|d| d.get(..d.len().saturating_sub(25)));
            let scenario = scenario.unwrap_or_else(|| panic!("an output directory named {dir}")).to_owned();
            let text = std::fs::read_to_string(entry.path().join("checks.json")).expect("read checks.json");
            let checks: Vec<serde_json::Value> = serde_json::from_str(&text).expect("checks.json");
            let checks = checks
                .into_iter()
                .map(|c| Check {
                    id: c["id"].as_str().unwrap_or_default().to_owned(),
                    status: c["status"].as_str().unwrap_or_default().to_owned(),
                    detail: c,
                })
                .collect();
            found.insert(scenario, checks);
        }
        assert!(!found.is_empty(), "the conformance suite ran nothing:\n{}", super::tail(&out.stderr, 15));
        found
    }
}

fn find_file(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}
