//! A federated route's merged lists, one per era and [`Kind`]: every member's entries (all
//! their pages), renamed to their offered names, with the map back to (member, own name).
//! Each list is asked for only when a client first needs it. Kept for the
//! route's `catalog_ttl`; one refresh at a time (callers arriving meanwhile wait for it and
//! share its result). Fail-open: a member that does not answer keeps the entries it had in the
//! previous list, or has none, and is named in the log; the others are served. Lives in the
//! snapshot, so a reload starts empty. Not owned here: the requests (`fanout`) or the answer
//! to the client (`super`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::value::RawValue;

use super::fanout::Failed;
use super::kind::Kind;
use super::merge;
use super::page::{self, At, Page};
use super::stats::Stats;
use crate::config::model::Federation;
use crate::upstream::Pool;

/// Longest wait for one member's whole list (all its pages).
pub const LIST_DEADLINE: Duration = Duration::from_secs(10);

/// Where an offered entry lives: the member, and its own name (empty for a resource or
/// template offered under its prefix: the offered URI without the prefix is the member's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub member: usize,
    pub name: String,
    /// A tool its member annotates `readOnlyHint: true` (read only for a route whose result
    /// cache trusts that hint).
    pub read_only: bool,
}

impl Owner {
    /// The member's own name for the entry offered as `offered`.
    pub fn own<'a>(&'a self, offered: &'a str) -> &'a str {
        if self.name.is_empty() {
            super::names::split_uri(offered).map_or(offered, |(_, own)| own)
        } else {
            &self.name
        }
    }
}

/// One merged list.
#[derive(Debug)]
pub struct Merged {
    pub(super) made: Instant,
    /// The catalog's epoch when this list was asked for: an invalidation since makes it cold.
    pub(super) epoch: u64,
    /// Its slot's changes when it was asked for: a member's `list_changed` since makes it stale.
    pub(super) changes: u64,
    pub(super) kind: Kind,
    /// Each member's offered entries, as JSON objects, in the member's own order.
    pub(super) members: Vec<Vec<(String, Box<RawValue>)>>,
    pub owners: HashMap<String, Owner>,
    /// Every list result was `cacheScope: "public"` (or said nothing).
    pub public: bool,
    /// Members whose list is missing or stale, and why.
    pub failed: Vec<(usize, Failed)>,
    /// Members (a bit each, the first 64) that answered "method not found": they do not offer
    /// the kind at all. One that failed keeps what the previous list knew.
    pub(super) unoffered: u64,
    /// Entries a page (0: one page).
    pub(super) page_size: usize,
    /// The pages from the start, each rendered once and shared by every answer.
    pub(super) pages: Vec<Page>,
}

impl Merged {
    /// The offered entries, members in order.
    pub fn entries(&self) -> impl Iterator<Item = &RawValue> {
        self.members.iter().flatten().map(|(_, entry)| &**entry)
    }

    /// The offered names, members in order, each with its member.
    pub fn named(&self) -> impl Iterator<Item = (&str, usize)> {
        self.members.iter().enumerate().flat_map(|(i, m)| m.iter().map(move |(name, _)| (name.as_str(), i)))
    }

    pub fn made(&self) -> Instant {
        self.made
    }

    /// The page starting at `from` (`At::START`: the first).
    pub fn page(&self, from: At) -> Page {
        page::find(&self.pages, self.kind, &self.members, from, self.page_size)
    }

    pub(super) fn render(&mut self) {
        self.pages = page::cut(self.kind, &self.members, self.page_size);
    }
}

#[derive(Default)]
struct Slot {
    current: Mutex<Option<Arc<Merged>>>,
    /// One refresh at a time; a cold list's callers wait on it.
    refresh: tokio::sync::Mutex<()>,
    /// A background refresh of a stale list is under way.
    refreshing: AtomicBool,
    /// Bumped when a member says the list changed ([`Catalog::changed`]).
    changes: AtomicU64,
}

