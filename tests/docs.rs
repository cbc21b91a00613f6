//! The README is checked against the code: every metric the proxy registers has a row in the
//! README's metrics table, and every row names a metric that exists.

use mcp_edge::metrics::Metrics;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md")
}

/// The metric names in the first column of the README's "### Metrics" table.
fn documented() -> Vec<String> {
    let text = readme();
    let table = text.split("### Metrics").nth(1).expect("a ### Metrics section");
    table
        .lines()
        .skip_while(|l| !l.starts_with("| metric"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.split('`').nth(1).map(str::to_owned))
        .collect()
}

#[test]
fn every_registered_metric_is_documented_and_every_documented_one_exists() {
    let metrics = Metrics::new().expect("metrics");
    let registered = metrics.names().to_vec();
    let documented = documented();
    assert!(registered.len() > 20 && documented.len() > 20, "{registered:?} / {documented:?}");
    let missing: Vec<_> = registered.iter().filter(|n| !documented.contains(n)).collect();
    let stale: Vec<_> = documented.iter().filter(|n| !registered.contains(n)).collect();
    assert!(missing.is_empty(), "registered but not in the README's metrics table: {missing:?}");
    assert!(stale.is_empty(), "in the README's metrics table but not registered: {stale:?}");
}
