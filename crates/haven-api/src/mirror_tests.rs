use super::*;

#[test]
fn a_mirror_is_a_host_or_a_few_outside_the_cluster_never_link_local() {
    let rules = MirrorRules::default();
    for (bad, why) in [
        ("10.0.0.0/8", "no wider than /24"),
        ("0.0.0.0/1", "no wider than /24"),
        ("::/0", "no wider than /64"),
        ("2001:db8::/32", "no wider than /64"),
        ("169.254.169.254/32", "metadata"),
        ("169.254.3.0/24", "metadata"),
        ("fd00:ec2::254/128", "metadata"),
        ("fd00:ec2::/64", "metadata"),
        ("fe80::1/128", "metadata"),
        ("10.96.0.1/32", "overlaps the cluster pod or Service range 10.96.0.0/12"),
        ("10.111.5.0/24", "10.96.0.0/12"),
        ("10.244.7.9/32", "10.244.0.0/16"),
        ("nonsense", "not a CIDR"),
        ("10.20.30.40", "not a CIDR"),
    ] {
        let problem = rules.problem(bad).unwrap_or_default();
        assert!(problem.contains(why), "{bad}: {problem:?}");
    }
    for good in ["10.20.30.40/32", "10.20.30.0/24", "10.95.255.0/24", "2001:db8::/64", "2001:db8::10/128"] {
        assert_eq!(rules.problem(good), None, "{good}");
    }
}

#[test]
fn the_width_and_the_cluster_ranges_are_the_platforms() {
    let rules = MirrorRules {
        cluster_ranges: vec!["10.20.0.0/16".parse().expect("cidr"), "fd10::/48".parse().expect("cidr")],
        widest_ipv4: 28,
        widest_ipv6: 120,
    };
    assert!(rules.problem("10.20.30.40/32").is_some_and(|p| p.contains("10.20.0.0/16")));
    assert!(rules.problem("fd10::5/128").is_some_and(|p| p.contains("fd10::/48")));
    assert!(rules.problem("192.0.2.0/24").is_some_and(|p| p.contains("/28")));
    assert_eq!(rules.problem("10.96.0.1/32"), None, "another cluster's ranges");
    assert_eq!(MirrorRules::from_config_map(&rules.to_config_map()), Ok(rules));
}

#[test]
fn a_malformed_key_is_named() {
    let mut data = MirrorRules::default().to_config_map();
    data.insert(CLUSTER_RANGES_KEY.into(), "10.0.0.0/16, everything".into());
    assert_eq!(MirrorRules::from_config_map(&data).map_err(|e| e.key), Err(CLUSTER_RANGES_KEY.to_owned()));
    let mut data = MirrorRules::default().to_config_map();
    data.insert(WIDEST_IPV4_KEY.into(), "33".into());
    assert_eq!(MirrorRules::from_config_map(&data).map_err(|e| e.key), Err(WIDEST_IPV4_KEY.to_owned()));
    data.remove(WIDEST_IPV6_KEY);
    assert!(MirrorRules::from_config_map(&data).is_err());
}
