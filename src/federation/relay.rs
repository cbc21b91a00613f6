//! What a member sends on its own stream, as the client of a federated session must see it,
//! and the way back. A member's server-to-client request (sampling, elicitation, roots) gets
//! an id that names the member, `"mcp-edge~<member>~<its id as written>"`, so the client's
//! answer, which comes back on a POST, goes to that member with the member's own id, with no
//! state kept anywhere (any replica routes it). A `list_changed` notification says which
//! merged lists are stale; `notifications/resources/updated` names the URI as the route
//! offers it. Everything else passes as the member wrote it.
//!
//! Pure: the caller reads the stream (`stream`), writes to the client, and refreshes the
//! catalog. Not owned here: who may see what (a client gets every message its own session's
//! members send, as it would from each of them directly).

use std::collections::BTreeMap;

use serde_json::value::RawValue;

use super::kind::Kind;

/// What starts the id of a request relayed from a member.
pub const ID_PREFIX: &str = "mcp-edge~";

/// Longest id of a member's request that is relayed (longer ones are dropped: the answer's id
/// carries it back, and ids are short in practice).
const MAX_ID: usize = 256;

/// A member's message, on its way to the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Relayed {
    /// Passed as written.
    AsIs,
    /// Passed rewritten (a request's id, an updated resource's URI).
    Rewritten(String),
    /// A list changed: passed as written, and these lists are stale.
    Changed(&'static [Kind]),
    /// Not passed: not a JSON-RPC request or notification (a response, junk), or a request
    /// whose id cannot be carried.
    Dropped,
}

/// A message as written: its members' values raw, so what is passed keeps every number and
/// string as the member wrote it.
type Msg<'a> = BTreeMap<String, &'a RawValue>;

/// Member `member`'s message `data` (one SSE event's data), for the client. `uri` names an
/// updated resource as the route offers it.
pub fn relay(member: usize, data: &[u8], uri: impl FnOnce(&str) -> String) -> Relayed {
    let Ok(mut msg) = serde_json::from_slice::<Msg<'_>>(data) else { return Relayed::Dropped };
    let Some(method) = msg.get("method").and_then(|m| serde_json::from_str::<String>(m.get()).ok()) else {
        return Relayed::Dropped;
    };
    match msg.get("id").copied() {
        Some(id) if id.get() != "null" => {
            let id = id.get();
            if id.len() > MAX_ID
                || !(id.starts_with('"') || id.starts_with(['-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']))
            {
                return Relayed::Dropped;
            }
            let mapped = format!("{ID_PREFIX}{member}~{id}");
            let Ok(mapped) = serde_json::to_string(&mapped) else { return Relayed::Dropped };
            let Ok(mapped) = RawValue::from_string(mapped) else { return Relayed::Dropped };
            msg.insert("id".to_owned(), &mapped);
            written(&msg)
        }
        Some(_) => Relayed::Dropped,
        None => match method.as_str() {
            "notifications/tools/list_changed" => Relayed::Changed(&[Kind::Tools]),
            "notifications/prompts/list_changed" => Relayed::Changed(&[Kind::Prompts]),
            "notifications/resources/list_changed" => Relayed::Changed(&[Kind::Resources, Kind::Templates]),
            "notifications/resources/updated" => updated(&msg, uri),
            _ => Relayed::AsIs,
        },
    }
}

