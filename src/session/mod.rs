//! Sticky legacy sessions without a shared store. A backend-issued `Mcp-Session-Id` is sealed
//! into a token that names the pool and backend that issued it; any replica holding the same
//! key can open it and route the follow-up there. Owns the token format and the key; does not
//! decide what to do with an unknown session (that is `proxy`'s 404).
//!
//! A token carries a list of members so one client session can later stand for several
//! upstream sessions (federation); today every token has exactly one.

pub mod fingerprint;
pub mod key;
pub mod ring;
pub mod sealed;
pub mod seen;
pub mod token;

pub use fingerprint::Fingerprint;
pub use key::SessionKey;
pub use ring::KeyRing;

pub use token::{owner_of, Member, Opened, Owner, TokenError};
