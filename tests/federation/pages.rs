//! A merged list served `page_size` entries a page: members in route order, each member's
//! entries in its own order, walked with the route's own sealed cursors; one walk asks each
//! member once (the catalog holds every page), and a cursor the route did not issue for that
//! list is invalid params and asks no member.

use super::*;

/// `federated`, paged `size` entries at a time.
fn paged(addrs: [&str; 2], size: usize) -> String {
    let route = "path = \"/mcp\"\n[[route.member]]";
    federated(addrs).replacen(route, &format!("path = \"/mcp\"\npage_size = {size}\n[[route.member]]"), 1)
}

/// A list request, in the legacy era or (with `modern`'s headers) the 2026-07-28 one, for the
/// page at `cursor`.
fn page(edge: &Edge, method: &'static str, cursor: Option<&str>, era_modern: bool) -> RawResponse {
    let params = cursor.map_or("{}".to_owned(), |c| format!(r#"{{"cursor":"{c}"}}"#));
    let headers = if era_modern { modern(method, None) } else { Vec::new() };
    post(edge, &headers, &rpc(9, method, &params))
}

/// Every page of `method`'s list from the first: each page's `field` values, in order.
fn walk(edge: &Edge, method: &'static str, key: &str, field: &str, era_modern: bool) -> Vec<Vec<String>> {
    let (mut pages, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let r = page(edge, method, cursor.as_deref(), era_modern);
        assert_eq!(r.status, 200, "page {}: {}", pages.len() + 1, r.text());
        pages.push(listed(&r, key, field));
        match r.json()["result"]["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return pages,
        }
        assert!(pages.len() < 50, "the walk ends");
    }
}

/// The JSON-RPC error code of an answer, with its HTTP status.
fn refused(r: &RawResponse) -> (u16, Option<i64>) {
    (r.status, r.json()["error"]["code"].as_i64())
}

#[test]
fn a_client_walks_the_merged_list_page_by_page_in_member_order_in_both_eras() {
    let (a, b) = (member("A", "2"), member("B", "5"));
    let edge = Edge::start(&paged([&a.addr, &b.addr], 3));
    let own = ["echo", "whoami", "slow", "bytes", "deploy_app"];
    let want: Vec<String> = ["a", "b"].iter().flat_map(|p| own.iter().map(move |t| format!("{p}_{t}"))).collect();
    for era_modern in [false, true] {
        let pages = walk(&edge, "tools/list", "tools", "name", era_modern);
        let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
        assert_eq!(sizes, [3, 3, 3, 1], "modern {era_modern}");
        assert_eq!(pages.concat(), want, "members in route order, each in its own order, each tool once");
    }
    // The catalog held every member's pages: one walk per era asked A for its 3 pages and B
    // for its one, whatever the client's page size.
    assert_eq!((lists(&a.rec), lists(&b.rec)), (6, 2));
    let first = page(&edge, "tools/list", None, true);
    assert_eq!(first.json()["result"]["cacheScope"], "public", "{}", first.text());
    // Prompts page the same way: A's two, then B's two.
    let prompts = walk(&edge, "prompts/list", "prompts", "name", false);
    assert_eq!(prompts, [vec!["a_greet", "a_secret_plan", "b_greet"], vec!["b_secret_plan"]]);
}

#[test]
fn a_cursor_the_route_did_not_issue_for_that_list_is_invalid_params_and_asks_no_member() {
    let (a, b) = (member("A", "5"), member("B", "5"));
    let edge = Edge::start(&paged([&a.addr, &b.addr], 2));
    let legacy = page(&edge, "tools/list", None, false).json()["result"]["nextCursor"].as_str().map(str::to_owned);
    let legacy = legacy.expect("a second page");
    let modern_cursor =
        page(&edge, "tools/list", None, true).json()["result"]["nextCursor"].as_str().map(str::to_owned);
    let modern_cursor = modern_cursor.expect("a second page");
    let before = (a.rec.lines().len(), b.rec.lines().len());
    let other = Edge::start(&paged([&a.addr, &b.addr], 2));
    let foreign = page(&other, "tools/list", None, false).json()["result"]["nextCursor"].as_str().map(str::to_owned);
    let foreign = foreign.expect("a second page");
    let before_other = (a.rec.lines().len(), b.rec.lines().len());
    assert!(before_other > before, "the other proxy listed for itself");
    let mut tampered = legacy.clone().into_bytes();
    let at = tampered.len() - 3;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    for (method, cursor, era_modern, why) in [
        ("tools/list", "2", false, "a member's own cursor form"),
        ("tools/list", "", false, "empty"),
        ("tools/list", tampered.as_str(), false, "altered"),
        ("tools/list", foreign.as_str(), false, "another proxy's, with another key"),
        ("tools/list", legacy.as_str(), true, "the legacy list's, in the 2026-07-28 era"),
        ("tools/list", modern_cursor.as_str(), false, "the 2026-07-28 list's, in the legacy era"),
        ("prompts/list", legacy.as_str(), false, "the tool list's, for prompts"),
        ("resources/list", modern_cursor.as_str(), true, "the tool list's, for resources"),
    ] {
        let r = page(&edge, method, Some(cursor), era_modern);
        assert_eq!(refused(&r), (400, Some(-32602)), "{why}: {}", r.text());
        assert_eq!(r.json()["id"], 9, "{why}");
    }
    assert_eq!((a.rec.lines().len(), b.rec.lines().len()), before_other, "no member was asked");
    // Its own cursors still work, in their own era.
    assert_eq!(page(&edge, "tools/list", Some(&legacy), false).status, 200);
    assert_eq!(page(&edge, "tools/list", Some(&modern_cursor), true).status, 200);
    edge.wait_metric(r#"mcp_edge_rejections_total{reason="invalid_params"} 8"#);
}

#[test]
fn replicas_sharing_a_key_continue_each_others_walks() {
    let (a, b) = (member("A", "5"), member("B", "5"));
    let (_dir, key) = shared_key();
    let body = paged([&a.addr, &b.addr], 4);
    let (one, two) = (Edge::start_with_key(&body, Some(&key)), Edge::start_with_key(&body, Some(&key)));
    let mut names = Vec::new();
    let mut cursor = None::<String>;
    for (i, edge) in [&one, &two, &one].into_iter().enumerate() {
        let r = page(edge, "tools/list", cursor.as_deref(), true);
        assert_eq!(r.status, 200, "page {}: {}", i + 1, r.text());
        names.extend(listed(&r, "tools", "name"));
        cursor = r.json()["result"]["nextCursor"].as_str().map(str::to_owned);
    }
    assert_eq!((names.len(), cursor), (10, None), "{names:?}");
    // The same key, but another route's name, or a route that pages nothing: not its cursor.
    let second = page(&one, "tools/list", None, true).json()["result"]["nextCursor"].as_str().map(str::to_owned);
    let second = second.expect("a second page");
    let renamed = Edge::start_with_key(&body.replace("name = \"all\"", "name = \"other\""), Some(&key));
    let unpaged = Edge::start_with_key(&federated([&a.addr, &b.addr]), Some(&key));
    for edge in [&renamed, &unpaged] {
        let r = page(edge, "tools/list", Some(&second), true);
        assert_eq!(refused(&r), (400, Some(-32602)), "{}", r.text());
    }
    let second = ["a_deploy_app", "b_echo", "b_whoami", "b_slow"];
    assert_eq!(names[4..8], second, "the second replica went on where the first stopped");
}
