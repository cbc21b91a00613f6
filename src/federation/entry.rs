//! One member's list entry under its offered name: the kind's naming field read (and only
//! it), and the entry rewritten with the offered name in that field, every other value as the
//! member wrote it. Not owned here: the offered names themselves (`names`), merging
//! (`catalog`).

use serde_json::value::RawValue;

use super::kind::Kind;

/// Longest own name (tool, prompt) kept: model APIs take 64 characters, the spec suggests 128;
/// a longer one is offered shortened, and its owner entry holds it.
const MAX_OWN_NAME: usize = 1024;

/// The entry's naming field (only the kind's own: other fields are the member's business). A
/// declared field refuses to appear twice (serde's duplicate-field error).
pub fn own_name(kind: Kind, entry: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Name {
        name: String,
    }
    #[derive(serde::Deserialize)]
    struct Uri {
        uri: String,
    }
    #[derive(serde::Deserialize)]
    struct Template {
        #[serde(rename = "uriTemplate")]
        uri_template: String,
    }
    match kind {
        Kind::Tools | Kind::Prompts => {
            serde_json::from_str::<Name>(entry).ok().map(|n| n.name).filter(|n| n.len() <= MAX_OWN_NAME)
        }
        Kind::Resources => serde_json::from_str::<Uri>(entry).ok().map(|u| u.uri),
        Kind::Templates => serde_json::from_str::<Template>(entry).ok().map(|t| t.uri_template),
    }
}

/// Whether a tool's entry says `annotations.readOnlyHint: true` (a hint from its server;
/// trusted only where a route says so).
pub fn read_only(entry: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Tool {
        annotations: Option<Annotations>,
    }
    #[derive(serde::Deserialize)]
    struct Annotations {
        #[serde(rename = "readOnlyHint")]
        read_only_hint: Option<bool>,
    }
    let tool = serde_json::from_str::<Tool>(entry).ok();
    tool.and_then(|t| t.annotations?.read_only_hint) == Some(true)
}

/// A member's entry under its offered name `offered` (read first with [`own_name`]). Only the
/// naming field changes: every other value is kept as the member wrote it (raw), so numbers
/// keep their spelling and the size checked when listed is the size held. Read again even
/// when the name is kept: only an object is an entry.
pub fn renamed(kind: Kind, entry: &RawValue, offered: &str) -> Option<Box<RawValue>> {
    let mut object: std::collections::BTreeMap<String, Box<RawValue>> = serde_json::from_str(entry.get()).ok()?;
    object.insert(kind.id_field().into(), serde_json::value::to_raw_value(offered).ok()?);
    serde_json::value::to_raw_value(&object).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`own_name`] and [`renamed`] under `prefix` (or bare), as `merge` uses them: (offered
    /// name, own name, the renamed object).
    fn rename(kind: Kind, prefix: Option<&str>, entry: &RawValue) -> Option<(String, String, Box<RawValue>)> {
        let own = own_name(kind, entry.get())?;
        let offered = kind.offered(prefix, &own);
        let renamed = renamed(kind, entry, &offered)?;
        Some((offered, own, renamed))
    }

    #[test]
    fn a_renamed_tool_keeps_every_other_value_as_the_member_wrote_it() {
        let tool = RawValue::from_string(
            r#"{"name":"echo","inputSchema":{"enum":[1e15,1E-7,123456789012345678901234567890,-0,0.1e1]},"x":"\u00e9"}"#.into(),
        )
        .unwrap();
        let (offered, own, renamed) = rename(Kind::Tools, Some("a"), &tool).unwrap();
        assert_eq!((offered.as_str(), own.as_str()), ("a_echo", "echo"));
        assert_eq!(
            renamed.get(),
            r#"{"inputSchema":{"enum":[1e15,1E-7,123456789012345678901234567890,-0,0.1e1]},"name":"a_echo","x":"\u00e9"}"#
        );
        // Only the kind's own naming field is read: other fields are the member's business.
        let odd = RawValue::from_string(r#"{"name":"t","uri":{"x":1},"uriTemplate":["a"],"uri":2}"#.into()).unwrap();
        assert_eq!(rename(Kind::Tools, Some("a"), &odd).map(|r| r.0), Some("a_t".to_owned()));
        let resource = RawValue::from_string(r#"{"uri":"x://1","name":7}"#.into()).unwrap();
        assert_eq!(rename(Kind::Resources, Some("a"), &resource).map(|r| r.0), Some("a+x://1".to_owned()));
        // A definition naming itself twice is ambiguous: left out.
        assert!(rename(Kind::Tools, Some("a"), &RawValue::from_string(r#"{"name":"a","name":"b"}"#.into()).unwrap())
            .is_none());
        // Bare (`prefix_mode`): an entry whose name models accept keeps it; only an object is
        // an entry (serde reads a struct from an array too).
        let (offered, _, kept) = rename(Kind::Tools, None, &tool).unwrap();
        assert_eq!((offered.as_str(), kept.get().contains(r#""name":"echo""#)), ("echo", true));
        assert!(rename(Kind::Tools, None, &RawValue::from_string(r#"["echo"]"#.into()).unwrap()).is_none());
        let (offered, own, renamed) =
            rename(Kind::Tools, None, &RawValue::from_string(r#"{"name":"a.b","d":1}"#.into()).unwrap()).unwrap();
        assert_eq!(own, "a.b");
        assert!(offered.starts_with("ab-") && renamed.get().contains(&format!("\"name\":\"{offered}\"")), "{renamed}");
    }
}
