//! A federated route's merged tool list, one per era: every member's tools (all their pages),
//! renamed to their offered names, with the map back to (member, own name). Kept for the
//! route's `catalog_ttl`; one refresh at a time (callers arriving meanwhile wait for it and
//! share its result). Fail-open: a member that does not answer keeps the tools it had in the
//! previous list, or has none, and is named in the log; the others are served. Lives in the
//! snapshot, so a reload starts empty. Not owned here: the requests (`fanout`) or the answer
//! to the client (`super`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::value::RawValue;

use super::fanout::{self, Ask, Era, Failed};
use super::{names, session};
use crate::config::model::Federation;
use crate::upstream::Pool;

/// Pages asked of one member before its list is taken as complete.
const MAX_PAGES: usize = 100;
/// Tools kept of one member.
const MAX_TOOLS: usize = 10_000;
/// Largest tool definition kept (larger ones are left out, logged).
const MAX_TOOL_BYTES: usize = 64 << 10;
/// Most bytes of tool definitions kept of one member; its list ends there.
const MAX_MEMBER_BYTES: usize = 4 << 20;
/// Longest `nextCursor` followed: a member's cursor is sent back to it.
const MAX_CURSOR: usize = 1024;
/// Longest wait for one member's page.
pub const MEMBER_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for one member's whole list (all its pages).
pub const LIST_DEADLINE: Duration = Duration::from_secs(10);

/// Where an offered tool lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub member: usize,
    pub name: String,
}

/// One merged list.
#[derive(Debug)]
pub struct Merged {
    made: Instant,
    /// Each member's offered tools, as JSON objects, in the member's own order.
    members: Vec<Vec<(String, Box<RawValue>)>>,
    pub owners: HashMap<String, Owner>,
    /// Every tool list result was `cacheScope: "public"` (or said nothing).
    pub public: bool,
    /// Members whose list is missing or stale, and why.
    pub failed: Vec<(usize, Failed)>,
    /// `{"tools":[…]` (no closing brace): the answer's shared piece, rendered once.
    rendered: Bytes,
}

impl Merged {
    /// The offered tools, members in order.
    pub fn tools(&self) -> impl Iterator<Item = &RawValue> {
        self.members.iter().flatten().map(|(_, tool)| &**tool)
    }

    pub fn made(&self) -> Instant {
        self.made
    }

    /// `{"tools":[…]`, every offered tool, members in order; the answer closes the object.
    pub fn rendered(&self) -> &Bytes {
        &self.rendered
    }

    fn render(&mut self) {
        let mut out = Vec::with_capacity(16 + self.tools().map(|t| t.get().len() + 1).sum::<usize>());
        out.extend_from_slice(b"{\"tools\":[");
        for (i, tool) in self.tools().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(tool.get().as_bytes());
        }
        out.push(b']');
        self.rendered = Bytes::from(out);
    }
}

#[derive(Default)]
struct Slot {
    current: Mutex<Option<Arc<Merged>>>,
    /// One refresh at a time; a cold list's callers wait on it.
    refresh: tokio::sync::Mutex<()>,
    /// A background refresh of a stale list is under way.
    refreshing: AtomicBool,
}

