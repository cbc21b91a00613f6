//! `federation`: what a federated route does with a client's `tools/call`, `prompts/get`,
//! `resources/read` and `completion/complete`. The offered name of any tool a member lists is
//! within 64 characters of `[A-Za-z0-9_-]` and names its member, and an offered URI splits
//! back into its prefix and the member's own. A body the one reading accepts as one of those
//! calls is rewritten (`rewrite::renamed`) into a body that the one reading accepts again as
//! the same call (method, id) of the member's own name or URI; a completion's reference, when
//! read (`rewrite::reference`), is rewritten (`rewrite::complete`) to name the member's own.
//! Every other member and parameter is what a reference JSON reading of the client's body
//! holds, so the member runs exactly the call the proxy decided on.
//!
//! The member's name goes into `Mcp-Name` as a valid header value that reads back as it.
//!
//! The member name read as a URI, spelled for a deny rule (`policy::uri::spellings`), holds
//! no query, fragment, NUL, backslash or dot segment in any spelling.
//!
//! Input: a length byte and a member tool name (UTF-8, lossy), then the client's body.

use bytes::Bytes;
use mcp_edge::federation::names;
use mcp_edge::federation::rewrite::{complete, reference, renamed, Field};
use mcp_edge::mcp::call::{classify, decode_name, encode_name, Mirrored};
use mcp_edge::mcp::method::{Era, Method};
use serde_json::Value;

use crate::input::Reader;

pub fn check(data: &[u8]) {
    let mut input = Reader(data);
    let len = usize::from(input.u8());
    let own = String::from_utf8_lossy(input.take(len)).into_owned();
    let body = Bytes::copy_from_slice(input.rest());

    let offered = names::offered("pre-1", &own);
    assert!(offered.len() <= names::MAX_NAME, "{offered:?}");
    assert!(offered.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'), "{offered:?}");
    assert_eq!(names::prefix_of(&offered), Some("pre-1"));
    // The member's name in `Mcp-Name`: a valid header value that reads back as the name.
    let header = encode_name(&own);
    assert!(
        header.bytes().all(|b| (0x20..0x7f).contains(&b)) && !header.starts_with(' ') && !header.ends_with(' '),
        "{header:?}"
    );
    assert_eq!(decode_name(header.as_bytes()).as_deref(), Some(own.as_bytes()), "{header:?}");

    // Bare names (`prefix_mode`) keep to the same alphabet and length.
    let bare = names::bare(&own);
    assert!(
        bare.len() <= names::MAX_NAME && bare.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
        "{bare:?}"
    );
    // The member name read as a resource template: a URI expanded from it (each expression
    // replaced by anything) is one it could have been expanded from, and matching the body
    // against it ends (whatever either holds).
    let expanded = expand(&own, "x/y");
    assert!(names::expands(&own, &expanded), "{own:?} -> {expanded:?}");
    let _ = names::expands(&own, &String::from_utf8_lossy(&body));

    // An offered URI maps back to the member's own, whatever it holds.
    if !own.is_empty() {
        assert_eq!(names::split_uri(&names::offered_uri("pre-1", &own)), Some(("pre-1", own.as_str())));
    }
    // A URI as a deny rule sees it spelled: no query, fragment, NUL or backslash is left,
    // and no `.` or `..` segment after its scheme and authority.
    for r in mcp_edge::policy::uri::spellings(&own) {
        assert!(!r.contains(['?', '#', '\\', '\0']), "{own:?} -> {r:?}");
        // What follows `scheme://authority` (the only place `//` may remain), or all of it.
        let path = match r.find("://") {
            Some(i) => r[i + 3..].find('/').map_or("", |j| &r[i + 3 + j..]),
            None => r.as_str(),
        };
        let dotted = |s: &str| s == "." || s == "..";
        assert!(!path.split('/').any(dotted), "{own:?} -> {r:?}");
    }

    let none = Mirrored { version: None, method: None, name: None };
    let Ok(call) = classify(Era::Legacy, none, &body, false) else { return };
    let field = match call.one.method {
        Method::ToolsCall | Method::PromptsGet => Field::Name,
        Method::ResourcesRead => Field::Uri,
        Method::CompletionComplete => return completion(&body, &own),
        _ => return,
    };
    let out = renamed(&body, call.one.target.as_ref(), field, &own).expect("an accepted call is an object with params");
    let again = classify(Era::Legacy, Mirrored { version: None, method: None, name: None }, &out, false)
        .unwrap_or_else(|r| panic!("the renamed body is refused ({:?}): {}", r.why, String::from_utf8_lossy(&out)));
    assert_eq!(again.one.method, call.one.method);
    assert_eq!(again.one.target_str(), Some(own.as_str()));
    let ids = |c: &mcp_edge::mcp::call::Call| c.one.id.as_deref().map(|i| serde_json::from_slice::<Value>(i).ok());
    assert_eq!(ids(&again), ids(&call));
    let key = if field == Field::Name { "name" } else { "uri" };
    same_but(&body, &out, &["params", key]);
}

/// A `completion/complete`: when the proxy reads a reference, the body it sends names `own`
/// instead, read back the same way, and every other value is as sent.
fn completion(body: &[u8], own: &str) {
    let Some(reference) = reference(body) else { return };
    let out = complete(body, &reference, own).expect("a read reference is spliced");
    let again = reference_of(&out);
    assert_eq!((again.prompt, again.target.as_ref()), (reference.prompt, own));
    let key = if reference.prompt { "name" } else { "uri" };
    same_but(body, &out, &["params", "ref", key]);
}

fn reference_of(body: &[u8]) -> mcp_edge::federation::rewrite::Reference<'_> {
    reference(body).unwrap_or_else(|| panic!("the spliced body has its reference: {}", String::from_utf8_lossy(body)))
}

/// `got` holds what a reference JSON reading of `sent` holds, except at `path`.
fn same_but(sent: &[u8], got: &[u8], path: &[&str]) {
    let (Ok(sent), Ok(got)) = (serde_json::from_slice::<Value>(sent), serde_json::from_slice::<Value>(got)) else {
        panic!("both bodies are JSON");
    };
    fn walk(sent: &Value, got: &Value, path: &[&str]) {
        let (Value::Object(s), Value::Object(g)) = (sent, got) else { panic!("objects stay objects") };
        assert_eq!(s.len(), g.len());
        for (key, value) in s {
            match path {
                [one] if key == one => {}
                [first, rest @ ..] if key == first => walk(value, &g[key.as_str()], rest),
                _ => assert_eq!(g.get(key), Some(value), "{key}"),
            }
        }
    }
    walk(&sent, &got, path);
}

/// `template` with each closed `{expression}` replaced by `value` (an unclosed `{` is literal).
fn expand(template: &str, value: &str) -> String {
    let (mut out, mut rest) = (String::new(), template);
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else { break };
        out.push_str(&rest[..open]);
        out.push_str(value);
        rest = &rest[open + close + 1..];
    }
    out + rest
}
