//! The OTLP protobuf wire format, written straight into a buffer: the handful of field kinds a
//! span and its export request need (varints pushed onto the `Vec` directly: `prost`'s
//! generic encoder, through `BufMut`, measured as a third of a span's encoding time). Spans are encoded
//! once, on the request's thread, into bytes the export thread only concatenates: no
//! intermediate span objects, no per-attribute key `String`s, no second conversion.
//!
//! Field numbers are those of `opentelemetry/proto/trace/v1/trace.proto` and
//! `common/v1/common.proto`; the unit tests decode what is written here with the
//! `opentelemetry-proto` crate's generated types. Proto3 defaults (empty strings and bytes,
//! zero integers) are left out as the spec's encoders do; a `oneof` value is always written.

use prost::encoding::{encoded_len_varint, WireType};

/// A length-delimited field (bytes, string), left out when empty.
pub fn bytes(out: &mut Vec<u8>, field: u32, value: &[u8]) {
    if !value.is_empty() {
        always(out, field, value);
    }
}

/// A string field, left out when empty.
pub fn string(out: &mut Vec<u8>, field: u32, value: &str) {
    bytes(out, field, value.as_bytes());
}

/// A string field made of `parts`, written one after another (no joined copy).
pub fn string_of(out: &mut Vec<u8>, field: u32, parts: &[&str]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    tag(out, field, WireType::LengthDelimited);
    put(out, len as u64);
    for p in parts {
        out.extend_from_slice(p.as_bytes());
    }
}

/// A varint field (enums, unsigned and non-negative counts), left out when zero.
pub fn varint(out: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        tag(out, field, WireType::Varint);
        put(out, value);
    }
}

pub fn fixed64(out: &mut Vec<u8>, field: u32, value: u64) {
    tag(out, field, WireType::SixtyFourBit);
    out.extend_from_slice(&value.to_le_bytes());
}

pub fn fixed32(out: &mut Vec<u8>, field: u32, value: u32) {
    tag(out, field, WireType::ThirtyTwoBit);
    out.extend_from_slice(&value.to_le_bytes());
}

/// A nested message: `body` writes it after room for its key and a two-byte length (a span,
/// 128 bytes to 16 KiB), which are filled in once the length is known; another length moves
/// the body by a byte or so.
pub fn message(out: &mut Vec<u8>, field: u32, body: impl FnOnce(&mut Vec<u8>)) {
    const GUESS: usize = 2;
    tag(out, field, WireType::LengthDelimited);
    let start = out.len() + GUESS;
    out.resize(start, 0);
    body(out);
    let len = out.len() - start;
    let n = encoded_len_varint(len as u64);
    let key_end = start - GUESS;
    match n.cmp(&GUESS) {
        std::cmp::Ordering::Less => {
            out.copy_within(start.., key_end + n);
            out.truncate(key_end + n + len);
        }
        std::cmp::Ordering::Equal => {}
        std::cmp::Ordering::Greater => drop(out.splice(key_end..key_end, std::iter::repeat_n(0, n - GUESS))),
    }
    let mut value = len as u64;
    for byte in &mut out[key_end..key_end + n] {
        *byte = value as u8 | 0x80;
        value >>= 7;
    }
    out[key_end + n - 1] &= 0x7f;
}

/// A `KeyValue` with a string value, as field `field` (lengths computed, nothing moved).
pub fn attr_str(out: &mut Vec<u8>, field: u32, key: &str, value: &str) {
    let any = delimited_len(value.len());
    key_value(out, field, key, any);
    always(out, 1, value.as_bytes());
}

/// A `KeyValue` with an integer value.
pub fn attr_int(out: &mut Vec<u8>, field: u32, key: &str, value: i64) {
    let any = 1 + encoded_len_varint(value as u64);
    key_value(out, field, key, any);
    tag(out, 3, WireType::Varint);
    put(out, value as u64);
}

/// A `KeyValue`'s head and key, up to its `AnyValue`'s content (`any` bytes, written next).
fn key_value(out: &mut Vec<u8>, field: u32, key: &str, any: usize) {
    let kv = delimited_len(key.len()) + 1 + encoded_len_varint(any as u64) + any;
    tag(out, field, WireType::LengthDelimited);
    put(out, kv as u64);
    always(out, 1, key.as_bytes());
    tag(out, 2, WireType::LengthDelimited);
    put(out, any as u64);
}

/// A field's key: its number and wire type, as a varint.
fn tag(out: &mut Vec<u8>, field: u32, wire: WireType) {
    put(out, u64::from(field << 3 | wire as u32));
}

/// A varint: seven bits a byte, low first, the high bit set on all but the last.
fn put(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A length-delimited field even when empty (a `oneof` member, a key).
fn always(out: &mut Vec<u8>, field: u32, value: &[u8]) {
    tag(out, field, WireType::LengthDelimited);
    put(out, value.len() as u64);
    out.extend_from_slice(value);
}

/// The size of a one-byte-key length-delimited field holding `len` bytes.
fn delimited_len(len: usize) -> usize {
    1 + encoded_len_varint(len as u64) + len
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{any_value::Value, KeyValue};
    use opentelemetry_proto::tonic::trace::v1::{Span, Status};
    use prost::Message;

    #[test]
    fn attributes_decode_as_the_generated_types_read_them() {
        let long = "x".repeat(300);
        let mut out = Vec::new();
        attr_str(&mut out, 9, "gen_ai.tool.name", "get_weather");
        attr_str(&mut out, 9, "empty", "");
        attr_str(&mut out, 9, "long", &long);
        attr_int(&mut out, 9, "http.response.status_code", 404);
        attr_int(&mut out, 9, "negative", -1);
        let span = Span::decode(&out[..]).expect("decodes");
        let value = |kv: &KeyValue| kv.value.as_ref().and_then(|v| v.value.clone());
        let got: Vec<_> = span.attributes.iter().map(|kv| (kv.key.as_str(), value(kv))).collect();
        assert_eq!(
            got,
            [
                ("gen_ai.tool.name", Some(Value::StringValue("get_weather".into()))),
                ("empty", Some(Value::StringValue(String::new()))),
                ("long", Some(Value::StringValue(long.clone()))),
                ("http.response.status_code", Some(Value::IntValue(404))),
                ("negative", Some(Value::IntValue(-1))),
            ]
        );
    }

    #[test]
    fn nested_messages_get_their_length_in_front() {
        let name = "n".repeat(200); // a two-byte length
        let mut out = Vec::new();
        string_of(&mut out, 5, &["tools/call", " ", &name]);
        message(&mut out, 15, |o| {
            string(o, 2, "timeout");
            varint(o, 3, 2);
        });
        let big = "b".repeat(20_000); // a three-byte length
        message(&mut out, 13, |o| string(o, 3, &big));
        fixed64(&mut out, 7, 1_700_000_000_000_000_001);
        fixed32(&mut out, 16, 0x301);
        let span = Span::decode(&out[..]).expect("decodes");
        assert_eq!(span.name, format!("tools/call {name}"));
        assert_eq!(span.status, Some(Status { message: "timeout".into(), code: 2 }));
        assert_eq!((span.start_time_unix_nano, span.flags), (1_700_000_000_000_000_001, 0x301));
        assert_eq!(span.links.iter().map(|l| l.trace_state.len()).collect::<Vec<_>>(), [20_000]);
    }
}
