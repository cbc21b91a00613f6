//! What a federated route merges: tools, prompts, resources and resource templates, each its
//! own list, named by its own field, offered under the member's prefix. Tools and prompts are
//! offered as `<prefix>_<name>` (`names::offered`); resources and templates as
//! `<prefix>+<uri>` (`names::offered_uri`), so a URI read from a template the catalog never
//! listed still names its member. Not owned here: fetching (`listing`), merging (`catalog`).

use super::names;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tools,
    Prompts,
    Resources,
    Templates,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Tools, Kind::Prompts, Kind::Resources, Kind::Templates];

    /// Its place in [`Kind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The method that lists it.
    pub fn method(self) -> &'static str {
        match self {
            Kind::Tools => "tools/list",
            Kind::Prompts => "prompts/list",
            Kind::Resources => "resources/list",
            Kind::Templates => "resources/templates/list",
        }
    }

    /// The result's field holding the list.
    pub fn key(self) -> &'static str {
        match self {
            Kind::Tools => "tools",
            Kind::Prompts => "prompts",
            Kind::Resources => "resources",
            Kind::Templates => "resourceTemplates",
        }
    }

    /// The field of an entry that names it.
    pub fn id_field(self) -> &'static str {
        match self {
            Kind::Tools | Kind::Prompts => "name",
            Kind::Resources => "uri",
            Kind::Templates => "uriTemplate",
        }
    }

    /// A member's entry named `own`, as offered under `prefix`, or bare (`prefix_mode`).
    pub fn offered(self, prefix: Option<&str>, own: &str) -> String {
        match (self.by_uri(), prefix) {
            (true, Some(prefix)) => names::offered_uri(prefix, own),
            (true, None) => own.to_owned(),
            (false, Some(prefix)) => names::offered(prefix, own),
            (false, None) => names::bare(own),
        }
    }

    /// Whether it is named by a URI (resources, templates) rather than a name.
    pub fn by_uri(self) -> bool {
        matches!(self, Kind::Resources | Kind::Templates)
    }

    /// Whether a member must answer its list. Tools are what every member is there for: a
    /// member that cannot list them has failed. The others are optional capabilities: an
    /// error answer (most often "method not found") is an empty list.
    pub fn required(self) -> bool {
        self == Kind::Tools
    }
}
