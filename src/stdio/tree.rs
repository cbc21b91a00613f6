//! A process's descendants, read from `/proc` (each process's parent is field 4 of
//! `/proc/<pid>/stat`), so a server's helpers that left its process group (`setsid`, as
//! daemons do) are still ended with it. Only processes whose chain of parents reaches the
//! server are found: one already orphaned (its parent exited first) belongs to init.

use std::collections::HashMap;

/// Every process below `root`, found by one pass over `/proc`.
pub fn descendants(root: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if let Some(parent) = parent_of(pid) {
            children.entry(parent).or_default().push(pid);
        }
    }
    let mut found = Vec::new();
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        for &c in children.get(&p).map(Vec::as_slice).unwrap_or_default() {
            // A pid seen twice would be a cycle (pids reused while reading): stop there.
            if c != root && !found.contains(&c) {
                found.push(c);
                todo.push(c);
            }
        }
    }
    found
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or `)`: the fields
    // after it start after the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_ascii_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_childs_child_is_a_descendant() {
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 30 & wait"])
            .spawn()
            .expect("sh");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut found = Vec::new();
        while found.is_empty() && std::time::Instant::now() < deadline {
            found = super::descendants(child.id());
            std::thread::yield_now();
        }
        let _ = std::process::Command::new("kill").args(found.iter().map(u32::to_string)).status();
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(found.len(), 1, "the sleep under the shell: {found:?}");
        assert!(super::descendants(std::process::id()).len() < 10_000);
    }
}
