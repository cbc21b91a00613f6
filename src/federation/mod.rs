//! A federated route: one MCP endpoint over several members (pools), each member's tools
//! offered as `<prefix>_<tool>`. What the route answers itself: `initialize` (legacy era, no
//! session), `server/discover` (2026-07-28), `ping`, notifications, and `tools/list` (the
//! merged list from [`catalog`]). What it forwards: `tools/call`, to the member that owns the
//! tool, with the member's own tool name in the body and in `Mcp-Name`. Every other method is
//! "method not found", as the merged capabilities offer tools only.
//!
//! This is federation's first part: stateless members (2026-07-28 servers, or legacy servers
//! that issue no session), tools only, one merged page, no policy filtering (a route with
//! members refuses `[route.policy]` at load). Not owned here: the request's reading
//! (`mcp::call`), the replies (`proxy::reply`), the members' config (`config::federation`).

pub mod catalog;
pub mod fanout;
pub mod listing;
pub mod names;
pub mod session;

use std::sync::Arc;

use bytes::Bytes;
use serde_json::value::RawValue;

use crate::config::model::Federation;
use crate::mcp::call::Call;
use crate::mcp::method::{Era, Method, FIRST_MODERN_VERSION};
use crate::metrics::Metrics;
use crate::state::Snapshot;
use catalog::{Lookup, Merged};

/// Legacy protocol versions a federated route accepts in `initialize`, newest first.
pub(crate) const LEGACY_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// A JSON-RPC result the route answers itself, as pieces written one after another: a merged
/// list's tools are one piece, rendered once per list and shared by every answer, so a client
/// that reads slowly holds a reference, not a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts(pub Vec<Bytes>);

impl From<String> for Parts {
    fn from(s: String) -> Parts {
        Parts(vec![Bytes::from(s)])
    }
}

