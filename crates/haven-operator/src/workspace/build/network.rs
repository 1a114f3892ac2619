use std::collections::BTreeMap;

use haven_api::permit::EgressProfile;
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString};

use super::{environment::environment_selector, namespaced_meta};
use crate::{config::OperatorConfig, workspace::plan::WorkspacePlan};

/// The cloud metadata endpoint; excluded from every ipBlock even if a CIDR would include it.
const CLOUD_METADATA: &str = "169.254.169.254/32";

/// Address ranges that are never "the internet" (IANA special-purpose registries): "this"
/// network, private, shared (CGNAT), loopback, link-local (which holds the cloud metadata
/// address), IETF protocol assignments, benchmarking, multicast and reserved; in IPv6 also
/// NAT64, which could reach private IPv4 through a translator. Open egress therefore never
/// reaches the cluster, the node network or the metadata service on RFC 1918 clusters.
const PRIVATE_V4: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/4",
    "240.0.0.0/4",
];
const PRIVATE_V6: &[&str] = &["::1/128", "64:ff9b::/96", "fc00::/7", "fe80::/10", "ff00::/8"];

fn public_addresses(cidr: &str, except: Vec<String>) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        ip_block: Some(IPBlock { cidr: cidr.into(), except: Some(except) }),
        ..NetworkPolicyPeer::default()
    }
}

/// What open egress never reaches in one address family: the special-purpose ranges and the
/// cluster's own pod and Service ranges (the chart's `network.clusterRanges`), which on a
/// cluster with public addresses lie outside them.
fn never_internet(special: &[&str], cluster: &[ipnet::IpNet], v4: bool) -> Vec<String> {
    let special: Vec<ipnet::IpNet> = special.iter().filter_map(|c| c.parse().ok()).collect();
    let own = cluster
        .iter()
        .filter(|range| matches!(range, ipnet::IpNet::V4(_)) == v4)
        .filter(|range| !special.iter().any(|s| s.contains(*range)));
    special.iter().chain(own).map(ToString::to_string).collect()
}

/// Default deny in both directions, then the only holes: DNS to the cluster DNS namespace,
/// the IDE port from the gateway namespace, the permit's package mirror or, on the open tiers,
/// public internet addresses, and, for a multi-site permit, the gateway's TES API port.
/// Namespaces are selected by `kubernetes.io/metadata.name`, which only the API server sets.
pub fn build_network_policies(plan: &WorkspacePlan, config: &OperatorConfig) -> Vec<NetworkPolicy> {
    let mut policies = vec![
        policy(plan, "default-deny", LabelSelector::default(), None, None),
        policy(
            plan,
            "allow-dns",
            LabelSelector::default(),
            None,
            Some(NetworkPolicyEgressRule {
                to: Some(vec![namespace_peer(&config.dns_namespace)]),
                ports: Some(vec![port("UDP", 53), port("TCP", 53)]),
            }),
        ),
        policy(
            plan,
            "allow-ide-from-gateway",
            environment_selector(plan),
            Some(NetworkPolicyIngressRule {
                from: Some(vec![namespace_peer(&config.gateway_namespace)]),
                ports: Some(vec![port("TCP", config.ide_port)]),
            }),
            None,
        ),
    ];
    if plan.egress == EgressProfile::Internet {
        let cluster = &config.tiers.mirror_rules().cluster_ranges;
        policies.push(policy(
            plan,
            "allow-internet",
            environment_selector(plan),
            None,
            Some(NetworkPolicyEgressRule {
                to: Some(vec![
                    public_addresses("0.0.0.0/0", never_internet(PRIVATE_V4, cluster, true)),
                    public_addresses("::/0", never_internet(PRIVATE_V6, cluster, false)),
                ]),
                ports: None,
            }),
        ));
    }
    if let (true, Some(tes_port)) = (plan.multi_site, config.gateway_tes_port) {
        policies.push(policy(
            plan,
            "allow-tes-to-gateway",
            environment_selector(plan),
            None,
            Some(NetworkPolicyEgressRule {
                to: Some(vec![namespace_peer(&config.gateway_namespace)]),
                ports: Some(vec![port("TCP", tes_port)]),
            }),
        ));
    }
    if let (EgressProfile::PackageMirror, Some(mirror)) = (plan.egress, &plan.package_mirror) {
        policies.push(policy(
            plan,
            "allow-package-mirror",
            environment_selector(plan),
            None,
            Some(NetworkPolicyEgressRule {
                to: Some(vec![NetworkPolicyPeer {
                    ip_block: Some(IPBlock {
                        cidr: mirror.cidr.clone(),
                        except: mirror_exceptions(&mirror.cidr),
                    }),
                    ..NetworkPolicyPeer::default()
                }]),
                ports: Some(mirror.ports.iter().map(|p| port("TCP", i32::from(*p))).collect()),
            }),
        ));
    }
    policies
}

/// A policy of both types; `None` rules mean "allow nothing" in that direction.
fn policy(
    plan: &WorkspacePlan,
    name: &str,
    pod_selector: LabelSelector,
    ingress: Option<NetworkPolicyIngressRule>,
    egress: Option<NetworkPolicyEgressRule>,
) -> NetworkPolicy {
    NetworkPolicy {
        metadata: namespaced_meta(plan, name, "network"),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(pod_selector),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            // No rule is `None`, not an empty list: the API server stores an empty list as
            // absent, so `[]` would differ from what is stored on every apply, bump the
            // generation and wake the workspace's reconcile again, forever. `policyTypes`
            // already denies both directions.
            ingress: ingress.map(|rule| vec![rule]),
            egress: egress.map(|rule| vec![rule]),
        }),
    }
}

fn namespace_peer(namespace: &str) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([("kubernetes.io/metadata.name".into(), namespace.into())])),
            ..LabelSelector::default()
        }),
        ..NetworkPolicyPeer::default()
    }
}

fn port(protocol: &str, number: i32) -> NetworkPolicyPort {
    NetworkPolicyPort {
        protocol: Some(protocol.into()),
        port: Some(IntOrString::Int(number)),
        end_port: None,
    }
}

/// `except` must lie inside the CIDR, so only list the metadata address for ranges that could
/// contain it (the CRD already refuses those; this is defence in depth for IPv4 link-local).
fn mirror_exceptions(cidr: &str) -> Option<Vec<String>> {
    cidr.starts_with("169.254.").then(|| vec![CLOUD_METADATA.to_owned()])
}
