//! Token format v2: `e1.` + base64url(version ‖ nonce ‖ ciphertext ‖ tag), sealed with
//! XChaCha20-Poly1305 under a key derived from the session key (see `key`). The version byte
//! (2) and the prefix are authenticated as associated data; the nonce is 24 random bytes per
//! seal, so random nonces never collide in practice. The plaintext is the member count, then
//! per member: pool name (u8 length), backend address (family byte, IP, port), upstream
//! session id (u16 length). Clients see only ciphertext: no pool, backend or upstream id.
//!
//! Version 3 is version 2 plus the session's owner: 16 bytes of a digest of the identity
//! that opened it (routes with `auth`), appended to the plaintext, so a token replayed by
//! another caller is refused without the digest ever being readable. Tokens of sessions
//! opened without an identity stay version 2, byte for byte.
//!
//! Versions 4 and 5 are versions 2 and 3 with each member's negotiated protocol version
//! (u8 length, then its bytes; 0 for none) after its session id: a federated session calls
//! each member with the version it agreed to. Tokens whose members carry no version keep
//! versions 2 and 3, byte for byte.
//!
//! `e1.` stays the marker of "ours" (callers look for it in query strings); the version byte
//! inside tells formats apart. Version 1 tokens (readable, HMAC-signed) are refused as
//! malformed, which the proxy answers like any unknown session: 404, and the client
//! re-initializes. Only visible ASCII, as the spec requires of session ids.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use rand::RngCore;

use super::SessionKey;

const PREFIX: &str = "e1.";
const VERSION: u8 = 2;
/// Version 2 with an owner.
const VERSION_OWNED: u8 = 3;
/// Versions 2 and 3 with the members' protocol versions.
const VERSIONED: u8 = 4;
const VERSIONED_OWNED: u8 = 5;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Version byte and nonce, in clear before the ciphertext.
const HEADER_LEN: usize = 1 + NONCE_LEN;
/// Associated data: what the cipher authenticates without hiding (the prefix and version).
fn aad(version: u8) -> [u8; 4] {
    [b'e', b'1', b'.', version]
}

/// A digest of the identity that opened a session (see [`owner_of`]).
pub type Owner = [u8; 16];

/// The owner digest of an identity: its id and tenant, hashed. Inside the sealed token only.
pub fn owner_of(id: &str, tenant: Option<&str>) -> Owner {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"mcp-edge session owner\0");
    h.update(id.as_bytes());
    h.update(b"\0");
    h.update(tenant.unwrap_or("").as_bytes());
    let full = h.finalize();
    let mut owner = [0u8; 16];
    owner.copy_from_slice(&full[..16]);
    owner
}

/// What an opened token carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub members: Vec<Member>,
    /// The identity that opened the session, when it was opened on a route with `auth`.
    pub owner: Option<Owner>,
}
/// Longest token accepted from a client; longer is rejected before any decoding.
pub const MAX_TOKEN_LEN: usize = 4096;

/// One upstream session carried by a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub pool: String,
    pub backend: SocketAddr,
    pub session: String,
    /// The protocol version the member agreed to (a federated session's members), at most
    /// 255 bytes.
    pub version: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("not an mcp-edge session token")]
    Foreign,
    #[error("malformed session token")]
    Malformed,
    /// Sealed by another key (or altered): the ring may try its previous key.
    #[error("session token does not authenticate under this key")]
    BadSignature,
}

fn cipher(key: &SessionKey) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(key.aead_key().into())
}

