//! What a member sends on its own stream, as the client of a federated session must see it,
//! and the way back. A member's server-to-client request (sampling, elicitation, roots) gets
//! an id that names the member: `"mcp-edge~<sealed>"`, the member's place and its id as
//! written, sealed with the session key and bound to the client's session ([`Ids`]). The
//! client's answer, which comes back on a POST, goes to that member with the member's own id,
//! with no state kept anywhere (any replica routes it); a member cannot make an id that sends
//! an answer to another member (it has no key), and a client's answer reaches only a member
//! that asked it. A `list_changed` notification says which merged lists are stale;
//! `notifications/resources/updated` names the URI as the route offers it. A message naming a
//! key twice is dropped (readers disagree on which counts). Everything else passes as the
//! member wrote it.
//!
//! Pure: the caller reads the stream (`stream`), writes to the client, and refreshes the
//! catalog. Not owned here: who may see what (a client gets every message its own session's
//! members send, as it would from each of them directly).

use std::collections::BTreeMap;

use serde_json::value::RawValue;

use super::kind::Kind;
use crate::proxy::sse_event::Budget;
use crate::session::KeyRing;

/// Bytes every relayed stream together holds of unfinished events, past what each holds free
/// (`sse_event::FREE`): members that send events without end cost at most this much.
pub static HELD: Budget = Budget::new(64 << 20);

/// What starts the id of a request relayed from a member.
pub const ID_PREFIX: &str = "mcp-edge~";

/// Longest id of a member's request that is relayed (longer ones are dropped: the answer's id
/// carries it back, and ids are short in practice).
const MAX_ID: usize = 256;

/// The sealed id's layout version.
const VERSION: u8 = 1;

/// How relayed ids are made and read back: sealed with `keys`, for the client's `session`
/// (its token's fingerprint; empty without a session).
pub struct Ids<'a> {
    pub keys: &'a KeyRing,
    pub session: &'a str,
}

impl Ids<'_> {
    /// The id member `member`'s request `own` (as written) reaches the client under.
    fn map(&self, member: usize, own: &str) -> Option<String> {
        let member = u16::try_from(member).ok()?;
        let mut plain = Vec::with_capacity(11 + own.len());
        plain.push(VERSION);
        plain.extend_from_slice(&member.to_be_bytes());
        plain.extend_from_slice(&self.tag());
        plain.extend_from_slice(own.as_bytes());
        Some(format!("{ID_PREFIX}{}", self.keys.seal_opaque(&plain)?))
    }

    /// The member and its own id (as written) that a client's answer is for, when `id` (raw
    /// JSON) is one [`relay`] made for this session.
    pub fn restore(&self, id: &[u8]) -> Option<(usize, String)> {
        let id: String = serde_json::from_slice(id).ok()?;
        let plain = self.keys.open_opaque(id.strip_prefix(ID_PREFIX)?)?;
        let (head, own) = plain.split_at_checked(11)?;
        if head[0] != VERSION || head[3..11] != self.tag() {
            return None;
        }
        let member = u16::from_be_bytes([head[1], head[2]]);
        Some((usize::from(member), String::from_utf8(own.to_vec()).ok()?))
    }

    fn tag(&self) -> [u8; 8] {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(self.session.as_bytes());
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&digest[..8]);
        tag
    }
}

/// A member's message, on its way to the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Relayed<'a> {
    /// Passed as written.
    AsIs,
    /// Passed rewritten (a request's id, an updated resource's URI).
    Rewritten(String),
    /// A list changed: passed as written, and these lists are stale.
    Changed(&'static [Kind]),
    /// An object with no method, with its `id` as written: on a call's stream its answer
    /// (passed as written), on the session's stream nothing a client asked for (dropped).
    Response(Option<&'a str>),
    /// Not passed: not a JSON-RPC request or notification (a response, junk, a key written
    /// twice), or a request whose id cannot be carried.
    Dropped,
}

/// A message as written: its members' values raw, so what is passed keeps every number and
/// string as the member wrote it. A key written twice makes it no message: readers disagree on
/// which one counts (a client reading the first `id` of an answer the relay read by its last
/// would take it for the answer to another of its requests).
struct Msg<'a>(BTreeMap<String, &'a RawValue>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Msg<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Once;
        impl<'de> serde::de::Visitor<'de> for Once {
            type Value = Msg<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object with each key once")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((key, value)) = map.next_entry::<String, &'de RawValue>()? {
                    if out.insert(key, value).is_some() {
                        return Err(serde::de::Error::custom("a key written twice"));
                    }
                }
                Ok(Msg(out))
            }
        }
        d.deserialize_map(Once)
    }
}

