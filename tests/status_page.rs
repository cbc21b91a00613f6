//! The live status page (`GET /` on the admin listener) in a real headless Chromium: it is
//! served under a hash-based CSP and its script runs under it (the DOM holds what only the
//! script could write), it shows the routes and backends, its counts follow the traffic
//! driven through the proxy, and a killed backend is drawn red once the health check has
//! seen it go; a page left open notices within one refresh. Each backend's row shows its own
//! attempt and error rates (`upstream_attempts_total`), a backend answering 5xx in red. A
//! screenshot lands in `target/tmp/`. `/status`, which the page polls, answers
//! in the typed schema (`mcp_edge::admin::status::Status`).

mod common;

use std::time::{Duration, Instant};

use common::browser::{note, Browser, Dom};
use common::http::{get, post_mcp};
use common::{wait_until, Edge, Mock};
use mcp_edge::admin::status::Status;

const ECHO: &str =
    r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}"#;
/// How often the page polls `/status` (`REFRESH_MS` in `src/admin/page.js`).
const REFRESH: Duration = Duration::from_secs(2);
/// Virtual time for one page load: the first poll and a refresh (the page polls every 2 s).
const BUDGET_MS: u32 = 4500;

/// One route over a pool of `backends`, health-checked every half second.
fn config(backends: &[&Mock]) -> String {
    let list: Vec<String> = backends.iter().map(|m| format!("\"{}\"", m.addr())).collect();
    format!(
        "[metrics]\ntools = [\"echo\"]\n\n[[pool]]\nname = \"tools\"\nbackends = [{}]\npath = \"/mcp\"\n[pool.health]\ncheck = \"mcp\"\ninterval = \"500ms\"\n\n[[route]]\nname = \"main\"\npath = \"/mcp\"\npool = \"tools\"\n",
        list.join(", ")
    )
}

fn status(edge: &Edge) -> Status {
    let resp = get(edge.admin, "/status");
    serde_json::from_slice(&resp.body).unwrap_or_else(|e| panic!("/status is not the schema ({e}): {}", resp.text()))
}

fn page(edge: &Edge) -> String {
    format!("http://127.0.0.1:{}/", edge.admin)
}

/// The backend row's class (`up`, `down`, `open`, `half-open`).
fn backend_class(dom: &Dom, mock: &Mock) -> String {
    dom.class_of(&format!("data-backend=\"{}\"", mock.addr())).unwrap_or_else(|| panic!("no row for {}", mock.addr()))
}

/// The route row's request count (the seventh cell: route, path, pools, three rates, requests).
fn requests_shown(dom: &Dom, route: &str) -> String {
    dom.cells(&format!("data-route=\"{route}\"")).get(6).cloned().unwrap_or_default()
}

/// The backend row's attempt and error rates (its eighth and ninth cells: pool, backend,
/// weight, health, circuit, ejections, takes requests, req/s, err/s).
fn rates_shown(dom: &Dom, mock: &Mock) -> (f64, f64) {
    let cells = dom.cells(&format!("data-backend=\"{}\"", mock.addr()));
    let num =
        |i: usize| cells.get(i).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no rate {i} in {cells:?}"));
    (num(7), num(8))
}

/// The backend row's markup, up to its end.
fn backend_row<'a>(dom: &'a Dom, mock: &Mock) -> &'a str {
    let at = dom
        .0
        .find(&format!("data-backend=\"{}\"", mock.addr()))
        .unwrap_or_else(|| panic!("no row for {}", mock.addr()));
    let row = &dom.0[at..];
    &row[..row.find("</tr>").unwrap_or(row.len())]
}

/// `main` over `a` (`spare`, over `b`, only its fallback: it gets nothing), and `broken` over
/// `c`, whose endpoint answers 500 to everything (health checked by TCP and its breaker
/// never opening, so it keeps getting requests).
fn config_with_broken(a: &Mock, b: &Mock, c: &Mock) -> String {
    let tools = common::pool("tools", &[a], "");
    let spare = common::pool("spare", &[b], "");
    let c = c.addr();
    format!(
        "[metrics]\ntools = [\"echo\"]\n\n{tools}{spare}\
         [[pool]]\nname = \"broken\"\nbackends = [\"{c}\"]\npath = \"/status/500\"\n\
         [pool.health]\ncheck = \"tcp\"\ninterval = \"500ms\"\n[pool.breaker]\nfailures = 100000\n\n\
         [[route]]\nname = \"main\"\npath = \"/mcp\"\npool = \"tools\"\nfallback = [\"spare\"]\n\n\
         [[route]]\nname = \"broken\"\npath = \"/broken\"\npool = \"broken\"\n"
    )
}

