//! Getting finished spans to the collector without ever slowing a request: a bounded queue
//! (of spans already encoded on the request's thread, see `span::build`) that the request path
//! only pushes into (a full queue drops the spans and counts them), and one thread of its own
//! that batches (up to `batch` spans, or whatever came within `interval`), puts the service
//! and scope in front once per batch, and sends it over OTLP/gRPC or OTLP/HTTP
//! ([`super::transport`]) under `timeout`. The thread polls the queue every [`TICK`] instead
//! of blocking on it: a blocked receiver would make every push wake it (a futex call and a
//! context switch per request, which measured as most of tracing's cost); polled, a push is a
//! few stores. A failed export is counted and logged at most once a minute, never retried
//! (traces are best effort; a retrying exporter would only grow the backlog).
//!
//! The thread runs a current-thread Tokio runtime, apart from Pingora's: the exporter's
//! connections and timers never share a worker with requests. Dropping the last [`Exporter`]
//! (a reload that changed `[traces]`, or shutdown) closes the queue; the thread sends what is
//! left, then ends.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prometheus::IntCounter;

use super::transport::Transport;
use super::wire;
use crate::config::model::TraceSettings;

/// Failed exports are logged at most this often (each is counted).
const LOG_EVERY: Duration = Duration::from_secs(60);
/// How often the export thread looks at the queue: 50 looks a second, however busy the
/// proxy is (the queue must hold what arrives in one tick: 4096 spans is 200k spans/s).
pub const TICK: Duration = Duration::from_millis(20);

/// One request's spans, encoded (`ScopeSpans.spans` fields, see `span::build`).
struct Spans {
    bytes: Vec<u8>,
    count: usize,
}

/// The queue into the export thread, and its settings (a reload keeps an equal one).
pub struct Exporter {
    pub settings: TraceSettings,
    queue: Sender<Spans>,
    /// Spans in the queue: the bound (`settings.queue`) is on spans, whatever the requests.
    queued: Arc<AtomicUsize>,
    dropped: IntCounter,
    /// Set at shutdown: the thread sends what is queued now, then says so on `flushed`.
    closing: Arc<AtomicBool>,
    flushed: Mutex<Receiver<()>>,
}

/// The `trace_spans_total` counters by result.
#[derive(Clone)]
pub struct Counters {
    pub exported: IntCounter,
    pub failed: IntCounter,
    pub dropped: IntCounter,
}

impl Exporter {
    /// Starts the export thread. Fails only if the thread cannot be spawned.
    pub fn start(settings: TraceSettings, counters: Counters) -> std::io::Result<Exporter> {
        let (queue, rx) = mpsc::channel();
        let (done, flushed) = mpsc::channel();
        let closing = Arc::new(AtomicBool::new(false));
        let queued = Arc::new(AtomicUsize::new(0));
        let thread = Thread {
            settings: settings.clone(),
            rx,
            queued: Arc::clone(&queued),
            counters: counters.clone(),
            closing: Arc::clone(&closing),
            done,
        };
        std::thread::Builder::new().name("mcp-edge-traces".into()).spawn(move || thread.run())?;
        Ok(Exporter { settings, queue, queued, dropped: counters.dropped, closing, flushed: Mutex::new(flushed) })
    }

    /// At shutdown: has the thread send what is queued now, waiting at most `limit` for it.
    pub fn flush(&self, limit: Duration) -> bool {
        self.closing.store(true, Ordering::Release);
        self.flushed.lock().map(|rx| rx.recv_timeout(limit).is_ok()).unwrap_or(false)
    }

    /// Hands a request's encoded spans to the export thread, or drops them (counted) when the
    /// queue holds `queue` spans already.
    pub fn send(&self, bytes: Vec<u8>, count: usize) {
        // Admitted only if the count stays within the bound: never raised past it, even for a
        // moment, so a refused request cannot make another that fits look refused.
        let fits = |n: usize| n.checked_add(count).filter(|&m| m <= self.settings.queue);
        if self.queued.fetch_update(Ordering::AcqRel, Ordering::Acquire, fits).is_err() {
            self.dropped.inc_by(count as u64);
            return;
        }
        if self.queue.send(Spans { bytes, count }).is_err() {
            self.queued.fetch_sub(count, Ordering::AcqRel);
            self.dropped.inc_by(count as u64);
        }
    }
}

/// The export thread's side.
struct Thread {
    settings: TraceSettings,
    rx: Receiver<Spans>,
    queued: Arc<AtomicUsize>,
    counters: Counters,
    closing: Arc<AtomicBool>,
    done: mpsc::Sender<()>,
}

