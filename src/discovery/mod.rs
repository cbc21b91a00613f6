//! Filtered discovery: on a route with a policy, a caller's `tools/list`, `prompts/list`,
//! `resources/list` and `resources/templates/list` answers show only the entries the policy
//! would let it call, read or get (`policy::Viewer::allows`, the very decision a call gets), and
//! `completion/complete` may not name a prompt or resource the caller may not use.
//!
//! What is here is pure: which requests want their answers filtered ([`arm`]), how one
//! JSON-RPC message is filtered ([`filter`]), how an answer body, JSON or SSE, is driven through
//! it a chunk at a time ([`answer`]), and which completion references are denied
//! ([`completion`]). Not here: the Pingora hooks that drive it (`proxy::transform`), the policy
//! itself (`policy`), the denial answer (`proxy::reply`).

pub mod answer;
pub mod completion;
pub mod filter;

use bytes::Bytes;

use crate::mcp::call::Call;
use crate::mcp::method::{Era, Method};

/// Most bytes of a list answer (a JSON body, or one SSE event) held to filter it. Past it the
/// answer is refused (-32603), never forwarded unfiltered.
pub const MAX_ANSWER: usize = 8 << 20;

/// A list method whose answer is filtered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Tools,
    Prompts,
    Resources,
    Templates,
}

impl ListKind {
    pub fn of(method: Method) -> Option<ListKind> {
        match method {
            Method::ToolsList => Some(ListKind::Tools),
            Method::PromptsList => Some(ListKind::Prompts),
            Method::ResourcesList => Some(ListKind::Resources),
            Method::ResourcesTemplatesList => Some(ListKind::Templates),
            _ => None,
        }
    }

    /// The result field holding the entries.
    pub fn key(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources => "resources",
            ListKind::Templates => "resourceTemplates",
        }
    }

    /// The entry field naming what the entry is.
    pub fn field(self) -> &'static str {
        match self {
            ListKind::Tools | ListKind::Prompts => "name",
            ListKind::Resources => "uri",
            ListKind::Templates => "uriTemplate",
        }
    }

    /// The call an entry is judged as: listed iff this call on it would be allowed. A template
    /// is judged as a read of its template text (`docs://{id}` matches `docs://*`).
    pub fn call(self) -> Method {
        match self {
            ListKind::Tools => Method::ToolsCall,
            ListKind::Prompts => Method::PromptsGet,
            ListKind::Resources | ListKind::Templates => Method::ResourcesRead,
        }
    }
}

/// The list requests of one HTTP request whose answers are filtered: their raw ids (slices of
/// the request body) and kinds, and the era (2026-07-28 answers are marked `cacheScope: private`).
/// `others` are the ids of the body's other requests: a result answering none of the body's
/// requests is refused, since it could be a list the filter did not recognise as one.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    pub era: Era,
    pub lists: Vec<(Bytes, ListKind)>,
    pub others: Vec<Bytes>,
}

/// The lists `call` asks for, if any (a batch may hold several). A list request without an
/// id is a notification and should get no answer; one a server answers anyway (under a null
/// id) is filtered all the same. Other requests without an id want nothing.
pub fn arm(call: &Call) -> Option<Wanted> {
    let (mut lists, mut others) = (Vec::new(), Vec::new());
    for e in call.elements() {
        match (ListKind::of(e.method), e.id.clone()) {
            (Some(kind), id) => lists.push((id.unwrap_or(Bytes::from_static(b"null")), kind)),
            (None, Some(id)) => others.push(id),
            (None, None) => {}
        }
    }
    (!lists.is_empty()).then_some(Wanted { era: call.era, lists, others })
}

#[cfg(test)]
mod tests;
