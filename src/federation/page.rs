//! A merged list cut into pages: members in route order, each member's entries in its own
//! order, `size` entries a page (0: one page). Each page is rendered once, when the list is
//! made, and shared by every answer that serves it. A page starting anywhere else (a cursor
//! issued for an earlier list, before a member's list changed) is rendered when asked. Not
//! owned here: the cursor that carries a position to the client (`cursor`), the list itself
//! (`catalog`).

use bytes::Bytes;
use serde_json::value::RawValue;

use super::kind::Kind;

/// A position in a merged list: a member (route order) and an entry of its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct At {
    pub member: u16,
    pub offset: u32,
}

impl At {
    pub const START: At = At { member: 0, offset: 0 };
}

/// One page: where it starts, where the next starts (None: the last page), and
/// `{"<key>":[…]` (the answer closes the object).
#[derive(Debug, Clone)]
pub struct Page {
    pub from: At,
    pub next: Option<At>,
    pub body: Bytes,
}

/// Every member's offered entries (name, entry), members in route order.
pub type Entries = [Vec<(String, Box<RawValue>)>];

/// The page of at most `size` entries (0: no limit) starting at `from`.
pub fn render(kind: Kind, members: &Entries, from: At, size: usize) -> Page {
    let limit = if size == 0 { usize::MAX } else { size };
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(kind.key().as_bytes());
    out.extend_from_slice(b"\":[");
    let (mut taken, mut at) = (0usize, from);
    'members: for (m, entries) in members.iter().enumerate().skip(usize::from(from.member)) {
        let start = if m == usize::from(from.member) { from.offset as usize } else { 0 };
        for (i, (_, entry)) in entries.iter().enumerate().skip(start) {
            if taken == limit {
                at = position(m, i);
                break 'members;
            }
            if taken > 0 {
                out.push(b',');
            }
            out.extend_from_slice(entry.get().as_bytes());
            taken += 1;
        }
        at = position(m + 1, 0);
    }
    out.push(b']');
    // A next page only where an entry remains: the last page never points past the end.
    let next = (taken == limit).then(|| first_entry(members, at)).flatten();
    Page { from, next, body: Bytes::from(out) }
}

/// Every page from the start, each starting where the one before ended.
pub fn cut(kind: Kind, members: &Entries, size: usize) -> Vec<Page> {
    let mut pages = vec![render(kind, members, At::START, size)];
    while let Some(next) = pages.last().and_then(|p| p.next) {
        pages.push(render(kind, members, next, size));
    }
    pages
}

/// The page at `from`: a rendered one, or one rendered now.
pub fn find(pages: &[Page], kind: Kind, members: &Entries, from: At, size: usize) -> Page {
    match pages.binary_search_by_key(&from, |p| p.from) {
        Ok(i) => pages[i].clone(),
        Err(_) => render(kind, members, from, size),
    }
}

/// The first entry at or after `at`, skipping members left with none.
fn first_entry(members: &Entries, at: At) -> Option<At> {
    let mut m = usize::from(at.member);
    let mut offset = at.offset as usize;
    while let Some(entries) = members.get(m) {
        if offset < entries.len() {
            return Some(position(m, offset));
        }
        (m, offset) = (m + 1, 0);
    }
    None
}

/// Route order fits u16 and a member's list u32: both are bounded far below (`config`, `listing`).
fn position(member: usize, offset: usize) -> At {
    At { member: u16::try_from(member).unwrap_or(u16::MAX), offset: u32::try_from(offset).unwrap_or(u32::MAX) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(lists: &[&[&str]]) -> Vec<Vec<(String, Box<RawValue>)>> {
        let entry = |n: &&str| (n.to_string(), RawValue::from_string(format!("\"{n}\"")).unwrap());
        lists.iter().map(|l| l.iter().map(entry).collect()).collect()
    }

    fn text(p: &Page) -> &str {
        std::str::from_utf8(&p.body).unwrap()
    }

    #[test]
    fn pages_walk_members_in_order_then_each_members_own_order_and_end_on_the_last_entry() {
        let members = entries(&[&["a1", "a2", "a3"], &[], &["c1", "c2"], &[]]);
        let pages = cut(Kind::Tools, &members, 2);
        let bodies: Vec<&str> = pages.iter().map(text).collect();
        assert_eq!(bodies, [r#"{"tools":["a1","a2"]"#, r#"{"tools":["a3","c1"]"#, r#"{"tools":["c2"]"#]);
        assert_eq!(pages[1].from, At { member: 0, offset: 2 });
        assert_eq!(pages[1].next, Some(At { member: 2, offset: 1 }), "past the empty member");
        assert_eq!(pages[2].next, None);
        let exact = cut(Kind::Prompts, &entries(&[&["a1", "a2"], &[]]), 2);
        assert_eq!((exact.len(), exact[0].next), (1, None), "a full last page points nowhere");
    }

    #[test]
    fn size_zero_is_one_page_and_an_empty_list_one_empty_page() {
        let members = entries(&[&["a1", "a2"], &["b1"]]);
        let pages = cut(Kind::Tools, &members, 0);
        assert_eq!((pages.len(), text(&pages[0]), pages[0].next), (1, r#"{"tools":["a1","a2","b1"]"#, None));
        let empty = cut(Kind::Resources, &entries(&[&[], &[]]), 3);
        assert_eq!((empty.len(), text(&empty[0])), (1, r#"{"resources":[]"#));
    }

    #[test]
    fn a_position_no_page_starts_at_is_rendered_and_one_past_the_end_is_an_empty_last_page() {
        let members = entries(&[&["a1", "a2", "a3"], &["b1"]]);
        let pages = cut(Kind::Tools, &members, 2);
        let odd = find(&pages, Kind::Tools, &members, At { member: 0, offset: 1 }, 2);
        assert_eq!((text(&odd), odd.next), (r#"{"tools":["a2","a3"]"#, Some(At { member: 1, offset: 0 })));
        let shared = find(&pages, Kind::Tools, &members, At { member: 0, offset: 2 }, 2);
        assert_eq!(shared.body.as_ptr(), pages[1].body.as_ptr(), "a rendered page is shared, not copied");
        for past in
            [At { member: 0, offset: 9 }, At { member: 7, offset: 0 }, At { member: u16::MAX, offset: u32::MAX }]
        {
            let last = find(&pages, Kind::Tools, &members, past, 2);
            assert!(last.next.is_none(), "{past:?}");
        }
        let beyond = find(&pages, Kind::Tools, &members, At { member: 7, offset: 0 }, 2);
        assert_eq!(text(&beyond), r#"{"tools":[]"#);
    }
}
