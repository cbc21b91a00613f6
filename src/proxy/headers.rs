//! The headers the proxy adds and removes between client and backend, per request, in one
//! documented order. To the backend, after the client's headers lost their hop-by-hop and
//! credential headers (`upstream_request_filter`):
//! 1. the route's `forward_identity` (its headers removed, then set from the identity), then
//!    the route's `[route.headers]` (remove, set, add);
//! 2. the same for the pool the request goes to;
//! 3. the pool's credentials, last, so they always win.
//!
//! To the client: the pool's `response_remove`/`response_set`, then the route's (the route
//! is nearer the client, so it has the last word). Compiled rules come from
//! `config::header_model`; this module only applies them. Detached SSE streams go through the
//! same filters, so the same headers apply there.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use http::{HeaderName, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::{Error, ErrorType, Result};
use sha2::Sha256;

use super::ctx::Ctx;
use crate::auth::identity::Identity;
use crate::config::model::{encode, Credential, ForwardIdentity, HeaderOp, HeaderRules, Signer};

/// The request to the backend: route rules, pool rules, pool credentials.
pub fn upstream(req: &mut RequestHeader, ctx: &Ctx) -> Result<()> {
    let identity = ctx.identity.as_deref();
    if let Some(route) = ctx.route.and_then(|r| ctx.snap.router.routes().get(r)) {
        to_backend(req, &route.headers, identity)?;
    }
    if let Some(pool) = ctx.pool.and_then(|p| ctx.snap.pools.get(p)) {
        to_backend(req, &pool.config.headers, identity)?;
        credentials(req, &pool.config.credentials)?;
    }
    Ok(())
}

/// A pool's credentials, each replacing every value the client sent under its name (in any
/// case: header names compare case-insensitively, and Pingora's case map is replaced too).
pub fn credentials(req: &mut RequestHeader, credentials: &[Credential]) -> Result<()> {
    for c in credentials {
        req.insert_header(&c.header, c.value.expose().clone())?;
    }
    Ok(())
}

/// The response to the client: pool rules, then route rules.
pub fn downstream(resp: &mut ResponseHeader, ctx: &Ctx) -> Result<()> {
    let identity = ctx.identity.as_deref();
    if let Some(pool) = ctx.pool.and_then(|p| ctx.snap.pools.get(p)) {
        apply(resp, &pool.config.headers.response, identity)?;
    }
    if let Some(route) = ctx.route.and_then(|r| ctx.snap.router.routes().get(r)) {
        apply(resp, &route.headers.response, identity)?;
    }
    Ok(())
}

/// One level's rules on the request: identity headers, then transforms.
pub fn to_backend(req: &mut RequestHeader, rules: &HeaderRules, identity: Option<&Identity>) -> Result<()> {
    if let Some(f) = &rules.identity {
        forward(req, f, identity, unix_now())?;
    }
    apply(req, &rules.request, identity)
}

fn apply<H: Headers>(h: &mut H, ops: &[HeaderOp], identity: Option<&Identity>) -> Result<()> {
    for op in ops {
        match op {
            HeaderOp::Remove(name) => h.remove(name),
            // Inserting replaces every value; without a value the client's copies still go.
            HeaderOp::Set(name, template) => match template.render(identity) {
                Some(v) => h.insert(name, v)?,
                None => h.remove(name),
            },
            HeaderOp::Add(name, template) => {
                if let Some(v) = template.render(identity) {
                    h.append(name, v)?;
                }
            }
        }
    }
    Ok(())
}

/// The identity as headers: the client's versions removed first, always; then set when the
/// request has an identity, with the signature over what was set.
pub fn forward(req: &mut RequestHeader, f: &ForwardIdentity, identity: Option<&Identity>, now: u64) -> Result<()> {
    for name in f.names() {
        req.remove_header(name);
    }
    let Some(identity) = identity else { return Ok(()) };
    let mut id = String::with_capacity(identity.id.len());
    encode(&identity.id, &mut id);
    // Signed as sent: empty when the tenant is not forwarded (not configured, or none).
    let mut tenant = String::new();
    if let (Some(t), Some(_)) = (&identity.tenant, &f.tenant) {
        encode(t, &mut tenant);
    }
    if let Some(s) = &f.sign {
        let ts = now.to_string();
        req.insert_header(&s.header, signature(s, &id, &tenant, &ts)?)?;
        req.insert_header(&s.timestamp, value(ts)?)?;
    }
    if let (Some(name), Some(_)) = (&f.tenant, &identity.tenant) {
        req.insert_header(name, value(tenant)?)?;
    }
    if let Some(name) = &f.id {
        req.insert_header(name, value(id)?)?;
    }
    Ok(())
}

