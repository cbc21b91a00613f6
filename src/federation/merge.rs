//! Making one merged list: every member asked at once (each within [`LIST_DEADLINE`]), each
//! entry offered under the name the route's `prefix_mode` gives it, and the map back to
//! (member, own name). A name two members would offer goes to the first in member order; the
//! other entry is left out and the conflict logged once per list. Not owned here: keeping the
//! list (`catalog`), fetching a member's pages (`listing`), the names' shapes (`names`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use serde_json::value::RawValue;

use super::catalog::{Merged, Owner, LIST_DEADLINE};
use super::entry;
use super::fanout::Failed;
use super::kind::Kind;
use super::listing::{self, Listed};
use crate::config::model::{Federation, PrefixMode};
use crate::upstream::Pool;

/// Longest conflicting name written to the log (a member's names may be long).
const LOGGED_NAME: usize = 128;

/// The route's list of `kind`, asked of every member now; `previous` lends a failed member the
/// entries it offered before. `asked` is the catalog's epoch and the slot's changes now.
pub async fn merge(
    fed: &Federation,
    pools: &[Arc<Pool>],
    modern: bool,
    kind: Kind,
    previous: Option<&Merged>,
    asked: (u64, u64),
) -> Merged {
    let answers = ask(fed, pools, modern, kind).await;
    // Each entry's own name, read once: `conflicts` needs every member's before naming any.
    let answers: Vec<Result<Named<Box<RawValue>>, Failed>> = answers
        .into_iter()
        .map(|a| {
            a.map(|listed: Listed| {
                let total = listed.entries.len();
                let named: Vec<_> = listed
                    .entries
                    .into_iter()
                    .filter_map(|e| entry::own_name(kind, e.get()).map(|own| (own, e)))
                    .collect();
                Named { unnamed: total - named.len(), entries: named, public: listed.public, offered: listed.offered }
            })
        })
        .collect();
    let shared = match fed.prefix_mode {
        PrefixMode::Conflicts => shared(&answers),
        PrefixMode::Always | PrefixMode::Never => HashSet::new(),
    };
    // Annotations are read only where a result cache trusts them.
    let hinted = kind == Kind::Tools && fed.results.as_ref().is_some_and(|r| r.read_only_hint);
    let mut merged = Merged {
        made: Instant::now(),
        epoch: asked.0,
        changes: asked.1,
        kind,
        members: Vec::new(),
        owners: HashMap::new(),
        public: true,
        failed: Vec::new(),
        unoffered: 0,
        page_size: fed.page_size,
        pages: Vec::new(),
    };
    for (i, (member, answer)) in fed.members.iter().zip(answers).enumerate() {
        let mut offered = Vec::new();
        match answer {
            Ok(Named { entries: named, mut unnamed, public, offered: listed }) => {
                merged.public &= public;
                if !listed {
                    merged.unoffered |= member_bit(i);
                }
                let (mut twice, mut first_taken) = (0usize, None);
                for (own, entry) in named {
                    let prefix = match fed.prefix_mode {
                        PrefixMode::Always => Some(member.prefix.as_str()),
                        PrefixMode::Never => None,
                        PrefixMode::Conflicts => shared.contains(&own).then_some(member.prefix.as_str()),
                    };
                    let name = kind.offered(prefix, &own);
                    if merged.owners.contains_key(&name) {
                        twice += 1;
                        first_taken.get_or_insert_with(|| clip(&name));
                        continue;
                    }
                    let Some(renamed) = entry::renamed(kind, &entry, &name) else {
                        unnamed += 1;
                        continue;
                    };
                    // A prefixed URI's own form is the offered one without its prefix: not
                    // kept twice.
                    let own = if kind.by_uri() && prefix.is_some() { String::new() } else { own };
                    let read_only = hinted && entry::read_only(entry.get());
                    merged.owners.insert(name.clone(), Owner { member: i, name: own, read_only });
                    offered.push((name, renamed));
                }
                // Once per list, however many: a member cannot flood the log.
                if unnamed + twice > 0 {
                    tracing::warn!(member = %member.prefix, list = kind.key(), unnamed, twice, first_taken = ?first_taken, prefix_mode = fed.prefix_mode.key(), "federation: entries without a readable name, or offered under a name already taken, are left out");
                }
            }
            Err(failed) => {
                tracing::warn!(member = %member.prefix, list = kind.key(), error = %failed, "federation: a member's list is missing");
                // Stale beats absent: the entries it offered before stay offered, unless a
                // member before it now offers the name (unprefixed names can collide).
                if let Some(previous) = previous {
                    merged.public &= previous.public;
                    merged.unoffered |= previous.unoffered & member_bit(i);
                    for (name, tool) in previous.members.get(i).into_iter().flatten() {
                        match previous.owners.get(name) {
                            Some(owner) if !merged.owners.contains_key(name) => {
                                merged.owners.insert(name.clone(), owner.clone());
                                offered.push((name.clone(), tool.clone()));
                            }
                            _ => {}
                        }
                    }
                }
                merged.failed.push((i, failed));
            }
        }
        merged.members.push(offered);
    }
    merged.render();
    merged
}

