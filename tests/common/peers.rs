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

    fn command(&self, key: &str) -> Command {
        let value = self.env.get(key).unwrap_or_else(|| panic!("{key} missing from .peers/env"));
        let mut parts = value.split(' ');
        let mut cmd = Command::new(parts.next().expect("a program"));
        cmd.args(parts);
        cmd
    }

    /// `key` is PEERS_PY2_SERVER, PEERS_PY1_SERVER or PEERS_EVERYTHING; `args` its flags.
    pub fn server(&self, key: &str, args: &[&str]) -> PeerServer {
        let port = free_port();
        let mut cmd = self.command(key);
        cmd.args(["--port", &port.to_string()]).args(args).stdout(Stdio::null()).stderr(Stdio::null());
        let proc = Proc::spawn(key, &mut cmd);
        wait_until(&format!("{key} {args:?} on :{port}"), Duration::from_secs(30), || port_open(port));
        PeerServer { port, _proc: proc }
    }

    /// Runs a client scenario (`key`: PEERS_PY2_CLIENT, PEERS_PY1_CLIENT, PEERS_TS_CLIENT) and
    /// returns the JSON it printed last; fails the test when the scenario failed.
    pub fn client(&self, key: &str, url: &str, args: &[&str]) -> serde_json::Value {
        let out = self.command(key).args(["--url", url, "--timeout", "60"]).args(args).output().expect("run client");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last = stdout.lines().last().unwrap_or_default();
        let result: serde_json::Value = serde_json::from_str(last).unwrap_or_else(|_| {
            panic!("{key} {args:?} printed no JSON:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr))
        });
        assert!(
            out.status.success() && result["ok"] == true,
            "{key} {args:?} against {url} failed: {result}\n{}",
            tail(&out.stderr)
        );
        result
    }
}

fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
