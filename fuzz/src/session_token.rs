//! `session_token`: the key ring's `open` on arbitrary text refuses without panicking (nobody
//! forges a token without the key), and `seal` then `open` gives back the same members; a
//! sealed token is visible ASCII within the length `open` accepts, and any one-byte change or
//! truncation of it is refused. Members carry protocol versions or not (token versions 2 to 5).
//!
//! Input: the whole input is the text to open; read again as structure it is a member list
//! (see `members`) and where to tamper with the sealed token.

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;

use mcp_edge::session::token::MAX_TOKEN_LEN;
use mcp_edge::session::{KeyRing, Member, SessionKey};

use crate::input::Reader;

/// A member list this short always fits a token, whatever the format's overhead.
const SURELY_FITS: usize = 2048;

pub fn check(data: &[u8]) {
    let ring = ring();
    if let Ok(text) = std::str::from_utf8(data) {
        assert!(ring.open(text).is_err(), "opened a token nobody sealed: {text:?}");
    }
    let mut input = Reader(data);
    let members = members(&mut input);
    let tamper_at = usize::from(input.u16());
    let tamper_with = input.u8();
    // Every other input seals an owner too (version 3 tokens).
    let owner = (tamper_with & 1 == 1).then(|| mcp_edge::session::owner_of("fuzz", None));
    let Some(token) = ring.seal(&members, owner.as_ref()) else {
        let version = |m: &Member| m.version.as_ref().map_or(0, String::len);
        let size: usize = members.iter().map(|m| m.pool.len() + m.session.len() + version(m) + 32).sum();
        let too_long = members.iter().any(|m| m.pool.len() > 255 || version(m) > 255);
        assert!(size > SURELY_FITS || too_long, "refused to seal {} small members", members.len());
        return;
    };
    assert!(token.len() <= MAX_TOKEN_LEN, "sealed a token open() refuses for its length");
    assert!(token.bytes().all(|b| (0x21..=0x7e).contains(&b)), "a token that is not visible ASCII");
    let opened = ring.open(&token).expect("round trip");
    assert_eq!((&opened.members, opened.owner), (&members, owner), "round trip");

    let mut forged = token.clone().into_bytes();
    let at = tamper_at % forged.len();
    let visible = 0x21 + tamper_with % 94;
    forged[at] = if forged[at] == visible {
        if visible == 0x21 {
            0x22
        } else {
            0x21
        }
    } else {
        visible
    };
    let forged = String::from_utf8(forged).unwrap_or_default();
    assert!(ring.open(&forged).is_err(), "opened a token with byte {at} changed: {forged:?}");
    assert!(ring.open(&token[..at]).is_err(), "opened a token cut to {at} bytes");
}

fn ring() -> &'static KeyRing {
    static RING: OnceLock<KeyRing> = OnceLock::new();
    RING.get_or_init(|| KeyRing::new(SessionKey::random()))
}

/// Members from bytes: a count byte (0..=4), then per member a flags byte (bit 0: IPv6, bit 1:
/// stretch the strings 40 times, to reach the length limits, bit 2: a protocol version),
/// pool length and bytes, address bytes, port, session length and bytes, then the version's
/// length and bytes (an empty one is none). Strings are the bytes read as lossy UTF-8.
fn members(input: &mut Reader<'_>) -> Vec<Member> {
    let count = input.u8() % 5;
    (0..count)
        .map(|_| {
            let flags = input.u8();
            let stretch = if flags & 2 != 0 { 40 } else { 1 };
            let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).repeat(stretch);
            let pool_len = usize::from(input.u8());
            let pool = text(input.take(pool_len));
            let ip = if flags & 1 != 0 {
                IpAddr::from(<[u8; 16]>::try_from(padded(input.take(16), 16)).unwrap_or_default())
            } else {
                IpAddr::from(<[u8; 4]>::try_from(padded(input.take(4), 4)).unwrap_or_default())
            };
            let port = input.u16();
            let session_len = usize::from(input.u16());
            let session = text(input.take(session_len));
            let version = match flags & 4 != 0 {
                true => Some(input.u8()).map(|len| text(input.take(usize::from(len)))).filter(|v| !v.is_empty()),
                false => None,
            };
            Member { pool, backend: SocketAddr::new(ip, port), session, version }
        })
        .collect()
}

fn padded(bytes: &[u8], len: usize) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v.resize(len, 0);
    v
}
