//! `[proxy] watch_config = true`: reload when the config file changes on disk. Polls the path
//! (not an inode), so editors that write a new file and rename it over the old one are seen;
//! waits until the file has been stable for one more poll (debounce), and reloads only when
//! the content differs from what is running (a touch is not a change).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use sha2::{Digest, Sha256};

use super::State;

const POLL: Duration = Duration::from_millis(500);

pub struct ConfigWatcher {
    pub state: Arc<State>,
}

/// What identifies a version of the file cheaply: size and modification time.
fn stamp(path: &std::path::Path) -> Option<(u64, SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

#[async_trait]
impl BackgroundService for ConfigWatcher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut last_seen = None;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.changed() => return,
            }
            let snap = self.state.snapshot();
            let Some(path) = snap.config.source.clone().filter(|_| snap.config.proxy.watch_config) else {
                continue;
            };
            let now = stamp(&path);
            // Debounce: act only when two polls in a row saw the same stamp.
            let stable = now.is_some() && now == last_seen;
            last_seen = now;
            if !stable {
                continue;
            }
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            if crate::config::hex(&Sha256::digest(&bytes)) == snap.config.digest {
                continue;
            }
            tracing::info!(path = %path.display(), "config file changed on disk: reloading");
            // A refused reload is logged and reported by `reload`; retry only after the next edit.
            if self.state.reload(&path).await.is_err() {
                while stamp(&path) == last_seen {
                    tokio::select! {
                        _ = tokio::time::sleep(POLL) => {}
                        _ = shutdown.changed() => return,
                    }
                }
            }
        }
    }
}
