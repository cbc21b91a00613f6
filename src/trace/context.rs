//! W3C Trace Context on the wire: reading a client's `traceparent` (from the HTTP header or
//! from `params._meta`) and writing the proxy's own. A client's value is untrusted input: it
//! is parsed strictly (lower-case hex, no all-zero ids, version `ff` refused, a later version
//! read by its version-00 prefix as the spec asks), and anything else is treated as absent,
//! never as an error the client sees. `tracestate` is carried opaquely, within the spec's
//! size, never parsed here.

use opentelemetry::trace::{SpanId, TraceId};

/// The length of a version-00 `traceparent`: `00-` 32 hex `-` 16 hex `-` 2 hex.
pub const LEN: usize = 55;
/// Longer `tracestate` values may be dropped (W3C: at least 512 bytes must be carried).
pub const MAX_STATE: usize = 512;

/// A remote span context: whose child the proxy's span is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remote {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub sampled: bool,
}

/// Parses a `traceparent` value (surrounding spaces and tabs allowed); `None` for anything
/// the spec says to ignore.
pub fn parse(value: &[u8]) -> Option<Remote> {
    let v = value.trim_ascii();
    if v.len() < LEN {
        return None;
    }
    let version = hex_byte(&v[0..2])?;
    // Version 00 is exactly 55 bytes; a later version may append `-`-led fields.
    if version == 0xff || (version == 0 && v.len() != LEN) || (v.len() > LEN && v[LEN] != b'-') {
        return None;
    }
    if v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let trace_id = u128::from_be_bytes(hex_array(&v[3..35])?);
    let span_id = u64::from_be_bytes(hex_array(&v[36..52])?);
    let flags = hex_byte(&v[53..55])?;
    if trace_id == 0 || span_id == 0 {
        return None;
    }
    Some(Remote { trace_id: TraceId::from(trace_id), span_id: SpanId::from(span_id), sampled: flags & 1 == 1 })
}

/// The version-00 `traceparent` for a span: what the proxy sends upstream.
pub fn format(trace_id: TraceId, span_id: SpanId, sampled: bool) -> [u8; LEN] {
    let mut out = [0u8; LEN];
    out[..3].copy_from_slice(b"00-");
    put_hex(&mut out[3..35], &trace_id.to_bytes());
    out[35] = b'-';
    put_hex(&mut out[36..52], &span_id.to_bytes());
    out[52] = b'-';
    put_hex(&mut out[53..55], &[u8::from(sampled)]);
    out
}

/// A `tracestate` worth carrying: visible ASCII, spaces and tabs, within [`MAX_STATE`].
pub fn state(value: &[u8]) -> Option<&str> {
    let ok = !value.is_empty()
        && value.len() <= MAX_STATE
        && value.iter().all(|&b| b == b'\t' || (0x20..=0x7e).contains(&b));
    ok.then(|| std::str::from_utf8(value).ok()).flatten()
}

fn hex_array<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *byte = hex_byte(pair)?;
    }
    Some(out)
}

fn hex_byte(pair: &[u8]) -> Option<u8> {
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    Some(digit(*pair.first()?)? << 4 | digit(*pair.get(1)?)?)
}

fn put_hex(out: &mut [u8], bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 15)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn reads_the_spec_example_and_writes_it_back() {
        let r = parse(GOOD.as_bytes()).expect("valid");
        assert!(r.sampled);
        assert_eq!(format(r.trace_id, r.span_id, r.sampled), GOOD.as_bytes());
        assert_eq!(parse(format!(" {GOOD}\t").as_bytes()), Some(r));
        assert!(!parse(GOOD.replace("-01", "-00").as_bytes()).expect("valid").sampled);
    }

    #[test]
    fn refuses_what_the_spec_says_to_ignore() {
        for bad in [
            GOOD.to_uppercase().as_str(),
            &GOOD.replace("0af7651916cd43dd8448eb211c80319c", "00000000000000000000000000000000"),
            &GOOD.replace("b7ad6b7169203331", "0000000000000000"),
            &GOOD.replacen("00-", "ff-", 1),
            &format!("{GOOD}-extra"),
            &GOOD[..54],
            &GOOD.replace('-', "_"),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333g-01",
            "",
        ] {
            assert_eq!(parse(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn a_later_version_is_read_by_its_prefix() {
        let later = format!("{}-more", GOOD.replacen("00-", "01-", 1));
        assert!(parse(later.as_bytes()).is_some());
        assert_eq!(parse(GOOD.replacen("00-", "01-", 1).replace("-01", "-01x").as_bytes()), None);
    }

    #[test]
    fn carries_only_a_tracestate_within_bounds() {
        assert_eq!(state(b"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"), Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"));
        assert_eq!(state(&[b'a'; MAX_STATE + 1]), None);
        assert_eq!(state(b"a=b\r\nx: y"), None);
        assert_eq!(state(b""), None);
    }
}
