//! A member's JSON-RPC message as an independent reader sees it, for the oracles of the targets
//! that read member messages (`relay`, `contents`): read apart from the code under test.

/// A message's keys, values as written (a number out of `f64`'s range is JSON).
pub type Msg = std::collections::BTreeMap<String, Box<serde_json::value::RawValue>>;

const RPC: [&str; 6] = ["jsonrpc", "id", "method", "params", "result", "error"];

/// What the oracles need to know of one message.
pub struct Reading {
    pub msg: Option<Msg>,
    /// `"jsonrpc": "2.0"`, spelled plainly.
    pub rpc: bool,
    /// `jsonrpc` reads as "2.0" only once unescaped (`"2\u002e0"`): the relay may take it
    /// either way.
    pub escaped_rpc: bool,
    /// A key that reads as a JSON-RPC key ignoring ASCII case without being one (`"ID"`).
    pub alias: bool,
    /// Every key is ASCII (beyond ASCII, the relay folds more than the oracle does).
    pub plain: bool,
    /// A key written twice (readers disagree on which one counts).
    pub twice: bool,
}

impl Reading {
    pub fn of(data: &[u8]) -> Self {
        let msg: Option<Msg> = serde_json::from_slice(data).ok();
        let jsonrpc = msg.as_ref().and_then(|m| m.get("jsonrpc")).map(|v| v.get());
        let rpc = jsonrpc == Some(r#""2.0""#);
        let escaped_rpc = !rpc && jsonrpc.is_some_and(|v| serde_json::from_str::<String>(v).is_ok_and(|v| v == "2.0"));
        let keys = || msg.iter().flat_map(|m| m.keys());
        let alias = keys().any(|k| !RPC.contains(&k.as_str()) && RPC.iter().any(|r| r.eq_ignore_ascii_case(k)));
        let plain = keys().all(|k| k.is_ascii());
        let twice = crate::message::keys(data).is_some_and(|mut keys| {
            let all = keys.len();
            keys.sort();
            keys.dedup();
            keys.len() != all
        });
        Reading { msg, rpc, escaped_rpc, alias, plain, twice }
    }

    /// A message the relay must pass as JSON-RPC (it may drop it for other reasons).
    pub fn well_formed(&self) -> bool {
        self.rpc && !self.alias && self.plain && !self.twice
    }

    /// A message the relay must never pass.
    pub fn ill_formed(&self) -> bool {
        (!self.rpc && !self.escaped_rpc) || self.alias || self.twice
    }
}

/// Every key of a JSON object, in order, each pair kept (serde's maps keep the last of a
/// key written twice). None when `data` is no JSON object.
pub fn keys(data: &[u8]) -> Option<Vec<String>> {
    struct Keys(Vec<String>);
    impl<'de> serde::Deserialize<'de> for Keys {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Keys;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                    let mut keys = Vec::new();
                    while let Some((key, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                        keys.push(key);
                    }
                    Ok(Keys(keys))
                }
            }
            d.deserialize_map(V)
        }
    }
    serde_json::from_slice::<Keys>(data).ok().map(|k| k.0)
}