impl serde::Serialize for Msg<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// Member `member`'s message `data` (one SSE event's data), for the client. `uri` names an
/// updated resource as the route offers it.
pub fn relay<'a>(ids: &Ids<'_>, member: usize, data: &'a [u8], uri: impl FnOnce(&str) -> String) -> Relayed<'a> {
    let Ok(Msg(msg)) = serde_json::from_slice::<Msg<'a>>(data) else { return Relayed::Dropped };
    let msg: BTreeMap<String, &'a RawValue> = msg;
    // JSON-RPC 2.0 only, and no key a case-insensitive reader (Go's) takes for one read here
    // (`"ID"` beside `"id"`): that reader would see another message (found by an attack).
    let two = |v: &RawValue| v.get() == r#""2.0""# || serde_json::from_str::<String>(v.get()).is_ok_and(|v| v == "2.0");
    let rpc = msg.get("jsonrpc").is_some_and(|v| two(v));
    if !rpc || msg.keys().any(|k| crate::mcp::fold::aliases(k, RPC_KEYS)) {
        return Relayed::Dropped;
    }
    let Some(method) = msg.get("method") else { return Relayed::Response(msg.get("id").map(|id| id.get())) };
    let Ok(method) = serde_json::from_str::<String>(method.get()) else { return Relayed::Dropped };
    // A request or notification carrying an answer too is neither (a client that reads it as
    // an answer takes what a member wrote under an id it did not give; found by an attack).
    if msg.contains_key("result") || msg.contains_key("error") {
        return Relayed::Dropped;
    }
    match msg.get("id").copied() {
        Some(id) if id.get() != "null" => {
            let id = id.get();
            if id.len() > MAX_ID
                || !(id.starts_with('"') || id.starts_with(['-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']))
            {
                return Relayed::Dropped;
            }
            let Some(mapped) = ids.map(member, id) else { return Relayed::Dropped };
            let Ok(mapped) = serde_json::to_string(&mapped) else { return Relayed::Dropped };
            let Ok(mapped) = RawValue::from_string(mapped) else { return Relayed::Dropped };
            let mut out: BTreeMap<String, &RawValue> = msg;
            out.insert("id".to_owned(), &mapped);
            written(&Msg(out))
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
fn updated<'a>(msg: &BTreeMap<String, &RawValue>, uri: impl FnOnce(&str) -> String) -> Relayed<'a> {
    let params = msg.get("params").and_then(|p| serde_json::from_str::<Msg<'_>>(p.get()).ok());
    let Some(Msg(mut params)) = params else { return Relayed::AsIs };
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

fn written<'a>(msg: &Msg<'_>) -> Relayed<'a> {
    serde_json::to_string(msg).map_or(Relayed::Dropped, Relayed::Rewritten)
}

/// A client's answer `body` with the member's own id in place of the one [`relay`] made.
pub fn answered(body: &[u8], own_id: &str) -> Option<bytes::Bytes> {
    let Msg(mut msg) = serde_json::from_slice(body).ok()?;
    let own: &RawValue = serde_json::from_str(own_id).ok()?;
    msg.insert("id".to_owned(), own);
    serde_json::to_vec(&Msg(msg)).ok().map(bytes::Bytes::from)
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

/// The client's call whose stream [`answer_event`] reads.
pub struct Asked<'a> {
    /// Its id, as the client wrote it (none: no answer is its).
    pub id: Option<&'a [u8]>,
    /// Where answers to it name resource URIs ([`super::contents`]).
    pub places: Option<super::contents::Places>,
    /// Gets a copy of its answer as the client gets it (for the result cache), when set.
    pub keep: Option<Vec<u8>>,
    /// Its answer came: another is not passed (a client takes the first, a cache would have
    /// kept the last: found by an attack).
    pub answered: bool,
    /// Set when an event besides its answer and notifications came: a request to the client
    /// (whose answer the result may depend on), a rewritten notification, junk. Such a
    /// stream's answer is not one to keep.
    pub eventful: bool,
}

/// One event of a member's answer stream (a forwarded call's), as the client gets it: a
/// request to the client with its id mapped (its event id kept), a notification as
/// [`relay`] passes it, the call's answer with its resource URIs offered, an event without
/// data (a priming event, a comment) byte for byte; nothing else: not another answer (a member
/// cannot answer the client's other requests on this stream), not junk. Returns the lists a
/// `list_changed` in it makes stale.
pub fn answer_event(
    ids: &Ids<'_>,
    call: &mut Asked<'_>,
    member: usize,
    event: &[u8],
    uri: impl Fn(&str) -> String,
    out: &mut Vec<u8>,
) -> &'static [Kind] {
    let data = match crate::proxy::sse_event::data(event) {
        Some((data, _)) if !data.trim_ascii().is_empty() => data,
        _ => {
            out.extend_from_slice(event);
            return &[];
        }
    };
    // Data under another event type: clients do not read it, so it is nobody's answer and not
    // passed (an answer in `event: weird` was kept and served to the next caller as one).
    if !crate::proxy::sse_event::is_message(event) {
        call.eventful = true;
        return &[];
    }
    match relay(ids, member, &data, &uri) {
        Relayed::Rewritten(text) => {
            call.eventful = true;
            out.extend_from_slice(&self::event(crate::proxy::sse_event::id(event), text.as_bytes()));
            &[]
        }
        Relayed::Changed(kinds) => {
            out.extend_from_slice(event);
            kinds
        }
        Relayed::AsIs => {
            out.extend_from_slice(event);
            &[]
        }
        Relayed::Response(id) if answers(id.map(str::as_bytes), call.id) && !call.answered => {
            call.answered = true;
            let offered = match call.places.map(|places| super::contents::offered(&data, places, &uri)) {
                Some(Ok(offered)) => offered,
                None => None,
                // A key where URIs are read, twice: no client's reading of it is the proxy's.
                Some(Err(super::contents::Twice)) => {
                    call.eventful = true;
                    return &[];
                }
            };
            let answer = offered.as_deref().unwrap_or(&data);
            match &offered {
                Some(text) => out.extend_from_slice(&self::event(crate::proxy::sse_event::id(event), text)),
                None => out.extend_from_slice(event),
            }
            if let Some(keep) = call.keep.as_mut() {
                keep.clear();
                keep.extend_from_slice(answer);
            }
            &[]
        }
        // Another answer (to another request, or the call's again), not JSON, or a request
        // whose id cannot be carried: a client might read it anyway (lenient parsers) and
        // take it for an answer, or answer under an id no member gave.
        Relayed::Response(_) | Relayed::Dropped => {
            call.eventful = true;
            &[]
        }
    }
}

/// The keys of a JSON-RPC message.
pub const RPC_KEYS: &[&str] = &["jsonrpc", "id", "method", "params", "result", "error"];

/// Whether an answer whose `id` is `id` (as written) answers the call whose id is `call`: the
/// same JSON value (a member may write it differently: `"\u0061"` for `"a"`); no id or a null
/// one answers nothing, and nothing answers a message without an id (a notification, or the
/// client's own answer to a member: a member that "answers" it answers some other request).
pub fn answers(id: Option<&[u8]>, call: Option<&[u8]>) -> bool {
    let Some(call) = call else { return false };
    id.is_some_and(|id| same_id(id, call))
}

/// Whether two ids as written are the same: equal strings (however escaped), or numbers
/// written alike (two numbers past a double's precision read as one double: `…890` and
/// `…891` are not the same id, found by an attack). Null is no id.
pub fn same_id(id: &[u8], call: &[u8]) -> bool {
    use serde_json::Value;
    let (Ok(a), Ok(b)) = (serde_json::from_slice::<Value>(id), serde_json::from_slice::<Value>(call)) else {
        return false;
    };
    match (&a, &b) {
        (Value::Null, _) => false,
        (Value::Number(_), Value::Number(_)) => id.trim_ascii() == call.trim_ascii(),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::SessionKey;

    fn plain(uri: &str) -> String {
        format!("a+{uri}")
    }

    /// The id a request reaches the client under.
    fn mapped(ids: &Ids<'_>, member: usize, id: &str) -> String {
        let request = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"roots/list"}}"#);
        let Relayed::Rewritten(out) = relay(ids, member, request.as_bytes(), plain) else {
            panic!("{id}: not rewritten")
        };
        let sent: serde_json::Value = serde_json::from_str(&out).unwrap();
        serde_json::to_string(&sent["id"]).unwrap()
    }

    #[test]
    fn a_members_request_gets_an_id_naming_the_member_and_the_answer_finds_its_way_back() {
        let keys = KeyRing::new(SessionKey::random());
        let ids = Ids { keys: &keys, session: "fp-1" };
        let longest = format!("\"{}\"", "a".repeat(MAX_ID - 2));
        for id in
            ["7", "\"abc\"", "-1.5e3", "123456789012345678901234567890", r#""with~tilde\"quote""#, "1e400", &longest]
        {
            let request =
                format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"sampling/createMessage","params":{{"n":1e0}}}}"#);
            let Relayed::Rewritten(out) = relay(&ids, 2, request.as_bytes(), plain) else {
                panic!("{id}: not rewritten")
            };
            assert!(out.contains(r#""n":1e0"#), "params pass as written: {out}");
            let mapped = mapped(&ids, 2, id);
            assert!(mapped.starts_with("\"mcp-edge~"), "{mapped}");
            let (member, own) = ids.restore(mapped.as_bytes()).unwrap();
            assert_eq!((member, own.as_str()), (2, id));
            let answer = format!(r#"{{"jsonrpc":"2.0","id":{mapped},"result":{{"x":1}}}}"#);
            let back = answered(answer.as_bytes(), &own).unwrap();
            assert!(String::from_utf8_lossy(&back).contains(&format!(r#""id":{id}"#)), "the id as written");
        }
    }

    #[test]
    fn an_id_opens_only_for_its_session_and_key_and_cannot_be_forged() {
        let keys = KeyRing::new(SessionKey::random());
        let ids = Ids { keys: &keys, session: "fp-1" };
        let id = mapped(&ids, 1, "5");
        assert!(Ids { keys: &keys, session: "fp-2" }.restore(id.as_bytes()).is_none(), "another session's");
        let other = KeyRing::new(SessionKey::random());
        assert!(Ids { keys: &other, session: "fp-1" }.restore(id.as_bytes()).is_none(), "another key's");
        for forged in [&b"1"[..], br#""abc""#, br#""mcp-edge~0~1""#, br#""mcp-edge~""#, br#""mcp-edge~c1.AAAA""#] {
            assert!(ids.restore(forged).is_none(), "{}", String::from_utf8_lossy(forged));
        }
        // A member's own id spelled as a relayed one is mapped like any other.
        let nested = mapped(&ids, 1, &id);
        assert_eq!(ids.restore(nested.as_bytes()), Some((1, id)));
    }

    #[test]
    fn notifications_pass_and_say_which_lists_changed() {
        let keys = KeyRing::new(SessionKey::random());
        let ids = Ids { keys: &keys, session: "" };
        let n = |m: &str| format!(r#"{{"jsonrpc":"2.0","method":"{m}"}}"#);
        let relayed = |m: &str, expected: Relayed<'_>| assert_eq!(relay(&ids, 0, n(m).as_bytes(), plain), expected);
        relayed("notifications/tools/list_changed", Relayed::Changed(&[Kind::Tools]));
        relayed("notifications/prompts/list_changed", Relayed::Changed(&[Kind::Prompts]));
        relayed("notifications/resources/list_changed", Relayed::Changed(&[Kind::Resources, Kind::Templates]));
        relayed("notifications/message", Relayed::AsIs);
        let updated = br#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"res://x","_meta":{"k":1}}}"#;
        let Relayed::Rewritten(out) = relay(&ids, 0, updated, plain) else { panic!("not rewritten") };
        let out: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(out["params"]["uri"], "a+res://x");
        assert_eq!(out["params"]["_meta"]["k"], 1);
    }

    #[test]
    fn responses_junk_and_uncarriable_ids_are_not_relayed_as_requests() {
        let keys = KeyRing::new(SessionKey::random());
        let ids = Ids { keys: &keys, session: "" };
        assert_eq!(relay(&ids, 0, br#"{"jsonrpc":"2.0","id":1,"result":{}}"#, plain), Relayed::Response(Some("1")));
        for data in [
            &br#"{"jsonrpc":"2.0","id":null,"method":"x"}"#[..],
            br#"{"jsonrpc":"2.0","id":{"a":1},"method":"x"}"#,
            br#"{"jsonrpc":"2.0","id":[1],"method":"x"}"#,
            br#"{"jsonrpc":"2.0","method":7}"#,
            b"not json",
            b"[]",
        ] {
            assert_eq!(relay(&ids, 0, data, plain), Relayed::Dropped, "{}", String::from_utf8_lossy(data));
        }
        // A key written twice: readers disagree on which counts.
        for data in [
            &br#"{"jsonrpc":"2.0","id":1,"id":2,"method":"roots/list"}"#[..],
            br#"{"jsonrpc":"2.0","method":"notifications/message","method":"roots/list","id":3}"#,
            br#"{"jsonrpc":"2.0","id":1,"result":{},"i\u0064":2}"#,
        ] {
            assert_eq!(relay(&ids, 0, data, plain), Relayed::Dropped, "{}", String::from_utf8_lossy(data));
        }
        let long = format!(r#"{{"jsonrpc":"2.0","id":"{}","method":"x"}}"#, "a".repeat(300));
        assert_eq!(relay(&ids, 0, long.as_bytes(), plain), Relayed::Dropped);
        // Not JSON-RPC 2.0, or a key a case-insensitive reader (Go's) takes for another: such
        // a reader would see another message than the one judged here.
        for data in [
            &br#"{"method":"notifications/message","params":{}}"#[..],
            br#"{"jsonrpc":"1.0","method":"notifications/message","params":{}}"#,
            br#"{"jsonrpc":2.0,"method":"notifications/message","params":{}}"#,
            br#"{"jsonrpc":"2.0","id":1,"ID":2,"result":{}}"#,
            br#"{"jsonrpc":"2.0","id":1,"result":{},"Result":{}}"#,
            br#"{"jsonrpc":"2.0","ID":5,"method":"roots/list"}"#,
            br#"{"jsonrpc":"2.0","method":"notifications/message","Method":"roots/list","id":3}"#,
        ] {
            assert_eq!(relay(&ids, 0, data, plain), Relayed::Dropped, "{}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn ids_are_the_same_as_values_and_numbers_as_written() {
        assert!(same_id(b"\"a\"", br#""\u0061""#) && same_id(b"7", b" 7 "));
        for (id, call) in [
            (&b"123456789012345678901234567891"[..], &b"123456789012345678901234567890"[..]),
            (b"18446744073709551617", b"18446744073709551616"),
            (b"0.10000000000000001", b"0.1"),
            (b"1.0", b"1"),
            (b"null", b"null"),
            (b"\"7\"", b"7"),
        ] {
            assert!(!same_id(id, call), "{} {}", String::from_utf8_lossy(id), String::from_utf8_lossy(call));
        }
    }

    #[test]
    fn a_calls_stream_passes_its_answer_and_drops_what_names_a_method_unreadably() {
        let keys = KeyRing::new(SessionKey::random());
        let ids = Ids { keys: &keys, session: "" };
        let pass = |event: &[u8]| {
            let mut out = Vec::new();
            answer_event(
                &ids,
                &mut Asked { id: Some(b"1"), places: None, keep: None, answered: false, eventful: false },
                0,
                event,
                plain,
                &mut out,
            );
            out
        };
        let answer = b"id: 3\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"method\":1}}\n\n";
        assert_eq!(pass(answer), answer);
        assert_eq!(pass(b"data: {\"method\":\"x\",\"id\":1,\"t\":\"\xff\"}\n\n"), b"");
        let request = pass(b"id: 4\ndata: {\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"roots/list\"}\n\n");
        let text = String::from_utf8(request).unwrap();
        assert!(text.starts_with("id: 4\nevent: message\ndata: {") && text.contains("mcp-edge~"), "{text}");
    }

    #[test]
    fn a_calls_stream_carries_its_own_answer_only() {
        // Found by an attack: a member answered the client's other request (id 42) on this
        // call's stream, sent junk, and a request under an escaped `method` key, all passed.
        let keys = KeyRing::new(SessionKey::random());
        let ids = Ids { keys: &keys, session: "" };
        let pass = |event: &[u8]| {
            let mut out = Vec::new();
            let mut asked =
                Asked { id: Some(b"\"c\\u0031\""), places: None, keep: None, answered: false, eventful: false };
            answer_event(&ids, &mut asked, 0, event, plain, &mut out);
            out
        };
        let own = b"data: {\"jsonrpc\":\"2.0\",\"id\":\"c1\",\"result\":{}}\n\n";
        assert_eq!(pass(own), own, "the call's own answer, its id written another way");
        // Its answer twice: the second is not passed (a client takes the first).
        let mut asked =
            Asked { id: Some(b"\"c1\""), places: None, keep: Some(Vec::new()), answered: false, eventful: false };
        let mut out = Vec::new();
        answer_event(&ids, &mut asked, 0, own, plain, &mut out);
        let again = b"data: {\"jsonrpc\":\"2.0\",\"id\":\"c1\",\"result\":{\"n\":2}}\n\n";
        answer_event(&ids, &mut asked, 0, again, plain, &mut out);
        assert_eq!(out, own, "the first answer alone");
        assert!(asked.answered && asked.eventful);
        assert_eq!(asked.keep.as_deref(), Some(&own[6..own.len() - 2]), "the first is the one kept");
        for foreign in [
            &b"data: {\"jsonrpc\":\"2.0\",\"id\":42,\"result\":{\"content\":[]}}\n\n"[..],
            b"data: {\"id\":\"c2\",\"error\":{\"code\":1,\"message\":\"x\"}}\n\n",
            b"data: {\"result\":{}}\n\n",
            b"data: hello\n\n",
            b"data: [{\"jsonrpc\":\"2.0\",\"id\":\"c1\",\"result\":{}}]\n\n",
            // Its id written twice, the call's last: a client reading the first takes it for
            // the answer to its request 42.
            b"data: {\"jsonrpc\":\"2.0\",\"id\":42,\"id\":\"c1\",\"result\":{}}\n\n",
            // Under another event type: clients do not read it as the answer.
            b"event: weird\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"c1\",\"result\":{}}\n\n",
            // A request or notification carrying an answer too (found by an attack).
            b"data: {\"jsonrpc\":\"2.0\",\"id\":42,\"method\":\"x\",\"error\":{\"code\":1,\"message\":\"S\"}}\n\n",
            b"data: {\"jsonrpc\":\"2.0\",\"m\\u0065thod\":\"x\",\"result\":{}}\n\n",
        ] {
            assert_eq!(pass(foreign), b"", "{}", String::from_utf8_lossy(foreign));
        }
        let typed = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"c1\",\"result\":{}}\n\n";
        assert_eq!(pass(typed), typed, "a message event is one");
        let escaped =
            String::from_utf8(pass(b"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"m\\u0065thod\":\"roots/list\"}\n\n"))
                .unwrap_or_default();
        assert!(escaped.contains("mcp-edge~"), "an escaped key is the key: the id is mapped: {escaped}");
        let priming = b"id: 0\nretry: 500\ndata: \n\n";
        assert_eq!(pass(priming), priming, "an event without data passes");
    }
}
