//! `completion/complete` names a prompt (`ref/prompt`, by name) or a resource (`ref/resource`,
//! by URI) in `params.ref`: a caller may complete arguments only for what it may get or read,
//! or completion would confirm a hidden prompt exists. Read here, on policy routes only, with
//! one extra parse of the body for this method alone (the one reading does not keep `ref`).
//! Fails closed: a body whose `params.ref` cannot be read is denied by default.

use std::borrow::Cow;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::auth::identity::Identity;
use crate::config::model::PolicyConfig;
use crate::mcp::call::{Call, Element};
use crate::mcp::fold;
use crate::mcp::method::Method;
use crate::policy::{self, Denial};

#[derive(Deserialize)]
struct Msg<'a> {
    #[serde(borrow, default)]
    params: Option<Params<'a>>,
}

#[derive(Deserialize)]
struct Params<'a> {
    #[serde(borrow, default, rename = "ref")]
    reference: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Ref<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    uri: Option<Cow<'a, str>>,
}

/// Whether every `completion/complete` in `call` (read from `body`) refers to a prompt or
/// resource the caller may use. Err: the denial, and the element to answer and audit it with
/// (the request's id and method, the reference as its target, judged as `prompts/get` or
/// `resources/read` so a `deny_as = "unknown"` answer says "Unknown prompt").
pub fn check(
    policy: &PolicyConfig,
    identity: Option<&Identity>,
    call: &Call,
    body: &[u8],
) -> Result<(), Box<(Denial, Element)>> {
    if !call.elements().iter().any(|e| e.method == Method::CompletionComplete) {
        return Ok(());
    }
    let by_default = |element: usize, e: &Element| {
        Box::new((Denial { element, rule: None, deny_as: policy.deny_as, insufficient_scope: false }, e.clone()))
    };
    let messages: Vec<&RawValue> = if call.batch.is_empty() {
        serde_json::from_slice::<&RawValue>(body).map(|m| vec![m])
    } else {
        serde_json::from_slice(body)
    }
    .map_err(|_| by_default(0, &call.one))?;
    for (i, (e, raw)) in call.elements().iter().zip(messages).enumerate() {
        if e.method != Method::CompletionComplete {
            continue;
        }
        let msg: Msg<'_> = serde_json::from_str(raw.get()).map_err(|_| by_default(i, e))?;
        // No reference, one a case-insensitive reader reads otherwise, or one of no known
        // type: what it names cannot be judged, so it is denied.
        let raw_ref = msg.params.and_then(|p| p.reference).ok_or_else(|| by_default(i, e))?;
        if fold::object_aliases(raw_ref.get(), &["type", "name", "uri"]) {
            return Err(by_default(i, e));
        }
        let r: Ref<'_> = serde_json::from_str(raw_ref.get()).map_err(|_| by_default(i, e))?;
        let (method, target) = match (r.kind.as_deref(), r.name, r.uri) {
            (Some("ref/prompt"), Some(name), _) => (Method::PromptsGet, name),
            (Some("ref/resource"), _, Some(uri)) => (Method::ResourcesRead, uri),
            _ => return Err(by_default(i, e)),
        };
        policy::check_target(policy, identity, method, &target).map_err(|d| {
            let element = Element {
                method,
                method_name: e.method_name.clone(),
                target: Some(Bytes::copy_from_slice(target.as_bytes())),
                id: e.id.clone(),
            };
            Box::new((Denial { element: i, ..d }, element))
        })?;
    }
    Ok(())
}
