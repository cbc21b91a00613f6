//! Reload: the same loader as start-up, a check that nothing non-reloadable changed, secrets
//! re-read, a new snapshot that reuses unchanged pools, a health probe of every new pool, then
//! one atomic swap. Any failure leaves the running config untouched: nothing applies halfway.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use super::{ReloadStatus, Snapshot, State};
use crate::config::{self, Config};
use crate::session::SessionKey;

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}")]
    Config(#[from] config::ConfigErrors),
    #[error("these fields cannot change without a restart: {}; restart mcp-edge (or do a graceful upgrade) to apply them", .0.join(", "))]
    NotReloadable(Vec<&'static str>),
    #[error("{0}")]
    Pool(#[from] crate::upstream::PoolError),
    #[error("{0}")]
    Key(#[from] crate::session::key::KeyError),
    #[error("cannot open the new log.access_file ({0}); the access log stays where it was")]
    AccessLog(std::io::Error),
}

/// Fields that only take effect at start-up.
pub fn non_reloadable(old: &Config, new: &Config) -> Vec<&'static str> {
    let (o, n) = (&old.proxy, &new.proxy);
    let (ol, nl) = (&old.log, &new.log);
    // The access log's file and slow threshold are reloadable; the rest of `[log]` is not.
    let checks: [(&'static str, bool); 10] = [
        ("proxy.listen", o.listen != n.listen),
        ("proxy.threads", o.threads != n.threads),
        ("proxy.grace_period", o.grace_period != n.grace_period),
        ("proxy.shutdown_timeout", o.shutdown_timeout != n.shutdown_timeout),
        ("proxy.pid_file", o.pid_file != n.pid_file),
        ("proxy.upgrade_sock", o.upgrade_sock != n.upgrade_sock),
        ("admin.listen", old.admin.listen != new.admin.listen),
        ("log.format", ol.format != nl.format),
        ("log.level", ol.level != nl.level),
        ("log.access", ol.access != nl.access),
    ];
    checks.into_iter().filter(|(_, changed)| *changed).map(|(name, _)| name).collect()
}

/// What a reload changed, one phrase per item, for the log line and `/status`.
pub fn changes(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for p in &new.pools {
        // A running stdio pool's backends and credential are its bridges', filled in when its
        // snapshot was built; the config read now has none yet. The same `[pool.stdio]` keeps
        // its processes, so only the rest can have changed.
        let bridged;
        let old_pool = match old.pools.iter().find(|o| o.name == p.name) {
            Some(o) if p.stdio.is_some() && o.stdio == p.stdio => {
                let own = |c: &&crate::config::model::Credential| {
                    !matches!(c.source, crate::config::model::CredentialSource::Bridge)
                };
                bridged = crate::config::model::PoolConfig {
                    backends: p.backends.clone(),
                    credentials: o.credentials.iter().filter(own).cloned().collect(),
                    ..o.clone()
                };
                Some(&bridged)
            }
            other => other,
        };
        match old_pool {
            None => out.push(format!("pool {} added", p.name)),
            Some(o) if o == p => {}
            // Never the values: only that they changed.
            Some(o) if o.same_connections(p) => out.push(format!("pool {} credentials or headers changed", p.name)),
            Some(o) => {
                let added: Vec<_> = p
                    .backends
                    .iter()
                    .filter(|b| !o.backends.iter().any(|x| x.addr == b.addr))
                    .map(|b| b.addr.to_string())
                    .collect();
                let removed: Vec<_> = o
                    .backends
                    .iter()
                    .filter(|b| !p.backends.iter().any(|x| x.addr == b.addr))
                    .map(|b| b.addr.to_string())
                    .collect();
                let mut what = format!("pool {} changed", p.name);
                if !added.is_empty() {
                    what.push_str(&format!(", backends added [{}]", added.join(", ")));
                }
                if !removed.is_empty() {
                    what.push_str(&format!(", backends removed [{}]", removed.join(", ")));
                }
                out.push(what);
            }
        }
    }
    out.extend(
        old.pools
            .iter()
            .filter(|o| !new.pools.iter().any(|p| p.name == o.name))
            .map(|o| format!("pool {} removed", o.name)),
    );
    for r in &new.routes {
        match old.routes.iter().find(|o| o.name == r.name) {
            None => out.push(format!("route {} added", r.name)),
            Some(o) if o != r => out.push(format!("route {} changed", r.name)),
            Some(_) => {}
        }
    }
    out.extend(
        old.routes
            .iter()
            .filter(|o| !new.routes.iter().any(|r| r.name == o.name))
            .map(|o| format!("route {} removed", o.name)),
    );
    for t in &new.proxy.tls {
        if old.proxy.tls.iter().find(|o| o.listen == t.listen) != Some(t) {
            out.push(format!("tls {} added or changed", t.listen));
        }
    }
    if old.sessions != new.sessions {
        out.push("sessions changed".into());
    }
    if old.tool_labels != new.tool_labels {
        out.push("metrics.tools changed".into());
    }
    for l in &new.limits {
        if old.limits.iter().find(|o| o.name == l.name) != Some(l) {
            out.push(format!("limit {} added or changed", l.name));
        }
    }
    out.extend(
        old.limits
            .iter()
            .filter(|o| !new.limits.iter().any(|l| l.name == o.name))
            .map(|o| format!("limit {} removed", o.name)),
    );
    if old.redis != new.redis {
        out.push("redis changed".into());
    }
    if old.log.access_file != new.log.access_file {
        out.push("log.access_file changed".into());
    }
    if old.log.access_slow != new.log.access_slow {
        out.push("log.access_slow changed".into());
    }
    out
}

impl State {
    /// Loads `path` and swaps it in, or leaves the running config untouched and says why.
    pub async fn reload(self: &Arc<Self>, path: &Path) -> Result<u64, ReloadError> {
        let _one_at_a_time = self.reloading.lock().await;
        crate::systemd::reloading();
        let result = self.try_reload(path).await;
        let now = SystemTime::now();
        let mut status = self.last_reload.lock().map(|s| s.clone()).unwrap_or_default();
        status.at = Some(now);
        status.ok = result.is_ok();
        match &result {
            Ok((generation, changes)) => {
                tracing::info!(generation, changes = %if changes.is_empty() { "none".into() } else { changes.join("; ") }, "config reloaded");
                for w in crate::config::lint::warnings(&self.snapshot().config) {
                    tracing::warn!(warning = %w, "config");
                }
                self.metrics.config_reloads.with_label_values(&["ok"]).inc();
                self.metrics
                    .config_last_success
                    .set(now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64);
                status.error = None;
                status.last_success = Some(now);
                status.changes = changes.clone();
            }
            Err(e) => {
                tracing::error!(error = %e, "config reload refused; the running config stays");
                self.metrics.config_reloads.with_label_values(&["error"]).inc();
                status.error = Some(e.to_string());
            }
        }
        if let Ok(mut last) = self.last_reload.lock() {
            *last = ReloadStatus { ..status };
        }
        if self.is_ready() {
            crate::systemd::ready("serving");
        }
        result.map(|(generation, _)| generation)
    }

    async fn try_reload(&self, path: &Path) -> Result<(u64, Vec<String>), ReloadError> {
        let new = config::load(path)?;
        let current = self.snapshot();
        let frozen = non_reloadable(&current.config, &new);
        if !frozen.is_empty() {
            return Err(ReloadError::NotReloadable(frozen));
        }
        // Secrets are re-read on every reload, so a rotated key file takes effect.
        let keys = match &new.sessions.key_file {
            Some(file) => Some(self.keys.load().rotate(SessionKey::from_file(file)?, new.sessions.rotation_overlap)),
            None => None,
        };
        let changes = changes(&current.config, &new);
        let next = Snapshot::build(new, Some(&current), &self.metrics, &self.stdio);
        // Processes a failed build started are stopped again; on success, the ones it replaced.
        let next = match next {
            Ok(next) => next,
            Err(e) => {
                self.stdio.retain(&stdio_pools(&current.config));
                return Err(e.into());
            }
        };
        self.stdio.started().await;
        // New or changed pools would count every backend healthy until probed: probe first.
        let fresh: Vec<_> =
            next.pools.iter().filter(|p| !current.pools.iter().any(|o| o.shares_state(p))).cloned().collect();
        let mut probes = tokio::task::JoinSet::new();
        for pool in fresh {
            let limit = pool.config.health.timeout.saturating_mul(2);
            probes.spawn(async move { tokio::time::timeout(limit, pool.run_health_check()).await });
        }
        while probes.join_next().await.is_some() {}
        let generation = next.generation;
        if new_log_file(&current.config, &next.config) {
            crate::telemetry::sink::set(next.config.log.access_file.as_deref()).map_err(ReloadError::AccessLog)?;
        }
        if let Some(keys) = keys {
            self.keys.store(Arc::new(keys));
        }
        crate::federation::stats::retire(&self.metrics, &next);
        let keep = stdio_pools(&next.config).into_iter().map(|(p, c)| (p.to_owned(), c.clone())).collect::<Vec<_>>();
        self.swap(next);
        self.stdio.retain(&keep.iter().map(|(p, c)| (p.as_str(), c)).collect::<Vec<_>>());
        Ok((generation, changes))
    }
}

/// The stdio pools of `config`, by name, for `Supervisor::retain`.
fn stdio_pools(config: &Config) -> Vec<(&str, &crate::config::stdio::StdioConfig)> {
    config.pools.iter().filter_map(|p| p.stdio.as_ref().map(|s| (p.name.as_str(), s))).collect()
}

/// Whether the reload moves the access log (`[log] access` itself needs a restart).
fn new_log_file(old: &Config, new: &Config) -> bool {
    new.log.access && old.log.access_file != new.log.access_file
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn conf(extra: &str) -> Config {
        let text = format!(
            "[[pool]]\nname = \"a\"\nbackends = [\"127.0.0.1:1\"]\n{extra}\n[[route]]\nname = \"r\"\npool = \"a\"\n"
        );
        config::parse(Path::new("t.toml"), &text).expect("valid")
    }

    #[test]
    fn changes_name_pools_backends_and_routes() {
        let old = conf("");
        let new = conf("[[pool]]\nname = \"b\"\nbackends = [\"127.0.0.1:2\"]\n").clone();
        assert_eq!(changes(&old, &new), vec!["pool b added".to_owned()]);
        let moved = config::parse(
            Path::new("t.toml"),
            "[[pool]]\nname = \"a\"\nbackends = [\"127.0.0.1:3\"]\n[[route]]\nname = \"s\"\npool = \"a\"\n",
        )
        .expect("valid");
        assert_eq!(
            changes(&old, &moved),
            vec![
                "pool a changed, backends added [127.0.0.1:3], backends removed [127.0.0.1:1]",
                "route s added",
                "route r removed"
            ]
        );
    }

    #[test]
    fn a_removed_limit_is_listed_once() {
        let limit = "[[limit]]\nname = \"per-ip\"\nrate = \"10/s\"\nkey = [\"client_ip\"]\n";
        assert_eq!(changes(&conf(limit), &conf("")), vec!["limit per-ip removed".to_owned()]);
    }

    #[test]
    fn listeners_threads_and_admin_are_not_reloadable() {
        let old = conf("");
        let mut new = conf("");
        new.proxy.threads = 8;
        new.admin.listen = "127.0.0.1:1".parse().expect("addr");
        assert_eq!(non_reloadable(&old, &new), vec!["proxy.threads", "admin.listen"]);
    }

    #[test]
    fn the_access_log_file_reloads_and_the_log_format_does_not() {
        let old = conf("");
        let mut new = conf("");
        new.log.access_file = Some("/var/log/mcp-edge/access.log".into());
        new.log.access_slow = std::time::Duration::from_secs(5);
        assert!(non_reloadable(&old, &new).is_empty());
        assert!(new_log_file(&old, &new));
        assert_eq!(changes(&old, &new), vec!["log.access_file changed", "log.access_slow changed"]);
        new.log.format = crate::config::model::LogFormat::Json;
        assert_eq!(non_reloadable(&old, &new), vec!["log.format"]);
    }
}
