//! One JSON object of a member's answer as the proxy reads some of its keys: their values as
//! written (slices of the answer, so a value can be replaced where it stands), each key read
//! once, and none spelled as another. A key written twice, or one that a case-insensitive
//! reader takes for a key read here (`"URI"` beside `"uri"`: Go's `encoding/json`, see
//! `crate::mcp::fold`), makes the object [`Ambiguous`]: clients disagree on its value, so the
//! proxy's reading is not theirs. Keys not read are skipped unread.
//!
//! Not owned here: where the keys are (`super::contents`).

use std::borrow::Cow;
use std::cell::Cell;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

/// An object whose reading is not every client's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ambiguous;

/// The values of `read` in the object `json` (None for a key it does not hold), in `read`'s
/// order; Ok(None) when `json` is not one object.
pub fn read<'a, const N: usize>(
    json: &'a str,
    read: [&'static str; N],
) -> Result<Option<[Option<&'a RawValue>; N]>, Ambiguous> {
    let ambiguous = Cell::new(false);
    let mut de = serde_json::Deserializer::from_str(json);
    let seed = Keys { read, ambiguous: &ambiguous };
    let values = seed.deserialize(&mut de).and_then(|values| de.end().map(|()| values));
    match (values, ambiguous.get()) {
        (_, true) => Err(Ambiguous),
        (Ok(values), false) => Ok(Some(values)),
        (Err(_), false) => Ok(None),
    }
}

/// The elements of the array `json`, as written; None when it is not one.
pub fn elements(json: &str) -> Option<Vec<&RawValue>> {
    serde_json::from_str(json).ok()
}

struct Keys<'c, const N: usize> {
    read: [&'static str; N],
    ambiguous: &'c Cell<bool>,
}

impl<'de, const N: usize> DeserializeSeed<'de> for Keys<'_, N> {
    type Value = [Option<&'de RawValue>; N];

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, const N: usize> Visitor<'de> for Keys<'_, N> {
    type Value = [Option<&'de RawValue>; N];

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut values = [None; N];
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match self.read.iter().position(|k| *k == key) {
                Some(i) => {
                    let value = map.next_value::<&'de RawValue>()?;
                    if let Some(slot) = values.get_mut(i) {
                        if slot.replace(value).is_some() {
                            self.ambiguous.set(true);
                            return Err(serde::de::Error::custom("a key read twice"));
                        }
                    }
                }
                None if crate::mcp::fold::aliases(&key, &self.read) => {
                    self.ambiguous.set(true);
                    return Err(serde::de::Error::custom("a key spelled as one read"));
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_are_read_once_each_and_none_spelled_as_another() {
        let [uri, kind] = read(r#"{"type":"resource_link","x":[1,{"uri":2}],"uri":"a"}"#, ["uri", "type"])
            .expect("one reading")
            .expect("an object");
        assert_eq!((uri.map(RawValue::get), kind.map(RawValue::get)), (Some(r#""a""#), Some(r#""resource_link""#)));
        let outcome = |json: &str| read(json, ["uri"]).map(|v| v.map(|[uri]| uri.map(|u| u.get().to_owned())));
        assert_eq!(outcome(r#"{"u\u0072i":"a","uri":"b"}"#), Err(Ambiguous), "escaped: the same key");
        assert_eq!(outcome(r#"{"uri":"a","URI":"b"}"#), Err(Ambiguous), "a case-insensitive reader's");
        assert_eq!(outcome(r#"{"URI":"b","uri":"a"}"#), Err(Ambiguous), "in either order");
        assert_eq!(outcome(r#"{"text":"a","text":"b","uri":"c"}"#), Ok(Some(Some(r#""c""#.into()))), "not read");
        assert_eq!(outcome("[1]"), Ok(None));
        assert_eq!(outcome(r#"{"uri":"a"} x"#), Ok(None));
    }
}
