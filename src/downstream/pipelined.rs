//! Requests a client pipelined behind another: whether Pingora carried bytes of the next
//! request over from the last one, so the keep-alive loop must not wait on the socket for them.
//! It does not read or parse requests (Pingora does).

use std::fmt::Write as _;

use pingora::apps::HttpPersistentSettings;

/// Whether Pingora carries bytes of the next request over from the last one (the client
/// pipelined): they are read already, so waiting on the socket could wait forever.
///
/// Pingora 0.9.1 gives `HttpPersistentSettings` no accessor for them, only `Debug`, whose
/// output names the field before any of its bytes; the writer stops formatting as soon as
/// that is decided, so the bytes themselves are never formatted. `carried_request_bytes_*`
/// tests pin this against the Pingora in `Cargo.lock`.
pub fn carries_request_bytes(settings: &HttpPersistentSettings) -> bool {
    // Undecided means Pingora changed its `Debug`: never wait on the socket then.
    Verdict::of(settings).found.unwrap_or(true)
}

/// Follows a `Debug` output piece by piece and stops it at the verdict. `Debug` for a struct
/// writes each field name, then `": "`, then the value, whose `Option` starts with `None` or
/// `Some`; looking at whole pieces keeps this to a few comparisons per field.
struct Verdict {
    /// The last piece was the field's name.
    at_field: bool,
    /// Pieces of output looked at.
    read: usize,
    found: Option<bool>,
}

impl Verdict {
    fn of(settings: &HttpPersistentSettings) -> Verdict {
        let mut v = Verdict { at_field: false, read: 0, found: None };
        let _ = write!(v, "{settings:?}");
        v
    }
}

impl std::fmt::Write for Verdict {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.read += 1;
        if !self.at_field {
            self.at_field = s == "pipelined_prefix";
            return Ok(());
        }
        if s == ": " {
            return Ok(());
        }
        self.found = match s {
            "None" => Some(false),
            _ if s.starts_with("Some") => Some(true),
            _ => None,
        };
        // Decided, or the layout is not the expected one: stop formatting either way.
        Err(std::fmt::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use pingora::protocols::http::ServerSession;

    fn settings() -> HttpPersistentSettings {
        let (io, _peer) = tokio::io::duplex(64);
        HttpPersistentSettings::for_session(&ServerSession::new_http1(Box::new(io)))
    }

    #[test]
    fn carried_request_bytes_are_seen_through_pingoras_debug() {
        let mut s = settings();
        assert!(!carries_request_bytes(&s), "a plain keep-alive connection waits on its socket");
        s.set_user_context(Box::new("pipelined_prefix: Some"));
        assert!(!carries_request_bytes(&s), "a user context does not fool it");
        s.set_pipelined_prefix(BytesMut::from(&b"GET / HTTP/1.1\r\npipelined_prefix: None"[..]));
        assert!(carries_request_bytes(&s), "bytes of a pipelined request are served without waiting");
    }

    #[test]
    fn carried_request_bytes_are_decided_without_formatting_them() {
        let mut s = settings();
        s.set_pipelined_prefix(BytesMut::from(&vec![b'x'; 1 << 20][..]));
        let v = Verdict::of(&s);
        assert_eq!(v.found, Some(true));
        assert!(v.read < 40, "stopped at the field, not after 1 MiB of escaped bytes: {} pieces", v.read);
    }
}