/// The route's lists: legacy era, 2026-07-28 era.
#[derive(Default)]
pub struct Catalog {
    slots: [Slot; 2],
}

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
    fn slot(&self, modern: bool) -> &Slot {
        &self.slots[usize::from(modern)]
    }

    pub fn lookup(&self, modern: bool, ttl: Duration) -> Lookup {
        let current = self.slot(modern).current.lock().ok().and_then(|c| c.clone());
        match current {
            Some(m) if m.made.elapsed() < ttl => Lookup::Fresh(m),
            Some(m) => Lookup::Stale(m),
            None => Lookup::Cold,
        }
    }

    /// Whether a background refresh of the era's list is under way.
    pub fn refreshing(&self, modern: bool) -> bool {
        self.slot(modern).refreshing.load(Ordering::Acquire)
    }

    /// The right to refresh a stale list in the background, unless one already runs.
    pub fn claim(&self, modern: bool) -> Option<Claim<'_>> {
        let flag = &self.slot(modern).refreshing;
        flag.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).ok().map(|_| Claim(flag))
    }

    /// Asks the members (unless a refresh that finished while this one waited made the list
    /// fresh) and keeps the result.
    pub async fn refresh(&self, fed: &Federation, pools: &[Arc<Pool>], modern: bool, counted: &Counted) -> Arc<Merged> {
        let slot = self.slot(modern);
        let _one = slot.refresh.lock().await;
        if let Lookup::Fresh(fresh) = self.lookup(modern, fed.catalog_ttl) {
            return fresh;
        }
        let previous = slot.current.lock().ok().and_then(|c| c.clone());
        let merged = Arc::new(merge(fed, pools, modern, previous.as_deref()).await);
        for (i, member) in fed.members.iter().enumerate() {
            let result = if merged.failure_of(i).is_some() { "failed" } else { "ok" };
            counted.lists.with_label_values(&[counted.route.as_str(), &member.prefix, result]).inc();
        }
        if let Ok(mut current) = slot.current.lock() {
            *current = Some(Arc::clone(&merged));
        }
        merged
    }

    /// The latest lists (legacy era, 2026-07-28 era), fresh or not, for `/servers`.
    pub fn latest(&self) -> [Option<Arc<Merged>>; 2] {
        self.slots.each_ref().map(|s| s.current.lock().ok().and_then(|c| c.clone()))
    }
}

impl Merged {
    /// How many tools member `i` offers in this list.
    pub fn tools_of(&self, i: usize) -> usize {
        self.members.get(i).map_or(0, Vec::len)
    }

    /// Why member `i`'s list is missing or stale in this one, if it is.
    pub fn failure_of(&self, i: usize) -> Option<&Failed> {
        self.failed.iter().find(|(m, _)| *m == i).map(|(_, f)| f)
    }
}

/// One member's tools, every page.
struct Listed {
    tools: Vec<Box<RawValue>>,
    public: bool,
}

async fn merge(fed: &Federation, pools: &[Arc<Pool>], modern: bool, previous: Option<&Merged>) -> Merged {
    let mut asks = tokio::task::JoinSet::new();
    for (i, member) in fed.members.iter().enumerate() {
        let Some(pool) = pools.get(member.pool).cloned() else { continue };
        asks.spawn(async move {
            let listed = tokio::time::timeout(LIST_DEADLINE, list(&pool, modern)).await;
            (i, listed.unwrap_or(Err(Failed::Timeout(LIST_DEADLINE))))
        });
    }
    let mut answers: Vec<Option<Result<Listed, Failed>>> = (0..fed.members.len()).map(|_| None).collect();
    while let Some(joined) = asks.join_next().await {
        if let Ok((i, answer)) = joined {
            if let Some(a) = answers.get_mut(i) {
                *a = Some(answer);
            }
        }
    }
    let mut merged = Merged {
        made: Instant::now(),
        members: Vec::new(),
        owners: HashMap::new(),
        public: true,
        failed: Vec::new(),
        rendered: Bytes::new(),
    };
    for (i, (member, answer)) in fed.members.iter().zip(answers).enumerate() {
        let mut offered = Vec::new();
        match answer.unwrap_or(Err(Failed::Unreadable)) {
            Ok(listed) => {
                merged.public &= listed.public;
                for tool in listed.tools {
                    if let Some((name, own, renamed)) = rename(&member.prefix, &tool) {
                        if merged.owners.contains_key(&name) {
                            tracing::warn!(member = %member.prefix, "federation: two tools are offered under one name; the second is left out");
                            continue;
                        }
                        merged.owners.insert(name.clone(), Owner { member: i, name: own });
                        offered.push((name, renamed));
                    }
                }
            }
            Err(failed) => {
                tracing::warn!(member = %member.prefix, error = %failed, "federation: a member's tool list is missing");
                // Stale beats absent: the tools it offered before stay offered.
                if let Some(previous) = previous {
                    merged.public &= previous.public;
                    for (name, tool) in previous.members.get(i).into_iter().flatten() {
                        if let Some(owner) = previous.owners.get(name) {
                            merged.owners.insert(name.clone(), owner.clone());
                            offered.push((name.clone(), tool.clone()));
                        }
                    }
                }
                merged.failed.push((i, failed));
            }
        }
        merged.members.push(offered);
    }
    merged.render();
    merged
}

