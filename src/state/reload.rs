//! Reload: the same loader as start-up, then a check that nothing non-reloadable changed, then
//! a new snapshot (reusing unchanged pools) swapped in atomically. Nothing is applied halfway.

use std::path::Path;
use std::time::SystemTime;

use super::{ReloadStatus, Snapshot, State};
use crate::config::{self, Config};

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}")]
    Config(#[from] config::ConfigErrors),
    #[error("these fields cannot change without a restart: {}", .0.join(", "))]
    NotReloadable(Vec<&'static str>),
    #[error("{0}")]
    Pool(#[from] crate::upstream::PoolError),
}

/// Fields that only take effect at start-up.
pub fn non_reloadable(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if old.proxy.listen != new.proxy.listen {
        changed.push("proxy.listen");
    }
    if old.proxy.threads != new.proxy.threads {
        changed.push("proxy.threads");
    }
    if old.admin.listen != new.admin.listen {
        changed.push("admin.listen");
    }
    if old.sessions != new.sessions {
        changed.push("sessions.key_file");
    }
    if old.log != new.log {
        changed.push("log");
    }
    changed
}

impl State {
    /// Loads `path` and swaps it in, or leaves the running config untouched and says why.
    pub fn reload(&self, path: &Path) -> Result<u64, ReloadError> {
        let result = self.try_reload(path);
        let status = ReloadStatus {
            at: Some(SystemTime::now()),
            ok: result.is_ok(),
            error: result.as_ref().err().map(ToString::to_string),
        };
        match &result {
            Ok(generation) => tracing::info!(generation, "config reloaded"),
            Err(e) => {
                tracing::error!(error = %e, "config reload refused; the running config stays")
            }
        }
        if let Ok(mut last) = self.last_reload.lock() {
            *last = status;
        }
        result
    }

    fn try_reload(&self, path: &Path) -> Result<u64, ReloadError> {
        let new = config::load(path)?;
        let current = self.snapshot();
        let frozen = non_reloadable(&current.config, &new);
        if !frozen.is_empty() {
            return Err(ReloadError::NotReloadable(frozen));
        }
        let next = Snapshot::build(new, Some(&current))?;
        let generation = next.generation;
        self.swap(next);
        Ok(generation)
    }
}