/// The route's lists: legacy era, then 2026-07-28 era; in each, one per [`Kind`].
pub struct Catalog {
    slots: [Slot; 8],
    /// Bumped by [`Catalog::invalidate`]: lists asked for before are cold (callers wait for a
    /// new one), but still kept, so a member that fails the new list keeps its old entries.
    epoch: AtomicU64,
    /// The members (a bit each) that last said they have no `resources` capability (either
    /// era: a capability is the server's, not the era's), so nothing they name can be read
    /// through the route.
    readless: AtomicU64,
    pub stats: Stats,
    /// `[route.result_cache]`: tool results served again (kept here to live and die with the
    /// route's lists: a reload starts both empty).
    pub results: Option<super::results::Results>,
    /// Lists a process mcp-edge runs said changed ([`Catalog::announce`]), for the route's
    /// open merged streams to tell their clients (a member's own stream tells them otherwise).
    announced: tokio::sync::broadcast::Sender<&'static [Kind]>,
}

/// Announcements a merged stream may fall behind on before it misses some (a list said
/// changed twice is one change to a client).
const ANNOUNCED: usize = 8;

/// What the catalog holds for an era.
pub enum Lookup {
    Fresh(Arc<Merged>),
    /// Past `catalog_ttl`: served while one refresh runs in the background.
    Stale(Arc<Merged>),
    /// Never listed: the caller waits for the first list.
    Cold,
}

/// Where a refresh is counted: `federation_member_lists_total`.
pub struct Counted {
    pub lists: prometheus::IntCounterVec,
    pub route: String,
}

