//! The shipped systemd unit passes `systemd-analyze verify` (where systemd is installed) and
//! asks for what the proxy implements: notify readiness, reload by SIGHUP, a watchdog, an
//! unprivileged dynamic user and the hardening set.

mod common;

use std::process::Command;

const UNIT: &str = include_str!("../systemd/mcp-edge.service");

#[test]
fn the_unit_declares_notify_reload_watchdog_and_hardening() {
    for line in [
        "Type=notify",
        "NotifyAccess=all",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "WatchdogSec=",
        "LimitNOFILE=",
        "DynamicUser=yes",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "CapabilityBoundingSet=\n",
    ] {
        assert!(UNIT.contains(line), "the unit lacks {line:?}");
    }
}

/// `systemd-analyze verify` of the shipped unit (its binary pointed at the one just built),
/// with `drop_in` as `mcp-edge.service.d/stdio.conf` next to it; None without systemd.
fn verify(drop_in: Option<&str>) -> Option<std::process::Output> {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!("systemd-analyze not installed: skipping verify");
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // verify checks that ExecStart= binaries exist: point them at the one just built.
    let unit = dir.path().join("mcp-edge.service");
    std::fs::write(&unit, UNIT.replace("/usr/local/bin/mcp-edge", common::MCP_EDGE)).expect("unit");
    if let Some(text) = drop_in {
        // verify reads drop-ins from `<unit>.d/` next to the unit, and names them in warnings.
        std::fs::create_dir(dir.path().join("mcp-edge.service.d")).expect("drop-in dir");
        std::fs::write(dir.path().join("mcp-edge.service.d/stdio.conf"), text).expect("drop-in");
    }
    Some(Command::new("systemd-analyze").arg("verify").arg(&unit).output().expect("run verify"))
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    let Some(out) = verify(None) else { return };
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("mcp-edge.service:"),
        "warnings: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const STDIO_DROP_IN: &str = include_str!("../systemd/mcp-edge.service.d/stdio.conf");

#[test]
fn the_stdio_drop_in_relaxes_what_interpreters_need_and_verifies() {
    for line in [
        "MemoryDenyWriteExecute=no",
        "SystemCallFilter=\n",
        "SystemCallFilter=~@privileged",
        "SystemCallErrorNumber=EPERM",
    ] {
        assert!(STDIO_DROP_IN.contains(line), "the drop-in lacks {line:?}");
    }
    let Some(out) = verify(Some(STDIO_DROP_IN)) else { return };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !stderr.contains("stdio.conf"), "{stderr}");
}