#[test]
fn the_page_is_served_under_a_strict_policy_and_status_answers_in_its_schema() {
    let mock = Mock::start("a", false);
    let edge = Edge::start(&config(&[&mock]));
    let resp = get(edge.admin, "/");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = resp.header("content-security-policy").expect("a CSP");
    assert!(csp.starts_with("default-src 'none';") && csp.contains("script-src 'sha256-"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("connect-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    assert_eq!(resp.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    assert!(resp.text().contains("fetch('/status'"), "the page polls /status");

    assert_eq!(post_mcp(edge.port, "/mcp", &[], ECHO).status, 200);
    let mut s = status(&edge);
    wait_until("the call counted", Duration::from_secs(5), || {
        s = status(&edge);
        s.routes[0].traffic.requests == 1
    });
    assert_eq!((s.routes[0].name.as_str(), s.routes[0].pools.clone()), ("main", vec!["tools".to_owned()]));
    assert_eq!(s.tools.first().map(|t| (t.name.as_str(), t.traffic.requests)), Some(("echo", 1)));
    assert!(s.routes[0].traffic.p50_ms.is_some_and(|p| p > 0.0), "{:?}", s.routes[0]);
}

#[test]
fn the_page_shows_routes_and_backends_follows_traffic_and_draws_a_killed_backend_red() {
    let Some(browser) = Browser::find_or_skip("status_page") else { return };
    let started = Instant::now();
    let (a, b) = (Mock::start("a", false), Mock::start("b", false));
    let edge = Edge::start(&config(&[&a, &b]));

    let dom = browser.dom(&page(&edge), BUDGET_MS);
    assert_eq!(dom.text_of("version"), Some(env!("CARGO_PKG_VERSION")), "the script filled the page under the CSP");
    let polls: u32 = dom.attr("data-polls").and_then(|p| p.parse().ok()).unwrap_or(0);
    assert!(polls >= 2, "the page refreshed itself ({polls} polls)");
    assert_eq!(
        dom.cells("data-route=\"main\"").get(..3),
        Some(&["main".to_owned(), "/mcp".into(), "tools".into()][..])
    );
    assert_eq!(requests_shown(&dom, "main"), "0");
    assert_eq!((backend_class(&dom, &a), backend_class(&dom, &b)), ("up".into(), "up".into()));

    for _ in 0..15 {
        assert_eq!(post_mcp(edge.port, "/mcp", &[], ECHO).status, 200);
    }
    wait_until("15 calls counted", Duration::from_secs(5), || status(&edge).routes[0].traffic.requests == 15);
    let dom = browser.dom(&page(&edge), BUDGET_MS);
    assert_eq!(requests_shown(&dom, "main"), "15", "the count follows the traffic");
    assert!(dom.contains("<td>echo</td>"), "echo is among the top tools");

    let gone = b.addr();
    b.stop();
    let killed = Instant::now();
    wait_until("the health check marks the killed backend down", Duration::from_secs(10), || {
        status(&edge).pools[0].backends.iter().any(|x| x.addr == gone && !x.healthy)
    });
    let seen_down = killed.elapsed();
    let dom = browser.dom(&page(&edge), BUDGET_MS);
    assert_eq!(dom.class_of(&format!("data-backend=\"{gone}\"")).as_deref(), Some("down"), "the killed backend is red");
    assert_eq!(backend_class(&dom, &a), "up", "the live one is not");
    assert!(dom.contains("1/2 taking requests"), "the pool row counts it out");

    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status_page.png");
    browser.screenshot(&page(&edge), BUDGET_MS, &shot);
    note(&format!(
        "status page screenshot: {} (backend down in /status {seen_down:?} after the kill; test took {:?})",
        shot.display(),
        started.elapsed()
    ));
}

#[test]
fn a_page_left_open_follows_traffic_and_shows_a_killed_backend_within_one_refresh() {
    let Some(browser) = Browser::find_or_skip("status_page live") else { return };
    let (a, b) = (Mock::start("a", false), Mock::start("b", false));
    let edge = Edge::start(&config(&[&a, &b]));
    let live = browser.open(&page(&edge));
    live.wait_title("the first poll", Duration::from_secs(20), |t| t.starts_with("mcp-edge: 2/2 backends up"));

    for _ in 0..10 {
        assert_eq!(post_mcp(edge.port, "/mcp", &[], ECHO).status, 200);
    }
    let (title, _) = live.wait_title("a request rate", REFRESH * 3, |t| !t.ends_with(" 0 req/s"));
    assert!(title.ends_with(" req/s"), "{title}");

    let gone = b.addr();
    b.stop();
    wait_until("the health check marks the killed backend down", Duration::from_secs(10), || {
        status(&edge).pools[0].backends.iter().any(|x| x.addr == gone && !x.healthy)
    });
    // One refresh, plus time for the poll itself on a loaded machine.
    let (_, took) = live.wait_title("the page to show it", REFRESH + Duration::from_millis(1500), |t| {
        t.starts_with("mcp-edge: 1/2 backends down")
    });
    note(&format!(
        "the open status page showed the backend down {took:?} after /status did (it polls every {REFRESH:?})"
    ));
}

#[test]
fn each_backend_shows_its_own_request_rate_and_one_answering_5xx_shows_errors_in_red() {
    let (a, b, c) = (Mock::start("a", false), Mock::start("b", false), Mock::start("c", false));
    let edge = Edge::start(&config_with_broken(&a, &b, &c));
    for _ in 0..10 {
        assert_eq!(post_mcp(edge.port, "/mcp", &[], ECHO).status, 200);
    }
    for _ in 0..3 {
        assert_eq!(post_mcp(edge.port, "/broken", &[], ECHO).status, 500);
    }
    let counted = |pool: &str, m: &Mock, result: &str, n: u32| {
        format!("mcp_edge_upstream_attempts_total{{backend=\"{}\",pool=\"{pool}\",result=\"{result}\"}} {n}", m.addr())
    };
    edge.wait_metric(&counted("tools", &a, "ok", 10));
    edge.wait_metric(&counted("broken", &c, "5xx", 3));
    let metrics = edge.metrics();
    let idle = format!("mcp_edge_upstream_attempts_total{{backend=\"{}\"", b.addr());
    assert!(!metrics.contains(&idle), "the idle backend has no attempts: {metrics}");

    let s = status(&edge);
    let backend = |pool: &str, m: &Mock| {
        let p = s.pools.iter().find(|p| p.name == pool).unwrap_or_else(|| panic!("pool {pool} in {s:?}"));
        p.backends.iter().find(|x| x.addr == m.addr()).cloned().unwrap_or_else(|| panic!("{} in {p:?}", m.addr()))
    };
    let (ta, tb, tc) = (backend("tools", &a).traffic, backend("spare", &b).traffic, backend("broken", &c).traffic);
    assert_eq!((ta.attempts, ta.errors, tb.attempts, tc.attempts, tc.errors), (10, 0, 0, 3, 3), "{s:?}");
    assert!(ta.attempts_per_sec > 0.0 && tc.errors_per_sec > 0.0, "{ta:?} {tc:?}");

    let Some(browser) = Browser::find_or_skip("status_page backend rates") else { return };
    // Traffic keeps flowing while the page loads: its rates are over whatever window its
    // polls see (a poll a second after the last `/status` would see none of the calls above).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (stop, port) = (std::sync::Arc::clone(&stop), edge.port);
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                assert_eq!(post_mcp(port, "/mcp", &[], ECHO).status, 200);
                assert_eq!(post_mcp(port, "/broken", &[], ECHO).status, 500);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let dom = browser.dom(&page(&edge), BUDGET_MS);
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status_page_backends.png");
    browser.screenshot(&page(&edge), BUDGET_MS, &shot);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.join().expect("the load thread");

    let (a_rate, a_errors) = rates_shown(&dom, &a);
    assert!(a_rate > 0.0 && a_errors == 0.0, "the busy backend's rates: {a_rate} req/s, {a_errors} err/s");
    assert!(!backend_row(&dom, &a).contains("class=\"num bad\""), "no errors, nothing red: {}", backend_row(&dom, &a));
    assert_eq!(rates_shown(&dom, &b), (0.0, 0.0), "the idle backend");
    let (c_rate, c_errors) = rates_shown(&dom, &c);
    assert!(c_rate > 0.0 && c_errors > 0.0, "the failing backend's rates: {c_rate} req/s, {c_errors} err/s");
    assert!(backend_row(&dom, &c).contains("class=\"num bad\""), "its errors are red: {}", backend_row(&dom, &c));
    assert_eq!(backend_class(&dom, &c), "up", "answering 5xx, it still passes its TCP check");
    note(&format!("status page screenshot with backend rates: {}", shot.display()));
}
