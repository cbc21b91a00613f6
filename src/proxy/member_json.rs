//! A member's JSON answer to a federated call on its way to the client, armed at its
//! response head (`transform`). A success is read as it passes (`federation::passing`): one
//! JSON-RPC 2.0 message, the call's own answer (or a request or notification), and the answer
//! is cut before the byte that would complete anything else (a member answering another
//! member's call, found by an attack: only event streams were read). Where it has URIs to
//! offer or a result to keep, it is held whole first ([`super::contents`]).
//!
//! Not here: what is held and rewritten (`contents`), arming (`transform`).

use bytes::Bytes;

use super::contents::{Contents, Pushed};
use crate::federation::passing::JsonAnswer;
use crate::federation::scanner::Refusal;

#[derive(Debug)]
pub struct MemberJson {
    pub member: usize,
    /// Read as it passes: a success (clients read no other status's body as a message).
    check: Option<Box<JsonAnswer>>,
    /// Held whole, until it is passed.
    hold: Option<Contents>,
}

impl MemberJson {
    pub fn new(member: usize, checked: bool, hold: Option<Contents>) -> MemberJson {
        MemberJson { member, check: checked.then(Box::default), hold }
    }

    /// Whether the answer is held to be rewritten (its length changes).
    pub fn holds(&self) -> bool {
        self.hold.is_some()
    }

    /// The next chunk of the answer; `call` is the call's id, `offer` names a URI as the route
    /// offers it. Err: the chunk would complete a message that may not pass.
    pub fn push(
        &mut self,
        chunk: Bytes,
        end: bool,
        call: Option<&[u8]>,
        offer: impl Fn(&str) -> String,
    ) -> Result<Pushed, Refusal> {
        if let Some(check) = self.check.as_mut() {
            check.push(&chunk, end, call)?;
        }
        let Some(hold) = self.hold.as_mut() else { return Ok(Pushed::Passed(chunk)) };
        let pushed = hold.push(chunk, end, offer);
        if !matches!(pushed, Ok(Pushed::Held)) {
            self.hold = None;
        }
        pushed.map_err(|_| Refusal::UriTwice)
    }
}
