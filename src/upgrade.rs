//! Binary upgrade on SIGUSR2, the way systemd can follow it: the running process starts its
//! successor (`argv[0]` as it is on disk now, same arguments, plus `--upgrade`) inside the same
//! service cgroup, waits until the successor listens on the upgrade socket, then sends itself
//! SIGQUIT: Pingora hands the listening sockets over and this process drains and exits. The
//! successor announces `MAINPID` with `READY=1`. If the successor dies first, nothing happens
//! and this process keeps serving.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

/// How long the successor may take to reach the upgrade socket.
const HANDOVER_DEADLINE: Duration = Duration::from_secs(30);

pub struct Upgrader {
    pub upgrade_sock: PathBuf,
}

#[async_trait]
impl BackgroundService for Upgrader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut usr2) = signal(SignalKind::user_defined2()) else {
            tracing::error!("cannot install the SIGUSR2 handler; upgrade with `--upgrade` and SIGQUIT by hand");
            return;
        };
        loop {
            tokio::select! {
                _ = usr2.recv() => self.upgrade().await,
                _ = shutdown.changed() => return,
            }
        }
    }
}

impl Upgrader {
    async fn upgrade(&self) {
        let mut args: Vec<String> = std::env::args().filter(|a| a != "--upgrade" && a != "-u").collect();
        if args.is_empty() {
            return;
        }
        let program = args.remove(0);
        let rest = args;

        // A stale socket file would make us hand over to nobody.
        let _ = std::fs::remove_file(&self.upgrade_sock);
        let mut child = match Command::new(&program).args(&rest).arg("--upgrade").spawn() {
            Ok(child) => child,
            Err(e) => {
                tracing::error!(program, error = %e, "SIGUSR2: cannot start the new binary; still serving");
                return;
            }
        };
        tracing::info!(program, pid = child.id(), "SIGUSR2: started the new binary; waiting for it to take over");
        let deadline = Instant::now() + HANDOVER_DEADLINE;
        while !self.upgrade_sock.exists() {
            if let Ok(Some(status)) = child.try_wait() {
                tracing::error!(%status, "the new binary exited before taking over; still serving");
                return;
            }
            if Instant::now() > deadline {
                tracing::error!("the new binary did not reach the upgrade socket in time; stopping it, still serving");
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The successor now outlives us; its exit status is systemd's (or init's) business.
        std::mem::forget(child);
        // SAFETY: kill(2) with our own pid and a valid signal number has no memory effects.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGQUIT);
        }
    }
}
