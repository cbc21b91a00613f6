//! Validation of `[traces]` and of a route's `trace_sample`: the collector's address and
//! protocol, the sampling ratios and the export queue's bounds. The endpoint is checked to be
//! an `http(s)` URL here, so a typo is a config error with its place, not a silent exporter
//! failure after start. The endpoint is shown in `/config` (it is an address, not a secret:
//! credentials for a collector do not belong in it).

use std::time::Duration;

use super::duration::{self, Zero};
use super::error::Collector;
use super::model::{OtlpProtocol, TraceSettings};
use super::raw::{RawTraces, S};

pub fn settings(t: &RawTraces, c: &mut Collector<'_>) -> TraceSettings {
    let protocol = match t.protocol.as_ref().map(|p| (p.get_ref().as_str(), p.span())) {
        None | Some(("grpc", _)) => OtlpProtocol::Grpc,
        Some(("http", _)) => OtlpProtocol::Http,
        Some((_, span)) => {
            c.push(
                span,
                "traces.protocol",
                "unknown protocol; use \"grpc\" (OTLP/gRPC, port 4317) or \"http\" (OTLP/HTTP protobuf, port 4318)",
            );
            OtlpProtocol::Grpc
        }
    };
    let endpoint = t.endpoint.get_ref();
    let usable = endpoint
        .parse::<http::Uri>()
        .ok()
        .filter(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some_and(|h| !h.is_empty()));
    if usable.as_ref().and_then(|u| u.authority()).is_some_and(|a| a.as_str().contains('@')) {
        c.push(
            t.endpoint.span(),
            "traces.endpoint",
            "carries credentials; give the collector's address alone (mcp-edge sends no credentials to collectors; run a local collector or sidecar that adds them)",
        );
    } else if usable.as_ref().is_some_and(|u| u.scheme_str() == Some("https")) {
        c.push(
            t.endpoint.span(),
            "traces.endpoint",
            "uses https, which the exporter does not speak; send to a collector or agent on loopback or a sidecar (\"http://127.0.0.1:4317\") and let it forward over TLS",
        );
    } else if usable.is_none() {
        c.push(
            t.endpoint.span(),
            "traces.endpoint",
            "is not an http URL; write the collector's address, e.g. \"http://127.0.0.1:4317\" (grpc) or \"http://127.0.0.1:4318/v1/traces\" (http)",
        );
    }
    let count = |raw: Option<&S<i64>>, field: &str, max: i64, default: usize, c: &mut Collector<'_>| match raw {
        Some(n) if (1..=max).contains(n.get_ref()) => *n.get_ref() as usize,
        Some(n) => {
            c.push(n.span(), field, format!("must be between 1 and {max}"));
            default
        }
        None => default,
    };
    let queue = count(t.queue.as_ref(), "traces.queue", 1 << 20, 4096, c);
    let batch = count(t.batch.as_ref(), "traces.batch", 8192, 512, c);
    if let (Some(b), true) = (&t.batch, batch > queue) {
        c.push(
            b.span(),
            "traces.batch",
            "is larger than traces.queue; a batch is taken from the queue, so make it at most the queue's size",
        );
    }
    let parent = match t.parent.as_ref().map(|p| (p.get_ref().as_str(), p.span())) {
        None | Some(("follow", _)) => true,
        Some(("ratio", _)) => false,
        Some((_, span)) => {
            c.push(span, "traces.parent", "unknown choice; use \"follow\" (a client's sampled trace is traced) or \"ratio\" (the ratio alone decides)");
            true
        }
    };
    let service_name = match &t.service_name {
        Some(n) if n.get_ref().trim().is_empty() => {
            c.push(n.span(), "traces.service_name", "is empty; name the service, e.g. \"mcp-edge\"");
            String::new()
        }
        Some(n) => n.get_ref().clone(),
        None => "mcp-edge".to_owned(),
    };
    TraceSettings {
        endpoint: endpoint.clone(),
        protocol,
        sample: t.sample.as_ref().and_then(|r| ratio(r, "traces.sample", c)).unwrap_or(1.0),
        follow_parent: parent,
        queue,
        batch,
        timeout: duration::or(c, t.timeout.as_ref(), "traces.timeout", Duration::from_secs(10), Zero::Refused),
        interval: duration::or(c, t.interval.as_ref(), "traces.interval", Duration::from_secs(1), Zero::Refused),
        service_name,
    }
}

/// A sampling ratio from 0 to 1.
pub fn ratio(raw: &S<f64>, field: &str, c: &mut Collector<'_>) -> Option<f64> {
    let r = *raw.get_ref();
    if !(0.0..=1.0).contains(&r) {
        c.push(raw.span(), field, "must be from 0 to 1: the share of requests traced (0.01 traces one in a hundred)");
        return None;
    }
    Some(r)
}
