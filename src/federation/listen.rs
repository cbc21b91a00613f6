//! The 2026-07-28 era's `subscriptions/listen` on a federated route: the client's one long
//! request, whose event stream carries the list changes and resource updates it asked for.
//! The route sends each member its own listen (the client's list flags, and the subscribed
//! URIs that member owns, under the member's own names), and merges what they send
//! (`super::stream`): first its own acknowledgement, then each member's notification tagged
//! with the client's subscription id (the listen request's id, as the spec has it), a
//! resource's URI as the route offers it, and nothing the client did not ask for, whatever a
//! member sends. A member's stream that was lost and opened again may have missed changes:
//! the client is told the lists it listens to changed (the spec's events are level triggers).
//!
//! Pure but for [`sources`] (which asks the merged lists who owns a URI): reading the request,
//! the members' bodies, and each member message's fate. Not owned here: the members' streams
//! (`super::stream`), which URIs the caller may watch (its policy, `proxy::federated`),
//! writing to the client (`proxy::reply`).

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::kind::Kind;
use super::relay;

/// The `_meta` key naming the stream a listen notification belongs to.
pub const SUBSCRIPTION_KEY: &str = "io.modelcontextprotocol/subscriptionId";

/// Most resource URIs one listen watches.
pub const MAX_URIS: usize = 256;

/// The list-changed notifications, in the order of [`Filter::lists`], and the lists each
/// makes stale.
const LISTS: [(&str, &str, &[Kind]); 3] = [
    ("toolsListChanged", "notifications/tools/list_changed", &[Kind::Tools]),
    ("promptsListChanged", "notifications/prompts/list_changed", &[Kind::Prompts]),
    ("resourcesListChanged", "notifications/resources/list_changed", &[Kind::Resources, Kind::Templates]),
];

/// What a listen asks to hear: the lists (tools, prompts, resources) and the resource URIs
/// (as offered to the client, or as the member names them in a member's filter).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub lists: [bool; 3],
    pub uris: Vec<String>,
}

impl Filter {
    /// Whether it asks for nothing (a member with nothing to send is not asked).
    pub fn is_empty(&self) -> bool {
        self.lists == [false; 3] && self.uris.is_empty()
    }

    /// `{"toolsListChanged":true,…,"resourceSubscriptions":[…]}`: what is asked (or
    /// honoured), flags that are off and an empty URI list left out.
    pub fn json(&self) -> String {
        let mut out = serde_json::Map::new();
        for ((key, _, _), on) in LISTS.iter().zip(self.lists) {
            if on {
                out.insert((*key).to_owned(), true.into());
            }
        }
        if !self.uris.is_empty() {
            out.insert("resourceSubscriptions".to_owned(), self.uris.clone().into());
        }
        serde_json::Value::Object(out).to_string()
    }
}

/// An open listen as its members' streams are read: its subscription id (raw JSON) and what
/// its client asked to hear, as offered.
#[derive(Debug)]
pub struct Listening {
    pub id: String,
    pub filter: Filter,
}

/// A client's `subscriptions/listen`, read.
#[derive(Debug)]
pub struct Listen {
    /// The request's id, raw JSON: the subscription id its stream's messages carry.
    pub id: String,
    /// The request's `params._meta`, raw: passed to each member, as a forwarded call's is.
    pub meta: Box<RawValue>,
    pub filter: Filter,
}

/// The request read from `body`: None when it is not a listen with `params.notifications`
/// (flags true or false, URIs strings, at most [`MAX_URIS`]) and `params._meta`.
pub fn read(body: &[u8]) -> Option<Listen> {
    #[derive(Deserialize)]
    struct Request<'a> {
        #[serde(borrow)]
        id: &'a RawValue,
        params: Params,
    }
    #[derive(Deserialize)]
    struct Params {
        notifications: Notifications,
        #[serde(rename = "_meta")]
        meta: Box<RawValue>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Notifications {
        tools_list_changed: Option<bool>,
        prompts_list_changed: Option<bool>,
        resources_list_changed: Option<bool>,
        resource_subscriptions: Option<Vec<String>>,
    }
    let r: Request<'_> = serde_json::from_slice(body).ok()?;
    // The id is written into every message: a string or a number (as the request's reading
    // already required), never other JSON.
    if !r.id.get().starts_with(['"', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']) {
        return None;
    }
    let n = r.params.notifications;
    let uris = n.resource_subscriptions.unwrap_or_default();
    if uris.len() > MAX_URIS || !r.params.meta.get().starts_with('{') {
        return None;
    }
    let on = |flag: Option<bool>| flag == Some(true);
    let lists = [on(n.tools_list_changed), on(n.prompts_list_changed), on(n.resources_list_changed)];
    Some(Listen { id: r.id.get().to_owned(), meta: r.params.meta, filter: Filter { lists, uris } })
}

/// The members' listens: each member (with a usable pool) asked for the client's lists and
/// the watched URIs it owns, under its own names; a member asked for nothing is left out.
/// A URI no member owns is honoured and never fires, as a server honours one it lacks.
pub async fn sources(
    snap: &std::sync::Arc<crate::state::Snapshot>,
    metrics: &crate::metrics::Metrics,
    route: usize,
    fed: &crate::config::model::Federation,
    listen: &Listen,
) -> Vec<super::stream::Source> {
    let mut filters: Vec<Filter> =
        fed.members.iter().map(|_| Filter { lists: listen.filter.lists, uris: Vec::new() }).collect();
    for uri in &listen.filter.uris {
        if let Some(owned) = super::by_uri(snap, metrics, route, fed, true, uri).await {
            if let Some(f) = filters.get_mut(owned.member) {
                f.uris.push(owned.own.into_owned());
            }
        }
    }
    let members = fed.members.iter().zip(filters).enumerate();
    members
        .filter(|(_, (_, filter))| !filter.is_empty())
        .filter_map(|(i, (member, filter))| {
            Some(super::stream::Source {
                member: i,
                prefix: member.prefix.clone(),
                pool: std::sync::Arc::clone(snap.pools.get(member.pool)?),
                leg: super::stream::Leg::Listen { body: member_body(listen, &filter) },
            })
        })
        .collect()
}

/// The body of a member's listen: the client's id and `_meta`, the member's `filter`.
pub fn member_body(listen: &Listen, filter: &Filter) -> Bytes {
    Bytes::from(format!(
        r#"{{"jsonrpc":"2.0","id":{},"method":"subscriptions/listen","params":{{"notifications":{},"_meta":{}}}}}"#,
        listen.id,
        filter.json(),
        listen.meta.get()
    ))
}

/// The stream's first message: what the route honours (`honoured`), under subscription `id`.
pub fn acknowledged(id: &str, honoured: &Filter) -> Bytes {
    let data = format!(
        r#"{{"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged","params":{{"notifications":{},"_meta":{{"{SUBSCRIPTION_KEY}":{id}}}}}}}"#,
        honoured.json()
    );
    Bytes::from(relay::event(None, data.as_bytes()))
}

/// The stream's last message, when every member's stream ended for good: the listen's
/// result, as a server closing the stream sends it.
pub fn closing(id: &str) -> Bytes {
    let data = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"_meta":{{"{SUBSCRIPTION_KEY}":{id}}}}}}}"#);
    Bytes::from(relay::event(None, data.as_bytes()))
}

