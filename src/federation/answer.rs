//! The answers a federated route gives itself: `initialize` without a session, the
//! 2026-07-28 `server/discover`, a merged list, and the capabilities they announce. Not owned
//! here: deciding to answer (`super::decide`), writing the reply (`proxy::reply`).

use bytes::Bytes;

use super::catalog::Merged;
use super::page::Page;
use super::{Parts, LEGACY_VERSIONS};
use crate::config::model::Federation;
use crate::state::Snapshot;

/// What the route offers besides tools (which it always offers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offers {
    pub prompts: bool,
    pub resources: bool,
    pub completions: bool,
    pub logging: bool,
    /// Resource subscriptions (`resources.subscribe`).
    pub subscribe: bool,
    /// `listChanged` for tools, prompts and resources.
    pub changes: [bool; 3],
}

impl Offers {
    /// Everything a route answers without its members: what it announces when it cannot know
    /// theirs (the 2026-07-28 era asks no member before answering); a list of something no
    /// member has is empty. Nothing that needs a stream: that era's route has none.
    pub const ALL: Offers = Offers {
        prompts: true,
        resources: true,
        completions: true,
        logging: false,
        subscribe: false,
        changes: [false; 3],
    };

    /// What a 2026-07-28 route announces in `server/discover`: [`Offers::ALL`], and list
    /// changes and resource updates, which its `subscriptions/listen` relays from every member
    /// that has them (one that has none sends nothing: announced, they cost nothing).
    pub const MODERN: Offers = Offers { subscribe: true, changes: [true; 3], ..Offers::ALL };

    /// What a member's `capabilities` announce.
    pub fn of(caps: &serde_json::Value) -> Offers {
        let on = |pointer: &str| caps.pointer(pointer) == Some(&serde_json::Value::Bool(true));
        Offers {
            prompts: caps.get("prompts").is_some(),
            resources: caps.get("resources").is_some(),
            completions: caps.get("completions").is_some(),
            logging: caps.get("logging").is_some(),
            subscribe: on("/resources/subscribe"),
            changes: [on("/tools/listChanged"), on("/prompts/listChanged"), on("/resources/listChanged")],
        }
    }

    /// What either offers.
    pub fn or(self, other: Offers) -> Offers {
        let [a, b, c] = self.changes;
        let [x, y, z] = other.changes;
        Offers {
            prompts: self.prompts || other.prompts,
            resources: self.resources || other.resources,
            completions: self.completions || other.completions,
            logging: self.logging || other.logging,
            subscribe: self.subscribe || other.subscribe,
            changes: [a || x, b || y, c || z],
        }
    }

    /// Without what only a stream delivers (list changes, resource updates): a session no
    /// member issued a session for has no stream.
    pub fn streamless(self) -> Offers {
        Offers { subscribe: false, changes: [false; 3], ..self }
    }
}

/// The `capabilities` object: what members offer, with `listChanged` and `subscribe` where
/// a member announces them (relayed on the session's merged GET stream).
pub fn capabilities(offers: Offers) -> serde_json::Value {
    let list = |changes: bool| if changes { serde_json::json!({ "listChanged": true }) } else { serde_json::json!({}) };
    let mut caps = serde_json::json!({ "tools": list(offers.changes[0]) });
    if offers.prompts {
        caps["prompts"] = list(offers.changes[1]);
    }
    if offers.resources {
        caps["resources"] = list(offers.changes[2]);
        if offers.subscribe {
            caps["resources"]["subscribe"] = true.into();
        }
    }
    for (offered, key) in [(offers.completions, "completions"), (offers.logging, "logging")] {
        if offered {
            caps[key] = serde_json::json!({});
        }
    }
    caps
}

pub fn server_info(snap: &Snapshot, route: usize) -> serde_json::Value {
    let name = snap.router.routes().get(route).map_or("mcp-edge", |r| r.name.as_str());
    serde_json::json!({ "name": name, "version": env!("CARGO_PKG_VERSION") })
}

/// The client's version when the route speaks it, else the newest.
pub fn version_asked(body: &[u8]) -> &'static str {
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

fn ttl_ms(fed: &Federation) -> u64 {
    u64::try_from(fed.catalog_ttl.as_millis()).unwrap_or(u64::MAX)
}

pub fn discover(snap: &Snapshot, route: usize, fed: &Federation) -> String {
    let info = server_info(snap, route);
    let result = serde_json::json!({
        "supportedVersions": super::VERSIONS,
        "capabilities": capabilities(Offers::MODERN),
        // Both places: the result's `_meta` since the spec's PR #3002, the body before it.
        "_meta": { "io.modelcontextprotocol/serverInfo": info.clone() },
        "serverInfo": info,
        "cacheScope": "public",
        "ttlMs": ttl_ms(fed),
        "resultType": "complete",
    });
    result.to_string()
}

/// One page of the merged list: its rendered entries, `nextCursor` when another page
/// follows, then in the 2026-07-28 era the cache hints: private when any member's was, valid
/// for what is left of the list's time.
pub fn list(merged: &Merged, page: &Page, next: Option<String>, fed: &Federation, modern: bool) -> Parts {
    let mut tail = String::new();
    if let Some(next) = next {
        // Sealed base64url: nothing in it needs escaping.
        tail = format!(",\"nextCursor\":\"{next}\"");
    }
    if modern {
        let left = fed.catalog_ttl.saturating_sub(merged.made().elapsed());
        let scope = if merged.public { "public" } else { "private" };
        tail += &format!(",\"cacheScope\":\"{scope}\",\"ttlMs\":{},\"resultType\":\"complete\"}}", left.as_millis());
    } else if tail.is_empty() {
        return Parts(vec![page.body.clone(), Bytes::from_static(b"}")]);
    } else {
        tail.push('}');
    }
    Parts(vec![page.body.clone(), Bytes::from(tail)])
}