impl Parts {
    pub fn len(&self) -> usize {
        self.0.iter().map(Bytes::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a federated route does with a request.
#[derive(Debug)]
pub enum Outcome {
    /// Send to member `member` (route order), pool `pool`, with `body` (the member's own tool
    /// name in it); `name` is that name, for `Mcp-Name`.
    Forward { member: usize, pool: usize, body: Bytes, name: String },
    /// A legacy `initialize`: open a session with every member ([`open`]).
    Initialize,
    /// Answer 200 with this JSON-RPC result (the id is added by the reply).
    Answer(Parts),
    /// A notification or a response: 202, nothing forwarded.
    Accepted,
    /// No member offers the tool.
    UnknownTool,
    /// A method the merged capabilities do not offer.
    NotFound,
    /// The body could not be rewritten for the member (not an object with `params.name`).
    Unreadable,
}

pub async fn decide(
    snap: &Arc<Snapshot>,
    metrics: &Metrics,
    route: usize,
    fed: &Federation,
    call: &Call,
    body: &Bytes,
) -> Outcome {
    let modern = call.era == Era::Modern;
    match call.one.method {
        Method::Notification | Method::Response => Outcome::Accepted,
        Method::Ping => Outcome::Answer(Parts(vec![Bytes::from_static(b"{}")])),
        Method::Initialize if !modern => Outcome::Initialize,
        Method::Initialize => Outcome::Answer(initialize(body, snap, route).into()),
        Method::ServerDiscover => Outcome::Answer(discover(snap, route, fed).into()),
        Method::ToolsList => match merged(snap, metrics, route, fed, modern).await {
            Some(merged) => Outcome::Answer(list(&merged, fed, modern)),
            None => Outcome::NotFound,
        },
        Method::ToolsCall => {
            let Some(offered) = call.one.target_str() else { return Outcome::UnknownTool };
            let Some(merged) = merged(snap, metrics, route, fed, modern).await else { return Outcome::NotFound };
            let Some(owner) = merged.owners.get(offered) else { return Outcome::UnknownTool };
            let Some(member) = fed.members.get(owner.member) else { return Outcome::UnknownTool };
            match renamed(body, call.one.target.as_ref(), &owner.name) {
                Some(body) => {
                    Outcome::Forward { member: owner.member, pool: member.pool, body, name: owner.name.clone() }
                }
                None => Outcome::Unreadable,
            }
        }
        _ => Outcome::NotFound,
    }
}

/// The route's merged list for the era: fresh; or stale while one refresh runs in the
/// background (a slow member delays no caller once a list exists); or, the first time, the
/// list the caller waits for.
async fn merged(
    snap: &Arc<Snapshot>,
    metrics: &Metrics,
    route: usize,
    fed: &Federation,
    modern: bool,
) -> Option<Arc<Merged>> {
    let catalog = snap.catalogs.get(route).and_then(Option::as_ref)?;
    let counted = || catalog::Counted {
        lists: metrics.member_lists.clone(),
        route: snap.router.routes().get(route).map_or("-", |r| r.name.as_str()).to_owned(),
    };
    Some(match catalog.lookup(modern, fed.catalog_ttl) {
        Lookup::Fresh(m) => m,
        Lookup::Stale(m) => {
            if !catalog.refreshing(modern) {
                let (snap, counted) = (Arc::clone(snap), counted());
                tokio::spawn(async move { background(&snap, route, modern, &counted).await });
            }
            m
        }
        Lookup::Cold => catalog.refresh(fed, &snap.pools, modern, &counted()).await,
    })
}

/// Refreshes a stale list, unless another refresh claimed it first.
async fn background(snap: &Snapshot, route: usize, modern: bool, counted: &catalog::Counted) {
    let Some(fed) = snap.router.routes().get(route).and_then(|r| r.federation.as_ref()) else { return };
    let Some(catalog) = snap.catalogs.get(route).and_then(Option::as_ref) else { return };
    let Some(_claim) = catalog.claim(modern) else { return };
    catalog.refresh(fed, &snap.pools, modern, counted).await;
}

fn server_info(snap: &Snapshot, route: usize) -> serde_json::Value {
    let name = snap.router.routes().get(route).map_or("mcp-edge", |r| r.name.as_str());
    serde_json::json!({ "name": name, "version": env!("CARGO_PKG_VERSION") })
}

/// A federated session being opened: the merged `initialize` result, and the token's members
/// (see [`session`]); `sessions` is how many members issued a session.
pub struct Opening {
    pub result: String,
    pub members: Vec<crate::session::Member>,
    pub sessions: usize,
}

/// A legacy `initialize`: the client's request sent to every member (each keeps the client's
/// capabilities and info), and the merged answer.
pub async fn open(snap: &Snapshot, route: usize, fed: &Federation, body: &Bytes) -> Opening {
    let done = session::handshakes(fed, &snap.pools, body).await;
    let name = snap.router.routes().get(route).map_or("", |r| r.name.as_str());
    Opening {
        result: session::result(version_asked(body), server_info(snap, route), fed, &done),
        members: session::members(name, fed, &snap.pools, &done),
        sessions: done.iter().flatten().filter(|d| d.session.is_some()).count(),
    }
}

/// The client's version when the route speaks it, else the newest.
fn version_asked(body: &[u8]) -> &'static str {
    #[derive(serde::Deserialize)]
    struct Init {
        params: Option<Params>,
    }
    #[derive(serde::Deserialize)]
    struct Params {
        #[serde(rename = "protocolVersion")]
        protocol_version: Option<String>,
    }
    let asked = serde_json::from_slice::<Init>(body).ok().and_then(|i| i.params).and_then(|p| p.protocol_version);
    asked.as_deref().and_then(|a| LEGACY_VERSIONS.iter().find(|v| **v == a)).unwrap_or(&LEGACY_VERSIONS[0])
}

/// A sessionless `initialize` answer (the 2026-07-28 era has no handshake; answered for
/// clients that send one anyway).
fn initialize(body: &[u8], snap: &Snapshot, route: usize) -> String {
    let result = serde_json::json!({
        "protocolVersion": version_asked(body),
        "capabilities": { "tools": {} },
        "serverInfo": server_info(snap, route),
    });
    result.to_string()
}

fn ttl_ms(fed: &Federation) -> u64 {
    u64::try_from(fed.catalog_ttl.as_millis()).unwrap_or(u64::MAX)
}

fn discover(snap: &Snapshot, route: usize, fed: &Federation) -> String {
    let result = serde_json::json!({
        "supportedVersions": [FIRST_MODERN_VERSION],
        "capabilities": { "tools": {} },
        "serverInfo": server_info(snap, route),
        "cacheScope": "public",
        "ttlMs": ttl_ms(fed),
        "resultType": "complete",
    });
    result.to_string()
}

/// The merged list as one page (no `nextCursor`): the list's rendered tools, then in the
/// 2026-07-28 era its cache hints: private when any member's was, valid for what is left of
/// the list's time.
fn list(merged: &catalog::Merged, fed: &Federation, modern: bool) -> Parts {
    let tail = if modern {
        let left = fed.catalog_ttl.saturating_sub(merged.made().elapsed());
        let scope = if merged.public { "public" } else { "private" };
        Bytes::from(format!(",\"cacheScope\":\"{scope}\",\"ttlMs\":{},\"resultType\":\"complete\"}}", left.as_millis()))
    } else {
        Bytes::from_static(b"}")
    };
    Parts(vec![merged.rendered().clone(), tail])
}

/// `body` with `params.name` set to `name`, every other byte as sent: repeated keys, key
/// order, spacing and number spellings reach the member exactly as the proxy read them.
/// `target` is the one reading's `params.name`, a slice of `body` when the name had no
/// escapes: its string is replaced in place. A name written with escapes is found by a
/// reading of the body that keeps it raw (only then: it costs a second parse).
pub fn renamed(body: &Bytes, target: Option<&Bytes>, name: &str) -> Option<Bytes> {
    if let Some(spliced) = target.and_then(|t| splice(body, t, name)) {
        return Some(spliced);
    }
    #[derive(serde::Deserialize)]
    struct Top<'a> {
        #[serde(borrow)]
        params: Params<'a>,
    }
    #[derive(serde::Deserialize)]
    struct Params<'a> {
        #[serde(borrow)]
        name: &'a RawValue,
    }
    let top: Top = serde_json::from_slice(body).ok()?;
    let raw = top.params.name.get();
    // The raw token with its quotes: the content is what lies between them.
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    splice(body, inner.as_bytes(), name)
}

