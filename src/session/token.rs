//! Token format: `e1.` + base64url(payload ‖ tag), where tag = HMAC-SHA256(key, domain ‖
//! payload) truncated to 16 bytes, and payload = version, member count, then per member:
//! pool name (u8 length), backend address (family byte, IP, port), upstream session id (u16
//! length). Only visible ASCII, as the spec requires of session ids.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::SessionKey;

const PREFIX: &str = "e1.";
const VERSION: u8 = 1;
const TAG_LEN: usize = 16;
const DOMAIN: &[u8] = b"mcp-edge session token v1";
/// Longest token accepted from a client; longer is rejected before any decoding.
pub const MAX_TOKEN_LEN: usize = 4096;

/// One upstream session carried by a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub pool: String,
    pub backend: SocketAddr,
    pub session: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("not an mcp-edge session token")]
    Foreign,
    #[error("malformed session token")]
    Malformed,
    #[error("session token signature does not verify")]
    BadSignature,
}

fn mac(key: &SessionKey) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail; SessionKey enforces a minimum.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key.bytes()).unwrap_or_else(|_| unreachable!());
    m.update(DOMAIN);
    m
}

/// Seals members into a token. Returns None only if a field does not fit the format
/// (pool name over 255 bytes, session id over 64 KiB), which callers treat as "pass through".
pub fn seal(key: &SessionKey, members: &[Member]) -> Option<String> {
    let mut payload = Vec::with_capacity(64);
    payload.push(VERSION);
    payload.push(u8::try_from(members.len()).ok()?);
    for m in members {
        payload.push(u8::try_from(m.pool.len()).ok()?);
        payload.extend_from_slice(m.pool.as_bytes());
        match m.backend.ip() {
            IpAddr::V4(ip) => {
                payload.push(4);
                payload.extend_from_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                payload.push(6);
                payload.extend_from_slice(&ip.octets());
            }
        }
        payload.extend_from_slice(&m.backend.port().to_be_bytes());
        payload.extend_from_slice(&u16::try_from(m.session.len()).ok()?.to_be_bytes());
        payload.extend_from_slice(m.session.as_bytes());
    }
    let mut h = mac(key);
    h.update(&payload);
    payload.extend_from_slice(&h.finalize().into_bytes()[..TAG_LEN]);
    let mut out = String::with_capacity(PREFIX.len() + payload.len() * 4 / 3 + 4);
    out.push_str(PREFIX);
    URL_SAFE_NO_PAD.encode_string(&payload, &mut out);
    // A token `open` would refuse is no token at all.
    (out.len() <= MAX_TOKEN_LEN).then_some(out)
}

/// Opens a token: checks the signature first, then decodes the members.
pub fn open(key: &SessionKey, token: &str) -> Result<Vec<Member>, TokenError> {
    let body = token.strip_prefix(PREFIX).ok_or(TokenError::Foreign)?;
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let raw = URL_SAFE_NO_PAD.decode(body).map_err(|_| TokenError::Malformed)?;
    let split = raw.len().checked_sub(TAG_LEN).ok_or(TokenError::Malformed)?;
    let (payload, tag) = raw.split_at(split);
    let mut h = mac(key);
    h.update(payload);
    h.verify_truncated_left(tag).map_err(|_| TokenError::BadSignature)?;
    decode(payload).ok_or(TokenError::Malformed)
}

fn decode(payload: &[u8]) -> Option<Vec<Member>> {
    let mut r = Reader(payload);
    if r.u8()? != VERSION {
        return None;
    }
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
        members.push(Member { pool, backend: SocketAddr::new(ip, port), session });
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
        Member { pool: "tools".into(), backend: "127.0.0.1:9001".parse().expect("addr"), session: session.into() }
    }

    #[test]
    fn sealed_token_opens_with_the_same_key_and_is_visible_ascii() {
        let key = SessionKey::random();
        let token = seal(&key, &[member("abc123")]).expect("fits");
        assert!(token.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        assert_eq!(open(&key, &token), Ok(vec![member("abc123")]));
    }

    #[test]
    fn ids_too_long_for_a_token_are_not_sealed() {
        let key = SessionKey::random();
        assert!(seal(&key, &[member(&"x".repeat(2800))]).is_some());
        assert!(seal(&key, &[member(&"x".repeat(3200))]).is_none(), "open() would refuse it");
    }

    #[test]
    fn several_members_and_ipv6_round_trip() {
        let key = SessionKey::random();
        let mut b = member("s2");
        b.backend = "[::1]:9443".parse().expect("addr");
        let token = seal(&key, &[member("s1"), b.clone()]).expect("fits");
        assert_eq!(open(&key, &token), Ok(vec![member("s1"), b]));
    }

    #[test]
    fn forged_foreign_and_other_key_tokens_are_refused() {
        let key = SessionKey::random();
        let token = seal(&key, &[member("abc")]).expect("fits");
        assert_eq!(open(&SessionKey::random(), &token), Err(TokenError::BadSignature));
        let mut forged = token.clone().into_bytes();
        let last = forged.len() - 5;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).expect("ascii");
        assert!(matches!(open(&key, &forged), Err(TokenError::BadSignature | TokenError::Malformed)));
        assert_eq!(open(&key, "raw-backend-session"), Err(TokenError::Foreign));
        assert_eq!(open(&key, "e1.!!!"), Err(TokenError::Malformed));
        assert_eq!(open(&key, "e1."), Err(TokenError::Malformed));
        assert_eq!(open(&key, &format!("e1.{}", "A".repeat(5000))), Err(TokenError::Malformed));
    }
}