/// A member's tool under its offered name: (offered name, own name, the renamed object). Only
/// the name changes: every other value is kept as the member wrote it (raw), so numbers keep
/// their spelling and the size checked when listed is the size held.
fn rename(prefix: &str, tool: &RawValue) -> Option<(String, String, Box<RawValue>)> {
    #[derive(serde::Deserialize)]
    struct Named {
        name: String,
    }
    let own = serde_json::from_str::<Named>(tool.get()).ok()?.name;
    let mut object: std::collections::BTreeMap<String, Box<RawValue>> = serde_json::from_str(tool.get()).ok()?;
    let offered = names::offered(prefix, &own);
    object.insert("name".into(), serde_json::value::to_raw_value(&offered).ok()?);
    let renamed = serde_json::value::to_raw_value(&object).ok()?;
    Some((offered, own, renamed))
}

/// Every page of a member's tools. In the legacy era in a session of the proxy's own (members
/// may require one), ended when the list is read.
async fn list(pool: &Arc<Pool>, modern: bool) -> Result<Listed, Failed> {
    if modern {
        return pages(pool, Era::Modern, None).await;
    }
    let own = session::handshake(pool, session::own_initialize(), MEMBER_TIMEOUT).await?;
    let era = Era::Legacy { session: own.session.as_deref(), version: own.version.as_deref() };
    let listed = pages(pool, era, Some(own.backend)).await;
    if let Some(id) = own.session {
        let pool = Arc::clone(pool);
        tokio::spawn(async move {
            if let Err(why) = crate::upstream::session_end::end(&pool, own.backend, &id).await {
                tracing::debug!(pool = %pool.name(), why, "federation: the catalog's member session did not end");
            }
        });
    }
    listed
}

async fn pages(pool: &Pool, era: Era<'_>, backend: Option<std::net::SocketAddr>) -> Result<Listed, Failed> {
    let modern = matches!(era, Era::Modern);
    #[derive(serde::Deserialize)]
    struct Page {
        tools: Vec<Box<RawValue>>,
        #[serde(rename = "nextCursor")]
        next_cursor: Option<String>,
        #[serde(rename = "cacheScope")]
        cache_scope: Option<String>,
    }
    let mut listed = Listed { tools: Vec::new(), public: true };
    let mut cursor: Option<String> = None;
    let (mut bytes, mut seen) = (0usize, Vec::<String>::new());
    for page in 0..MAX_PAGES {
        let mut params = serde_json::Map::new();
        if let Some(c) = &cursor {
            params.insert("cursor".into(), c.as_str().into());
        }
        if modern {
            // 2026-07-28: every request carries the version and the client's capabilities.
            let meta = serde_json::json!({
                "io.modelcontextprotocol/protocolVersion": crate::mcp::method::FIRST_MODERN_VERSION,
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": { "name": "mcp-edge", "version": env!("CARGO_PKG_VERSION") },
            });
            params.insert("_meta".into(), meta);
        }
        let body = serde_json::json!({ "jsonrpc": "2.0", "id": page + 1, "method": "tools/list", "params": params });
        let body = Bytes::from(serde_json::to_vec(&body).map_err(|_| Failed::Unreadable)?);
        let ask = Ask { method: "tools/list", body, era, backend, timeout: MEMBER_TIMEOUT };
        let answer = fanout::ask(pool, ask).await?.result.ok_or(Failed::Unreadable)?;
        let page: Page = serde_json::from_str(answer.get()).map_err(|_| Failed::Unreadable)?;
        listed.public &= page.cache_scope.as_deref() != Some("private");
        for tool in page.tools {
            let size = tool.get().len();
            if size > MAX_TOOL_BYTES {
                tracing::warn!(pool = %pool.name(), bytes = size, "federation: a tool definition over 64 KiB is left out");
                continue;
            }
            if listed.tools.len() >= MAX_TOOLS || bytes + size > MAX_MEMBER_BYTES {
                tracing::warn!(pool = %pool.name(), "federation: a member's tools beyond 10,000 or 4 MiB are left out");
                return Ok(listed);
            }
            bytes += size;
            listed.tools.push(tool);
        }
        // A cursor is followed once, and only when it is a sane size: a member cannot make
        // the proxy loop or echo megabytes back to it.
        match page.next_cursor {
            Some(next) if !next.is_empty() && next.len() <= MAX_CURSOR && !seen.contains(&next) => {
                seen.push(next.clone());
                cursor = Some(next);
            }
            _ => break,
        }
    }
    Ok(listed)
}
