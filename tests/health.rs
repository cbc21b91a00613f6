//! Active health checks on their own schedules: a pool whose backend hangs on its health check
//! holds back neither the other pools' checks, nor the access log, nor systemd's watchdog; and
//! the set of probed pools follows reloads (added pools are probed, removed ones no longer).

mod common;

use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::http::{get, post_mcp, request};
use common::{wait_until, Edge, Mock, Opts};

/// How soon a backend's health must flip with a 500 ms interval (the hung check takes 8 s).
const FLIP: Duration = Duration::from_secs(2);

const WHOAMI: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}}"#;

/// A pool named `name` over `backend`, probed by `check` every half second.
fn pool(name: &str, backend: &Mock, check: &str) -> String {
    format!(
        "[[pool]]\nname = \"{name}\"\nbackends = [\"{}\"]\npath = \"/mcp\"\n[pool.health]\n{check}\ninterval = \"500ms\"\n\n",
        backend.addr()
    )
}

/// A pool whose health check hangs for `timeout`: the backend never answers `GET /hang`.
fn stuck_pool(backend: &Mock, timeout: &str) -> String {
    pool("stuck", backend, &format!("check = \"http\"\npath = \"/hang\"\ntimeout = \"{timeout}\""))
}

fn route(pool: &str) -> String {
    format!("[[route]]\nname = \"mcp\"\npath = \"/mcp\"\npool = \"{pool}\"\n")
}

/// The `healthy` flag `/status` shows for `addr`, in any pool.
fn healthy(edge: &Edge, addr: &str) -> Option<bool> {
    let status = get(edge.admin, "/status").json();
    status["pools"]
        .as_array()?
        .iter()
        .flat_map(|p| p["backends"].as_array().cloned().unwrap_or_default())
        .find_map(|b| (b["addr"] == addr).then(|| b["healthy"].as_bool()).flatten())
}

fn access_lines(edge: &Edge) -> usize {
    edge.log().lines().filter(|l| l.contains(" access ")).count()
}

/// A systemd notify socket the edge writes to, read continuously (a full socket queue would
/// block the sender): the times `WATCHDOG=1` arrived.
struct Watchdog {
    _dir: tempfile::TempDir,
    path: String,
    pings: Arc<Mutex<Vec<Instant>>>,
}

impl Watchdog {
    fn listen() -> Watchdog {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("notify socket");
        let pings = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&pings);
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok(n) = sock.recv(&mut buf) {
                if buf[..n].windows(10).any(|w| w == b"WATCHDOG=1") {
                    seen.lock().expect("pings").push(Instant::now());
                }
            }
        });
        Watchdog { path: path.to_str().expect("utf8").to_owned(), pings, _dir: dir }
    }

    /// Waits for `n` pings after `since` and returns the longest gap between them.
    fn longest_gap(&self, since: Instant, n: usize) -> Duration {
        let after = || self.pings.lock().expect("pings").iter().copied().filter(|t| *t >= since).collect::<Vec<_>>();
        wait_until(&format!("{n} watchdog pings"), Duration::from_secs(20), || after().len() >= n);
        let pings = after();
        std::iter::once(since)
            .chain(pings)
            .collect::<Vec<_>>()
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or_default()
    }
}

#[test]
fn a_hung_health_check_holds_back_no_other_pool_nor_the_access_log_nor_the_watchdog() {
    let (hung, main) = (Mock::start("hung", false), Mock::start("main", false));
    let watchdog = Watchdog::listen();
    // systemd asks for a ping every 200 ms (half of WATCHDOG_USEC).
    let env = [("NOTIFY_SOCKET", watchdog.path.as_str()), ("WATCHDOG_USEC", "400000")];
    let config = stuck_pool(&hung, "8s") + &pool("main", &main, "check = \"tcp\"") + &route("main");
    // Ready once the stuck pool's first pass has failed, 8 s in.
    let edge = Edge::start_opts(&config, Opts { env: &env, ..Opts::default() });
    assert_eq!(healthy(&edge, &hung.addr()), Some(false), "the hung backend failed its first check");

    let gap = watchdog.longest_gap(Instant::now(), 8);
    assert!(gap < Duration::from_secs(1), "watchdog pings {gap:?} apart while a check hangs");
    for n in 0..3 {
        let before = access_lines(&edge);
        assert_eq!(post_mcp(edge.port, "/mcp", &[], WHOAMI).status, 200);
        wait_until(&format!("access line {n} while a check hangs"), Duration::from_millis(1500), || {
            access_lines(&edge) > before
        });
    }
    // The other pool is probed every 500 ms as if nothing hung: its backend goes down, then
    // comes back, and each flip shows within a few of its intervals.
    let (port, addr) = (main.port, main.addr());
    main.stop();
    wait_until("the other pool's backend marked down", FLIP, || healthy(&edge, &addr) == Some(false));
    let _main = Mock::start_on(port, "main", false, &[]);
    wait_until("the other pool's backend marked up again", FLIP, || healthy(&edge, &addr) == Some(true));
}

#[test]
fn pools_added_by_a_reload_are_probed_on_their_own_schedule() {
    let (a, b) = (Mock::start("a", false), Mock::start("b", false));
    let tcp = "check = \"tcp\"";
    let edge = Edge::start(&(pool("a", &a, tcp) + &route("a")));
    edge.rewrite(&(pool("a", &a, tcp) + &pool("b", &b, tcp) + &route("a")), &Opts::default());
    assert_eq!(request(edge.admin, "POST", "/reload", &[], b"").status, 200);
    assert_eq!(healthy(&edge, &b.addr()), Some(true), "probed before the swap");

    let addr = b.addr();
    b.stop();
    wait_until("the added pool's dead backend marked down", FLIP, || healthy(&edge, &addr) == Some(false));
}

#[test]
fn a_pool_removed_by_a_reload_is_no_longer_probed() {
    let (a, b) = (Mock::start("a", false), Mock::start("b", false));
    let http = "check = \"http\"\npath = \"/healthz\"";
    let edge = Edge::start(&(pool("a", &a, http) + &pool("b", &b, http) + &route("a")));
    let before = requests(&b);
    wait_until("b probed on its schedule", Duration::from_secs(3), || requests(&b) >= before + 3);

    edge.rewrite(&(pool("a", &a, http) + &route("a")), &Opts::default());
    assert_eq!(request(edge.admin, "POST", "/reload", &[], b"").status, 200);
    let after = requests(&b);
    // Six of b's intervals: long enough for a leftover probe task to show.
    std::thread::sleep(Duration::from_secs(3));
    // Each look at the stats is itself a request; a pass under way at the swap may still land.
    assert!(requests(&b) <= after + 2, "b was still probed after its pool was removed");
}

/// Requests the mock has served so far (this one included).
fn requests(mock: &Mock) -> u64 {
    get(mock.port, "/_mock/stats").json()["requests"].as_u64().expect("requests")
}
