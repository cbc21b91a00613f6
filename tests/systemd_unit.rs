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

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!("systemd-analyze not installed: skipping verify");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // verify checks that ExecStart= binaries exist: point them at the one just built.
    let unit = dir.path().join("mcp-edge.service");
    std::fs::write(&unit, UNIT.replace("/usr/local/bin/mcp-edge", common::MCP_EDGE)).expect("unit");
    let out = Command::new("systemd-analyze").arg("verify").arg(&unit).output().expect("run verify");
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
    for line in ["MemoryDenyWriteExecute=no", "SystemCallFilter=\n", "SystemCallFilter=~@privileged", "SystemCallErrorNumber=EPERM"]
    {
        assert!(STDIO_DROP_IN.contains(line), "the drop-in lacks {line:?}");
    }
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!("systemd-analyze not installed: skipping verify");
        return;
    }
    // verify reads drop-ins from `<unit>.d/` next to the unit, and names them in warnings.
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = dir.path().join("mcp-edge.service");
    std::fs::write(&unit, UNIT.replace("/usr/local/bin/mcp-edge", common::MCP_EDGE)).expect("unit");
    std::fs::create_dir(dir.path().join("mcp-edge.service.d")).expect("drop-in dir");
    std::fs::write(dir.path().join("mcp-edge.service.d/stdio.conf"), STDIO_DROP_IN).expect("drop-in");
    let out = Command::new("systemd-analyze").arg("verify").arg(&unit).output().expect("run verify");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !stderr.contains("stdio.conf"), "{stderr}");
}
