//! A process's descendants, read from `/proc` (each process's parent is field 4 of
//! `/proc/<pid>/stat`), so a server's helpers that left its process group (`setsid`, as
//! daemons do) are still ended with it. Only processes whose chain of parents reaches the
//! server are found: one already orphaned (its parent exited first) belongs to init.

use std::collections::HashMap;

/// A process as found: its pid and its start time (clock ticks after boot), so a signal sent
/// later reaches it and not a process that got its pid after it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub pid: u32,
    started: u64,
}

impl Found {
    /// Whether the process found is still the one with this pid.
    pub fn still_there(&self) -> bool {
        stat(self.pid).is_some_and(|(_, started)| started == self.started)
    }
}

/// Every process below `root`, found by one pass over `/proc`.
pub fn descendants(root: u32) -> Vec<Found> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut children: HashMap<u32, Vec<Found>> = HashMap::new();
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if let Some((parent, started)) = stat(pid) {
            children.entry(parent).or_default().push(Found { pid, started });
        }
    }
    let mut found: Vec<Found> = Vec::new();
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        for &c in children.get(&p).map(Vec::as_slice).unwrap_or_default() {
            // A pid seen twice would be a cycle (pids reused while reading): stop there.
            if c.pid != root && !found.iter().any(|f| f.pid == c.pid) {
                found.push(c);
                todo.push(c.pid);
            }
        }
    }
    found
}

/// A process's parent and start time, from `/proc/<pid>/stat`.
fn stat(pid: u32) -> Option<(u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or `)`: the fields
    // after it start after the last `)`, with the state (field 3) first.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let parent = fields.nth(1)?.parse().ok()?;
    // Field 22, the start time: 18 fields after the parent (field 4).
    let started = fields.nth(17)?.parse().ok()?;
    Some((parent, started))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_childs_child_is_a_descendant() {
        let mut child = std::process::Command::new("/bin/sh").args(["-c", "sleep 30 & wait"]).spawn().expect("sh");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut found = Vec::new();
        while found.is_empty() && std::time::Instant::now() < deadline {
            found = super::descendants(child.id());
            std::thread::yield_now();
        }
        assert!(found.iter().all(super::Found::still_there), "{found:?}");
        let _ = std::process::Command::new("kill").args(found.iter().map(|f| f.pid.to_string())).status();
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(found.len(), 1, "the sleep under the shell: {found:?}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while found[0].still_there() && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert!(!found[0].still_there(), "a process that ended is not there, whatever has its pid now");
        assert!(super::descendants(std::process::id()).len() < 10_000);
    }
}