/// `body` with the string whose content is the slice `target` of it replaced by `name`.
fn splice(body: &[u8], target: &[u8], name: &str) -> Option<Bytes> {
    let start = (target.as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
    let end = start.checked_add(target.len()).filter(|&e| e < body.len())?;
    // The content of a string token without escapes: the quotes are the bytes around it.
    if start == 0 || body.get(start - 1) != Some(&b'"') || body.get(end) != Some(&b'"') {
        return None;
    }
    let quoted = serde_json::to_string(name).ok()?;
    let mut out = Vec::with_capacity(body.len() + quoted.len());
    out.extend_from_slice(body.get(..start - 1)?);
    out.extend_from_slice(quoted.as_bytes());
    out.extend_from_slice(body.get(end + 1..)?);
    Some(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renamed_call_keeps_every_other_value_as_sent() {
        let body = Bytes::from_static(br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"a_echo","arguments":{"n":1.50,"big":123456789012345678901234567890}}}"#);
        let out = renamed(&body, None, "echo").unwrap();
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.contains(r#""name":"echo""#) && !text.contains("a_echo"), "{text}");
        assert!(text.contains(r#"{"n":1.50,"big":123456789012345678901234567890}"#), "{text}");
        assert!(text.contains(r#""id":7"#));
        assert_eq!(renamed(&Bytes::from_static(b"[1]"), None, "x"), None);
        assert_eq!(renamed(&Bytes::from_static(br#"{"params":3}"#), None, "x"), None);
    }

    #[test]
    fn a_name_read_from_the_body_is_spliced_and_everything_else_is_sent_byte_for_byte() {
        let body = Bytes::from_static(
            br#"{"x":1,"x":2,"method":"tools/call","params":{"arguments":{"a":1e15},"name":"a_echo","arguments":{"a":-0}},"id":1}"#,
        );
        let at = body.windows(6).position(|w| w == b"a_echo").unwrap();
        let target = body.slice(at..at + 6);
        let out = renamed(&body, Some(&target), "e\"cho").unwrap();
        let want = br#"{"x":1,"x":2,"method":"tools/call","params":{"arguments":{"a":1e15},"name":"e\"cho","arguments":{"a":-0}},"id":1}"#;
        assert_eq!(std::str::from_utf8(&out).unwrap(), std::str::from_utf8(want).unwrap());
        // A name written with escapes (the one reading holds a decoded copy) is found raw.
        let escaped = Bytes::from_static(br#"{"x":1,"x":2,"params":{"name":"a_\u0065cho", "n":1.0e+0},"id":1}"#);
        let out = renamed(&escaped, Some(&Bytes::copy_from_slice(b"a_echo")), "echo").unwrap();
        assert_eq!(&out[..], br#"{"x":1,"x":2,"params":{"name":"echo", "n":1.0e+0},"id":1}"#);
    }
}