/// A claimed background refresh; released when dropped (also when its task is cancelled).
pub struct Claim<'a>(&'a AtomicBool);

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Catalog {
    /// An empty catalog for a route, counted under `stats`.
    pub fn new(stats: Stats, results: Option<super::results::Results>) -> Catalog {
        Catalog {
            slots: Default::default(),
            epoch: AtomicU64::new(0),
            readless: AtomicU64::new(0),
            stats,
            results,
            announced: tokio::sync::broadcast::channel(ANNOUNCED).0,
        }
    }

    fn slot(&self, modern: bool, kind: Kind) -> &Slot {
        &self.slots[usize::from(modern) * Kind::ALL.len() + kind.index()]
    }

    /// The slot's changes: a list asked for under fewer is stale.
    fn changes_of(&self, modern: bool, kind: Kind) -> u64 {
        self.slot(modern, kind).changes.load(Ordering::Acquire)
    }

    /// A list an operator invalidated is cold (its callers wait for the members); one a member
    /// said changed is stale (served while one refresh runs: a member that says so often
    /// delays no caller).
    pub fn lookup(&self, modern: bool, kind: Kind, ttl: Duration) -> Lookup {
        let current = self.slot(modern, kind).current.lock().ok().and_then(|c| c.clone());
        match current {
            Some(m) if m.epoch != self.epoch.load(Ordering::Acquire) => Lookup::Cold,
            Some(m) if m.changes != self.changes_of(modern, kind) => Lookup::Stale(m),
            Some(m) if m.made.elapsed() < ttl => Lookup::Fresh(m),
            Some(m) => Lookup::Stale(m),
            None => Lookup::Cold,
        }
    }

    /// Whether a background refresh of the list is under way.
    pub fn refreshing(&self, modern: bool, kind: Kind) -> bool {
        self.slot(modern, kind).refreshing.load(Ordering::Acquire)
    }

    /// The right to refresh a stale list in the background, unless one already runs.
    pub fn claim(&self, modern: bool, kind: Kind) -> Option<Claim<'_>> {
        let flag = &self.slot(modern, kind).refreshing;
        flag.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).ok().map(|_| Claim(flag))
    }

    /// Asks the members (unless a refresh that finished while this one waited made the list
    /// fresh) and keeps the result.
    pub async fn refresh(
        &self,
        fed: &Federation,
        pools: &[Arc<Pool>],
        modern: bool,
        kind: Kind,
        counted: &Counted,
    ) -> Arc<Merged> {
        let slot = self.slot(modern, kind);
        let _one = slot.refresh.lock().await;
        if let Lookup::Fresh(fresh) = self.lookup(modern, kind, fed.catalog_ttl) {
            return fresh;
        }
        let previous = slot.current.lock().ok().and_then(|c| c.clone());
        let (epoch, changes) = (self.epoch.load(Ordering::Acquire), self.changes_of(modern, kind));
        let merged = Arc::new(merge::merge(fed, pools, modern, kind, previous.as_deref(), (epoch, changes)).await);
        for (i, member) in fed.members.iter().enumerate() {
            let result = if merged.failure_of(i).is_some() { "failed" } else { "ok" };
            counted.lists.with_label_values(&[counted.route.as_str(), &member.prefix, kind.key(), result]).inc();
        }
        self.keep(modern, kind, &merged, fed.catalog_max_bytes);
        if kind == Kind::Resources {
            for i in (0..fed.members.len()).filter(|i| merged.failure_of(*i).is_none()) {
                self.learned(i, merged.unoffered & merge::member_bit(i) == 0);
            }
        }
        let latest = self.latest(kind);
        for i in 0..fed.members.len() {
            let lists = latest.iter().flatten();
            let (entries, bytes) = lists.fold((0, 0), |(e, b), m| (e + m.count_of(i), b + m.bytes_of(i)));
            self.stats.held(i, kind, entries, bytes);
        }
        merged
    }

    /// Keeps `merged` as the list of its slot within `budget` bytes for all the route's lists:
    /// other lists, oldest first, are dropped to make room (their next caller waits for the
    /// members again); a list over the budget on its own is served to the callers waiting for
    /// it and not kept.
    fn keep(&self, modern: bool, kind: Kind, merged: &Arc<Merged>, budget: usize) {
        let own = (usize::from(modern) * Kind::ALL.len()) + kind.index();
        let held = |s: &Slot| s.current.lock().ok().and_then(|c| c.as_ref().map(|m| (m.held(), m.made)));
        let mut others: Vec<(usize, usize, Instant)> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != own)
            .filter_map(|(i, s)| held(s).map(|(bytes, made)| (i, bytes, made)))
            .collect();
        let size = merged.held();
        let mut total = size + others.iter().map(|(_, b, _)| b).sum::<usize>();
        let mut evicted = 0;
        if size > budget {
            tracing::warn!(
                list = kind.key(),
                bytes = size,
                budget,
                "federation: a merged list is larger than catalog_max_bytes; served, not kept"
            );
            if let Ok(mut current) = self.slots[own].current.lock() {
                *current = None;
            }
            self.stats.evicted_for_size(1);
            return;
        }
        others.sort_by_key(|(_, _, made)| *made);
        for (i, bytes, _) in others {
            if total <= budget {
                break;
            }
            if let Ok(mut current) = self.slots[i].current.lock() {
                *current = None;
            }
            total -= bytes;
            evicted += 1;
        }
        self.stats.evicted_for_size(evicted);
        if let Ok(mut current) = self.slots[own].current.lock() {
            *current = Some(Arc::clone(merged));
        }
    }

    /// Every list is asked for again by the next caller that needs it (`POST
    /// /cache/invalidate`). A refresh under way when this is called keeps its result, which is
    /// still cold for the next caller.
    pub fn invalidate(&self) {
        let warm = self.warm(&Kind::ALL);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.stats.evicted(warm);
    }

    /// A member said its `kinds` lists changed (`notifications/…/list_changed`): those lists,
    /// both eras, are stale (their next caller gets them while one refresh runs).
    pub fn changed(&self, kinds: &[Kind]) {
        let warm = self.warm(kinds);
        for modern in [false, true] {
            for kind in kinds {
                self.slot(modern, *kind).changes.fetch_add(1, Ordering::AcqRel);
            }
        }
        self.stats.changed(warm);
    }

    /// A member with no stream of its own (a shared stdio process) said its `kinds` lists
    /// changed: stale ([`Catalog::changed`]), and told to the route's open merged streams.
    pub fn announce(&self, kinds: &'static [Kind]) {
        self.changed(kinds);
        // No stream open: no one to tell.
        let _ = self.announced.send(kinds);
    }

    /// What [`Catalog::announce`] tells from now on.
    pub fn announcements(&self) -> tokio::sync::broadcast::Receiver<&'static [Kind]> {
        self.announced.subscribe()
    }

    /// How many of the `kinds` lists (both eras) are current.
    fn warm(&self, kinds: &[Kind]) -> u64 {
        let current = |modern: bool, kind: Kind| {
            let (epoch, changes) = (self.epoch.load(Ordering::Acquire), self.changes_of(modern, kind));
            let slot = self.slot(modern, kind);
            slot.current.lock().is_ok_and(|c| c.as_ref().is_some_and(|m| m.epoch == epoch && m.changes == changes))
        };
        let each = [false, true].into_iter().flat_map(|modern| kinds.iter().map(move |k| (modern, *k)));
        each.filter(|(modern, kind)| current(*modern, *kind)).count() as u64
    }

    /// What member `i` said last of its `resources` capability: in its answer to a client's
    /// `initialize`, or to the resources list ("method not found": none).
    pub fn learned(&self, i: usize, reads_resources: bool) {
        let bit = merge::member_bit(i);
        if reads_resources {
            self.readless.fetch_and(!bit, Ordering::AcqRel);
        } else {
            self.readless.fetch_or(bit, Ordering::AcqRel);
        }
    }

    /// Whether member `i` is known to read no resources: the last it said of its capabilities
    /// ([`Catalog::learned`]) had none. False until it said.
    pub fn reads_no_resources(&self, i: usize) -> bool {
        self.readless.load(Ordering::Acquire) & merge::member_bit(i) != 0
    }

    /// The latest lists of `kind` (legacy era, 2026-07-28 era), fresh or not, for `/servers`.
    pub fn latest(&self, kind: Kind) -> [Option<Arc<Merged>>; 2] {
        [false, true].map(|modern| self.slot(modern, kind).current.lock().ok().and_then(|c| c.clone()))
    }
}

