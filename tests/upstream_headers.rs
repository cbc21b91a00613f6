//! Upstream credentials and header transforms (issue 9, section 5), end to end: recording
//! backends and mcp-edge with `[[pool.credential]]`, `forward_identity` and header rules.
//! Each story asserts what the backend actually received (never the client's attempt at a
//! credential or identity header, in any case or repeated), what the client got back, and
//! that no secret reaches `/config` or the log. Health checks carry the credential, and a
//! rotation on reload resets neither health nor circuit state.

mod common;

#[allow(dead_code)]
#[path = "auth/story.rs"]
mod story;

#[path = "upstream_headers/credentials.rs"]
mod credentials;
#[path = "upstream_headers/identity.rs"]
mod identity;
#[path = "upstream_headers/oauth.rs"]
mod oauth;
#[path = "upstream_headers/transforms.rs"]
mod transforms;
