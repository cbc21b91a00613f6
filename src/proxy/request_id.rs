//! The request id: the client's `X-Request-Id` when it is a sane token, else one made here.
//! It travels to the backend and back to the client in `X-Request-Id`, and is in the access
//! line, so one request can be followed through client, proxy and backend logs. It does not
//! decide anything.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use http::{HeaderName, HeaderValue};
use pingora::http::RequestHeader;

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-supplied id kept (longer ones are replaced, not truncated).
const MAX_LEN: usize = 128;

/// A request's id, held as the header value it travels in (copied into headers by reference
/// count, not by bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestId {
    value: Option<HeaderValue>,
}

impl RequestId {
    pub fn as_str(&self) -> &str {
        // Always visible ASCII: a client's id passed `is_token`, a fresh one is hex.
        self.value.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The header value; None before the request was read.
    pub fn header(&self) -> Option<HeaderValue> {
        self.value.clone()
    }
}

/// The id for this request: the client's when it is 1 to 128 characters of `[A-Za-z0-9._:_-]`
/// (anything else could forge log lines or carry secrets), else a new one.
pub fn of(req: &RequestHeader) -> RequestId {
    let mut given = req.headers.get_all(HEADER).iter();
    match (given.next(), given.next()) {
        (Some(v), None) if is_token(v.as_bytes()) => RequestId { value: Some(v.clone()) },
        _ => RequestId { value: Some(fresh()) },
    }
}

fn is_token(v: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&v.len()) && v.iter().all(|b| b.is_ascii_alphanumeric() || b"._:-_".contains(b))
}

/// 32 hex digits, unique per process and unpredictable across processes: a random 64-bit
/// process prefix, then a per-thread random start advanced by one per request.
fn fresh() -> HeaderValue {
    static PROCESS: OnceLock<u64> = OnceLock::new();
    static THREADS: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static NEXT: Cell<u64> = const { Cell::new(0) };
    }
    let process = *PROCESS.get_or_init(random_u64);
    let n = NEXT.with(|next| {
        if next.get() == 0 {
            // Threads start 2^40 apart, so their sequences never meet.
            next.set((THREADS.fetch_add(1, Ordering::Relaxed) << 40) | 1);
        }
        let n = next.get();
        next.set(n.wrapping_add(1));
        n
    });
    let mut hex = [0u8; 32];
    for (i, digit) in hex.iter_mut().enumerate() {
        let word = if i < 16 { process } else { n };
        let nibble = (word >> (60 - 4 * (i % 16))) & 0xf;
        *digit = b"0123456789abcdef"[nibble as usize];
    }
    // Hex digits are always a valid header value.
    HeaderValue::from_bytes(&hex).unwrap_or(HeaderValue::from_static("-"))
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // std's RandomState is seeded from the OS per process: enough for ids that only need to
    // differ between processes and replicas.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id().into());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ids: &[&str]) -> RequestHeader {
        let mut r = RequestHeader::build("POST", b"/mcp", None).expect("request");
        for id in ids {
            r.append_header(HEADER, *id).expect("header");
        }
        r
    }

    #[test]
    fn a_sane_client_id_is_kept_and_anything_else_replaced() {
        let kept = of(&req(&["abc-123.x:y_z"]));
        assert_eq!(kept.as_str(), "abc-123.x:y_z");
        for bad in ["", "a b", "a\"b", "x=1", &"a".repeat(129)] {
            let id = of(&req(&[bad]));
            assert_ne!(id.as_str(), bad);
            assert_eq!(id.as_str().len(), 32, "{id:?}");
            assert!(id.as_str().bytes().all(|b| b.is_ascii_hexdigit()), "{id:?}");
        }
        assert_eq!(of(&req(&["a", "b"])).as_str().len(), 32, "two ids: neither is believed");
    }

    #[test]
    fn fresh_ids_differ() {
        let (a, b) = (of(&req(&[])), of(&req(&[])));
        let (a, b) = (a.as_str(), b.as_str());
        assert_ne!(a, b);
        assert_eq!(a[..16], b[..16], "same process prefix");
        assert_eq!(
            u128::from_str_radix(b, 16).ok(),
            u128::from_str_radix(a, 16).ok().map(|n| n + 1),
            "next in sequence"
        );
    }
}
