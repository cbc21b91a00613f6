//! A shared process: one slot of a stdio pool, serving every client, restarted with
//! jittered exponential back-off whenever it exits, closes its stdout, fails its start or
//! stops answering `ping`. Not owned here: running one process (`stdio::process`), HTTP
//! (`stdio::bridge`), the registry of slots (`stdio`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::watch;

use super::frame;
use super::process::{start, Exit, Failed, Process, Who};
use super::Slot;
use crate::config::stdio::StdioConfig;

/// A process that served this long restarts from the shortest back-off again.
const STABLE: Duration = Duration::from_secs(60);

/// Runs the slot's process until `stop` changes, restarting it whenever it ends.
pub async fn supervise(slot: Arc<Slot>, config: Arc<StdioConfig>, mut stop: watch::Receiver<bool>) {
    let mut failures: u32 = 0;
    let who = Who { pool: slot.pool.clone(), index: slot.index, changes: Some(Arc::clone(&slot.changes)) };
    loop {
        let started = Instant::now();
        let init = frame::handshake(crate::federation::LEGACY_VERSIONS[0]);
        let mut stopped = stop.clone();
        match start(&config, &who, init, async move {
            let _ = stopped.changed().await;
        })
        .await
        {
            Ok(process) => serve(&slot, &config, process, &mut stop).await,
            Err(Failed::Spawn(e)) => {
                tracing::error!(pool = %slot.pool, process = slot.index, error = %e, "stdio server did not start")
            }
            Err(Failed::Start(e)) if !*stop.borrow() => {
                tracing::warn!(pool = %slot.pool, process = slot.index, error = %e, "stdio server failed its start; restarting it")
            }
            Err(Failed::Start(_)) => {}
        }
        if *stop.borrow() {
            return;
        }
        if started.elapsed() >= STABLE {
            failures = 0;
        }
        let delay = backoff(&config, failures);
        failures = failures.saturating_add(1);
        slot.restarts.inc();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Serves the slot's started process until it ends or `stop` changes, then ends it.
async fn serve(slot: &Arc<Slot>, config: &StdioConfig, mut process: Process, stop: &mut watch::Receiver<bool>) {
    slot.link.store(Some(Arc::clone(&process.link)));
    slot.up.inc();
    slot.started.send_modify(|n| *n += 1);
    let (pool, index, pid) = (&slot.pool, slot.index, process.pid);
    tracing::info!(pool = %pool, process = index, pid, "stdio server ready");
    match process.wait(config, stop.changed()).await {
        Exit::Exited(status) => {
            tracing::warn!(pool = %pool, process = index, pid, status = ?status, "stdio server exited; restarting it")
        }
        Exit::ClosedStdout => {
            tracing::warn!(pool = %pool, process = index, pid, "stdio server closed or broke its stdout; restarting it")
        }
        Exit::Hung(hung) => {
            tracing::warn!(pool = %pool, process = index, pid, error = %hung, "stdio server stopped answering ping; restarting it")
        }
        Exit::Stopped => {}
    }
    slot.link.store(None);
    slot.up.dec();
    process.end().await;
}

/// `restart_backoff` doubled per failure in a row, at most `max_restart_backoff`, then a
/// random half to all of it, so processes that failed together do not restart together.
fn backoff(config: &StdioConfig, failures: u32) -> Duration {
    let full = config.restart_backoff.saturating_mul(1u32 << failures.min(20)).min(config.max_restart_backoff);
    full.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
}
