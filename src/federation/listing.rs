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
/// Longest `nextCursor` followed: a member's cursor is sent back to it.
const MAX_CURSOR: usize = 1024;
/// Longest wait for one member's page.
pub const MEMBER_TIMEOUT: Duration = Duration::from_secs(5);

/// One member's list, every page.
pub struct Listed {
    pub entries: Vec<Box<RawValue>>,
    pub public: bool,
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
    let mut listed = Listed { entries: Vec::new(), public: true };
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
        let method = kind.method();
        let body = serde_json::json!({ "jsonrpc": "2.0", "id": page + 1, "method": method, "params": params });
        let body = Bytes::from(serde_json::to_vec(&body).map_err(|_| Failed::Unreadable)?);
        let ask = Ask { method, body, era, backend, timeout: MEMBER_TIMEOUT };
        let answer = match fanout::ask(pool, ask).await {
            // An error answer to the first page: a member without the capability has none.
            Err(Failed::Rpc(_)) if !kind.required() && page == 0 => return Ok(listed),
            answer => answer?.result.ok_or(Failed::Unreadable)?,
        };
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
                tracing::warn!(pool = %pool.name(), list = method, bytes = size, "federation: an entry over 64 KiB is left out");
                continue;
            }
            if listed.entries.len() >= MAX_ENTRIES || bytes + size > MAX_MEMBER_BYTES {
                tracing::warn!(pool = %pool.name(), list = method, "federation: a member's entries beyond 10,000 or 4 MiB are left out");
                return Ok(listed);
            }
            bytes += size;
            listed.entries.push(entry);
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
