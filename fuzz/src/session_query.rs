//! `session_query`: where a request's query names its session, read as backends read it. The
//! proxy's reading (`affinity::session_params`) never panics, its value ranges are the values,
//! and it misses nothing a backend would take for a session id: for each way backends split
//! and decode a query (on `&` alone as Python 3.10+ and Express do, or on `&` and `;` as older
//! parsers did; keys percent-decoded, `+` a space, a `[...]` suffix dropped as Express's `qs`
//! does, or as PHP mangles names) and each parameter name the SDKs read
//! (`session_id`, `sessionId`), every value such a backend reads comes from the one parameter
//! the proxy found, or the proxy saw more than one and refuses the request. So a raw id can
//! never ride past the proxy's check next to (or instead of) a token. A parameter the proxy
//! reads without a value is refused whatever follows (`sessionId[;]=x`, where an `&`-only
//! backend reads `x`), so there the offsets may differ.
//!
//! Input: the whole input, as UTF-8 (lossy), is the query.

use mcp_edge::proxy::affinity::session_params;

const NAMES: [&str; 2] = ["session_id", "sessionId"];

pub fn check(data: &[u8]) {
    let query = String::from_utf8_lossy(data);
    let found: Vec<_> = session_params(&query).collect();
    for ((start, end), value) in &found {
        assert_eq!(query.get(*start..*end), Some(*value), "a range that is not its value");
    }
    if found.len() > 1 {
        return; // refused as ambiguous
    }
    for separators in [&['&'][..], &['&', ';'][..]] {
        for (key_at, key, value_at) in pieces(&query, separators) {
            // Express's `qs` reads `sessionId[]` and `sessionId[0]` as the parameter too.
            let decoded = decode(key);
            let qs = decoded.split('[').next().unwrap_or_default();
            if !NAMES.contains(&qs) && !NAMES.contains(&php(&decoded).as_str()) {
                continue;
            }
            let Some(((start, _), value)) = found.first() else {
                panic!(
                    "a backend splitting on {separators:?} reads the session at {key_at} the proxy missed: {query:?}"
                );
            };
            if value.is_empty() {
                continue; // refused: `pin_session` takes no empty value, in any mode
            }
            assert_eq!(value_at, *start, "a backend reads another session parameter than the proxy: {query:?}");
        }
    }
}

/// `(offset of the key, key, offset of the value)` of each parameter, split as a backend would.
fn pieces<'a>(query: &'a str, separators: &'a [char]) -> impl Iterator<Item = (usize, &'a str, usize)> + 'a {
    let mut at = 0;
    query.split(separators).map(move |piece| {
        let key_at = at;
        at += piece.len() + 1;
        let key = piece.split('=').next().unwrap_or_default();
        (key_at, key, key_at + (key.len() + 1).min(piece.len()))
    })
}

/// A decoded name as PHP reads it into `$_GET`: leading spaces dropped, an unmatched first
/// `[` read as `_`, the name ending at a `[`, spaces and dots read as `_`.
fn php(name: &str) -> String {
    let mut name = name.trim_start_matches(' ').to_owned();
    if let Some(i) = name.find('[') {
        if !name[i..].contains(']') {
            name.replace_range(i..=i, "_");
        }
    }
    name.split('[').next().unwrap_or_default().replace([' ', '.'], "_")
}

/// Percent-decoding as `urllib.parse.unquote_plus` does it: `+` is a space, `%XX` with two hex
/// digits is a byte, anything else stays, and the bytes are read as UTF-8, lossily.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
