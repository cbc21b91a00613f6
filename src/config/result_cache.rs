//! `[route.result_cache]` of a federated route: which tools' results are kept, for how long,
//! within how many bytes. Part of the raw → model pipeline; the cache itself is
//! `crate::federation::results`.

use std::time::Duration;

use super::duration::{self, Zero};
use super::error::Collector;
use super::model::ResultCache;
use super::raw::RawResultCache;
use crate::glob::Glob;

/// How long a result is served again when the route does not say.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);
/// `max_bytes`: default, and the range it may take (64 KiB to 4 GiB).
pub const DEFAULT_MAX_BYTES: usize = 16 << 20;
const MAX_BYTES: std::ops::RangeInclusive<i64> = (64 << 10)..=(4 << 30);

/// The route's result cache, when it has one; errors go to `c`.
pub fn result_cache(
    raw: &toml::Spanned<RawResultCache>,
    federated: bool,
    field: &dyn Fn(&str) -> String,
    c: &mut Collector<'_>,
) -> Option<ResultCache> {
    if !federated {
        c.push(
            raw.span(),
            field("result_cache"),
            "applies to a federated route only; add [[route.member]]s or remove it",
        );
        return None;
    }
    let r = raw.get_ref();
    let mut tools = Vec::with_capacity(r.tools.len());
    for t in &r.tools {
        if t.get_ref().is_empty() {
            c.push(
                t.span(),
                field("result_cache.tools"),
                "must name a tool as the route offers it (`a_weather`) or a pattern (`a_get_*`)",
            );
            continue;
        }
        tools.push(Glob::new(t.get_ref()));
    }
    let read_only_hint = r.read_only_hint.as_ref().is_some_and(|b| *b.get_ref());
    if r.tools.is_empty() && !read_only_hint {
        c.push(
            raw.span(),
            field("result_cache"),
            "caches nothing: list the cacheable tools in `tools`, or set `read_only_hint = true`",
        );
    }
    let ttl = duration::or(c, r.ttl.as_ref(), &field("result_cache.ttl"), DEFAULT_TTL, Zero::Refused);
    let max_bytes = match r.max_bytes.as_ref().map(|n| (*n.get_ref(), n.span())) {
        None => DEFAULT_MAX_BYTES,
        Some((n, _)) if MAX_BYTES.contains(&n) => n as usize,
        Some((_, span)) => {
            c.push(span, field("result_cache.max_bytes"), "must be 65536 (64 KiB) to 4294967296 (4 GiB) bytes");
            DEFAULT_MAX_BYTES
        }
    };
    Some(ResultCache { tools, read_only_hint, ttl, max_bytes })
}
