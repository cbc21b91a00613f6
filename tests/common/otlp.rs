//! A real OpenTelemetry receiver for trace assertions: `tests/peers/otlp_receiver.py`
//! (installed by `scripts/peers.sh` into `.peers/otel`) serves OTLP/gRPC and OTLP/HTTP on two
//! free loopback ports and writes one JSON line per received span, before answering the
//! export. So once an exporter has its answer, the spans are in the file; "nothing more was
//! exported" is checked by polling for a quiet window (`assert_stays`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::peers::Peers;
use super::recording::QUIET;
use super::Proc;

/// How long `wait_spans` waits for spans (an exporter batches: seconds, not milliseconds).
pub const SPANS_DEADLINE: Duration = Duration::from_secs(15);

/// One span as the receiver decoded it. Ids are lower-case hex; `parent_span_id` is "" for a
/// root span. `kind` is `SERVER`, `CLIENT`, `INTERNAL`, `PRODUCER`, `CONSUMER` or
/// `UNSPECIFIED`; `status.code` is `OK`, `ERROR` or `UNSET`.
#[derive(Debug, Clone, Deserialize)]
pub struct Span {
    /// "grpc" or "http": how the span reached the receiver.
    pub protocol: String,
    pub resource: serde_json::Map<String, serde_json::Value>,
    pub scope: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub name: String,
    pub kind: String,
    pub start_ns: u64,
    pub end_ns: u64,
    pub status: Status,
    /// Values as JSON scalars (ints as JSON ints); arrays and maps as JSON arrays and objects.
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub links: Vec<Link>,
    pub flags: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Status {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Link {
    pub trace_id: String,
    pub span_id: String,
}

impl Span {
    pub fn attr(&self, key: &str) -> Option<&serde_json::Value> {
        self.attributes.get(key)
    }
    pub fn attr_str(&self, key: &str) -> Option<&str> {
        self.attr(key).and_then(|v| v.as_str())
    }
    pub fn attr_i64(&self, key: &str) -> Option<i64> {
        self.attr(key).and_then(|v| v.as_i64())
    }
}

/// A running receiver, killed when dropped (its stdin closing also ends it).
pub struct Receiver {
    pub grpc_port: u16,
    pub http_port: u16,
    // Dropped in this order: the process first, then its temp dir.
    _proc: Proc,
    _stdin: ChildStdin,
    out: PathBuf,
    dir: tempfile::TempDir,
}

impl Receiver {
    pub fn start() -> Receiver {
        Receiver::start_with(&[])
    }

    /// With receiver flags: `--fail-first N` (the first N exports get gRPC UNAVAILABLE / HTTP
    /// 503, their spans are not recorded), `--delay SECONDS` (before every answer).
    pub fn start_with(args: &[&str]) -> Receiver {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("spans.jsonl");
        let stderr = std::fs::File::create(dir.path().join("receiver.log")).expect("log file");
        let mut cmd = Peers::load().script("PEERS_OTEL", "otlp_receiver.py");
        cmd.arg("--out").arg(&out).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(stderr);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("start otlp_receiver.py: {e}"));
        let mut proc = Proc { child, name: "otlp_receiver".into() };
        let stdin = proc.child.stdin.take().expect("receiver stdin");
        let stdout = proc.child.stdout.take().expect("receiver stdout");

        // Readiness: the one line it prints once both servers listen, read with a deadline.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let log = || std::fs::read_to_string(dir.path().join("receiver.log")).unwrap_or_default();
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("otlp_receiver.py printed no ports within 30 s; its stderr:\n{}", log()));
        let ports: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("otlp_receiver.py printed {line:?}, not its ports; its stderr:\n{}", log()));
        let port = |k: &str| ports[k].as_u64().and_then(|p| u16::try_from(p).ok()).expect("a port");
        Receiver { grpc_port: port("grpc"), http_port: port("http"), _proc: proc, _stdin: stdin, out, dir }
    }

    /// OTLP/HTTP traces endpoint, for an exporter's config.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/traces", self.http_port)
    }

    /// OTLP/gRPC endpoint, for an exporter's config.
    pub fn grpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// Every span received so far (complete lines only).
    pub fn spans(&self) -> Vec<Span> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad span line ({e}): {l}")))
            .collect()
    }

    /// Waits until at least `n` spans arrived and returns them all.
    pub fn wait_spans(&self, n: usize) -> Vec<Span> {
        let deadline = Instant::now() + SPANS_DEADLINE;
        loop {
            let spans = self.spans();
            if spans.len() >= n {
                return spans;
            }
            assert!(
                Instant::now() < deadline,
                "the OTLP receiver got {} spans in {SPANS_DEADLINE:?}, expected {n}: {spans:#?}\nits stderr:\n{}",
                spans.len(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Asserts that no more than `n` spans arrive during `QUIET` (300 ms). For "exactly n",
    /// `wait_spans(n)` first.
    pub fn assert_stays(&self, n: usize) {
        let deadline = Instant::now() + QUIET;
        loop {
            let spans = self.spans();
            assert!(spans.len() <= n, "the OTLP receiver should have at most {n} spans, got: {spans:#?}");
            if Instant::now() >= deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the receiver wrote to stderr (it notes each export it failed on purpose).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("receiver.log")).unwrap_or_default()
    }
}
