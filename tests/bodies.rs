//! Request bodies that the proxy reads to route arrive upstream byte-exact at every size up to
//! max_body_bytes; chunked bodies it cannot replay get 411; Expect: 100-continue works.

mod common;

use std::io::{BufReader, Write};

use common::http::{self, read_response, JSON_HEADERS};
use common::{pool, Edge, Mock, Opts};
use sha2::{Digest, Sha256};

/// A tools/call of the mock's `bytes` tool padded to exactly `size` bytes.
fn body_of(size: usize) -> Vec<u8> {
    let head = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"bytes","arguments":{"pad":""#;
    let tail = r#""}}}"#;
    let pad = size.saturating_sub(head.len() + tail.len());
    // A varied pattern, so a shifted or repeated block would change the hash.
    let filler: String = (0..pad).map(|i| char::from(b'a' + (i * 7 % 26) as u8)).collect();
    format!("{head}{filler}{tail}").into_bytes()
}

/// What the mock says it received: (length, sha256 hex).
fn received(resp: &http::Resp) -> (u64, String) {
    let v = resp.json();
    let text = v["result"]["content"][0]["text"].as_str().unwrap_or_else(|| panic!("no text: {v}"));
    let inner: serde_json::Value = serde_json::from_str(text).expect("mock reports JSON");
    (inner["len"].as_u64().expect("len"), inner["sha256"].as_str().expect("sha").to_owned())
}

fn reading_edge(mock: &Mock, max: usize) -> Edge {
    let body = format!(
        "{}[[route]]\nname = \"main\"\npath = \"/mcp\"\npool = \"p\"\ninspect = \"always\"\n",
        pool("p", &[mock], "")
    );
    Edge::start_opts(&body, Opts { proxy: &format!("max_body_bytes = {max}"), ..Opts::default() })
}

#[test]
fn bodies_arrive_byte_exact_from_empty_args_to_megabytes() {
    let mock = Mock::start("m", false);
    let edge = reading_edge(&mock, 4 << 20);
    for size in [200, 65_535, 65_536, 65_537, 131_072, 200_000, 1 << 20, 4 << 20] {
        let body = body_of(size);
        let r = http::request(edge.port, "POST", "/mcp", &JSON_HEADERS, &body);
        assert_eq!(r.status, 200, "size {size}: {}", r.text());
        let expected = (body.len() as u64, hex(&Sha256::digest(&body)));
        assert_eq!(received(&r), expected, "size {size}");
    }
}

#[test]
fn bodies_over_the_limit_get_413_before_reaching_a_backend() {
    let mock = Mock::start("m", false);
    let edge = reading_edge(&mock, 4 << 20);
    // Refused from Content-Length alone: the answer comes before the client sends the body.
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        (4 << 20) + 1
    );
    let mut s = http::connect(edge.port);
    s.write_all(head.as_bytes()).expect("head");
    let r = read_response(&mut BufReader::new(s));
    assert_eq!(r.status, 413);
    assert_eq!(r.header("connection"), Some("close"), "the unread body makes the connection unusable");
    assert_eq!(r.json()["error"]["code"], -32600);
}

#[test]
fn small_chunked_bodies_are_replayed_and_large_ones_get_411() {
    let mock = Mock::start("m", false);
    let edge = reading_edge(&mock, 4 << 20);
    let small = body_of(10_000);
    let r = chunked_post(edge.port, &small);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(received(&r).0, small.len() as u64);
    let r = chunked_post(edge.port, &body_of(100_000));
    assert_eq!(r.status, 411);
    assert!(r.json()["error"]["message"].as_str().expect("message").contains("Content-Length"));
}

#[test]
fn expect_100_continue_is_answered_and_the_body_forwarded() {
    let mock = Mock::start("m", false);
    let edge = reading_edge(&mock, 4 << 20);
    let body = body_of(150_000);
    let mut s = http::connect(edge.port);
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("head");
    let mut reader = BufReader::new(s.try_clone().expect("clone"));
    let (status, _) = http::read_head(&mut reader);
    assert_eq!(status, 100, "the proxy says continue before the body is sent");
    s.write_all(&body).expect("body");
    let r = read_response(&mut reader);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(received(&r).1, hex(&Sha256::digest(&body)));
}

#[test]
fn an_http_1_0_client_is_never_told_to_continue_and_its_expectation_goes_no_further() {
    // RFC 9110 10.1.1: a server ignores 100-continue in an HTTP/1.0 request (found by an
    // attack: a 1.0 client got `100 Continue`, which it can take for the answer).
    let (mock, rec) = common::recording::mock("m");
    for route in ["inspect = \"always\"", "inspect = \"never\""] {
        let config =
            format!("{}[[route]]\nname = \"main\"\npath = \"/mcp\"\npool = \"p\"\n{route}\n", pool("p", &[&mock], ""));
        let edge = Edge::start(&config);
        let body = body_of(300);
        let head = format!(
            "POST /mcp HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            body.len()
        );
        let before = rec.count();
        let mut s = http::connect(edge.port);
        s.write_all(&[head.as_bytes(), &body].concat()).expect("request");
        let (status, _) = http::read_head(&mut BufReader::new(s));
        assert_eq!(status, 200, "{route}: the answer is the first head");
        let sent = rec.wait_count(before + 1);
        assert_eq!(sent[before].header("expect"), None, "{route}: the backend was asked to expect nothing");
    }
}

#[test]
fn a_backend_that_says_continue_and_then_nothing_gets_504_after_the_100() {
    // Found by an attack: after an interim head the proxy sent no answer, only a close.
    let mock = Mock::start_with("m", false, &["--list-delay-ms", "20000"]);
    let config = format!(
        "{}[[route]]\nname = \"main\"\npath = \"/mcp\"\npool = \"p\"\ninspect = \"never\"\nfirst_byte_timeout = \"300ms\"\n",
        pool("p", &[&mock], "")
    );
    let edge = Edge::start(&config);
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let mut s = http::connect(edge.port);
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("head");
    let mut reader = BufReader::new(s.try_clone().expect("clone"));
    let (status, _) = http::read_head(&mut reader);
    assert_eq!(status, 100, "the backend's continue, which the client asked for");
    s.write_all(body.as_bytes()).expect("body");
    let r = read_response(&mut reader);
    assert_eq!(r.status, 504, "{}", r.text());
    edge.wait_metric("mcp_edge_rejections_total{reason=\"upstream_timeout\"} 1");
}

fn chunked_post(port: u16, body: &[u8]) -> http::Resp {
    let mut req = b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for chunk in body.chunks(8192) {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    http::raw(port, &req)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