/// What becomes of one message on a member's listen stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Heard {
    /// For the client (an SSE event), and the lists it makes stale.
    Relay(Bytes, &'static [Kind]),
    /// The member answered the listen: its stream is over (a result), or it refuses (an
    /// error: it is not asked again).
    Ended { refused: bool },
    /// Not for the client: the member's acknowledgement, what the client did not ask for,
    /// anything else.
    Nothing,
}

/// Member message `data` on a listen whose client asked for `filter` under subscription `id`;
/// `uri` offers a member's resource URI as the route does.
pub fn heard(data: &[u8], id: &str, filter: &Filter, uri: impl FnOnce(&str) -> String) -> Heard {
    #[derive(Deserialize)]
    struct Message<'a> {
        #[serde(borrow)]
        method: Option<std::borrow::Cow<'a, str>>,
        params: Option<Params>,
        #[serde(borrow)]
        result: Option<&'a RawValue>,
        #[serde(borrow)]
        error: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct Params {
        uri: Option<String>,
    }
    let Ok(m) = serde_json::from_slice::<Message<'_>>(data) else { return Heard::Nothing };
    let Some(method) = m.method else {
        return match (m.result, m.error) {
            (_, Some(_)) => Heard::Ended { refused: true },
            (Some(_), None) => Heard::Ended { refused: false },
            (None, None) => Heard::Nothing,
        };
    };
    if let Some(i) = LISTS.iter().position(|(_, name, _)| *name == method) {
        let (_, name, kinds) = LISTS[i];
        return match filter.lists[i] {
            true => Heard::Relay(notification(name, None, id), kinds),
            false => Heard::Nothing,
        };
    }
    if method != "notifications/resources/updated" {
        return Heard::Nothing;
    }
    let Some(own) = m.params.and_then(|p| p.uri) else { return Heard::Nothing };
    let offered = uri(&own);
    match filter.uris.contains(&offered) {
        true => Heard::Relay(notification("notifications/resources/updated", Some(&offered), id), &[]),
        false => Heard::Nothing,
    }
}

/// What a client is told when a member's lost stream is open again: each list it listens to
/// may have changed while no one heard.
pub fn resumed(id: &str, filter: &Filter) -> Vec<(Bytes, &'static [Kind])> {
    LISTS
        .iter()
        .zip(filter.lists)
        .filter(|(_, on)| *on)
        .map(|((_, name, kinds), _)| (notification(name, None, id), *kinds))
        .collect()
}

/// The lists each list-changed notification makes stale, in the order of [`Filter::lists`].
pub const LIST_KINDS: [&[Kind]; 3] = [LISTS[0].2, LISTS[1].2, LISTS[2].2];

/// What a listen's client is told when the route's `kinds` lists changed without a member's
/// stream saying so (`Catalog::announce`): None when it did not ask to hear of them.
pub fn announced(id: &str, filter: &Filter, kinds: &[Kind]) -> Option<Bytes> {
    let i = LISTS.iter().position(|(_, _, k)| *k == kinds)?;
    filter.lists[i].then(|| notification(LISTS[i].1, None, id))
}

/// The same for a legacy session's GET stream, which hears every list.
pub fn announced_legacy(kinds: &[Kind]) -> Option<Bytes> {
    let (_, method, _) = LISTS.iter().find(|(_, _, k)| *k == kinds)?;
    let data = format!(r#"{{"jsonrpc":"2.0","method":"{method}"}}"#);
    Some(Bytes::from(relay::event(None, data.as_bytes())))
}

/// A listen notification as the client gets it, tagged with its subscription `id`.
fn notification(method: &str, uri: Option<&str>, id: &str) -> Bytes {
    let uri = uri.map_or(String::new(), |u| format!(r#""uri":{},"#, serde_json::Value::from(u)));
    let data =
        format!(r#"{{"jsonrpc":"2.0","method":"{method}","params":{{{uri}"_meta":{{"{SUBSCRIPTION_KEY}":{id}}}}}}}"#);
    Bytes::from(relay::event(None, data.as_bytes()))
}

#[cfg(test)]
#[path = "listen_tests.rs"]
mod tests;
