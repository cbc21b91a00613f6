//! Validation of the headers the proxy adds and removes upstream: `[[pool.credential]]`
//! (values read here from the environment or a file, so `check` reports them with their
//! place and every reload re-reads them), `[route.headers]` / `[pool.headers]` transforms
//! (names checked, templates parsed once) and `forward_identity` (its signing key read here).
//! No message echoes a value, an environment variable's name or a file's content. The typed
//! result is `header_model`; applying it is `proxy::headers`.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;

use http::{HeaderName, HeaderValue};

use super::error::Collector;
use super::header_model::*;
use super::raw::{RawCredential, RawForwardIdentity, RawHeaderRules, RawSignWith, S};
use crate::auth::identity::Secret;

/// Headers no transform or credential may touch: framing and hop-by-hop headers (the proxy
/// and Pingora own them), `Host` (`pool.host`), and the MCP headers the proxy read to route
/// and classify the request (a backend must see what the proxy decided on).
const RESERVED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
    "host",
    "expect",
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
    "x-request-id",
];

const NAME_FIX: &str = "is not a header name; use letters, digits and `-`, like \"X-Backend-Key\"";
/// Shortest signing key: one SHA-256 block's worth of strength.
const MIN_KEY: usize = 32;

pub fn credentials(raw: &[S<RawCredential>], pool: &str, c: &mut Collector<'_>) -> Vec<Credential> {
    let field = |f: &str| format!("pool.{pool}.credential.{f}");
    let mut out: Vec<Credential> = Vec::with_capacity(raw.len());
    for cred in raw {
        let r = cred.get_ref();
        let Some(header) = name(r.header.get_ref(), r.header.span(), &field("header"), c) else { continue };
        if out.iter().any(|o| o.header == header) {
            c.push(r.header.span(), field("header"), "is set by another credential of this pool; keep one");
            continue;
        }
        let prefix = r.prefix.as_ref().map_or("", |p| p.get_ref().as_str());
        if let Some(p) = r.prefix.as_ref().filter(|p| HeaderValue::from_str(p.get_ref()).is_err()) {
            c.push(p.span(), field("prefix"), "holds a line break or control character; remove it");
        }
        let read = match (&r.env, &r.file) {
            (Some(var), None) => {
                from_env(var, &field("env"), c).map(|v| (CredentialSource::Env(var.get_ref().clone()), v))
            }
            (None, Some(file)) => {
                let path = PathBuf::from(file.get_ref());
                from_file(file, &field("file"), c).map(|v| (CredentialSource::File(path), v))
            }
            (Some(var), Some(_)) => {
                c.push(var.span(), field("env"), "set either `env` or `file`, not both");
                None
            }
            (None, None) => {
                c.push(cred.span(), field("header"), "needs a value source: `env = \"VAR\"` or `file = \"/path\"` (secrets are never written inline; non-secret headers go in [pool.headers] set)");
                None
            }
        };
        let Some((source, secret)) = read else { continue };
        let mut bytes = Vec::with_capacity(prefix.len() + secret.len());
        bytes.extend_from_slice(prefix.as_bytes());
        bytes.extend_from_slice(&secret);
        let span = r.env.as_ref().or(r.file.as_ref()).map_or(0..0, S::span);
        match HeaderValue::from_bytes(&bytes) {
            Ok(mut value) => {
                value.set_sensitive(true);
                out.push(Credential { header, source, value: Secret::new(value) });
            }
            Err(_) => c.push(
                span,
                field(if r.env.is_some() { "env" } else { "file" }),
                "the value is not a valid header value (a line break or control character inside); write it on one line",
            ),
        }
    }
    out
}

pub(super) fn from_env(var: &S<String>, field: &str, c: &mut Collector<'_>) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let value = std::env::var_os(var.get_ref()).filter(|_| !var.get_ref().is_empty());
    let Some(value) = value else {
        c.push(var.span(), field, "names an environment variable that is not set for mcp-edge; export it (systemd: Environment= or EnvironmentFile=), or use `file`");
        return None;
    };
    nonempty(
        value.as_bytes().trim_ascii(),
        var.span(),
        field,
        "the environment variable is empty; set it to the credential",
        c,
    )
}

pub(super) fn from_file(file: &S<String>, field: &str, c: &mut Collector<'_>) -> Option<Vec<u8>> {
    match std::fs::read(file.get_ref()) {
        Ok(bytes) => {
            nonempty(bytes.trim_ascii(), file.span(), field, "the file is empty; write the credential into it", c)
        }
        Err(e) => {
            c.push(
                file.span(),
                field,
                format!("cannot read the file ({}); check the path and that mcp-edge may read it", e.kind()),
            );
            None
        }
    }
}

fn nonempty(bytes: &[u8], span: Range<usize>, field: &str, message: &str, c: &mut Collector<'_>) -> Option<Vec<u8>> {
    if bytes.is_empty() {
        c.push(span, field, message);
        return None;
    }
    Some(bytes.to_vec())
}

