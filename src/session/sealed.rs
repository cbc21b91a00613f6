//! Small opaque values the proxy hands a client and reads back unchanged: a federated list's
//! cursor. `c1.` + base64url(nonce ‖ ciphertext ‖ tag), XChaCha20-Poly1305 under a key of
//! their own derived from the session key (`key`), so a cursor never opens as a session token
//! or the reverse, and a client can neither read nor forge one. Any replica with the same key
//! opens what another sealed. Owns the envelope only; what the plaintext means is the caller's
//! (`federation::cursor`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use rand::RngCore;

use super::SessionKey;

const PREFIX: &str = "c1.";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Longest plaintext sealed or opened: a cursor is a position, a few bytes; a relayed
/// request's id (`federation::relay`) carries the member's id, up to 256 bytes, and 11 more.
pub const MAX_PLAIN: usize = 320;
/// Longest sealed text opened (what `seal` makes of `MAX_PLAIN` bytes, rounded up).
const MAX_SEALED: usize = PREFIX.len() + (NONCE_LEN + MAX_PLAIN + TAG_LEN).div_ceil(3) * 4;

fn cipher(key: &SessionKey) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(key.cursor_key().into())
}

/// `plain` sealed; None only when it is over [`MAX_PLAIN`] bytes.
pub fn seal(key: &SessionKey, plain: &[u8]) -> Option<String> {
    if plain.len() > MAX_PLAIN {
        return None;
    }
    let mut raw = Vec::with_capacity(NONCE_LEN + plain.len() + TAG_LEN);
    raw.resize(NONCE_LEN, 0);
    rand::thread_rng().fill_bytes(&mut raw);
    raw.extend_from_slice(plain);
    let (nonce, text) = raw.split_at_mut(NONCE_LEN);
    // Fails only for messages over 256 GiB.
    let tag = cipher(key).encrypt_in_place_detached(XNonce::from_slice(nonce), PREFIX.as_bytes(), text).ok()?;
    raw.extend_from_slice(&tag);
    let mut out = String::with_capacity(MAX_SEALED);
    out.push_str(PREFIX);
    URL_SAFE_NO_PAD.encode_string(&raw, &mut out);
    Some(out)
}

/// The plaintext of what [`seal`] made under `key`; None for anything else.
pub fn open(key: &SessionKey, sealed: &str) -> Option<Vec<u8>> {
    if sealed.len() > MAX_SEALED {
        return None;
    }
    let mut raw = URL_SAFE_NO_PAD.decode(sealed.strip_prefix(PREFIX)?).ok()?;
    let tag_at = raw.len().checked_sub(TAG_LEN).filter(|&at| at >= NONCE_LEN)?;
    let (rest, tag) = raw.split_at_mut(tag_at);
    let (nonce, text) = rest.split_at_mut(NONCE_LEN);
    cipher(key).decrypt_in_place_detached(XNonce::from_slice(nonce), PREFIX.as_bytes(), text, (&*tag).into()).ok()?;
    raw.truncate(tag_at);
    raw.drain(..NONCE_LEN);
    Some(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_sealed_opens_under_its_key_only_and_never_when_altered() {
        let (key, other) = (SessionKey::random(), SessionKey::random());
        let sealed = seal(&key, b"page 3").unwrap();
        assert!(sealed.starts_with("c1.") && !sealed.contains("page"), "{sealed}");
        assert_eq!(open(&key, &sealed).as_deref(), Some(&b"page 3"[..]));
        assert_ne!(seal(&key, b"page 3"), Some(sealed.clone()), "a fresh nonce each time");
        assert_eq!(open(&other, &sealed), None, "another key");
        let mut flipped = sealed.clone().into_bytes();
        let last = flipped.len() - 5;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(open(&key, std::str::from_utf8(&flipped).unwrap()), None, "altered");
        for junk in ["", "c1.", "c1.AAAA", "e1.AAAA", "c1.!!!!", &"c1.".repeat(400)] {
            assert_eq!(open(&key, junk), None, "{junk:?}");
        }
        assert_eq!(seal(&key, &[0; MAX_PLAIN + 1]), None);
        assert!(open(&key, &seal(&key, &[7; MAX_PLAIN]).unwrap()).is_some(), "the longest plaintext opens");
    }

    #[test]
    fn a_session_token_never_opens_as_a_cursor() {
        let key = SessionKey::random();
        let member = super::super::Member {
            pool: "p".into(),
            backend: "127.0.0.1:1".parse().unwrap(),
            session: "s".into(),
            version: None,
        };
        let token = super::super::token::seal(&key, &[member], None).unwrap();
        assert_eq!(open(&key, &token.replacen("e1.", "c1.", 1)), None);
    }
}
