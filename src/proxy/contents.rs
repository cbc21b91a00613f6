//! A federated call's JSON answer held whole so the resource URIs in it can be offered as
//! the route offers them (`federation::contents`): armed at the response head of an
//! uncompressed JSON answer to a forwarded `resources/read`, `tools/call` or `prompts/get`.
//! Held up to [`MAX_HELD_ANSWER`] and within the budget every federated call's held bytes
//! share (`federation::relay::HELD`, the relayed streams' too): past either, what was held and
//! the rest go on as sent. A client that does not read keeps a held answer in the proxy, hence
//! both bounds (an attack held 490 MB with 2,000 stalled calls before the shared one).
//! Not owned here: where URIs live and what they become (`federation`), arming
//! (`proxy::transform`).

use bytes::Bytes;

use crate::federation::contents::{self as uris, Places};
use crate::federation::relay::HELD;

/// Longest JSON answer held whole to offer its URIs; a longer one goes on as sent. As small as
/// a relayed stream's longest held event, for its reason.
pub const MAX_HELD_ANSWER: usize = 256 << 10;

#[derive(Debug)]
pub struct Contents {
    pub member: usize,
    places: Places,
    held: Vec<u8>,
    /// Bytes of `held` drawn on the shared budget.
    taken: usize,
}

/// What a chunk of the answer gives the client.
pub enum Pushed {
    /// Nothing yet: held.
    Held,
    /// The whole answer, its URIs offered: the transform is done.
    Whole(Bytes),
    /// The rest of an answer that could not be held, as sent: the transform is done.
    Passed(Bytes),
}

impl Contents {
    pub fn new(member: usize, places: Places) -> Contents {
        Contents { member, places, held: Vec::new(), taken: 0 }
    }

    /// The next chunk of the answer; `offer` names a URI as the route offers it. Err: the
    /// whole answer names a key where URIs are read twice, and may not pass.
    pub fn push(&mut self, chunk: Bytes, end: bool, offer: impl Fn(&str) -> String) -> Result<Pushed, uris::Twice> {
        let fits = self.held.len() + chunk.len() <= MAX_HELD_ANSWER;
        if !end {
            if fits && HELD.take(chunk.len()) {
                self.taken += chunk.len();
                self.held.extend_from_slice(&chunk);
                return Ok(Pushed::Held);
            }
            tracing::debug!("a member's answer too long to hold (or the held budget is spent); passed as sent");
            return Ok(Pushed::Passed(self.release(chunk)));
        }
        if !fits {
            return Ok(Pushed::Passed(self.release(chunk)));
        }
        // Most answers arrive in one piece: nothing was held, nothing is copied.
        let whole = if self.held.is_empty() { chunk } else { self.release(chunk) };
        let offered = uris::offered(&whole, self.places, offer)?;
        Ok(Pushed::Whole(offered.map_or(whole, Bytes::from)))
    }

    /// What was held, then `chunk`; the budget given back.
    fn release(&mut self, chunk: Bytes) -> Bytes {
        HELD.give_back(std::mem::take(&mut self.taken));
        let mut out = std::mem::take(&mut self.held);
        out.extend_from_slice(&chunk);
        Bytes::from(out)
    }
}

/// An answer cut short (the client or the member left) gives its share back.
impl Drop for Contents {
    fn drop(&mut self) {
        HELD.give_back(self.taken);
    }
}
