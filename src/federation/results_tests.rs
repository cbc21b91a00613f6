//! The result cache's keys, what it keeps, and its bounds.

use std::time::Duration;

use super::*;

fn results(ttl: Duration, max_bytes: usize) -> Results {
    let config = ResultCache { tools: Vec::new(), read_only_hint: true, ttl, max_bytes };
    Results::new("r", &config, &Metrics::new().expect("metrics"))
}

const ALICE: Asker<'static> = Asker { identity: Some(("alice", None)), version: "2025-11-25", member: 0, own: "t" };

fn call(arguments: &str) -> Vec<u8> {
    format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"a_t","arguments":{arguments}}}}}"#)
        .into_bytes()
}

fn key_of(asker: &Asker<'_>, arguments: &str) -> Option<Key> {
    key(asker, "a_t", &call(arguments))
}

/// Where `cache` keeps the answer to a call under `k` (a lookup that misses).
fn miss(cache: &Results, k: Key) -> Miss {
    cache.get(k).expect_err("a miss")
}

#[test]
fn a_key_names_the_caller_the_version_the_tool_and_the_arguments_as_written() {
    let base = key_of(&ALICE, r#"{"q":1}"#).expect("key");
    assert_eq!(key_of(&ALICE, r#"{"q":1}"#), Some(base));
    let others = [
        key_of(&Asker { identity: Some(("bob", None)), ..ALICE }, r#"{"q":1}"#),
        key_of(&Asker { identity: Some(("alice", Some("t"))), ..ALICE }, r#"{"q":1}"#),
        key_of(&Asker { identity: None, ..ALICE }, r#"{"q":1}"#),
        // The parts are length-prefixed: no shifting of bytes from one to the next.
        key_of(&Asker { identity: Some(("alic", Some("e"))), ..ALICE }, r#"{"q":1}"#),
        key_of(&Asker { version: "2025-06-18", ..ALICE }, r#"{"q":1}"#),
        key_of(&Asker { member: 1, ..ALICE }, r#"{"q":1}"#),
        key_of(&Asker { own: "a_t", ..ALICE }, r#"{"q":1}"#),
        key_of(&ALICE, r#"{"q":2}"#),
        key_of(&ALICE, r#"{"q": 1}"#),
        key(&ALICE, "a_u", &call(r#"{"q":1}"#)),
    ];
    for (i, other) in others.iter().enumerate() {
        assert!(other.is_some_and(|k| k != base), "case {i}");
    }
    // Read twice, two readers could disagree: never a key.
    assert_eq!(key(&ALICE, "a_t", br#"{"params":{"arguments":{"q":1},"arguments":{"q":2}}}"#), None);
    assert_eq!(key(&ALICE, "a_t", br#"{"params":{},"params":{"arguments":{}}}"#), None);
    assert_eq!(key(&ALICE, "a_t", b"not json"), None);
    // No arguments, and null arguments, are calls of their own.
    let none = key(&ALICE, "a_t", br#"{"params":{"name":"a_t"}}"#).expect("key");
    let null = key(&ALICE, "a_t", br#"{"params":{"name":"a_t","arguments":null}}"#).expect("key");
    assert!(none != null && none != base && null != base);
    // A call whose result answers more than its arguments is never a key (an attack had a
    // result after an input round served to a plain call).
    for more in [
        r#""requestState":"s""#,
        r#""inputResponses":{}"#,
        r#""task":{"ttl":1}"#,
        r#""t\u0061sk":{}"#,
        r#""cursor":"c""#,
    ] {
        let body = format!(r#"{{"params":{{"name":"a_t","arguments":{{}},{more}}}}}"#);
        assert_eq!(key(&ALICE, "a_t", body.as_bytes()), None, "{more}");
    }
    assert!(key(&ALICE, "a_t", br#"{"params":{"name":"a_t","arguments":{},"_meta":{"progressToken":1}}}"#).is_some());
}

fn answer(result: &str) -> Vec<u8> {
    format!(r#"{{"jsonrpc":"2.0","id":7,"result":{result}}}"#).into_bytes()
}

#[test]
fn only_a_complete_result_is_kept_and_it_is_the_result_alone() {
    let cache = results(Duration::from_secs(60), 1 << 20);
    let k = key_of(&ALICE, "{}").expect("key");
    for refused in [
        r#"{"content":[],"isError":true}"#,
        r#"{"resultType":"input_required","inputRequests":{}}"#,
        r#"{"content":[],"requestState":"x"}"#,
        r#"{"content":[],"inputResponses":{}}"#,
        r#"{"content":[],"ttlMs":0}"#,
        r#"{"content":[],"isError":false,"isError":true}"#,
        r#"[1]"#,
    ] {
        assert!(!cache.put(miss(&cache, k), b"7", &answer(refused)), "{refused}");
    }
    assert!(!cache.put(miss(&cache, k), b"7", br#"{"jsonrpc":"2.0","id":7,"error":{"code":1,"message":"x"}}"#));
    // Not the call's answer: another id, none, null, twice, or not JSON-RPC 2.0 (an attack
    // had each kept and served, its id repaired, to the next caller).
    for other in [
        &br#"{"jsonrpc":"2.0","id":"7","result":{}}"#[..],
        br#"{"jsonrpc":"2.0","id":8,"result":{}}"#,
        br#"{"jsonrpc":"2.0","result":{}}"#,
        br#"{"jsonrpc":"2.0","id":null,"result":{}}"#,
        br#"{"jsonrpc":"2.0","id":7,"id":8,"result":{}}"#,
        br#"{"id":7,"result":{}}"#,
        br#"{"jsonrpc":"1.0","id":7,"result":{}}"#,
        // What a case-insensitive reader (Go's) takes for another id, result or error.
        br#"{"jsonrpc":"2.0","id":7,"ID":8,"result":{}}"#,
        br#"{"jsonrpc":"2.0","id":7,"result":{},"Result":{"content":[]}}"#,
        br#"{"jsonrpc":"2.0","id":7,"result":{},"Error":{"code":1,"message":"x"}}"#,
        br#"{"jsonrpc":"2.0","id":7,"result":{"content":[],"IsError":true}}"#,
        br#"{"jsonrpc":"2.0","id":7,"result":{"content":[],"ResultType":"input_required"}}"#,
    ] {
        assert!(!cache.put(miss(&cache, k), b"7", other), "{}", String::from_utf8_lossy(other));
    }
    assert!(!cache.put(miss(&cache, k), b"null", br#"{"jsonrpc":"2.0","id":null,"result":{}}"#));
    // Numbers past a double's precision are not one id because they read as one double.
    let big = br#"{"jsonrpc":"2.0","id":123456789012345678901234567891,"result":{}}"#;
    assert!(!cache.put(miss(&cache, k), b"123456789012345678901234567890", big));
    // A task's handle is not the call's result.
    assert!(!cache.put(miss(&cache, k), b"7", &answer(r#"{"task":{"taskId":"t","status":"working"}}"#)));
    assert!(cache.put(
        miss(&cache, k),
        b"7",
        &answer(r#"{"content":[{"type":"text","text":"hi"}],"resultType":"compl\u0065te"}"#)
    ));
    assert_eq!(
        cache.get(k).ok().as_deref(),
        Some(&br#"{"content":[{"type":"text","text":"hi"}],"resultType":"compl\u0065te"}"#[..])
    );
    let [hits, misses, entries, _] = cache.counts();
    assert_eq!((hits, entries), (1, 1));
    assert!(misses >= 24);
}

#[test]
fn a_result_lives_for_the_ttl_or_its_own_shorter_ttl_ms() {
    let cache = results(Duration::from_millis(300), 1 << 20);
    let (long, short) = (key_of(&ALICE, "1").expect("key"), key_of(&ALICE, "2").expect("key"));
    assert!(cache.put(miss(&cache, long), b"7", &answer(r#"{"content":[],"ttlMs":1e9}"#)));
    assert!(cache.put(miss(&cache, short), b"7", &answer(r#"{"content":[],"ttlMs":1}"#)));
    std::thread::sleep(Duration::from_millis(20));
    assert!(cache.get(short).is_err(), "its own ttlMs was shorter");
    assert!(cache.get(long).is_ok(), "capped at the route's ttl, not yet past");
    std::thread::sleep(Duration::from_millis(300));
    assert!(cache.get(long).is_err(), "past the route's ttl");
    assert_eq!(cache.counts()[2], 0, "expired entries are dropped when found");
}

#[test]
fn the_oldest_results_make_room_and_the_bytes_stay_within_max_bytes() {
    let text = "x".repeat(1000);
    let one = answer(&format!(r#"{{"content":[{{"type":"text","text":"{text}"}}]}}"#));
    let cache = results(Duration::from_secs(60), 10_000);
    let keys: Vec<Key> = (0..30).map(|i| key_of(&ALICE, &i.to_string()).expect("key")).collect();
    for k in &keys {
        assert!(cache.put(miss(&cache, *k), b"7", &one));
        assert!(cache.counts()[3] <= 10_000);
    }
    assert!(cache.get(keys[0]).is_err(), "the oldest made room");
    assert!(cache.get(keys[29]).is_ok(), "the newest is kept");
    // Stored again and again, one key holds one entry (and its stale places are dropped).
    let again = Miss { key: keys[29], epoch: 0 };
    for _ in 0..1000 {
        assert!(cache.put(again, b"7", &one));
    }
    let [_, _, entries, bytes] = cache.counts();
    assert!(entries <= 10 && bytes <= 10_000, "{entries} {bytes}");
    assert!(cache.held.lock().map(|h| h.order.len()).unwrap_or(usize::MAX) < 200);
    // Larger than the whole cache: not kept.
    let huge = answer(&format!(r#"{{"content":[{{"type":"text","text":"{}"}}]}}"#, "y".repeat(20_000)));
    assert!(!cache.put(miss(&cache, keys[1]), b"7", &huge));
    // Forgotten, and an answer to a call sent before is not kept after (an attack found it).
    let before = miss(&cache, keys[2]);
    cache.clear();
    assert_eq!(cache.counts()[2..], [0, 0]);
    assert!(cache.get(keys[29]).is_err());
    assert!(!cache.put(before, b"7", &one), "a call sent before the invalidation");
    assert!(cache.put(miss(&cache, keys[2]), b"7", &one));
}
