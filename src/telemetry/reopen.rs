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
                "cannot install the SIGUSR1 handler; the access log cannot be reopened (restart after rotating it)"
            );
            return;
        };
        tracing::info!("SIGUSR1 reopens the access log");
        loop {
            tokio::select! {
                _ = usr1.recv() => match super::sink::reopen() {
                    Ok(Some(path)) => tracing::info!(path = %path.display(), "SIGUSR1: access log reopened"),
                    Ok(None) => tracing::info!("SIGUSR1: access lines go to stderr; nothing to reopen"),
                    Err(e) => tracing::error!(error = %e, "SIGUSR1: cannot reopen the access log; still writing to the old file"),
                },
                _ = shutdown.changed() => return,
            }
        }
    }
}
