//! What a backend was actually sent: a mock started with `--record FILE` writes one JSON line
//! per received request, before answering it. So once a client has the response to request
//! N, the lines up to N are in the file; "nothing arrived" is proven by a later request
//! that did arrive (`wait_count`), or by polling for a quiet window (`assert_stays`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::Mock;

/// How long `assert_stays` watches for a line that should not come.
pub const QUIET: Duration = Duration::from_millis(300);

/// One request as the backend received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query as sent on the request line.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Recorded {
    /// Every value of header `name` (case-insensitive), in arrival order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_all(name).first().copied()
    }
}

/// The record file of one mock (kept in a temp dir owned by this value).
pub struct Recording {
    pub name: String,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

/// A stateless mock named `name` that records every request it receives.
pub fn mock(name: &str) -> (Mock, Recording) {
    start(name, false)
}

/// A mock that issues legacy sessions (`Mcp-Session-Id`) and records every request.
#[allow(dead_code)]
pub fn stateful_mock(name: &str) -> (Mock, Recording) {
    start(name, true)
}

/// A mock that issues legacy sessions, started with more flags (`--tick-ms 50`).
#[allow(dead_code)]
pub fn stateful_mock_with(name: &str, extra: &[&str]) -> (Mock, Recording) {
    start_with(name, true, extra)
}

fn start(name: &str, stateful: bool) -> (Mock, Recording) {
    start_with(name, stateful, &[])
}

/// A stateless recording mock started with more flags (`--page-size 2`, `--sse-lists`).
#[allow(dead_code)]
pub fn mock_with(name: &str, extra: &[&str]) -> (Mock, Recording) {
    start_with(name, false, extra)
}

fn start_with(name: &str, stateful: bool, extra: &[&str]) -> (Mock, Recording) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("requests.jsonl");
    let file = path.to_str().expect("utf8 path").to_owned();
    let mut args = vec!["--record", file.as_str()];
    args.extend_from_slice(extra);
    let mock = Mock::start_with(name, stateful, &args);
    (mock, Recording { name: name.to_owned(), path, _dir: dir })
}

impl Recording {
    /// Every request received so far.
    pub fn lines(&self) -> Vec<Recorded> {
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        text.lines().filter(|l| !l.is_empty()).map(|l| parse(&self.name, l)).collect()
    }

    pub fn count(&self) -> usize {
        self.lines().len()
    }

    /// Waits until at least `n` requests arrived and returns them all.
    pub fn wait_count(&self, n: usize) -> Vec<Recorded> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let lines = self.lines();
            if lines.len() >= n {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "backend {} received {} requests, expected {n}: {lines:#?}",
                self.name,
                lines.len()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Asserts that the backend received exactly `n` requests and nothing more arrives during
    /// `QUIET`.
    pub fn assert_stays(&self, n: usize) {
        let deadline = Instant::now() + QUIET;
        loop {
            let lines = self.lines();
            assert!(lines.len() == n, "backend {} should have received {n} requests, got: {lines:#?}", self.name);
            if Instant::now() >= deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Asserts the backend never received a request.
    pub fn assert_nothing(&self) {
        self.assert_stays(0);
    }
}

fn parse(name: &str, line: &str) -> Recorded {
    let v: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("backend {name}: bad record line ({e}): {line}"));
    if let Some(why) = v.get("unparsed") {
        return Recorded {
            method: "<unparsed>".into(),
            target: why.to_string(),
            headers: Vec::new(),
            body: String::new(),
        };
    }
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let headers = v["headers"]
        .as_array()
        .map(|hs| {
            hs.iter()
                .map(|h| (h[0].as_str().unwrap_or_default().to_owned(), h[1].as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    Recorded { method: s("method"), target: s("target"), headers, body: s("body") }
}