impl Thread {
    fn run(self) {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(error = %e, "trace export thread: no runtime; spans are dropped");
                return self.drop_queued();
            }
        };
        let mut transport = match rt.block_on(async { Transport::new(&self.settings) }) {
            Ok(transport) => transport,
            Err(e) => {
                tracing::error!(error = %e, "trace exporter could not be built; spans are dropped");
                return self.drop_queued();
            }
        };
        let envelope = Envelope::new(&self.settings);
        let mut last_logged: Option<Instant> = None;
        let mut batch = Batch::default();
        loop {
            let open = self.collect(&mut batch);
            let closing = self.closing.load(Ordering::Acquire);
            if batch.count == 0 && closing {
                // Flushed: everything queued when the flush began has been sent.
                let _ = self.done.send(());
                return;
            }
            if batch.count > 0 {
                let n = batch.count as u64;
                let request = envelope.wrap(&batch.bytes);
                batch.clear();
                let sent =
                    rt.block_on(async { tokio::time::timeout(self.settings.timeout, transport.send(request)).await });
                match sent {
                    Ok(Ok(())) => self.counters.exported.inc_by(n),
                    failure => {
                        self.counters.failed.inc_by(n);
                        if last_logged.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
                            last_logged = Some(Instant::now());
                            let why = match failure {
                                Ok(Err(e)) => e.to_string(),
                                _ => format!("no answer within {:?}", self.settings.timeout),
                            };
                            tracing::warn!(error = %why, spans = n, "trace export failed (logged at most once a minute; see trace_spans_total)");
                        }
                    }
                }
            }
            if !open {
                return;
            }
        }
    }

    /// The thread cannot export: what was queued already is counted as dropped (later sends
    /// find the queue closed and count themselves).
    fn drop_queued(&self) {
        while let Ok(spans) = self.rx.try_recv() {
            self.counters.dropped.inc_by(spans.count as u64);
        }
    }

    /// Fills `batch` until it holds `batch` spans or `interval` passed since it began to
    /// fill, looking at the queue every [`TICK`]; at once, with whatever is queued, while
    /// closing. False once the queue is closed (after taking what it still held).
    fn collect(&self, batch: &mut Batch) -> bool {
        let (max, interval) = (self.settings.batch, self.settings.interval);
        let mut since: Option<Instant> = None;
        loop {
            while batch.count < max {
                match self.rx.try_recv() {
                    Ok(spans) => {
                        self.queued.fetch_sub(spans.count, Ordering::AcqRel);
                        batch.bytes.extend_from_slice(&spans.bytes);
                        batch.count += spans.count;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return false,
                }
            }
            if batch.count >= max || self.closing.load(Ordering::Acquire) {
                return true;
            }
            // An idle proxy keeps ticking, but exports nothing.
            if batch.count > 0 && since.get_or_insert_with(Instant::now).elapsed() >= interval {
                return true;
            }
            std::thread::sleep(TICK.min(interval));
        }
    }
}

/// Spans on their way into one export request.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    count: usize,
}

impl Batch {
    fn clear(&mut self) {
        self.bytes.clear();
        self.count = 0;
    }
}

/// What every export request says around its spans: one `ResourceSpans` (the service) with
/// one `ScopeSpans` (the proxy as instrumentation scope), encoded once.
struct Envelope {
    /// `ResourceSpans.resource`, as a field.
    resource: Vec<u8>,
    /// `ScopeSpans.scope`, as a field.
    scope: Vec<u8>,
}

impl Envelope {
    fn new(s: &TraceSettings) -> Envelope {
        let version = env!("CARGO_PKG_VERSION");
        let mut resource = Vec::new();
        wire::message(&mut resource, 1, |o| {
            wire::attr_str(o, 1, "service.name", &s.service_name);
            wire::attr_str(o, 1, "service.version", version);
        });
        let mut scope = Vec::new();
        wire::message(&mut scope, 1, |o| {
            wire::string(o, 1, "mcp-edge");
            wire::string(o, 2, version);
        });
        Envelope { resource, scope }
    }

    /// An `ExportTraceServiceRequest` holding `spans` (encoded `ScopeSpans.spans` fields).
    fn wrap(&self, spans: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(spans.len() + self.resource.len() + self.scope.len() + 16);
        wire::message(&mut out, 1, |o| {
            o.extend_from_slice(&self.resource);
            wire::message(o, 2, |o| {
                o.extend_from_slice(&self.scope);
                o.extend_from_slice(spans);
            });
        });
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;

    #[test]
    fn a_batch_is_one_request_with_the_service_and_scope_in_front() {
        let settings = TraceSettings {
            endpoint: "http://127.0.0.1:4317".into(),
            protocol: crate::config::model::OtlpProtocol::Grpc,
            sample: 1.0,
            follow_parent: true,
            queue: 16,
            batch: 8,
            timeout: Duration::from_secs(1),
            interval: Duration::from_secs(1),
            service_name: "edge-eu".into(),
        };
        let mut spans = Vec::new();
        for name in ["tools/call a", &"n".repeat(300)] {
            wire::message(&mut spans, 2, |o| wire::string(o, 5, name));
        }
        let request = Envelope::new(&settings).wrap(&spans);
        let decoded = ExportTraceServiceRequest::decode(request).expect("decodes");
        let [rs] = &decoded.resource_spans[..] else { panic!("one ResourceSpans: {decoded:?}") };
        let resource = rs.resource.as_ref().expect("a resource");
        let keys: Vec<_> = resource.attributes.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["service.name", "service.version"]);
        let [ss] = &rs.scope_spans[..] else { panic!("one ScopeSpans: {rs:?}") };
        assert_eq!(ss.scope.as_ref().map(|s| s.name.as_str()), Some("mcp-edge"));
        let names: Vec<_> = ss.spans.iter().map(|s| s.name.len()).collect();
        assert_eq!(names, [12, 300]);
    }
}
