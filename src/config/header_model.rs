//! The validated shape of the headers the proxy adds and removes between client and backend:
//! a pool's static credentials ([`Credential`]), header transforms per route and pool
//! ([`HeaderRules`] with [`Template`] values) and the caller's identity forwarded as headers
//! ([`ForwardIdentity`], optionally signed). Built only by `config::upstream_headers`;
//! applied per request by `proxy::headers` and by the pool's health checks. Credentials and
//! the signing key are [`Secret`]s: nothing here prints them.

use std::path::PathBuf;

use http::{HeaderName, HeaderValue};

use crate::auth::identity::{Identity, Secret};

/// A header sent to every backend of a pool and with its health checks, replacing any
/// same-named header from the client. Read from its source at every load.
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    pub header: HeaderName,
    pub source: CredentialSource,
    /// The prefix (if any) and the secret, marked sensitive.
    pub value: Secret<HeaderValue>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// The environment variable of this name (fixed for the life of the process).
    Env(String),
    /// This file, trimmed (re-read on every reload: rotation is "write it, reload").
    File(PathBuf),
    /// Made by mcp-edge for its own stdio bridge (`crate::stdio`), never configured.
    Bridge,
}

/// `[pool.oauth]`: an OAuth client whose access token the proxy sends to the pool's backends
/// (and with its health checks) as `Authorization: Bearer`, fetched from `token_url` and
/// renewed before it expires (`upstream::token`). The client secret is read at every load.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthClient {
    pub grant: Grant,
    /// The token endpoint, `https://` (or `http://` to a loopback address).
    pub token_url: String,
    pub client_id: String,
    pub secret: Secret<String>,
    pub secret_source: CredentialSource,
    pub client_auth: ClientAuth,
    /// Space-separated scopes to ask for (RFC 6749 3.3).
    pub scope: Option<String>,
    /// The backend's resource indicator (RFC 8707).
    pub resource: Option<String>,
    /// An `audience` parameter, for authorization servers that use one instead.
    pub audience: Option<String>,
}

/// Which token the proxy asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// One token for the proxy itself (RFC 6749 4.4), shared by every request to the pool.
    ClientCredentials,
    /// A token per caller, exchanged for the caller's own bearer token (RFC 8693): the
    /// backend sees who is calling, through a token meant for it. `subject_token_type` is the
    /// URN the caller's token is declared as.
    TokenExchange { subject_token_type: &'static str },
}

impl Grant {
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::ClientCredentials => "client_credentials",
            Grant::TokenExchange { .. } => "token_exchange",
        }
    }
}

/// How the client authenticates at the token endpoint (RFC 6749 2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with the form-encoded id and secret (`client_secret_basic`, the default).
    Basic,
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    Post,
}

impl ClientAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::Basic => "basic",
            ClientAuth::Post => "post",
        }
    }
}

/// What one level (a route or a pool) does to headers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeaderRules {
    pub identity: Option<ForwardIdentity>,
    /// To the backend, in order: removals, then sets, then adds.
    pub request: Vec<HeaderOp>,
    /// To the client, in order: removals, then sets.
    pub response: Vec<HeaderOp>,
}

