//! `traceparent`: a client's W3C trace context, from a header or `params._meta`, read by
//! `trace::context::parse`. It never panics; what it accepts has non-zero ids and a version
//! other than `ff`, and writing it back (`format`) gives a value that parses to the same
//! context; a version-00 value is written back byte for byte (lower-case hex is the only
//! spelling accepted). `tracestate` is carried only within its bounds and free of control
//! characters (no header injection).
//!
//! Input: the whole input is the value.

use mcp_edge::trace::context::{format, parse, state, LEN, MAX_STATE};

pub fn check(data: &[u8]) {
    if let Some(r) = parse(data) {
        assert!(r.trace_id.to_bytes() != [0; 16] && r.span_id.to_bytes() != [0; 8], "an all-zero id");
        let written = format(r.trace_id, r.span_id, r.sampled);
        assert_eq!(parse(&written), Some(r), "written back, read differently");
        let trimmed = data.trim_ascii();
        assert!(!trimmed.starts_with(b"ff"), "version ff accepted");
        if trimmed.starts_with(b"00") {
            assert_eq!(trimmed.len(), LEN, "a version-00 value of another length");
            assert_eq!(trimmed[..53], written[..53], "ids not written back as read");
            // Only the sampled bit is kept; the other flag bits are not the proxy's to forward.
            let flags = u8::from_str_radix(std::str::from_utf8(&trimmed[53..]).unwrap_or("zz"), 16).ok();
            assert_eq!(flags.map(|f| f & 1 == 1), Some(r.sampled), "sampled flag");
        }
    }
    if let Some(s) = state(data) {
        assert!(
            s.len() <= MAX_STATE && s.bytes().all(|b| b == b'\t' || (0x20..=0x7e).contains(&b)),
            "tracestate {s:?}"
        );
    }
}
