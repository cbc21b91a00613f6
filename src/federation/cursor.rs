//! A federated list's cursor: where the next page starts ([`At`]), for which list (route, era
//! and [`Kind`]), sealed (`session::sealed`) so a client can neither read nor forge one, and any
//! replica with the same session key continues the walk. A cursor names a position, not a
//! snapshot: a walk that spans a refresh continues in the new list at the same member and
//! offset, as a member's own cursor would. Not owned here: the pages (`page`).

use super::kind::Kind;
use super::page::At;
use crate::session::KeyRing;

/// The plaintext layout's version: a new layout takes a new one.
const VERSION: u8 = 1;

/// Where a walk of one list goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position<'r> {
    /// The route's name: another route's cursor is not this one's.
    pub route: &'r str,
    pub modern: bool,
    pub kind: Kind,
    pub at: At,
}

/// Plaintext: version, era, kind, member, offset, and 4 bytes of a digest of the route's name.
const LEN: usize = 13;

fn route_tag(route: &str) -> [u8; 4] {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(route.as_bytes());
    [digest[0], digest[1], digest[2], digest[3]]
}

/// The cursor a client sends back for `position`; None only if sealing fails, and then the
/// answer has no next page rather than a broken one.
pub fn seal(keys: &KeyRing, position: Position<'_>) -> Option<String> {
    let mut plain = [0u8; LEN];
    plain[0] = VERSION;
    plain[1] = u8::from(position.modern);
    plain[2] = position.kind.index() as u8;
    plain[3..5].copy_from_slice(&position.at.member.to_be_bytes());
    plain[5..9].copy_from_slice(&position.at.offset.to_be_bytes());
    plain[9..].copy_from_slice(&route_tag(position.route));
    keys.seal_opaque(&plain)
}

/// The position a cursor names, when this proxy (or a replica with its key) issued it for
/// `route`'s `kind` list in this era.
pub fn open(keys: &KeyRing, cursor: &[u8], route: &str, modern: bool, kind: Kind) -> Option<At> {
    let plain = keys.open_opaque(std::str::from_utf8(cursor).ok()?)?;
    let plain: [u8; LEN] = plain.try_into().ok()?;
    if plain[0] != VERSION
        || plain[1] != u8::from(modern)
        || usize::from(plain[2]) != kind.index()
        || plain[9..] != route_tag(route)
    {
        return None;
    }
    let member = u16::from_be_bytes([plain[3], plain[4]]);
    let offset = u32::from_be_bytes([plain[5], plain[6], plain[7], plain[8]]);
    Some(At { member, offset })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::SessionKey;

    #[test]
    fn a_cursor_opens_for_its_own_list_and_era_only() {
        let keys = KeyRing::new(SessionKey::random());
        let at = At { member: 2, offset: 70_000 };
        let cursor = seal(&keys, Position { route: "all", modern: true, kind: Kind::Resources, at }).unwrap();
        assert_eq!(open(&keys, cursor.as_bytes(), "all", true, Kind::Resources), Some(at));
        assert_eq!(open(&keys, cursor.as_bytes(), "all", false, Kind::Resources), None, "the other era's list");
        assert_eq!(open(&keys, cursor.as_bytes(), "all", true, Kind::Templates), None, "another list");
        assert_eq!(open(&keys, cursor.as_bytes(), "other", true, Kind::Resources), None, "another route's");
        let other = KeyRing::new(SessionKey::random());
        assert_eq!(open(&other, cursor.as_bytes(), "all", true, Kind::Resources), None, "another key");
        for junk in
            [&b"10"[..], b"", b"c1.\xff", b"c1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]
        {
            assert_eq!(open(&keys, junk, "all", true, Kind::Resources), None, "{junk:?}");
        }
    }
}