impl HeaderRules {
    pub fn is_empty(&self) -> bool {
        self.identity.is_none() && self.request.is_empty() && self.response.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum HeaderOp {
    Remove(HeaderName),
    /// Replaces every value of the header; when the template names an identity field the
    /// request lacks, the header is removed and not set.
    Set(HeaderName, Template),
    /// Appends a value (skipped when the template names an absent identity field).
    Add(HeaderName, Template),
}

/// `forward_identity`: the identity's fields as headers, always removed from the client's
/// request first, so a client cannot forge them.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardIdentity {
    pub id: Option<HeaderName>,
    pub tenant: Option<HeaderName>,
    pub sign: Option<Signer>,
}

impl ForwardIdentity {
    /// Every header this sets, hence removes from the client's request.
    pub fn names(&self) -> impl Iterator<Item = &HeaderName> {
        let sign = self.sign.iter().flat_map(|s| [&s.header, &s.timestamp]);
        self.id.iter().chain(self.tenant.iter()).chain(sign)
    }
}

/// HMAC-SHA256 over `v1\n<id>\n<tenant>\n<unix seconds>` (the header values as sent).
#[derive(Debug, Clone, PartialEq)]
pub struct Signer {
    pub key_file: PathBuf,
    pub key: Secret<Vec<u8>>,
    pub header: HeaderName,
    pub timestamp: HeaderName,
}

/// A header value with `{identity.id}` / `{identity.tenant}` placeholders, parsed once. No
/// other interpolation exists: nothing the client sends can reach a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
    /// The value when the template names no identity field (rendered once, at load).
    fixed: Option<HeaderValue>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Id,
    Tenant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "names an unknown field; only {{identity.id}} and {{identity.tenant}} exist (write {{{{ for a literal brace)"
    )]
    UnknownField,
    #[error("has an unmatched brace; close the placeholder, or write {{{{ or }}}} for a literal brace")]
    Unclosed,
    #[error("holds a character a header value cannot (a line break, a control or non-ASCII character); remove it")]
    BadText,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(i) = rest.find(['{', '}']) {
            let (before, after) = rest.split_at(i);
            literal.push_str(before);
            if let Some(tail) = after.strip_prefix("{{").or_else(|| after.strip_prefix("}}")) {
                literal.push_str(&after[..1]);
                rest = tail;
                continue;
            }
            let Some(end) = after.find('}').filter(|_| after.starts_with('{')) else {
                return Err(TemplateError::Unclosed);
            };
            let part = match &after[1..end] {
                "identity.id" => Part::Id,
                "identity.tenant" => Part::Tenant,
                _ => return Err(TemplateError::UnknownField),
            };
            if !literal.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut literal)));
            }
            parts.push(part);
            rest = &after[end + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        for p in &parts {
            if let Part::Text(t) = p {
                HeaderValue::from_str(t).map_err(|_| TemplateError::BadText)?;
            }
        }
        let fixed = match parts.as_slice() {
            [] => Some(HeaderValue::from_static("")),
            [Part::Text(t)] => HeaderValue::from_str(t).ok(),
            _ => None,
        };
        Ok(Template { source: text.to_owned(), parts, fixed })
    }

    /// As written in the config (for `/config`).
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The value for this request; None when it names a field the identity lacks (or there
    /// is no identity). Identity values are percent-encoded (see [`encode`]).
    pub fn render(&self, identity: Option<&Identity>) -> Option<HeaderValue> {
        if let Some(v) = &self.fixed {
            return Some(v.clone());
        }
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Id => encode(&identity?.id, &mut out),
                Part::Tenant => encode(identity?.tenant.as_deref()?, &mut out),
            }
        }
        // Visible ASCII only (checked text, encoded values): no copy, no failure in practice.
        HeaderValue::try_from(out).ok()
    }
}

/// Appends `value` with every byte outside visible ASCII, and `%` itself, percent-encoded:
/// an identity from a token may hold anything, a header value may not, and a backend must
/// be able to tell `a%20b` from `a b`. Plain ids pass unchanged.
pub fn encode(value: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in value.as_bytes() {
        if (0x21..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(tenant: Option<&str>) -> Identity {
        Identity { id: "ci bot%".into(), tenant: tenant.map(str::to_owned), ..Identity::default() }
    }

    #[test]
    fn templates_name_identity_fields_and_nothing_else() {
        let t = Template::parse("id={identity.id};t={identity.tenant} {{x}}").expect("parses");
        let v = t.render(Some(&identity(Some("acme")))).expect("renders");
        assert_eq!(v.to_str().ok(), Some("id=ci%20bot%25;t=acme {x}"));
        assert_eq!(t.render(Some(&identity(None))), None, "an absent tenant leaves the header unset");
        assert_eq!(t.render(None), None);
        assert_eq!(Template::parse("{request.path}"), Err(TemplateError::UnknownField));
        assert_eq!(Template::parse("{identity.id"), Err(TemplateError::Unclosed));
        assert_eq!(Template::parse("a}b"), Err(TemplateError::Unclosed));
        assert_eq!(Template::parse("a\nb"), Err(TemplateError::BadText));
        let fixed = Template::parse("static").expect("parses");
        assert_eq!(fixed.render(None).as_ref().and_then(|v| v.to_str().ok()), Some("static"));
    }
}
