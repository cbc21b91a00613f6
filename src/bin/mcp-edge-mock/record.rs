//! `--record FILE`: one JSON line per request the mock received, written and flushed before
//! the request is answered, so a test that has its response can read exactly what this
//! backend was sent. Owns the file and the line format; not the parsing (`http`).
//!
//! A line is `{"method":..,"target":..,"headers":[[name,value],..],"body":..}`: the target as
//! sent (path and query), header names as sent, values and body decoded lossily as UTF-8. A
//! request the mock could not parse is recorded as `{"unparsed":reason}`.

use std::fs::File;
use std::io::{self, Write as _};
use std::path::Path;
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::http::Request;

pub struct Recorder {
    file: Mutex<File>,
}

impl Recorder {
    pub fn open(path: &Path) -> io::Result<Recorder> {
        let file = File::options().create(true).append(true).open(path)?;
        Ok(Recorder { file: Mutex::new(file) })
    }

    pub fn request(&self, req: &Request) {
        let headers: Vec<Value> =
            req.headers().map(|(name, value)| json!([String::from_utf8_lossy(name), value])).collect();
        self.write(&json!({
            "method": req.method(),
            "target": req.target(),
            "headers": headers,
            "body": String::from_utf8_lossy(&req.body),
        }));
    }

    pub fn unparsed(&self, reason: &str) {
        self.write(&json!({ "unparsed": reason }));
    }

    /// One `write` per line on an unbuffered append-mode file: lines never interleave, and the
    /// line is in the file (visible to the test) before the response goes out.
    fn write(&self, line: &Value) {
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = file.write_all(&bytes).and_then(|()| file.flush()) {
            eprintln!("record: {e}");
        }
    }
}