/// Seals members into a token. Returns None only if a field does not fit the format
/// (pool name over 255 bytes, session id over 64 KiB, token over [`MAX_TOKEN_LEN`]), which
/// callers treat as "pass through".
pub fn seal(key: &SessionKey, members: &[Member], owner: Option<&Owner>) -> Option<String> {
    let versioned = members.iter().any(|m| m.version.is_some());
    let version = match (owner.is_some(), versioned) {
        (false, false) => VERSION,
        (true, false) => VERSION_OWNED,
        (false, true) => VERSIONED,
        (true, true) => VERSIONED_OWNED,
    };
    let mut raw = Vec::with_capacity(HEADER_LEN + 80 + TAG_LEN);
    raw.push(version);
    raw.resize(HEADER_LEN, 0);
    rand::thread_rng().fill_bytes(&mut raw[1..HEADER_LEN]);
    encode(members, versioned, &mut raw)?;
    if let Some(owner) = owner {
        raw.extend_from_slice(owner);
    }
    let (header, plaintext) = raw.split_at_mut(HEADER_LEN);
    let nonce = XNonce::from_slice(&header[1..]);
    // Fails only for messages over 256 GiB; the length checks above rule that out.
    let tag = cipher(key).encrypt_in_place_detached(nonce, &aad(version), plaintext).ok()?;
    raw.extend_from_slice(&tag);
    let mut out = String::with_capacity(PREFIX.len() + raw.len().div_ceil(3) * 4);
    out.push_str(PREFIX);
    URL_SAFE_NO_PAD.encode_string(&raw, &mut out);
    // A token `open` would refuse is no token at all.
    (out.len() <= MAX_TOKEN_LEN).then_some(out)
}

/// Opens a token: authenticates and decrypts first, then decodes the members.
pub fn open(key: &SessionKey, token: &str) -> Result<Opened, TokenError> {
    let body = token.strip_prefix(PREFIX).ok_or(TokenError::Foreign)?;
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let mut raw = URL_SAFE_NO_PAD.decode(body).map_err(|_| TokenError::Malformed)?;
    let tag_at = raw.len().checked_sub(TAG_LEN).filter(|&at| at >= HEADER_LEN).ok_or(TokenError::Malformed)?;
    let version = match raw.first() {
        Some(&v) if (VERSION..=VERSIONED_OWNED).contains(&v) => v,
        _ => return Err(TokenError::Malformed),
    };
    let (sealed, tag) = raw.split_at_mut(tag_at);
    let (header, ciphertext) = sealed.split_at_mut(HEADER_LEN);
    let nonce = XNonce::from_slice(&header[1..]);
    cipher(key)
        .decrypt_in_place_detached(nonce, &aad(version), ciphertext, (&*tag).into())
        .map_err(|_| TokenError::BadSignature)?;
    let (members, owner) = if version == VERSION_OWNED || version == VERSIONED_OWNED {
        let at = ciphertext.len().checked_sub(16).ok_or(TokenError::Malformed)?;
        let (members, owner) = ciphertext.split_at(at);
        (members, Some(Owner::try_from(owner).map_err(|_| TokenError::Malformed)?))
    } else {
        (&ciphertext[..], None)
    };
    let versioned = version >= VERSIONED;
    Ok(Opened { members: decode(members, versioned).ok_or(TokenError::Malformed)?, owner })
}

/// Appends the plaintext for `members` to `out` (with their protocol versions: `versioned`).
fn encode(members: &[Member], versioned: bool, out: &mut Vec<u8>) -> Option<()> {
    out.push(u8::try_from(members.len()).ok()?);
    for m in members {
        out.push(u8::try_from(m.pool.len()).ok()?);
        out.extend_from_slice(m.pool.as_bytes());
        match m.backend.ip() {
            IpAddr::V4(ip) => {
                out.push(4);
                out.extend_from_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                out.push(6);
                out.extend_from_slice(&ip.octets());
            }
        }
        out.extend_from_slice(&m.backend.port().to_be_bytes());
        out.extend_from_slice(&u16::try_from(m.session.len()).ok()?.to_be_bytes());
        out.extend_from_slice(m.session.as_bytes());
        if versioned {
            let version = m.version.as_deref().unwrap_or_default();
            out.push(u8::try_from(version.len()).ok()?);
            out.extend_from_slice(version.as_bytes());
        }
    }
    Some(())
}

