//! Headless Chromium (Debian's `chromium`, installed by `scripts/deps.sh`) for the status
//! page: the DOM after the page's scripts ran, screenshots, and a page left open in real time
//! whose title is read through the DevTools HTTP endpoint. Virtual time
//! (`--virtual-time-budget`) lets the page's timers fire without real waiting; Chromium
//! pauses it while a fetch is in flight, so every poll in the budget completes.
//!
//! Without a browser the tests are skipped with a message, unless `CI` is set: there a
//! missing browser fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{wait_until, Proc};

const NAMES: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

/// Writes a line straight to stderr: the harness hides what `println!` and `eprintln!` print
/// in a passing test, and a skip or a screenshot's path must be seen.
pub fn note(line: &str) {
    let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("{line}\n").as_bytes());
}

pub struct Browser {
    bin: PathBuf,
    /// Its own profile, so concurrent tests never share a lock.
    profile: tempfile::TempDir,
}

impl Browser {
    /// The browser, or None (after saying why) when the test should be skipped.
    pub fn find_or_skip(test: &str) -> Option<Browser> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let bin = NAMES.iter().flat_map(|n| std::env::split_paths(&path).map(move |d| d.join(n))).find(|p| p.is_file());
        match bin {
            Some(bin) => Some(Browser { bin, profile: tempfile::tempdir().expect("profile dir") }),
            None if std::env::var_os("CI").is_some() => {
                panic!("{test}: no chromium on PATH and CI is set; `make deps` installs Debian's chromium")
            }
            None => {
                note(&format!("SKIPPED {test}: no chromium on PATH (`make deps` installs it; under CI this fails)"));
                None
            }
        }
    }

    /// Runs the browser on `url` with `extra` arguments, `budget_ms` of virtual time; its
    /// standard output.
    fn run(&self, url: &str, budget_ms: u32, extra: &[&str]) -> String {
        let out = self.profile.path().join("stdout");
        let mut cmd = Command::new(&self.bin);
        cmd.args(["--headless=new", "--disable-gpu", "--no-sandbox", "--no-first-run", "--hide-scrollbars"])
            .arg(format!("--user-data-dir={}", self.profile.path().join("profile").display()))
            .arg(format!("--virtual-time-budget={budget_ms}"))
            .args(extra)
            .arg(url)
            .stdout(std::fs::File::create(&out).expect("stdout file"))
            .stderr(Stdio::null());
        let mut proc = Proc::spawn("chromium", &mut cmd);
        let status = proc.wait_exit(Duration::from_secs(60)).expect("chromium finished within 60 s");
        assert!(status.success(), "chromium {extra:?} {url}: {status}");
        std::fs::read_to_string(&out).expect("chromium output")
    }

    /// The serialized DOM once `budget_ms` of virtual time has passed after load.
    pub fn dom(&self, url: &str, budget_ms: u32) -> Dom {
        Dom(self.run(url, budget_ms, &["--dump-dom"]))
    }

    /// A PNG of the page at 1280×1000 after `budget_ms` of virtual time.
    pub fn screenshot(&self, url: &str, budget_ms: u32, path: &Path) {
        self.run(url, budget_ms, &["--window-size=1280,1000", &format!("--screenshot={}", path.display())]);
        assert!(path.metadata().is_ok_and(|m| m.len() > 1000), "screenshot written to {}", path.display());
    }
}

/// A page open in a running browser, watched through the DevTools HTTP endpoint
/// (`/json/list` gives each page's current title; no WebSocket needed).
pub struct LivePage {
    _proc: Proc,
    devtools: u16,
    url: String,
}

impl Browser {
    /// Opens `url` in a browser that keeps running (in real time) until the page is dropped.
    pub fn open(&self, url: &str) -> LivePage {
        let profile = self.profile.path().join("live");
        let mut cmd = Command::new(&self.bin);
        cmd.args(["--headless=new", "--disable-gpu", "--no-sandbox", "--no-first-run", "--remote-debugging-port=0"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let proc = Proc::spawn("chromium", &mut cmd);
        // Chromium writes the port it bound once it listens.
        let port_file = profile.join("DevToolsActivePort");
        let mut devtools = 0;
        wait_until("chromium's DevTools port", Duration::from_secs(20), || {
            let text = std::fs::read_to_string(&port_file).unwrap_or_default();
            devtools = text.lines().next().and_then(|l| l.parse().ok()).unwrap_or(0);
            devtools != 0
        });
        LivePage { _proc: proc, devtools, url: url.to_owned() }
    }
}

impl LivePage {
    /// The page's current title.
    pub fn title(&self) -> String {
        let targets = super::http::get(self.devtools, "/json/list").json();
        let page = targets.as_array().and_then(|t| t.iter().find(|t| t["type"] == "page" && t["url"] == self.url));
        page.and_then(|p| p["title"].as_str()).unwrap_or_default().to_owned()
    }

    /// Waits until the title satisfies `ready`, at most `limit`; the title and how long it took.
    pub fn wait_title(&self, what: &str, limit: Duration, ready: impl Fn(&str) -> bool) -> (String, Duration) {
        let start = std::time::Instant::now();
        loop {
            let title = self.title();
            if ready(&title) {
                return (title, start.elapsed());
            }
            assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}; the title: {title:?}");
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

/// A serialized DOM, read with string searches (attribute values and cell texts are plain).
pub struct Dom(pub String);

impl Dom {
    /// The start tag of the element carrying `attr` (such as `data-route="main"`).
    fn tag(&self, attr: &str) -> Option<&str> {
        let at = self.0.find(attr)?;
        let start = self.0[..at].rfind('<')?;
        let end = at + self.0[at..].find('>')?;
        Some(&self.0[start..=end])
    }

    /// The `class` of the element carrying `attr`; "" without one.
    pub fn class_of(&self, attr: &str) -> Option<String> {
        let tag = self.tag(attr)?;
        Some(tag.split("class=\"").nth(1).and_then(|c| c.split('"').next()).unwrap_or("").to_owned())
    }

    /// The texts of the cells of the row carrying `attr`.
    pub fn cells(&self, attr: &str) -> Vec<String> {
        let Some(tag) = self.tag(attr) else { return Vec::new() };
        let start = self.0.find(tag).unwrap_or(0);
        let row = &self.0[start..start + self.0[start..].find("</tr>").unwrap_or(0)];
        row.split("<td")
            .skip(1)
            .filter_map(|c| c.split_once('>').and_then(|(_, rest)| rest.split("</td>").next()))
            .map(str::to_owned)
            .collect()
    }

    /// The text of the element with `id`, if it has no child elements.
    pub fn text_of(&self, id: &str) -> Option<&str> {
        let tag = self.tag(&format!("id=\"{id}\""))?;
        let start = self.0.find(tag)? + tag.len();
        self.0[start..].split('<').next()
    }

    /// The value of the first attribute `name` in the document.
    pub fn attr(&self, name: &str) -> Option<&str> {
        let key = format!(" {name}=\"");
        let at = self.0.find(&key)? + key.len();
        self.0[at..].split('"').next()
    }

    pub fn contains(&self, needle: &str) -> bool {
        self.0.contains(needle)
    }
}
