//! The shipped alert rules and dashboard, checked with the real `promtool` (installed by
//! `make deps`): the rules load and their unit tests pass (`conf/prometheus/`), every query of
//! the Grafana dashboard (`conf/grafana/mcp-edge.json`) is valid PromQL, and both name only
//! metrics mcp-edge registers, while the dashboard shows every one of them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use mcp_edge::metrics::Metrics;

fn conf(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("conf").join(rel)
}

/// Runs promtool; its output on failure.
fn promtool(args: &[&str], dir: &Path) {
    let out =
        Command::new("promtool").args(args).current_dir(dir).output().unwrap_or_else(|e| {
            panic!("promtool not runnable ({e}); `make deps` installs it (Debian package prometheus)")
        });
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `mcp_edge_*` names in `text`, histogram series mapped to their metric.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("mcp_edge_") {
        let name: String = text[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let name =
            ["_bucket", "_sum", "_count"].iter().fold(name, |n, s| n.strip_suffix(s).map_or(n.clone(), str::to_owned));
        out.insert(name.trim_start_matches("mcp_edge_").to_owned());
    }
    out
}

fn registered() -> BTreeSet<String> {
    Metrics::new().expect("metrics").names().iter().cloned().collect()
}

fn dashboard_queries() -> Vec<String> {
    let text = std::fs::read_to_string(conf("grafana/mcp-edge.json")).expect("dashboard");
    let dash: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let panels = dash["panels"].as_array().expect("panels");
    panels
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn the_alert_rules_load_and_their_unit_tests_pass() {
    let dir = conf("prometheus");
    promtool(&["check", "rules", "mcp-edge.rules.yml"], &dir);
    promtool(&["test", "rules", "mcp-edge.rules.test.yml"], &dir);
}

#[test]
fn the_alert_rules_name_only_registered_metrics() {
    let rules = std::fs::read_to_string(conf("prometheus/mcp-edge.rules.yml")).expect("rules");
    let unknown: Vec<_> = metric_names(&rules).difference(&registered()).cloned().collect();
    assert!(unknown.is_empty(), "rules name metrics mcp-edge does not have: {unknown:?}");
}

#[test]
fn every_dashboard_query_is_promql_and_every_metric_is_on_the_dashboard() {
    let queries = dashboard_queries();
    assert!(queries.len() >= 15, "{queries:?}");
    // promtool parses PromQL in rule files: check each query as a recording rule, with
    // Grafana's variables replaced by what they expand to.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, q) in queries.iter().enumerate() {
        let q = q.replace("$__rate_interval", "5m").replace("$instance", ".*");
        rules.push_str(&format!(
            "      - record: dashboard:query{i}\n        expr: {}\n",
            serde_json::to_string(&q).expect("quote")
        ));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("dashboard.rules.yml"), rules).expect("write");
    promtool(&["check", "rules", "dashboard.rules.yml"], dir.path());

    let shown = metric_names(&queries.join("\n"));
    let registered = registered();
    let unknown: Vec<_> = shown.difference(&registered).collect();
    let missing: Vec<_> = registered.difference(&shown).collect();
    assert!(unknown.is_empty(), "the dashboard queries metrics mcp-edge does not have: {unknown:?}");
    assert!(missing.is_empty(), "metrics no dashboard panel shows: {missing:?}");
}
