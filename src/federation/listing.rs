//! One member's list of one [`Kind`], every page, as the catalog asks for it: in the 2026-07-28 era
//! stateless; in the legacy era after a handshake, in a session of the proxy's own (members may
//! require one), ended once the list is read. Bounded: pages, tools, bytes, cursors. Not owned
//! here: merging members (`catalog`), the requests themselves (`fanout`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::value::RawValue;

use super::fanout::{self, Ask, Era, Failed};
use super::kind::Kind;
use super::session;
use crate::upstream::Pool;

/// Pages asked of one member before its list is taken as complete.
const MAX_PAGES: usize = 100;
/// Entries kept of one member's list.
const MAX_ENTRIES: usize = 10_000;
/// Largest entry kept (larger ones are left out, logged).
const MAX_ENTRY_BYTES: usize = 64 << 10;
/// Most bytes of entries kept of one member's list; the list ends there.
const MAX_MEMBER_BYTES: usize = 4 << 20;
/// Most bytes of answers read for one member's list, entries kept or not.
const MAX_READ: usize = 2 * MAX_MEMBER_BYTES;
/// JSON-RPC "method not found": the member does not offer what was asked.
const METHOD_NOT_FOUND: i64 = -32601;
/// Longest `nextCursor` followed: a member's cursor is sent back to it.
const MAX_CURSOR: usize = 1024;
/// Longest wait for one member's page.
pub const MEMBER_TIMEOUT: Duration = Duration::from_secs(5);

/// One member's list, every page.
pub struct Listed {
    pub entries: Vec<Box<RawValue>>,
    pub public: bool,
    /// False when the member answered "method not found": it does not offer the kind at all
    /// (for resources: it has no `resources` capability, so it reads none).
    pub offered: bool,
}

/// Every page of a member's list of `kind`. In the legacy era in a session of the proxy's own
/// (members may require one), ended when the list is read.
pub async fn list(pool: &Arc<Pool>, modern: bool, kind: Kind) -> Result<Listed, Failed> {
    if modern {
        return pages(pool, Era::Modern, None, kind).await;
    }
    let own = session::handshake(pool, session::own_initialize(), MEMBER_TIMEOUT).await?;
    let era = Era::Legacy { session: own.session.as_deref(), version: own.version.as_deref() };
    let listed = pages(pool, era, Some(own.backend), kind).await;
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

async fn pages(pool: &Pool, era: Era<'_>, backend: Option<std::net::SocketAddr>, kind: Kind) -> Result<Listed, Failed> {
    let modern = matches!(era, Era::Modern);
    // Every kind's field, so one reading serves them all; the kind's own must be there.
    #[derive(serde::Deserialize)]
    struct Page {
        tools: Option<Vec<Box<RawValue>>>,
        prompts: Option<Vec<Box<RawValue>>>,
        resources: Option<Vec<Box<RawValue>>>,
        #[serde(rename = "resourceTemplates")]
        templates: Option<Vec<Box<RawValue>>>,
        #[serde(rename = "nextCursor")]
        next_cursor: Option<String>,
        #[serde(rename = "cacheScope")]
        cache_scope: Option<String>,
    }
    let mut listed = Listed { entries: Vec::new(), public: true, offered: true };
    let mut cursor: Option<String> = None;
    let (mut bytes, mut read, mut skipped, mut seen) = (0usize, 0usize, 0usize, Vec::<String>::new());
    let method = kind.method();
    let mut truncated = false;
    'pages: for page in 0..MAX_PAGES {
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
        let body = serde_json::json!({ "jsonrpc": "2.0", "id": page + 1, "method": method, "params": params });
        let body = Bytes::from(serde_json::to_vec(&body).map_err(|_| Failed::Unreadable)?);
        let ask = Ask { method, body, era, backend, timeout: MEMBER_TIMEOUT };
        let answer = match fanout::ask(pool, ask).await {
            // "Method not found" for the first page: a member without the capability has none.
            // Any other error is a failure: the entries it had stay offered.
            Err(Failed::Rpc(code)) if code == METHOD_NOT_FOUND && !kind.required() && page == 0 => {
                return Ok(Listed { offered: false, ..listed });
            }
            answer => answer?.result.ok_or(Failed::Unreadable)?,
        };
        read = read.saturating_add(answer.get().len());
        let page: Page = serde_json::from_str(answer.get()).map_err(|_| Failed::Unreadable)?;
        listed.public &= page.cache_scope.as_deref() != Some("private");
        let entries = match kind {
            Kind::Tools => page.tools,
            Kind::Prompts => page.prompts,
            Kind::Resources => page.resources,
            Kind::Templates => page.templates,
        };
        for entry in entries.ok_or(Failed::Unreadable)? {
            let size = entry.get().len();
            if size > MAX_ENTRY_BYTES {
                skipped += 1;
                continue;
            }
            if listed.entries.len() >= MAX_ENTRIES || bytes + size > MAX_MEMBER_BYTES {
                truncated = true;
                break 'pages;
            }
            bytes += size;
            listed.entries.push(entry);
        }
        // Everything read counts, kept or not: pages of oversized entries or of padding end
        // the walk at twice the bytes kept, not at the 100th page.
        if read > MAX_READ {
            truncated = true;
            break;
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
    // Logged once per list, however many entries: a member cannot flood the log.
    if skipped > 0 {
        tracing::warn!(pool = %pool.name(), list = method, skipped, "federation: entries over 64 KiB are left out");
    }
    if truncated {
        tracing::warn!(pool = %pool.name(), list = method, "federation: a member's list beyond 10,000 entries, 4 MiB kept or 8 MiB read is left out");
    }
    Ok(listed)
}