/// A route's or pool's `headers` and `forward_identity`; `at` is `route.<name>` or `pool.<name>`.
pub fn rules(
    headers: Option<&S<RawHeaderRules>>,
    forward: Option<&S<RawForwardIdentity>>,
    at: &str,
    c: &mut Collector<'_>,
) -> HeaderRules {
    let mut out = HeaderRules { identity: forward.and_then(|f| identity(f, at, c)), ..HeaderRules::default() };
    let Some(h) = headers.map(S::get_ref) else { return out };
    let field = |f: &str| format!("{at}.headers.{f}");
    for r in &h.remove {
        out.request.extend(name(r.get_ref(), r.span(), &field("remove"), c).map(HeaderOp::Remove));
    }
    out.request.extend(values(&h.set, &field("set"), c).into_iter().map(|(n, t)| HeaderOp::Set(n, t)));
    out.request.extend(values(&h.add, &field("add"), c).into_iter().map(|(n, t)| HeaderOp::Add(n, t)));
    for r in &h.response_remove {
        out.response.extend(name(r.get_ref(), r.span(), &field("response_remove"), c).map(HeaderOp::Remove));
    }
    out.response
        .extend(values(&h.response_set, &field("response_set"), c).into_iter().map(|(n, t)| HeaderOp::Set(n, t)));
    out
}

/// Each `name = "template"` of a table, parsed; names spelled twice (in another case) refused.
fn values(table: &BTreeMap<String, S<String>>, field: &str, c: &mut Collector<'_>) -> Vec<(HeaderName, Template)> {
    let mut seen: Vec<HeaderName> = Vec::new();
    let mut out = Vec::new();
    for (n, v) in table {
        let Some(header) = name(n, v.span(), field, c) else { continue };
        if seen.contains(&header) {
            c.push(v.span(), field, "names a header twice (names are case-insensitive); keep one");
            continue;
        }
        seen.push(header.clone());
        match Template::parse(v.get_ref()) {
            Ok(t) => out.push((header, t)),
            Err(e) => c.push(v.span(), field, e.to_string()),
        }
    }
    out
}

fn identity(f: &S<RawForwardIdentity>, at: &str, c: &mut Collector<'_>) -> Option<ForwardIdentity> {
    let raw = f.get_ref();
    let field = |x: &str| format!("{at}.forward_identity.{x}");
    let id = raw.id.as_ref().and_then(|n| name(n.get_ref(), n.span(), &field("id"), c));
    let tenant = raw.tenant.as_ref().and_then(|n| name(n.get_ref(), n.span(), &field("tenant"), c));
    if raw.id.is_none() && raw.tenant.is_none() {
        c.push(
            f.span(),
            field("id"),
            "names no header; set `id` (and optionally `tenant`), e.g. id = \"X-MCP-Identity\"",
        );
    }
    let sign = raw.sign_with.as_ref().and_then(|s| signer(s.get_ref(), &field, c));
    if raw.sign_with.is_some() && raw.id.is_none() {
        c.push(f.span(), field("id"), "must be set when `sign_with` is: the signature covers the identity id");
    }
    let out = ForwardIdentity { id, tenant, sign };
    let names: Vec<&HeaderName> = out.names().collect();
    if names.iter().enumerate().any(|(i, n)| names.iter().skip(i + 1).any(|m| m == n)) {
        c.push(f.span(), field("id"), "uses one header name for two fields; give each its own");
    }
    Some(out)
}

fn signer(s: &RawSignWith, field: &dyn Fn(&str) -> String, c: &mut Collector<'_>) -> Option<Signer> {
    let header = header_or(s.header.as_ref(), "x-mcp-identity-signature", &field("sign_with.header"), c);
    let timestamp =
        header_or(s.timestamp_header.as_ref(), "x-mcp-identity-timestamp", &field("sign_with.timestamp_header"), c);
    let key_field = field("sign_with.key_file");
    let key = from_file(&s.key_file, &key_field, c)?;
    if key.len() < MIN_KEY {
        c.push(s.key_file.span(), key_field, format!("holds a key shorter than {MIN_KEY} bytes; write a longer random one: `head -c 32 /dev/urandom | base64 > FILE`"));
        return None;
    }
    Some(Signer {
        key_file: PathBuf::from(s.key_file.get_ref()),
        key: Secret::new(key),
        header: header?,
        timestamp: timestamp?,
    })
}

fn header_or(n: Option<&S<String>>, default: &'static str, field: &str, c: &mut Collector<'_>) -> Option<HeaderName> {
    match n {
        Some(n) => name(n.get_ref(), n.span(), field, c),
        None => Some(HeaderName::from_static(default)),
    }
}

/// A header name the proxy may set or remove.
fn name(text: &str, span: Range<usize>, field: &str, c: &mut Collector<'_>) -> Option<HeaderName> {
    let Ok(n) = HeaderName::from_bytes(text.as_bytes()) else {
        c.push(span, field, NAME_FIX);
        return None;
    };
    if RESERVED.contains(&n.as_str()) || n.as_str().starts_with("proxy-") {
        c.push(
            span,
            field,
            "names a header the proxy manages (framing, hop-by-hop, Host or MCP routing); choose another",
        );
        return None;
    }
    Some(n)
}
