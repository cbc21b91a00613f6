//! Client address allow and deny lists (CIDR), for the proxy's listeners and for routes:
//! validation of `allow_ips` / `deny_ips` and the compiled [`IpFilter`] the request path asks.
//! Part of the raw → model pipeline. It does not know where the address comes from (the
//! connection's peer; forwarded headers are never trusted for this).

use std::net::IpAddr;

use ipnet::IpNet;

use super::error::Collector;
use super::raw::S;

/// Addresses admitted: not in `deny`, and in `allow` when `allow` is not empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpFilter {
    pub allow: Vec<IpNet>,
    pub deny: Vec<IpNet>,
}

impl IpFilter {
    pub fn is_open(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    /// Whether `ip` may pass. An IPv4 client of a dual-stack listener (`::ffff:a.b.c.d`) is
    /// judged as the IPv4 address it is, so IPv4 lists apply to it.
    pub fn admits(&self, ip: IpAddr) -> bool {
        if self.is_open() {
            return true;
        }
        let ip = ip.to_canonical();
        !self.deny.iter().any(|n| n.contains(&ip))
            && (self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&ip)))
    }

    /// The lists as written in `/config`.
    pub fn render(&self) -> serde_json::Value {
        let show = |l: &[IpNet]| l.iter().map(ToString::to_string).collect::<Vec<_>>();
        serde_json::json!({ "allow_ips": show(&self.allow), "deny_ips": show(&self.deny) })
    }
}

/// `allow_ips` and `deny_ips` under `prefix` (e.g. `route.mcp`): CIDRs, or bare addresses
/// (one host).
pub fn ip_filter(
    allow: Option<&[S<String>]>,
    deny: Option<&[S<String>]>,
    prefix: &str,
    c: &mut Collector<'_>,
) -> IpFilter {
    IpFilter {
        allow: nets(allow, &format!("{prefix}.allow_ips"), c),
        deny: nets(deny, &format!("{prefix}.deny_ips"), c),
    }
}

fn nets(raw: Option<&[S<String>]>, field: &str, c: &mut Collector<'_>) -> Vec<IpNet> {
    let mut out = Vec::new();
    for entry in raw.into_iter().flatten() {
        let text = entry.get_ref().trim();
        let parsed = text.parse::<IpNet>().ok().or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from));
        match parsed {
            // `trunc`: 10.1.2.3/8 means 10.0.0.0/8, as every firewall reads it.
            Some(net) => out.push(net.trunc()),
            None => c.push(
                entry.span(),
                field,
                "not an address or CIDR; write e.g. \"10.0.0.0/8\", \"2001:db8::/32\" or \"192.0.2.7\"",
            ),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(allow: &[&str], deny: &[&str]) -> IpFilter {
        let parse = |l: &[&str]| l.iter().map(|s| s.parse::<IpNet>().expect("net")).collect();
        IpFilter { allow: parse(allow), deny: parse(deny) }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn deny_wins_and_a_non_empty_allow_list_is_exclusive() {
        let f = filter(&["10.0.0.0/8"], &["10.6.0.0/16"]);
        assert!(f.admits(ip("10.1.2.3")));
        assert!(!f.admits(ip("10.6.0.1")), "deny wins inside an allowed net");
        assert!(!f.admits(ip("192.0.2.1")), "not allowed");
        assert!(IpFilter::default().admits(ip("192.0.2.1")), "no lists: everyone");
        assert!(filter(&[], &["192.0.2.0/24"]).admits(ip("198.51.100.1")), "deny only: the rest pass");
    }

    #[test]
    fn ipv4_clients_of_dual_stack_listeners_meet_ipv4_lists() {
        assert!(!filter(&[], &["127.0.0.0/8"]).admits(ip("::ffff:127.0.0.1")));
        assert!(filter(&["127.0.0.1/32"], &[]).admits(ip("::ffff:127.0.0.1")));
        assert!(!filter(&["127.0.0.1/32"], &[]).admits(ip("::1")), "::1 is not 127.0.0.1");
    }
}
