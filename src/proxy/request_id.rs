//! The request id: the client's `X-Request-Id` when it is a sane token, else one made here.
//! It travels to the backend and back to the client in `X-Request-Id`, and is in the access
//! line, so one request can be followed through client, proxy and backend logs. It does not
//! decide anything.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use pingora::http::RequestHeader;

pub const HEADER: &str = "x-request-id";

/// Longest client-supplied id kept (longer ones are replaced, not truncated).
const MAX_LEN: usize = 128;

/// The id for this request: the client's when it is 1 to 128 characters of `[A-Za-z0-9._:_-]`
/// (anything else could forge log lines or carry secrets), else a new one.
pub fn of(req: &RequestHeader) -> String {
    let mut given = req.headers.get_all(HEADER).iter();
    match (given.next(), given.next()) {
        (Some(v), None) if is_token(v.as_bytes()) => String::from_utf8_lossy(v.as_bytes()).into_owned(),
        _ => fresh(),
    }
}

fn is_token(v: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&v.len()) && v.iter().all(|b| b.is_ascii_alphanumeric() || b"._:-_".contains(b))
}

/// 32 hex digits, unique per process and unpredictable across processes: a random 64-bit
/// process prefix, then a per-thread random start advanced by one per request.
fn fresh() -> String {
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
    format!("{process:016x}{n:016x}")
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
        assert_eq!(of(&req(&["abc-123.x:y_z"])), "abc-123.x:y_z");
        for bad in ["", "a b", "a\"b", "x=1", &"a".repeat(129)] {
            let id = of(&req(&[bad]));
            assert_ne!(id, bad);
            assert_eq!(id.len(), 32, "{id}");
        }
        assert_eq!(of(&req(&["a", "b"])).len(), 32, "two ids: neither is believed");
    }

    #[test]
    fn fresh_ids_differ() {
        let a = of(&req(&[]));
        let b = of(&req(&[]));
        assert_ne!(a, b);
        assert_eq!(a[..16], b[..16], "same process prefix");
    }
}