/// Lowercase hex HMAC-SHA256 of `v1\n<id>\n<tenant>\n<unix seconds>`: the header values as
/// sent (percent-encoded; a tenant not sent is empty). The README shows a backend's check.
pub fn signature(s: &Signer, id: &str, tenant: &str, timestamp: &str) -> Result<HeaderValue> {
    let mut mac = Hmac::<Sha256>::new_from_slice(s.key.expose())
        .map_err(|_| Error::explain(ErrorType::InternalError, "identity signing key unusable"))?;
    for part in [b"v1\n".as_slice(), id.as_bytes(), b"\n", tenant.as_bytes(), b"\n", timestamp.as_bytes()] {
        mac.update(part);
    }
    value(crate::config::hex(&mac.finalize().into_bytes()))
}

fn value(text: String) -> Result<HeaderValue> {
    HeaderValue::try_from(text).map_err(|_| Error::explain(ErrorType::InternalError, "identity header value"))
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// What `apply` needs of a request or response header (Pingora's two types share no trait).
trait Headers {
    fn remove(&mut self, name: &HeaderName);
    fn insert(&mut self, name: &HeaderName, value: HeaderValue) -> Result<()>;
    fn append(&mut self, name: &HeaderName, value: HeaderValue) -> Result<()>;
}

impl Headers for RequestHeader {
    fn remove(&mut self, name: &HeaderName) {
        self.remove_header(name);
    }
    fn insert(&mut self, name: &HeaderName, value: HeaderValue) -> Result<()> {
        self.insert_header(name, value)
    }
    fn append(&mut self, name: &HeaderName, value: HeaderValue) -> Result<()> {
        self.append_header(name, value).map(|_| ())
    }
}

impl Headers for ResponseHeader {
    fn remove(&mut self, name: &HeaderName) {
        self.remove_header(name);
    }
    fn insert(&mut self, name: &HeaderName, value: HeaderValue) -> Result<()> {
        self.insert_header(name, value)
    }
    fn append(&mut self, name: &HeaderName, value: HeaderValue) -> Result<()> {
        self.append_header(name, value).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::identity::Secret;

    fn signed(tenant_header: Option<&'static str>) -> RequestHeader {
        let f = ForwardIdentity {
            id: Some(HeaderName::from_static("x-id")),
            tenant: tenant_header.map(HeaderName::from_static),
            sign: Some(Signer {
                key_file: "k".into(),
                key: Secret::new(b"k".repeat(32)),
                header: HeaderName::from_static("x-sig"),
                timestamp: HeaderName::from_static("x-ts"),
            }),
        };
        let who = Identity { id: "a b".into(), tenant: Some("acme".into()), ..Identity::default() };
        let mut req = RequestHeader::build("POST", b"/mcp", None).expect("request");
        forward(&mut req, &f, Some(&who), 1_700_000_000).expect("forward");
        req
    }

    fn expected(tenant: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&b"k".repeat(32)).expect("key");
        mac.update(format!("v1\na%20b\n{tenant}\n1700000000").as_bytes());
        crate::config::hex(&mac.finalize().into_bytes())
    }

    #[test]
    fn the_signature_covers_exactly_the_values_sent() {
        let req = signed(Some("x-tenant"));
        let h = |n: &str| req.headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
        assert_eq!(
            (h("x-id"), h("x-tenant"), h("x-ts")),
            (Some("a%20b".into()), Some("acme".into()), Some("1700000000".into()))
        );
        assert_eq!(h("x-sig"), Some(expected("acme")));
        // A tenant that is not forwarded is not signed either: the backend could not check it.
        let req = signed(None);
        assert_eq!(req.headers.get("x-sig").and_then(|v| v.to_str().ok()), Some(expected("").as_str()));
    }
}
