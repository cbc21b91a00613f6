//! Authentication at the edge, end to end (issue 9, identity half): each story starts
//! recording backends and mcp-edge with `[[authenticator]]`s and routes that accept them,
//! sends requests over real sockets, and asserts the client's answer (401/400 with the
//! `WWW-Authenticate` challenge, or the backend's answer) and what the backend received (no
//! request, or one without the caller's credential). The bypass stories try what an attacker
//! would: `alg: none`, HS/RS and HS/EC key confusion, wrong `aud`/`iss`, expired and
//! not-yet-valid tokens, tampered payloads and signatures, unknown `kid`, API key case and
//! whitespace variants, duplicated `Authorization`. The policy stories (`auth/policy.rs`)
//! check who may call what once authenticated; the discovery stories (`auth/discovery.rs`)
//! that lists show a caller only that.

mod common;

#[path = "auth/story.rs"]
mod story;

#[path = "auth/api_keys.rs"]
mod api_keys;
#[path = "auth/discovery.rs"]
mod discovery;
#[path = "auth/jwks_url.rs"]
mod jwks_url;
#[path = "auth/jwt.rs"]
mod jwt;
#[path = "auth/limits.rs"]
mod limits;
#[path = "auth/metadata.rs"]
mod metadata;
#[path = "auth/passthrough.rs"]
mod passthrough;
#[path = "auth/policy.rs"]
mod policy;
#[path = "auth/sessions.rs"]
mod sessions;
