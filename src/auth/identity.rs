//! Who a request comes from, once authenticated: [`Identity`], and [`Secret`], the one type
//! every credential in the config is held in. Owns neither how an identity is proven
//! (`api_key`, `jwt`) nor what it may do (limits read it through the request context).

use std::fmt;

/// The authenticated caller. Built once per request (or shared from a key or token cache) and
/// kept on the request context; limits key on `id` and `tenant`, policies on all of it. Never
/// holds the credential.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    pub id: String,
    pub tenant: Option<String>,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    /// String claims of a token that a route's policy tests (name, value; an array claim gives
    /// one pair per string element). Only those: a token's other claims are not kept.
    pub claims: Vec<(String, String)>,
    /// When the caller came with a verified bearer token (a JWT): its `exp`, unix seconds.
    /// None for API keys. Token exchange (`[pool.oauth] grant = "token_exchange"`) needs one.
    pub token_exp: Option<u64>,
}

/// A credential or a digest of one. `Debug` and `Serialize` print `<redacted>`, so a secret
/// cannot reach `/config`, `/status`, a log line or an error by being formatted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Secret<T> {
        Secret(value)
    }

    /// The value itself, for the one comparison or verification that needs it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<T> serde::Serialize for Secret<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn a_secret_never_prints() {
        let s = Secret::new("hunter2-api-key".to_owned());
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(serde_json::to_string(&s).ok().as_deref(), Some("\"<redacted>\""));
        assert_eq!(format!("{:?}", Some(&s)), "Some(<redacted>)");
    }
}
