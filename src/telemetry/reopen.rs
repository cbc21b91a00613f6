//! SIGUSR1: reopen the access-log file, for logrotate without `copytruncate` (rename the
//! file, send SIGUSR1, the next batch creates a new file). SIGHUP (reload) and SIGUSR2
//! (binary upgrade) are `server`'s and `upgrade`'s. The handler is installed even when access
//! lines go to stderr, so a stray SIGUSR1 never ends the process (its default action).

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

pub struct Reopener;

#[async_trait]
impl BackgroundService for Reopener {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut usr1) = signal(SignalKind::user_defined1()) else {
            tracing::error!(
                "cannot install the SIGUSR1 handler; log.access_file cannot be reopened (restart after rotating it)"
            );
            return;
        };
        // Tests wait for this line before signalling. (No " access " in these lines: that marks
        // access lines.)
        tracing::info!("SIGUSR1 handler ready: it reopens log.access_file");
        loop {
            tokio::select! {
                _ = usr1.recv() => match super::sink::reopen() {
                    Ok(Some(path)) => tracing::info!(path = %path.display(), "SIGUSR1: log.access_file reopened"),
                    Ok(None) => tracing::info!("SIGUSR1: no log.access_file to reopen"),
                    Err(e) => tracing::error!(error = %e, "SIGUSR1: cannot reopen log.access_file; still writing to the old file"),
                },
                _ = shutdown.changed() => return,
            }
        }
    }
}
