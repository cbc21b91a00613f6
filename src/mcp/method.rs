//! MCP method names the proxy understands, and the protocol era of a request. The enum's
//! `as_str` doubles as the bounded metric label: unknown methods are `other`.

/// Protocol era, told per request from `MCP-Protocol-Version` (absent means 2025-03-26).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// 2024-11-05 .. 2025-11-25: initialize + `Mcp-Session-Id`.
    Legacy,
    /// 2026-07-28 and later: stateless, `Mcp-Method`/`Mcp-Name` headers required.
    Modern,
}

pub const FIRST_MODERN_VERSION: &str = "2026-07-28";

impl Era {
    pub fn from_version_header(value: Option<&[u8]>) -> Era {
        // Versions are ISO dates, so byte order is date order.
        match value {
            Some(v) if v.len() == 10 && v >= FIRST_MODERN_VERSION.as_bytes() => Era::Modern,
            _ => Era::Legacy,
        }
    }

    /// Whether a version header is a protocol version with something after it
    /// (`2026-07-28x`): read as legacy here, while a backend reading a prefix sees the date.
    pub fn spoofed(value: &[u8]) -> bool {
        let date = |d: &[u8]| {
            d.len() == 10
                && d.iter().enumerate().all(|(i, b)| if i == 4 || i == 7 { *b == b'-' } else { b.is_ascii_digit() })
        };
        value.len() > 10 && value.get(..10).is_some_and(date)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Era::Legacy => "legacy",
            Era::Modern => "modern",
        }
    }
}

/// Where a method keeps its routing target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// `params.name`: a tool (tools/call) or a prompt (prompts/get).
    Tool,
    Prompt,
    /// `params.uri`: resources/read, subscribe, unsubscribe.
    Resource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Initialize,
    Ping,
    ServerDiscover,
    ToolsList,
    ToolsCall,
    PromptsList,
    PromptsGet,
    ResourcesList,
    ResourcesRead,
    ResourcesTemplatesList,
    ResourcesSubscribe,
    ResourcesUnsubscribe,
    CompletionComplete,
    LoggingSetLevel,
    SubscriptionsListen,
    Notification,
    /// A JSON-RPC response from the client (no method).
    Response,
    Batch,
    Other,
    /// Not a JSON-RPC POST (GET stream, DELETE, or a body the route did not read).
    None,
}

/// Every method name [`Method::parse`] knows (notifications aside: any `notifications/…`).
pub const KNOWN_METHODS: [&str; 15] = [
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "completion/complete",
    "logging/setLevel",
    "subscriptions/listen",
];

impl Method {
    pub fn parse(name: &str) -> Method {
        match name {
            "initialize" => Method::Initialize,
            "ping" => Method::Ping,
            "server/discover" => Method::ServerDiscover,
            "tools/list" => Method::ToolsList,
            "tools/call" => Method::ToolsCall,
            "prompts/list" => Method::PromptsList,
            "prompts/get" => Method::PromptsGet,
            "resources/list" => Method::ResourcesList,
            "resources/read" => Method::ResourcesRead,
            "resources/templates/list" => Method::ResourcesTemplatesList,
            "resources/subscribe" => Method::ResourcesSubscribe,
            "resources/unsubscribe" => Method::ResourcesUnsubscribe,
            "completion/complete" => Method::CompletionComplete,
            "logging/setLevel" => Method::LoggingSetLevel,
            "subscriptions/listen" => Method::SubscriptionsListen,
            n if n.starts_with("notifications/") => Method::Notification,
            _ => Method::Other,
        }
    }

    /// Methods that only read, so resending one to another backend after it reached the first
    /// cannot do anything twice.
    pub fn is_safe(self) -> bool {
        matches!(
            self,
            Method::Ping
                | Method::ServerDiscover
                | Method::ToolsList
                | Method::PromptsList
                | Method::ResourcesList
                | Method::ResourcesRead
                | Method::ResourcesTemplatesList
        )
    }

    /// Methods 2026-07-28 removed: a server of that era answers them "method not found"
    /// (404), whatever their params.
    pub fn removed_in_modern(self) -> bool {
        matches!(
            self,
            Method::Initialize
                | Method::Ping
                | Method::LoggingSetLevel
                | Method::ResourcesSubscribe
                | Method::ResourcesUnsubscribe
        )
    }

    pub fn target_kind(self) -> Option<TargetKind> {
        match self {
            Method::ToolsCall => Some(TargetKind::Tool),
            Method::PromptsGet => Some(TargetKind::Prompt),
            Method::ResourcesRead | Method::ResourcesSubscribe | Method::ResourcesUnsubscribe => {
                Some(TargetKind::Resource)
            }
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Initialize => "initialize",
            Method::Ping => "ping",
            Method::ServerDiscover => "server/discover",
            Method::ToolsList => "tools/list",
            Method::ToolsCall => "tools/call",
            Method::PromptsList => "prompts/list",
            Method::PromptsGet => "prompts/get",
            Method::ResourcesList => "resources/list",
            Method::ResourcesRead => "resources/read",
            Method::ResourcesTemplatesList => "resources/templates/list",
            Method::ResourcesSubscribe => "resources/subscribe",
            Method::ResourcesUnsubscribe => "resources/unsubscribe",
            Method::CompletionComplete => "completion/complete",
            Method::LoggingSetLevel => "logging/setLevel",
            Method::SubscriptionsListen => "subscriptions/listen",
            Method::Notification => "notification",
            Method::Response => "response",
            Method::Batch => "batch",
            Method::Other => "other",
            Method::None => "-",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn era_from_header() {
        assert_eq!(Era::from_version_header(None), Era::Legacy);
        assert_eq!(Era::from_version_header(Some(b"2025-06-18")), Era::Legacy);
        assert_eq!(Era::from_version_header(Some(b"2026-07-28")), Era::Modern);
        assert_eq!(Era::from_version_header(Some(b"2027-01-01")), Era::Modern);
        assert_eq!(Era::from_version_header(Some(b"zzzz")), Era::Legacy);
        assert!(KNOWN_METHODS.iter().all(|m| Method::parse(m) != Method::Other));
        for bad in [&b"2026-07-28x"[..], b"2025-06-18 ", b"2026-07-28-1"] {
            assert!(Era::spoofed(bad), "{:?}", String::from_utf8_lossy(bad));
        }
        for fine in [&b"2026-07-28"[..], b"2025-06-18", b"DRAFT-2026-v1", b"zzzz"] {
            assert!(!Era::spoofed(fine), "{:?}", String::from_utf8_lossy(fine));
        }
    }

    #[test]
    fn methods_round_trip_and_know_their_target() {
        for m in ["tools/call", "prompts/get", "resources/read", "initialize", "server/discover"] {
            assert_eq!(Method::parse(m).as_str(), m);
        }
        assert_eq!(Method::parse("notifications/progress"), Method::Notification);
        assert_eq!(Method::parse("x/y"), Method::Other);
        assert_eq!(Method::ToolsCall.target_kind(), Some(TargetKind::Tool));
        assert_eq!(Method::Ping.target_kind(), None);
    }
}
