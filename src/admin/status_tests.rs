use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::admin::traffic::Sampler;
use crate::metrics::Metrics;
use crate::session::{KeyRing, SessionKey};
use crate::state::Snapshot;

const CONFIG: &str = r#"
[redis]
url = "redis://user:hunter2-redis-password@127.0.0.1:6379/0"

[[pool]]
name = "tools"
backends = ["127.0.0.1:9101", "127.0.0.1:9102"]

[[limit]]
name = "per-key"
key = ["header:x-api-key"]
rate = "10/min"
backend = "redis"

[[route]]
name = "main"
path = "/mcp"
pool = "tools"
limits = ["per-key"]
"#;

fn state() -> State {
    let config = crate::config::parse(Path::new("t.toml"), CONFIG).expect("valid config");
    let metrics = Metrics::new().expect("metrics");
    let stdio = crate::stdio::Supervisor::new(&metrics);
    let snapshot = Snapshot::build(config, None, &metrics, &stdio).expect("snapshot");
    State::new(snapshot, metrics, KeyRing::new(SessionKey::random()), stdio)
}

#[test]
fn the_status_schema_round_trips_through_json() {
    let state = Arc::new(state());
    state.metrics.requests.with_label_values(&["main", "tools/call", "echo", "200"]).inc();
    state.metrics.duration.with_label_values(&["main", "tools/call"]).observe(0.003);
    state.metrics.upstream_attempts.with_label_values(&["tools", "127.0.0.1:9102", "ok"]).inc();
    state.metrics.upstream_attempts.with_label_values(&["tools", "127.0.0.1:9102", "5xx"]).inc();
    let status = build(&state, &Sampler::default().observe(&state.metrics));
    let text = serde_json::to_string(&status).expect("serialize");
    let back: Status = serde_json::from_str(&text).expect("the schema reads back what it writes");
    assert_eq!(back, status);

    assert_eq!(status.routes.len(), 1);
    let main = &status.routes[0];
    assert_eq!(
        (main.name.as_str(), main.path.as_str(), main.pools.clone()),
        ("main", "/mcp", vec!["tools".to_owned()])
    );
    assert_eq!(main.traffic.requests, 1);
    assert!(main.traffic.p50_ms.is_some(), "{main:?}");
    let backends: Vec<_> = status.pools[0].backends.iter().map(|b| (b.addr.as_str(), b.weight)).collect();
    assert_eq!(backends, vec![("127.0.0.1:9101", 1), ("127.0.0.1:9102", 1)]);
    let attempts: Vec<_> = status.pools[0].backends.iter().map(|b| (b.traffic.attempts, b.traffic.errors)).collect();
    assert_eq!(attempts, vec![(0, 0), (2, 1)], "each backend's own attempts");
    assert!(status.pools[0].backends[1].traffic.errors_per_sec > 0.0, "{:?}", status.pools[0].backends[1]);
    assert_eq!(status.tools.first().map(|t| t.name.as_str()), Some("echo"));
    assert_eq!(status.limits[0].backend, "redis");
    assert!(!text.contains("hunter2"), "no Redis credential in /status: {text}");
}

#[test]
fn the_schema_refuses_fields_it_does_not_define() {
    let state = state();
    let status = build(&state, &Sampler::default().observe(&state.metrics));
    let mut value = serde_json::to_value(&status).expect("serialize");
    let mut inner = value.clone();
    value["pools"][0]["backends"][0]["secret"] = serde_json::json!("x");
    assert!(serde_json::from_value::<Status>(value).is_err(), "an unknown field is a schema change");
    inner["pools"][0]["backends"][0]["traffic"]["secret"] = serde_json::json!("x");
    assert!(serde_json::from_value::<Status>(inner).is_err(), "in a backend's traffic too");
}
