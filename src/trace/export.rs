//! Getting finished spans to the collector without ever slowing a request: a bounded queue
//! that the request path only `try_send`s into (a full queue drops the span and counts it),
//! and one thread of its own that batches (up to `batch` spans, or whatever came within
//! `interval`) and exports each batch with the OTLP exporter for the configured protocol,
//! under `timeout`. The thread polls the queue every [`TICK`] instead of blocking on it: a
//! blocked receiver would make every `try_send` wake it (a futex call and a context switch
//! per span, which measured as most of tracing's cost); polled, a send is a store. A failed export is counted and logged at most once a minute, never retried
//! (traces are best effort; a retrying exporter would only grow the backlog).
//!
//! The thread runs a current-thread Tokio runtime, apart from Pingora's: the exporter's
//! connections and timers never share a worker with requests. Dropping the last [`Exporter`]
//! (a reload that changed `[traces]`, or shutdown) closes the queue; the thread sends what is
//! left, then ends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use prometheus::IntCounter;

use crate::config::model::{OtlpProtocol, TraceSettings};

/// Failed exports are logged at most this often (each is counted).
const LOG_EVERY: Duration = Duration::from_secs(60);
/// How often the export thread looks at the queue: 50 looks a second, however busy the
/// proxy is (the queue must hold what arrives in one tick: 4096 spans is 200k spans/s).
pub const TICK: Duration = Duration::from_millis(20);

/// The queue into the export thread, and its settings (a reload keeps an equal one).
pub struct Exporter {
    pub settings: TraceSettings,
    queue: SyncSender<SpanData>,
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
        let (queue, rx) = mpsc::sync_channel(settings.queue);
        let (done, flushed) = mpsc::channel();
        let closing = Arc::new(AtomicBool::new(false));
        let shutdown = Shutdown { closing: Arc::clone(&closing), done };
        let thread_settings = settings.clone();
        let dropped = counters.dropped.clone();
        std::thread::Builder::new()
            .name("mcp-edge-traces".into())
            .spawn(move || run(thread_settings, rx, counters, shutdown))?;
        Ok(Exporter { settings, queue, dropped, closing, flushed: Mutex::new(flushed) })
    }

    /// At shutdown: has the thread send what is queued now, waiting at most `limit` for it.
    pub fn flush(&self, limit: Duration) -> bool {
        self.closing.store(true, Ordering::Release);
        self.flushed.lock().map(|rx| rx.recv_timeout(limit).is_ok()).unwrap_or(false)
    }

    /// Hands a finished span to the export thread, or drops it (counted) when the queue is full.
    pub fn send(&self, span: SpanData) {
        match self.queue.try_send(span) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.dropped.inc(),
        }
    }
}

/// The thread's side of a shutdown flush.
struct Shutdown {
    closing: Arc<AtomicBool>,
    done: mpsc::Sender<()>,
}

fn run(settings: TraceSettings, rx: Receiver<SpanData>, counters: Counters, shutdown: Shutdown) {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "trace export thread: no runtime; spans are dropped");
            return;
        }
    };
    let exporter = match rt.block_on(async { build(&settings) }) {
        Ok(exporter) => exporter,
        Err(e) => {
            tracing::error!(error = %e, "trace exporter could not be built; spans are dropped");
            return;
        }
    };
    let mut last_logged: Option<Instant> = None;
    let mut batch = Vec::with_capacity(settings.batch);
    loop {
        let open = collect(&rx, &mut batch, settings.batch, settings.interval, &shutdown.closing);
        if batch.is_empty() && shutdown.closing.load(Ordering::Acquire) {
            // Flushed: everything queued when the flush began has been sent.
            let _ = shutdown.done.send(());
            let _ = exporter.shutdown();
            return;
        }
        if !batch.is_empty() {
            let n = batch.len() as u64;
            let sent = std::mem::replace(&mut batch, Vec::with_capacity(settings.batch));
            let result = rt.block_on(async { tokio::time::timeout(settings.timeout, exporter.export(sent)).await });
            match result {
                Ok(Ok(())) => counters.exported.inc_by(n),
                failure => {
                    counters.failed.inc_by(n);
                    if last_logged.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
                        last_logged = Some(Instant::now());
                        let why = match failure {
                            Ok(Err(e)) => e.to_string(),
                            _ => format!("no answer within {:?}", settings.timeout),
                        };
                        tracing::warn!(error = %why, spans = n, "trace export failed (logged at most once a minute; see trace_spans_total)");
                    }
                }
            }
        }
        if !open {
            let _ = exporter.shutdown();
            return;
        }
    }
}

/// Fills `batch` until it holds `max` spans or `interval` passed since it began to fill,
/// looking at the queue every [`TICK`]; at once, with whatever is queued, while `closing`.
/// False once the queue is closed (after taking what it still held).
fn collect(
    rx: &Receiver<SpanData>,
    batch: &mut Vec<SpanData>,
    max: usize,
    interval: Duration,
    closing: &AtomicBool,
) -> bool {
    let mut since: Option<Instant> = None;
    loop {
        while batch.len() < max {
            match rx.try_recv() {
                Ok(span) => batch.push(span),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
        if batch.len() >= max || closing.load(Ordering::Acquire) {
            return true;
        }
        // An idle proxy keeps ticking, but exports nothing.
        if !batch.is_empty() && since.get_or_insert_with(Instant::now).elapsed() >= interval {
            return true;
        }
        std::thread::sleep(TICK.min(interval));
    }
}

fn build(s: &TraceSettings) -> Result<opentelemetry_otlp::SpanExporter, opentelemetry_otlp::ExporterBuildError> {
    let mut exporter = match s.protocol {
        OtlpProtocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(s.endpoint.clone())
            .with_timeout(s.timeout)
            .build()?,
        OtlpProtocol::Http => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(s.endpoint.clone())
            .with_timeout(s.timeout)
            .build()?,
    };
    let resource = Resource::builder_empty()
        .with_service_name(s.service_name.clone())
        .with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    exporter.set_resource(&resource);
    Ok(exporter)
}
