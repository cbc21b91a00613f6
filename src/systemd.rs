//! systemd integration: `sd_notify` messages (READY, RELOADING, STOPPING, STATUS, WATCHDOG)
//! over `$NOTIFY_SOCKET`, written without libsystemd. Does nothing when not run by systemd.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends one notification; silently skipped outside systemd. Failures are logged once per
/// call at debug level: a notify socket that went away must never affect the proxy.
pub fn notify(message: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let result = UnixDatagram::unbound().and_then(|sock| {
        let bytes = path.as_encoded_bytes();
        match bytes.strip_prefix(b"@") {
            // Abstract socket: a leading NUL instead of '@'.
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                sock.send_to_addr(message.as_bytes(), &addr)
            }
            None => sock.send_to(message.as_bytes(), &path),
        }
    });
    if let Err(e) = result {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

/// READY=1 with our own pid as MAINPID: after a binary upgrade the successor process says so,
/// and systemd (with `NotifyAccess=all`) follows it as the unit's main process.
pub fn ready(status: &str) {
    notify(&format!("READY=1\nMAINPID={}\nSTATUS={status}", std::process::id()));
}

/// RELOADING=1 with the monotonic timestamp systemd (v253+) wants beside it.
pub fn reloading() {
    notify(&format!("RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading configuration", monotonic_usec()));
}

pub fn stopping() {
    notify("STOPPING=1\nSTATUS=draining connections");
}

/// Half the watchdog period systemd asked for, when it asked (WatchdogSec= in the unit).
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    let for_us = std::env::var("WATCHDOG_PID").ok().and_then(|p| p.parse::<u32>().ok());
    if for_us.is_some_and(|pid| pid != std::process::id()) {
        return None;
    }
    Some(Duration::from_micros(usec / 2))
}

fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into the valid, exclusively borrowed `ts`.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}
