//! Validation of a federated route's `[[route.member]]`s: one MCP endpoint over several pools,
//! each member's tools offered under its prefix. Part of the raw → model pipeline; what a
//! federated route does with requests is `crate::federation`'s.

use std::collections::HashMap;
use std::time::Duration;

use super::duration::{self, Zero};
use super::error::Collector;
use super::model::{Federation, Member, PrefixMode};
use super::raw::RawRoute;
use super::validate::pool_ref;

/// How long a merged tool list is served before the members are asked again.
pub const DEFAULT_CATALOG_TTL: Duration = Duration::from_secs(30);
/// Longest member prefix: a prefixed name must leave room for the tool's own name within the
/// 64 characters model APIs accept.
pub const MAX_PREFIX: usize = 24;
/// Largest page of a merged list: a member's list is at most 10,000 entries.
pub const MAX_PAGE_SIZE: i64 = 10_000;
/// `catalog_max_bytes`: default, and the range it may take (64 KiB to 4 GiB).
pub const DEFAULT_CATALOG_MAX_BYTES: usize = 64 << 20;
const CATALOG_BYTES: std::ops::RangeInclusive<i64> = (64 << 10)..=(4 << 30);

/// The route's federation, when it lists members; errors go to `c`.
pub fn members(
    raw: &RawRoute,
    pools: &HashMap<String, usize>,
    field: &dyn Fn(&str) -> String,
    c: &mut Collector<'_>,
) -> Option<Federation> {
    let Some(first) = raw.member.first() else {
        if let Some(results) = &raw.result_cache {
            super::result_cache::result_cache(results, false, field, c);
        }
        // Federation settings on a route without members would be silently ignored.
        let set = [
            (raw.catalog_ttl.as_ref().map(|v| v.span()), "catalog_ttl"),
            (raw.failure_mode.as_ref().map(|v| v.span()), "failure_mode"),
            (raw.page_size.as_ref().map(|v| v.span()), "page_size"),
            (raw.catalog_max_bytes.as_ref().map(|v| v.span()), "catalog_max_bytes"),
            (raw.prefix_mode.as_ref().map(|v| v.span()), "prefix_mode"),
        ];
        for (span, key) in set {
            if let Some(span) = span {
                c.push(span, field(key), "applies to a federated route only; add [[route.member]]s or remove it");
            }
        }
        return None;
    };
    let mut members: Vec<Member> = Vec::with_capacity(raw.member.len());
    for m in &raw.member {
        let prefix = m.get_ref().prefix.get_ref();
        // A letter first: `<prefix>+<scheme>` is then a valid URI scheme for offered resources.
        if !prefix.starts_with(|c: char| c.is_ascii_alphabetic())
            || prefix.len() > MAX_PREFIX
            || !prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            c.push(m.get_ref().prefix.span(), field("member.prefix"), format!("must be 1 to {MAX_PREFIX} letters, digits or '-', starting with a letter (the '_' or '+' after it separates prefix and name, and `<prefix>+<scheme>` must be a URI scheme)"));
            continue;
        }
        if members.iter().any(|other| other.prefix.eq_ignore_ascii_case(prefix)) {
            c.push(
                m.get_ref().prefix.span(),
                field("member.prefix"),
                "is already another member's (prefixes are compared ignoring case); give each member its own",
            );
            continue;
        }
        let Some(pool) = pool_ref(&m.get_ref().pool, pools, &field("member.pool"), c) else { continue };
        members.push(Member { pool, prefix: prefix.clone() });
    }
    let conflicts = [
        (raw.pool.is_some(), "pool"),
        (!raw.fallback.is_empty(), "fallback"),
        (!raw.rule.is_empty(), "rule"),
        (raw.batches == Some(true), "batches"),
        (raw.inspect.as_ref().is_some_and(|i| i.get_ref() == "never"), "inspect"),
    ];
    for (_, key) in conflicts.iter().filter(|(set, _)| *set) {
        c.push(
            first.span(),
            field(key),
            format!("a route with members picks the pool from the tool's prefix; remove `{key}` (or the members)"),
        );
    }
    let catalog_ttl =
        duration::or(c, raw.catalog_ttl.as_ref(), &field("catalog_ttl"), DEFAULT_CATALOG_TTL, Zero::Refused);
    let fail_closed = match raw.failure_mode.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
        None | Some(("open", _)) => false,
        Some(("closed", _)) => true,
        Some((_, span)) => {
            c.push(span, field("failure_mode"), "must be \"open\" (serve what the members that answer offer) or \"closed\" (refuse a list or session a member is missing from)");
            false
        }
    };
    let page_size = match raw.page_size.as_ref().map(|n| (*n.get_ref(), n.span())) {
        None => 0,
        Some((n, _)) if (0..=MAX_PAGE_SIZE).contains(&n) => n as usize,
        Some((_, span)) => {
            c.push(
                span,
                field("page_size"),
                format!("must be 0 (each merged list is one page) to {MAX_PAGE_SIZE} entries a page"),
            );
            0
        }
    };
    let catalog_max_bytes = match raw.catalog_max_bytes.as_ref().map(|n| (*n.get_ref(), n.span())) {
        None => DEFAULT_CATALOG_MAX_BYTES,
        Some((n, _)) if CATALOG_BYTES.contains(&n) => n as usize,
        Some((_, span)) => {
            c.push(span, field("catalog_max_bytes"), "must be 65536 (64 KiB) to 4294967296 (4 GiB) bytes");
            DEFAULT_CATALOG_MAX_BYTES
        }
    };
    let prefix_mode = match raw.prefix_mode.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
        None | Some(("always", _)) => PrefixMode::Always,
        Some(("conflicts", _)) => PrefixMode::Conflicts,
        Some(("never", _)) => PrefixMode::Never,
        Some((_, span)) => {
            c.push(span, field("prefix_mode"), "must be \"always\" (every name under its member's prefix), \"conflicts\" (only names several members offer) or \"never\" (the members' own names, which must not collide)");
            PrefixMode::Always
        }
    };
    let results = raw.result_cache.as_ref().and_then(|r| super::result_cache::result_cache(r, true, field, c));
    Some(Federation { members, catalog_ttl, fail_closed, page_size, catalog_max_bytes, prefix_mode, results })
}