impl Merged {
    /// How many bytes of entries member `i` offers in this list (as offered, once; the
    /// rendered answer holds them again).
    pub fn bytes_of(&self, i: usize) -> usize {
        self.members.get(i).map_or(0, |m| m.iter().map(|(_, e)| e.get().len()).sum())
    }

    /// What the list holds: its entries and its rendered pages.
    pub fn held(&self) -> usize {
        let entries: usize = self.members.iter().flatten().map(|(name, e)| name.len() + e.get().len()).sum();
        entries + self.pages.iter().map(|p| p.body.len()).sum::<usize>()
    }

    /// How many entries member `i` offers in this list.
    pub fn count_of(&self, i: usize) -> usize {
        self.members.get(i).map_or(0, Vec::len)
    }

    /// Why member `i`'s list is missing or stale in this one, if it is.
    pub fn failure_of(&self, i: usize) -> Option<&Failed> {
        self.failed.iter().find(|(m, _)| *m == i).map(|(_, f)| f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answer_of_a_list_shares_one_rendering_of_its_tools() {
        let tool = |n: &str| (n.to_owned(), RawValue::from_string(format!(r#"{{"name":"{n}"}}"#)).unwrap());
        let mut merged = Merged {
            made: Instant::now(),
            epoch: 0,
            unoffered: 0,
            changes: 0,
            kind: Kind::Tools,
            members: vec![vec![tool("a_x"), tool("a_y")], vec![tool("b_z")]],
            owners: HashMap::new(),
            public: true,
            failed: Vec::new(),
            page_size: 0,
            pages: Vec::new(),
        };
        merged.render();
        let fed = Federation {
            members: Vec::new(),
            catalog_ttl: Duration::from_secs(30),
            fail_closed: false,
            page_size: 0,
            catalog_max_bytes: 1 << 20,
            prefix_mode: Default::default(),
            results: None,
        };
        let page = merged.page(At::START);
        let (one, two) = (
            super::super::answer::list(&merged, &page, None, &fed, false),
            super::super::answer::list(&merged, &page, None, &fed, true),
        );
        assert_eq!(one.0[0].as_ptr(), two.0[0].as_ptr(), "the tools are one buffer, not a copy per answer");
        let text: Vec<u8> = one.0.concat();
        assert_eq!(std::str::from_utf8(&text).unwrap(), r#"{"tools":[{"name":"a_x"},{"name":"a_y"},{"name":"b_z"}]}"#);
        let modern: serde_json::Value = serde_json::from_slice(&two.0.concat()).unwrap();
        assert_eq!(
            (modern["tools"].as_array().map(Vec::len), modern["cacheScope"].as_str()),
            (Some(3), Some("public"))
        );
    }
}
