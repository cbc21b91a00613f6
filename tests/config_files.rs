//! Every shipped config validates with the real binary, and a broken one is refused with
//! every error listed as `file:line:col: field: message`, never quoting a value from the file.

mod common;

use std::process::Command;

#[test]
fn every_file_in_conf_passes_check() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/conf");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).expect("conf/ exists") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out =
                Command::new(common::MCP_EDGE).args(["check", "--config"]).arg(&path).output().expect("run check");
            assert!(out.status.success(), "{} failed check:\n{}", path.display(), String::from_utf8_lossy(&out.stderr));
            checked += 1;
        }
    }
    assert!(checked >= 2, "expected the reference and demo configs, checked {checked}");
}

#[test]
fn check_lists_every_error_and_exits_non_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[[pool]]\nname = \"p\"\nbackends = [\"nope\"]\n\n[[route]]\nname = \"r\"\npool = \"q\"\n")
        .expect("write");
    let out = Command::new(common::MCP_EDGE).args(["check", "--config"]).arg(&path).output().expect("run check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let shown = path.display().to_string();
    assert!(stderr.contains(&format!("{shown}:3:13: pool.p.backends: is not an ip:port")), "{stderr}");
    assert!(stderr.contains(&format!("{shown}:7:8: route.r.pool: no pool named `q`")), "{stderr}");
    assert!(stderr.contains("2 error(s)"), "{stderr}");
}

/// Runs `mcp-edge check` on `text`; returns (exit code, stderr).
fn check(text: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("edge.toml");
    std::fs::write(&path, text).expect("write");
    let out = Command::new(common::MCP_EDGE).args(["check", "--config"]).arg(&path).output().expect("run check");
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn check_never_prints_a_secret_that_sits_in_the_wrong_place() {
    let route = "[[pool]]\nname = \"p\"\nbackends = [\"127.0.0.1:1\"]\n[[route]]\nname = \"r\"\npool = \"p\"\n";
    let broken = [
        // A password pasted where a number goes: a serde type error.
        "[proxy]\nthreads = \"sk-live-hunter2\"\n",
        // A Redis URL that does not parse, password and all.
        "[redis]\nurl = \"redis://:sk-live-hunter2@[::1\"\n",
        // An API key where a duration goes.
        "[proxy]\ngrace_period = \"sk-live-hunter2\"\n",
    ];
    for snippet in broken {
        let (code, output) = check(&format!("{route}{snippet}"));
        assert_eq!(code, Some(1), "{output}");
        assert!(output.contains("edge.toml:"), "the place is named: {output}");
        assert!(!output.contains("hunter2"), "value echoed for {snippet:?}: {output}");
    }
}