/// A member's list with each entry's own name read: (own name, entry) for those that have
/// one, and how many did not.
struct Named<T> {
    entries: Vec<(String, T)>,
    unnamed: usize,
    public: bool,
    offered: bool,
}

/// Member `i`'s bit in [`Merged::unoffered`]; none past the 64th (never known not to offer).
pub(super) fn member_bit(i: usize) -> u64 {
    u32::try_from(i).ok().and_then(|i| 1u64.checked_shl(i)).unwrap_or(0)
}

/// Every member's list of `kind`, in member order.
async fn ask(fed: &Federation, pools: &[Arc<Pool>], modern: bool, kind: Kind) -> Vec<Result<Listed, Failed>> {
    let mut asks = tokio::task::JoinSet::new();
    for (i, member) in fed.members.iter().enumerate() {
        let Some(pool) = pools.get(member.pool).cloned() else { continue };
        asks.spawn(async move {
            let listed = tokio::time::timeout(LIST_DEADLINE, listing::list(&pool, modern, kind)).await;
            (i, listed.unwrap_or(Err(Failed::Timeout(LIST_DEADLINE))))
        });
    }
    let mut answers: Vec<Option<Result<Listed, Failed>>> = (0..fed.members.len()).map(|_| None).collect();
    while let Some(joined) = asks.join_next().await {
        if let Ok((i, answer)) = joined {
            if let Some(a) = answers.get_mut(i) {
                *a = Some(answer);
            }
        }
    }
    answers.into_iter().map(|a| a.unwrap_or(Err(Failed::Unreadable))).collect()
}

/// The own names that more than one member offers.
fn shared<T>(answers: &[Result<Named<T>, Failed>]) -> HashSet<String> {
    let mut first: HashMap<&str, usize> = HashMap::new();
    let mut shared = HashSet::new();
    for (i, named) in answers.iter().enumerate() {
        let Ok(named) = named else { continue };
        for (own, _) in &named.entries {
            match first.get(own.as_str()) {
                Some(&m) if m != i => {
                    shared.insert(own.clone());
                }
                Some(_) => {}
                None => {
                    first.insert(own, i);
                }
            }
        }
    }
    shared
}

fn clip(name: &str) -> String {
    let end = (0..=LOGGED_NAME.min(name.len())).rev().find(|&i| name.is_char_boundary(i)).unwrap_or(0);
    name.get(..end).unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_two_members_offer_are_shared() {
        let list = |names: &[&str]| -> Result<Named<()>, Failed> {
            Ok(Named {
                entries: names.iter().map(|n| (n.to_string(), ())).collect(),
                unnamed: 0,
                public: true,
                offered: true,
            })
        };
        let answers = [list(&["a", "b", "b"]), Err(Failed::Unreadable), list(&["b", "c"]), list(&["c", "d"])];
        let mut found: Vec<String> = shared(&answers).into_iter().collect();
        found.sort();
        assert_eq!(found, ["b", "c"]);
        assert_eq!(clip(&"é".repeat(100)).len(), 128);
    }

    #[test]
    fn members_past_the_64th_are_never_known_not_to_offer() {
        assert_eq!((member_bit(0), member_bit(63)), (1, 1 << 63));
        assert_eq!((member_bit(64), member_bit(usize::MAX)), (0, 0));
    }
}
