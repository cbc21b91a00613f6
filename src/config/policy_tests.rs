//! Config stories for `[route.policy]`: a policy compiles once (globs, masks, the expanded
//! scope hierarchy, rendered challenges), and every mistake is reported with place and fix.

use std::path::Path;

use super::model::*;
use super::parse;

const HEAD: &str = "[[pool]]\nname = \"p\"\nbackends = [\"127.0.0.1:9001\"]\n[[authenticator]]\nname = \"keys\"\nkind = \"api_key\"\n[[authenticator.key]]\nid = \"k\"\nsha256 = \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"\n[[route]]\nname = \"r\"\npath = \"/mcp\"\npool = \"p\"\n";

fn errors(text: &str) -> Vec<String> {
    let full = format!("{HEAD}{text}");
    parse(Path::new("edge.toml"), &full).expect_err("should be refused").0.iter().map(ToString::to_string).collect()
}

#[test]
fn a_policy_compiles_its_scope_hierarchy_and_forces_the_body_read() {
    let text = format!(
        "{HEAD}auth = [\"keys\"]\n[route.policy]\ndeny_as = \"unknown\"\nscope_implies = {{ \"a\" = [\"b\"], \"b\" = [\"c\"] }}\n[[route.policy.rule]]\neffect = \"allow\"\nroles = [\"ops\"]\nrequire_scopes = [\"c\"]\n"
    );
    let c = parse(Path::new("edge.toml"), &text).expect("valid");
    let r = &c.routes[0];
    let p = r.policy.as_ref().expect("compiled");
    assert!(r.needs_call, "a policy reads every body");
    assert_eq!(p.scopes, vec!["a", "b", "c"]);
    assert_eq!(p.implies, vec![0b111, 0b110, 0b100], "a ⇒ b ⇒ c, transitively");
    assert_eq!((p.roles.clone(), p.rules[0].who.roles, p.rules[0].require), (vec!["ops".to_owned()], 1, 0b100));
    assert_eq!(
        (p.deny_as, p.rules[0].deny_as),
        (DenyAs::Unknown, DenyAs::Unknown),
        "the policy's deny_as is the rules' default"
    );
    assert_eq!(p.rules[0].challenge.as_deref(), Some("Bearer error=\"insufficient_scope\", scope=\"c\""));
    let shown = super::render::to_json(&c)["routes"][0]["policy"].clone();
    assert_eq!(shown["rules"][0]["roles"], serde_json::json!(["ops"]), "/config shows names, not masks: {shown}");
    assert_eq!(shown["rules"][0]["require_scopes"], serde_json::json!(["c"]), "{shown}");
    let without = parse(Path::new("edge.toml"), &format!("{HEAD}auth = [\"keys\"]\n")).expect("valid");
    assert_eq!(without.routes[0].policy, None, "no policy: unchanged");
}

#[test]
fn a_policy_without_auth_is_refused_with_the_fix() {
    let errs = errors("[route.policy]\n[[route.policy.rule]]\neffect = \"allow\"\n");
    let want =
        "edge.toml:14:1: route.r.policy: decides on who the caller is, but the route has no `auth`: add `auth = [";
    assert!(errs.iter().any(|e| e.starts_with(want)), "{errs:#?}");
}

#[test]
fn policy_mistakes_are_all_reported_with_place_and_fix() {
    let errs = errors(
        "auth = [\"keys\"]\ninspect = \"never\"\n[route.policy]\ndeny_as = \"hidden\"\nunknown_style = \"go-sdk\"\nscope_implies = { \"a b\" = [\"c\"] }\n[[route.policy.rule]]\neffect = \"permit\"\ntools = []\n[[route.policy.rule]]\neffect = \"deny\"\nrequire_scopes = [\"x\"]\nids = [\"\"]\n",
    );
    let has = |needle: &str| errs.iter().any(|e| e.contains(needle));
    assert!(
        has("route.r.policy: decides on each call's method and target, which a route with `inspect = \"never\"`"),
        "{errs:#?}"
    );
    assert!(has("edge.toml:17:11: route.r.policy.deny_as: unknown answer; use \"forbidden\""), "{errs:#?}");
    assert!(has("route.r.policy: names a scope that is not an OAuth scope token"), "{errs:#?}");
    assert!(has("edge.toml:21:10: route.r.policy.rule.effect: unknown effect; use \"allow\" or \"deny\""), "{errs:#?}");
    assert!(has("route.r.policy.rule.tools: is empty, so the rule could never match"), "{errs:#?}");
    assert!(has("route.r.policy.rule.require_scopes: a deny rule denies whatever the scopes"), "{errs:#?}");
    assert!(has("route.r.policy.rule.ids: holds an empty value"), "{errs:#?}");
    assert!(has("route.r.policy.unknown_style: unknown style; use \"spec\""), "{errs:#?}");
    assert_eq!(errs.len(), 8, "{errs:#?}");
}

#[test]
fn more_scopes_than_a_mask_holds_is_an_error() {
    let many: Vec<String> = (0..=MAX_NAMES).map(|i| format!("\"s{i}\"")).collect();
    let errs = errors(&format!(
        "auth = [\"keys\"]\n[route.policy]\n[[route.policy.rule]]\neffect = \"allow\"\nscopes = [{}]\n",
        many.join(", ")
    ));
    assert!(errs.iter().any(|e| e.contains("names more than 128 distinct scopes")), "{errs:#?}");
}
