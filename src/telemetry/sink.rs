//! Where access-log batches go: stderr (the default) or `[log] access_file`, opened for
//! appending. The file is reopened on SIGUSR1 ([`super::reopen`]), so logrotate can rename it
//! and have the next batch start a new file at the configured path (no `copytruncate`), and
//! replaced when a reload names another file. Opening happens before anything is switched, so
//! a file that cannot be opened leaves lines flowing where they went.
//!
//! One lock held for each batch's write(2) (a few per second), never per line.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

enum Dest {
    Stderr,
    File { path: PathBuf, file: File },
}

static DEST: Mutex<Dest> = Mutex::new(Dest::Stderr);

fn dest() -> MutexGuard<'static, Dest> {
    // Nothing can be left half-done under this lock: a poisoned one is still usable.
    DEST.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Opens an access-log file the way the proxy writes it: appending, created readable by the
/// owner and its group only (lines name clients and identities).
pub fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new().append(true).create(true).mode(0o640).open(path)
}

pub(super) fn write(batch: &[u8]) {
    // Nowhere left to report a failing log; the proxy keeps serving.
    let _ = match &mut *dest() {
        Dest::Stderr => io::stderr().lock().write_all(batch),
        Dest::File { file, .. } => file.write_all(batch),
    };
}

/// From now on lines go to `path` (None: stderr). What is buffered goes out first, where it
/// was headed. An error leaves the destination as it was.
pub fn set(path: Option<&Path>) -> io::Result<()> {
    let next = match path {
        Some(path) => Dest::File { path: path.to_owned(), file: open(path)? },
        None => Dest::Stderr,
    };
    super::access::flush();
    *dest() = next;
    Ok(())
}

/// Reopens the access-log file at its path (after logrotate renamed it); the path, or None
/// when lines go to stderr.
pub fn reopen() -> io::Result<Option<PathBuf>> {
    let path = match &*dest() {
        Dest::File { path, .. } => path.clone(),
        Dest::Stderr => return Ok(None),
    };
    set(Some(&path))?;
    Ok(Some(path))
}
