//! Where a permit's package mirror may be. A mirror is a host or a few: no wider than a
//! configured prefix (default /24 for IPv4, /64 for IPv6), outside the cluster's own pod and
//! Service ranges (a mirror there would let workspaces reach other workspaces, the API server's
//! Service or the operator), and never a link-local or cloud metadata address.
//!
//! The schema refuses metadata and link-local ranges everywhere; the width and the cluster's
//! ranges are the platform's, so they travel with the tier profiles in the same ConfigMap
//! (`mirror.*` keys), read by the tier admission policy and by the operator, which enforces
//! the same rules on whatever was admitted.

use std::collections::BTreeMap;

use ipnet::IpNet;

use crate::tier::TierConfigError;

/// The platform's rules for package mirrors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorRules {
    /// The cluster's pod and Service ranges; a mirror may overlap none of them.
    pub cluster_ranges: Vec<IpNet>,
    /// The shortest IPv4 prefix a mirror may have (24: at most 256 addresses).
    pub widest_ipv4: u8,
    /// The shortest IPv6 prefix a mirror may have.
    pub widest_ipv6: u8,
}

/// ConfigMap keys: the cluster's ranges, comma separated, and the widest prefixes.
pub const CLUSTER_RANGES_KEY: &str = "mirror.clusterRanges";
pub const WIDEST_IPV4_KEY: &str = "mirror.widestIPv4";
pub const WIDEST_IPV6_KEY: &str = "mirror.widestIPv6";

impl Default for MirrorRules {
    /// The ranges kubeadm and most distributions start from (Services 10.96.0.0/12, pods
    /// 10.244.0.0/16); a cluster with others sets its own in the chart's `network`.
    fn default() -> Self {
        let range = |text: &str| text.parse().unwrap_or_else(|_| unreachable!("{text} is a CIDR"));
        Self {
            cluster_ranges: vec![range("10.96.0.0/12"), range("10.244.0.0/16")],
            widest_ipv4: 24,
            widest_ipv6: 64,
        }
    }
}

impl MirrorRules {
    /// Why `cidr` may not be given to workspaces as a package mirror, if it may not.
    pub fn problem(&self, cidr: &str) -> Option<String> {
        let Ok(mirror) = cidr.parse::<IpNet>() else {
            return Some(format!("{cidr} is not a CIDR such as 10.20.30.40/32"));
        };
        let widest = match mirror {
            IpNet::V4(_) => self.widest_ipv4,
            IpNet::V6(_) => self.widest_ipv6,
        };
        if mirror.prefix_len() < widest {
            return Some(format!(
                "{cidr} must be no wider than /{widest}: a mirror is a host or a few, never a network"
            ));
        }
        if is_metadata_or_link_local(&mirror) {
            return Some(format!("{cidr} includes a cloud metadata or link-local address"));
        }
        let overlapped: Vec<String> = self
            .cluster_ranges
            .iter()
            .filter(|range| overlap(range, &mirror))
            .map(IpNet::to_string)
            .collect();
        (!overlapped.is_empty())
            .then(|| format!("{cidr} overlaps the cluster pod or Service range {}", overlapped.join(", ")))
    }

    /// Reads the rules from the tier ConfigMap's `mirror.*` keys; a missing or malformed key is
    /// an error naming it.
    pub fn from_config_map(data: &BTreeMap<String, String>) -> Result<Self, TierConfigError> {
        let value = |key: &str| {
            data.get(key)
                .map(|v| v.trim())
                .ok_or_else(|| TierConfigError { key: key.into(), problem: "is missing".into() })
        };
        let bad = |key: &str, problem: &str| TierConfigError { key: key.into(), problem: problem.into() };
        let cluster_ranges = value(CLUSTER_RANGES_KEY)?
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|r| r.parse().map_err(|_| bad(CLUSTER_RANGES_KEY, "must be CIDRs separated by commas")))
            .collect::<Result<_, _>>()?;
        let prefix = |key: &str, most: u8| {
            value(key)?
                .parse()
                .ok()
                .filter(|p| *p <= most)
                .ok_or_else(|| bad(key, &format!("must be a prefix length, 0 to {most}")))
        };
        Ok(Self {
            cluster_ranges,
            widest_ipv4: prefix(WIDEST_IPV4_KEY, 32)?,
            widest_ipv6: prefix(WIDEST_IPV6_KEY, 128)?,
        })
    }

    /// The rules as ConfigMap data, the form the chart renders and the admission policy reads.
    pub fn to_config_map(&self) -> BTreeMap<String, String> {
        let ranges: Vec<String> = self.cluster_ranges.iter().map(IpNet::to_string).collect();
        BTreeMap::from([
            (CLUSTER_RANGES_KEY.to_owned(), ranges.join(",")),
            (WIDEST_IPV4_KEY.to_owned(), self.widest_ipv4.to_string()),
            (WIDEST_IPV6_KEY.to_owned(), self.widest_ipv6.to_string()),
        ])
    }
}

/// Whether two ranges share an address: for prefixes, one contains the other.
fn overlap(a: &IpNet, b: &IpNet) -> bool {
    a.contains(b) || b.contains(a)
}

/// Link-local ranges (where cloud metadata services answer: 169.254.169.254) and AWS's IPv6
/// metadata address, which is not link-local.
fn is_metadata_or_link_local(mirror: &IpNet) -> bool {
    ["169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128"]
        .iter()
        .filter_map(|r| r.parse::<IpNet>().ok())
        .any(|range| overlap(&range, mirror))
}

#[cfg(test)]
#[path = "mirror_tests.rs"]
mod tests;