fn decode(plaintext: &[u8], versioned: bool) -> Option<Vec<Member>> {
    let mut r = Reader(plaintext);
    let n = r.u8()? as usize;
    let mut members = Vec::with_capacity(n);
    for _ in 0..n {
        let pool_len = r.u8()? as usize;
        let pool = std::str::from_utf8(r.take(pool_len)?).ok()?.to_owned();
        let ip = match r.u8()? {
            4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(r.take(4)?).ok()?)),
            6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(r.take(16)?).ok()?)),
            _ => return None,
        };
        let port = u16::from_be_bytes(r.take(2)?.try_into().ok()?);
        let sid_len = u16::from_be_bytes(r.take(2)?.try_into().ok()?) as usize;
        let session = std::str::from_utf8(r.take(sid_len)?).ok()?.to_owned();
        let version = match versioned {
            true => {
                let len = r.u8()? as usize;
                let version = std::str::from_utf8(r.take(len)?).ok()?;
                (!version.is_empty()).then(|| version.to_owned())
            }
            false => None,
        };
        members.push(Member { pool, backend: SocketAddr::new(ip, port), session, version });
    }
    r.0.is_empty().then_some(members)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(session: &str) -> Member {
        Member {
            pool: "tools".into(),
            backend: "127.0.0.1:9001".parse().expect("addr"),
            session: session.into(),
            version: None,
        }
    }

    /// Every readable rendering of a token a client could try: as sent, and its decoded bytes.
    fn readable_forms(token: &str) -> Vec<String> {
        let raw = URL_SAFE_NO_PAD.decode(&token[PREFIX.len()..]).expect("base64url");
        vec![token.to_owned(), String::from_utf8_lossy(&raw).into_owned(), format!("{raw:?}")]
    }

    #[test]
    fn sealed_token_opens_with_the_same_key_and_is_visible_ascii() {
        let key = SessionKey::random();
        let token = seal(&key, &[member("abc123")], None).expect("fits");
        assert!(token.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        assert_eq!(open(&key, &token).map(|o| o.members), Ok(vec![member("abc123")]));
    }

    #[test]
    fn a_token_hides_the_pool_the_backend_and_the_upstream_id() {
        let key = SessionKey::random();
        let secret = member("upstream-session-7f3a9c");
        let token = seal(&key, std::slice::from_ref(&secret), None).expect("fits");
        let raw = URL_SAFE_NO_PAD.decode(&token[PREFIX.len()..]).expect("base64url");
        let octets = [127u8, 0, 0, 1];
        let port = 9001u16.to_be_bytes();
        for form in readable_forms(&token) {
            for needle in ["tools", "127.0.0.1", "9001", "upstream-session-7f3a9c", "7f3a9c"] {
                assert!(!form.contains(needle), "{needle:?} readable in {form:?}");
            }
        }
        assert!(!raw.windows(4).any(|w| w == octets), "backend IP in the clear");
        assert!(!raw.windows(5).any(|w| w == b"tools"), "pool name in the clear");
        assert!(!raw.windows(6).any(|w| w[..4] == octets && w[4..] == port), "backend address in the clear");
        // A fresh nonce per seal: the same member never gives the same token twice.
        assert_ne!(seal(&key, std::slice::from_ref(&secret), None), Some(token));
    }

    #[test]
    fn tampering_with_any_byte_is_refused() {
        let key = SessionKey::random();
        let token = seal(&key, &[member("abc")], None).expect("fits");
        let raw = URL_SAFE_NO_PAD.decode(&token[PREFIX.len()..]).expect("base64url");
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 0x01;
            let forged = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(&bad));
            let refused = open(&key, &forged);
            assert!(matches!(refused, Err(TokenError::BadSignature | TokenError::Malformed)), "byte {i}: {refused:?}");
        }
        let truncated = open(&key, &token[..token.len() - 1]);
        assert!(matches!(truncated, Err(TokenError::BadSignature | TokenError::Malformed)), "{truncated:?}");
    }

    #[test]
    fn ids_too_long_for_a_token_are_not_sealed() {
        let key = SessionKey::random();
        assert!(seal(&key, &[member(&"x".repeat(2800))], None).is_some());
        assert!(seal(&key, &[member(&"x".repeat(3200))], None).is_none(), "open() would refuse it");
    }

    #[test]
    fn several_members_and_ipv6_round_trip() {
        let key = SessionKey::random();
        let mut b = member("s2");
        b.backend = "[::1]:9443".parse().expect("addr");
        let token = seal(&key, &[member("s1"), b.clone()], None).expect("fits");
        assert_eq!(open(&key, &token).map(|o| o.members), Ok(vec![member("s1"), b]));
    }

    #[test]
    fn an_owner_travels_sealed_and_tokens_without_one_keep_version_2() {
        let key = SessionKey::random();
        let owner = owner_of("alice", Some("acme"));
        let token = seal(&key, &[member("abc")], Some(&owner)).expect("fits");
        assert_eq!(open(&key, &token), Ok(Opened { members: vec![member("abc")], owner: Some(owner) }));
        let raw = URL_SAFE_NO_PAD.decode(&token[PREFIX.len()..]).expect("base64url");
        assert_eq!(raw[0], VERSION_OWNED);
        assert!(!raw.windows(16).any(|w| w == owner), "the owner digest is never in the clear");
        let plain = seal(&key, &[member("abc")], None).expect("fits");
        assert_eq!(URL_SAFE_NO_PAD.decode(&plain[PREFIX.len()..]).expect("base64url")[0], VERSION);
        assert_eq!(open(&key, &plain).map(|o| o.owner), Ok(None));
        assert_ne!(owner_of("alice", Some("acme")), owner_of("alice", None));
        assert_ne!(owner_of("alice", None), owner_of("bob", None));
        // Relabelling a version 3 token as version 2 (or back) breaks its authentication.
        let mut relabelled = raw.clone();
        relabelled[0] = VERSION;
        let forged = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(&relabelled));
        assert_eq!(open(&key, &forged), Err(TokenError::BadSignature));
    }

    #[test]
    fn members_protocol_versions_travel_sealed_with_or_without_an_owner() {
        let key = SessionKey::random();
        let mut a = member("s1");
        a.version = Some("2025-06-18".into());
        let members = [a, member("")];
        for (owner, label) in [(None, VERSIONED), (Some(owner_of("alice", None)), VERSIONED_OWNED)] {
            let token = seal(&key, &members, owner.as_ref()).expect("fits");
            assert_eq!(open(&key, &token), Ok(Opened { members: members.to_vec(), owner }));
            let raw = URL_SAFE_NO_PAD.decode(&token[PREFIX.len()..]).expect("base64url");
            assert_eq!(raw[0], label);
            // Read as a token without versions, it is refused (the label is authenticated).
            let mut relabelled = raw.clone();
            relabelled[0] = label - 2;
            let forged = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(&relabelled));
            assert_eq!(open(&key, &forged), Err(TokenError::BadSignature));
        }
        let mut long = member("s");
        long.version = Some("v".repeat(256));
        assert_eq!(seal(&key, &[long], None), None, "a version over 255 bytes does not fit");
    }

    #[test]
    fn foreign_other_key_and_old_format_tokens_are_refused() {
        let key = SessionKey::random();
        let token = seal(&key, &[member("abc")], None).expect("fits");
        assert_eq!(open(&SessionKey::random(), &token), Err(TokenError::BadSignature));
        assert_eq!(open(&key, "raw-backend-session"), Err(TokenError::Foreign));
        assert_eq!(open(&key, "e1.!!!"), Err(TokenError::Malformed));
        assert_eq!(open(&key, "e1."), Err(TokenError::Malformed));
        assert_eq!(open(&key, &format!("e1.{}", "A".repeat(5000))), Err(TokenError::Malformed));
        // A version 1 token (readable payload and a 16-byte HMAC tag) is ours but retired.
        let mut v1 = vec![1u8, 1, 5];
        v1.extend_from_slice(b"tools\x04\x7f\0\0\x01\x23\x29\0\x03abc");
        v1.extend_from_slice(&[0u8; 16]);
        assert_eq!(open(&key, &format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(&v1))), Err(TokenError::Malformed));
    }
}