/// `notifications/resources/updated` with its `params.uri` as the route offers it.
fn updated(msg: &Msg<'_>, uri: impl FnOnce(&str) -> String) -> Relayed {
    let params = msg.get("params").and_then(|p| serde_json::from_str::<Msg<'_>>(p.get()).ok());
    let Some(mut params) = params else { return Relayed::AsIs };
    let Some(own) = params.get("uri").and_then(|u| serde_json::from_str::<String>(u.get()).ok()) else {
        return Relayed::AsIs;
    };
    let Ok(offered) = serde_json::to_string(&uri(&own)) else { return Relayed::Dropped };
    let Ok(offered) = RawValue::from_string(offered) else { return Relayed::Dropped };
    params.insert("uri".to_owned(), &offered);
    let Ok(params) = serde_json::to_string(&params) else { return Relayed::Dropped };
    let Ok(params) = RawValue::from_string(params) else { return Relayed::Dropped };
    let mut out: BTreeMap<&str, &RawValue> = msg.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    out.insert("params", &params);
    serde_json::to_string(&out).map_or(Relayed::Dropped, Relayed::Rewritten)
}

fn written(msg: &Msg<'_>) -> Relayed {
    serde_json::to_string(msg).map_or(Relayed::Dropped, Relayed::Rewritten)
}

/// The member and its own id (as written) that a client's answer is for, when `id` (raw JSON)
/// is one [`relay`] made.
pub fn restore(id: &[u8]) -> Option<(usize, String)> {
    let id: String = serde_json::from_slice(id).ok()?;
    let rest = id.strip_prefix(ID_PREFIX)?;
    let (member, own) = rest.split_once('~')?;
    let member: usize = member.parse().ok()?;
    // Only what `relay` passes: a number or a string, one JSON value.
    let own_value: &RawValue = serde_json::from_str(own).ok()?;
    let ok = own_value.get().starts_with('"') || serde_json::from_str::<serde_json::Number>(own).is_ok();
    ok.then(|| (member, own.to_owned()))
}

/// A client's answer `body` with the member's own id in place of the one [`relay`] made.
pub fn answered(body: &[u8], own_id: &str) -> Option<bytes::Bytes> {
    let mut msg: Msg<'_> = serde_json::from_slice(body).ok()?;
    let own: &RawValue = serde_json::from_str(own_id).ok()?;
    msg.insert("id".to_owned(), own);
    serde_json::to_vec(&msg).ok().map(bytes::Bytes::from)
}

/// `data` as one SSE event (one `data:` line per line of it), with its `id` when it has one.
pub fn event(id: Option<&str>, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 24);
    if let Some(id) = id {
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(id.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"event: message\n");
    for line in data.split(|&b| b == b'\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

/// One event of a member's answer stream (a forwarded call's), as the client gets it: a
/// request to the client with its id mapped (its event id kept), anything else byte for byte.
/// Returns the lists a `list_changed` in it makes stale. Only an event whose data names a
/// `"method"` is read.
pub fn answer_event(
    member: usize,
    event: &[u8],
    uri: impl FnOnce(&str) -> String,
    out: &mut Vec<u8>,
) -> &'static [Kind] {
    // The key cannot span lines of the event, so the raw event is searched, not a copy.
    let names_method = event.windows(8).any(|w| w == b"\"method\"");
    let data = match crate::proxy::sse_event::data(event).filter(|_| names_method) {
        Some((data, _)) => data,
        None => {
            out.extend_from_slice(event);
            return &[];
        }
    };
    match relay(member, &data, uri) {
        Relayed::Rewritten(text) => {
            let id = crate::proxy::sse_event::id(event);
            out.extend_from_slice(&self::event(id, text.as_bytes()));
            &[]
        }
        Relayed::Changed(kinds) => {
            out.extend_from_slice(event);
            kinds
        }
        Relayed::AsIs | Relayed::Dropped => {
            out.extend_from_slice(event);
            &[]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(uri: &str) -> String {
        format!("a+{uri}")
    }

    #[test]
    fn a_members_request_gets_an_id_naming_the_member_and_the_answer_finds_its_way_back() {
        for id in ["7", "\"abc\"", "-1.5e3", "123456789012345678901234567890", r#""with~tilde\"quote""#] {
            let request =
                format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"sampling/createMessage","params":{{"n":1e0}}}}"#);
            let Relayed::Rewritten(out) = relay(2, request.as_bytes(), plain) else { panic!("{id}: not rewritten") };
            let sent: serde_json::Value = serde_json::from_str(&out).unwrap();
            let mapped = sent["id"].as_str().unwrap().to_owned();
            assert!(mapped.starts_with("mcp-edge~2~"), "{mapped}");
            assert!(out.contains(r#""n":1e0"#), "params pass as written: {out}");
            let (member, own) = restore(serde_json::to_string(&mapped).unwrap().as_bytes()).unwrap();
            assert_eq!((member, own.as_str()), (2, id));
            let answer =
                format!(r#"{{"jsonrpc":"2.0","id":{},"result":{{"x":1}}}}"#, serde_json::to_string(&mapped).unwrap());
            let back = answered(answer.as_bytes(), &own).unwrap();
            let back: serde_json::Value = serde_json::from_slice(&back).unwrap();
            assert_eq!(back["id"], serde_json::from_str::<serde_json::Value>(id).unwrap());
            assert_eq!(back["result"]["x"], 1);
        }
    }

    #[test]
    fn notifications_pass_and_say_which_lists_changed() {
        let n = |m: &str| format!(r#"{{"jsonrpc":"2.0","method":"{m}"}}"#);
        assert_eq!(relay(0, n("notifications/tools/list_changed").as_bytes(), plain), Relayed::Changed(&[Kind::Tools]));
        assert_eq!(
            relay(0, n("notifications/prompts/list_changed").as_bytes(), plain),
            Relayed::Changed(&[Kind::Prompts])
        );
        assert_eq!(
            relay(0, n("notifications/resources/list_changed").as_bytes(), plain),
            Relayed::Changed(&[Kind::Resources, Kind::Templates])
        );
        assert_eq!(relay(0, n("notifications/message").as_bytes(), plain), Relayed::AsIs);
        let updated = br#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"res://x","_meta":{"k":1}}}"#;
        let Relayed::Rewritten(out) = relay(0, updated, plain) else { panic!("not rewritten") };
        let out: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(out["params"]["uri"], "a+res://x");
        assert_eq!(out["params"]["_meta"]["k"], 1);
    }

    #[test]
    fn responses_junk_and_uncarriable_ids_are_dropped() {
        for data in [
            &br#"{"jsonrpc":"2.0","id":1,"result":{}}"#[..],
            br#"{"jsonrpc":"2.0","id":null,"method":"x"}"#,
            br#"{"jsonrpc":"2.0","id":{"a":1},"method":"x"}"#,
            br#"{"jsonrpc":"2.0","id":[1],"method":"x"}"#,
            br#"{"jsonrpc":"2.0","method":7}"#,
            b"not json",
            b"[]",
        ] {
            assert_eq!(relay(0, data, plain), Relayed::Dropped, "{}", String::from_utf8_lossy(data));
        }
        let long = format!(r#"{{"jsonrpc":"2.0","id":"{}","method":"x"}}"#, "a".repeat(300));
        assert_eq!(relay(0, long.as_bytes(), plain), Relayed::Dropped);
    }

    #[test]
    fn only_ids_the_relay_made_are_restored() {
        for id in [
            &b"1"[..],
            br#""abc""#,
            br#""mcp-edge~x~1""#,
            br#""mcp-edge~1~{}""#,
            br#""mcp-edge~1~""#,
            br#""mcp-edge~1~1 2""#,
        ] {
            assert!(restore(id).is_none(), "{}", String::from_utf8_lossy(id));
        }
    }
}
