use haven_api::{constants::labels, permit::EgressProfile};
use k8s_openapi::api::core::v1::Volume;
use serde_json::Value;

use super::environment::environment_selector;
use super::fixtures::test_config;
use super::*;
use crate::config::VolumeBackend;

fn children() -> WorkspaceChildren {
    build_children(&WorkspacePlan::test(), &test_config())
}

fn policy<'a>(policies: &'a [NetworkPolicy], name: &str) -> &'a NetworkPolicy {
    policies.iter().find(|p| p.metadata.name.as_deref() == Some(name)).expect("policy exists")
}

fn json(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).expect("serializes")
}

#[test]
fn every_child_is_owned_by_the_workspace_and_labelled_with_it() {
    let WorkspaceChildren {
        namespace,
        volumes,
        cluster_role,
        cluster_role_binding,
        network_policies,
        resource_quota,
        limit_range,
        roles,
        role_bindings,
        claims,
        service,
        stateful_set,
    } = children();
    let mut metas = vec![
        namespace.metadata,
        cluster_role.metadata,
        cluster_role_binding.metadata,
        resource_quota.metadata,
        limit_range.metadata,
        service.metadata,
        stateful_set.metadata,
    ];
    metas.extend(volumes.into_iter().map(|o| o.metadata));
    metas.extend(network_policies.into_iter().map(|o| o.metadata));
    metas.extend(roles.into_iter().map(|o| o.metadata));
    metas.extend(role_bindings.into_iter().map(|o| o.metadata));
    metas.extend(claims.into_iter().map(|o| o.metadata));
    for meta in metas {
        let name = meta.name.clone().unwrap_or_default();
        assert_eq!(meta.owner_references.as_deref(), Some(&[WorkspacePlan::test().owner][..]), "{name}");
        let labels = meta.labels.unwrap_or_default();
        assert_eq!(labels.get(labels::WORKSPACE).map(String::as_str), Some("study"), "{name}");
        assert_eq!(labels.get(labels::PERMIT).map(String::as_str), Some("permit-1"), "{name}");
        assert_eq!(labels.get(labels::MANAGED_BY).map(String::as_str), Some("haven"), "{name}");
    }
}

#[test]
fn namespace_enforces_pod_security_restricted() {
    let labels = children().namespace.metadata.labels.unwrap_or_default();
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "restricted");
    assert_eq!(children().namespace.metadata.name.as_deref(), Some("ws-study"));
}

#[test]
fn default_deny_selects_every_pod_and_allows_nothing_either_way() {
    let policies = children().network_policies;
    let deny = json(&policy(&policies, "default-deny").spec);
    assert_eq!(deny["podSelector"], serde_json::json!({}));
    assert_eq!(deny["policyTypes"], serde_json::json!(["Ingress", "Egress"]));
    // Both directions denied by policyTypes with no rules at all (absent, as the API server
    // stores them, so re-applying changes nothing).
    assert!(deny.get("ingress").is_none_or(serde_json::Value::is_null), "{deny}");
    assert!(deny.get("egress").is_none_or(serde_json::Value::is_null), "{deny}");
}

#[test]
fn dns_is_the_only_default_egress_and_selects_its_namespace_by_the_unspoofable_label() {
    let policies = children().network_policies;
    let egress: Vec<Value> = policies
        .iter()
        .flat_map(|p| json(&p.spec)["egress"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(egress.len(), 1, "only the DNS rule: {egress:?}");
    let dns = &egress[0];
    assert_eq!(
        dns["to"][0]["namespaceSelector"]["matchLabels"],
        serde_json::json!({"kubernetes.io/metadata.name": "kube-system"})
    );
    assert!(dns["to"][0].get("ipBlock").is_none());
    assert_eq!(
        dns["ports"],
        serde_json::json!([{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}])
    );
}

#[test]
fn ide_ingress_comes_only_from_the_gateway_namespace() {
    let policies = children().network_policies;
    let ingress: Vec<Value> = policies
        .iter()
        .flat_map(|p| json(&p.spec)["ingress"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(ingress.len(), 1);
    assert_eq!(
        ingress[0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "haven-gateway"
    );
    assert_eq!(ingress[0]["ports"][0]["port"], 8888);
}

#[test]
fn a_multi_site_workspace_may_reach_the_gateways_tes_port_and_nothing_more() {
    let egress = |plan: &WorkspacePlan, tes_port: Option<i32>| -> Vec<Value> {
        let config = OperatorConfig { gateway_tes_port: tes_port, ..test_config() };
        build_network_policies(plan, &config)
            .iter()
            .flat_map(|p| json(&p.spec)["egress"].as_array().cloned().unwrap_or_default())
            .collect()
    };
    let single = WorkspacePlan::test();
    let multi = WorkspacePlan { multi_site: true, ..WorkspacePlan::test() };
    // Without a multi-site permit, or without a TES API, only DNS.
    assert_eq!(egress(&single, Some(8444)), egress(&single, None));
    assert_eq!(egress(&multi, None), egress(&single, None));
    let with_tes = egress(&multi, Some(8444));
    assert_eq!(with_tes.len(), egress(&single, None).len() + 1);
    let tes = with_tes.last().expect("the TES rule");
    assert_eq!(
        tes["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "haven-gateway"
    );
    assert!(tes["to"][0].get("ipBlock").is_none());
    assert_eq!(tes["ports"], serde_json::json!([{"port": 8444, "protocol": "TCP"}]));
    let policy =
        build_network_policies(&multi, &OperatorConfig { gateway_tes_port: Some(8444), ..test_config() });
    let named =
        policy.iter().find(|p| p.metadata.name.as_deref() == Some("allow-tes-to-gateway")).expect("named");
    // From the environment's pods only.
    assert_eq!(json(&named.spec)["podSelector"], json(&environment_selector(&multi)));
}

#[test]
fn package_mirror_egress_exists_only_with_the_mirror_profile() {
    assert!(
        children()
            .network_policies
            .iter()
            .all(|p| p.metadata.name.as_deref() != Some("allow-package-mirror"))
    );
    let policies =
        build_network_policies(&WorkspacePlan::test().with_mirror("10.20.30.40/32"), &test_config());
    let mirror = json(&policy(&policies, "allow-package-mirror").spec);
    assert_eq!(mirror["egress"][0]["to"][0]["ipBlock"]["cidr"], "10.20.30.40/32");
    assert_eq!(mirror["egress"][0]["ports"][0]["port"], 443);
}

/// Every (group, resource, verb) a workspace Role grants, as `group/resource[names]:verb`.
fn grants(role_name: &str) -> std::collections::BTreeSet<String> {
    let roles = build_roles(&WorkspacePlan::test());
    let role = roles.iter().find(|r| r.metadata.name.as_deref() == Some(role_name)).expect("role");
    let mut found = std::collections::BTreeSet::new();
    for rule in role.rules.clone().unwrap_or_default() {
        let names = rule.resource_names.clone().unwrap_or_default().join(",");
        let names = if names.is_empty() { names } else { format!("[{names}]") };
        for group in rule.api_groups.clone().unwrap_or_default() {
            for resource in rule.resources.clone().unwrap_or_default() {
                for verb in &rule.verbs {
                    found.insert(format!("{group}/{resource}{names}:{verb}"));
                }
            }
        }
    }
    found
}

/// An allow-list, not a blocklist: a verb added to a role fails here until someone writes
/// here why it moves no data (e2e/tests/rbac_audit.rs checks the same as each person, live).
#[test]
fn workspace_roles_grant_exactly_the_allow_list() {
    let allowed = |entries: &[(&str, &str)]| -> std::collections::BTreeSet<String> {
        entries.iter().map(|(grant, _why)| (*grant).to_owned()).collect()
    };
    let researcher = allowed(&[
        ("haven.io/airlockrequests:get", "their own requests' state; status carries no cell values"),
        ("haven.io/airlockrequests:list", "as get"),
        ("haven.io/airlockrequests:watch", "as get"),
        ("haven.io/airlockrequests:create", "the only way out, checked and reviewed"),
        ("haven.io/airlockrequests:patch", "to cancel; the admission policy allows nothing else"),
        ("haven.io/airlockrequests:update", "as patch"),
        (
            "haven.io/analysistasks:get",
            "their analyses' progress per site; no data, results arrive by airlock",
        ),
        ("haven.io/analysistasks:list", "as get"),
        ("haven.io/analysistasks:watch", "as get"),
        ("haven.io/analysistasks:create", "sends code to data sites, whose own airlocks decide what returns"),
        ("haven.io/analysistasks:patch", "to cancel; the CRD keeps the spec, admission the requester"),
        ("haven.io/analysistasks:update", "as patch"),
        ("/services:get", "the environment's address; no data"),
        ("/services:list", "as get"),
        ("/services:watch", "as get"),
        ("/persistentvolumeclaims:get", "which volumes exist and their size; no contents"),
        ("/persistentvolumeclaims:list", "as get"),
        ("/persistentvolumeclaims:watch", "as get"),
        ("apps/statefulsets:get", "whether the environment runs; no output of it"),
        ("apps/statefulsets:list", "as get"),
        ("apps/statefulsets:watch", "as get"),
        (
            "haven.io/workspaces[study]:connect",
            "the access gateway's question, their own workspace only; the IDE, not files",
        ),
    ]);
    assert_eq!(grants("haven-researcher"), researcher);
    let checker = allowed(&[
        ("haven.io/airlockrequests:get", "what to review"),
        ("haven.io/airlockrequests:list", "as get"),
        ("haven.io/airlockrequests:watch", "as get"),
        ("haven.io/airlockrequests:patch", "to append a review; the admission policy allows nothing else"),
        ("haven.io/airlockrequests:update", "as patch"),
        ("/configmaps:get", "the full check report, for reviewers only; never list, so names must be known"),
    ]);
    let role_names: Vec<String> =
        build_roles(&WorkspacePlan::test()).iter().filter_map(|r| r.metadata.name.clone()).collect();
    let checker_role = role_names.iter().find(|n| n.as_str() != "haven-researcher").expect("a checker role");
    assert_eq!(grants(checker_role), checker, "{checker_role}");
    // Reviewing is not using: an output checker never enters the environment.
    assert!(!grants(checker_role).iter().any(|g| g.ends_with(":connect")), "{checker_role}");
    assert_eq!(role_names.len(), 2, "a new role needs its own allow-list: {role_names:?}");
}

#[test]
fn only_a_multi_site_workspace_binds_the_gateways_tes_role_to_its_service_account() {
    let tes = OperatorConfig {
        gateway_tes_port: Some(8444),
        gateway_tes_role: Some("haven-gateway-tes".into()),
        ..test_config()
    };
    let multi = WorkspacePlan { multi_site: true, ..WorkspacePlan::test() };
    let names = |bindings: Vec<k8s_openapi::api::rbac::v1::RoleBinding>| -> Vec<String> {
        bindings.iter().filter_map(|b| b.metadata.name.clone()).collect()
    };
    assert_eq!(
        names(build_role_bindings(&WorkspacePlan::test(), &tes)),
        ["haven-researcher", "haven-output-checker"]
    );
    assert_eq!(names(build_role_bindings(&multi, &test_config())).len(), 2, "no TES API configured");
    let bindings = build_role_bindings(&multi, &tes);
    let gateway =
        bindings.iter().find(|b| b.metadata.name.as_deref() == Some("haven-gateway-tes")).expect("bound");
    assert_eq!(
        json(&gateway.role_ref),
        serde_json::json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "haven-gateway-tes"})
    );
    assert_eq!(
        json(&gateway.subjects),
        serde_json::json!([{"kind": "ServiceAccount", "name": "haven-gateway", "namespace": "haven-gateway"}])
    );
    assert_eq!(gateway.metadata.namespace.as_deref(), Some("ws-study"));
}

#[test]
fn role_bindings_name_exactly_the_users_and_the_reviewers() {
    let bindings = build_role_bindings(&WorkspacePlan::test(), &test_config());
    let subjects = |name: &str| -> Vec<String> {
        let binding = bindings.iter().find(|b| b.metadata.name.as_deref() == Some(name)).expect("binding");
        binding.subjects.iter().flatten().map(|s| format!("{}:{}", s.kind, s.name)).collect()
    };
    assert_eq!(subjects("haven-researcher"), ["User:alice@example.org"]);
    assert_eq!(subjects("haven-output-checker"), ["User:carol@example.org"]);
}

#[test]
fn cluster_role_reads_only_its_own_workspace_and_permit_by_name() {
    let role = json(&build_cluster_role(&WorkspacePlan::test()));
    assert_eq!(role["rules"][0]["resourceNames"], serde_json::json!(["study"]));
    assert_eq!(role["rules"][1]["resourceNames"], serde_json::json!(["permit-1"]));
    for rule in role["rules"].as_array().expect("rules") {
        assert_eq!(rule["verbs"], serde_json::json!(["get", "watch"]));
    }
}

#[test]
fn quota_allows_one_pod_within_the_workspace_resources_and_gpus_only_when_asked() {
    let hard = json(&children().resource_quota.spec)["hard"].clone();
    assert_eq!(hard["pods"], "1");
    assert_eq!(hard["limits.cpu"], "2");
    assert_eq!(hard["limits.memory"], "8Gi");
    assert_eq!(hard["persistentvolumeclaims"], "3");
    assert_eq!(hard["services.nodeports"], "0");
    assert!(hard.get("requests.nvidia.com/gpu").is_none());
    let with_gpu = json(&build_resource_quota(&WorkspacePlan::test().with_gpus(2)).spec);
    assert_eq!(with_gpu["hard"]["requests.nvidia.com/gpu"], "2");
}

#[test]
fn volumes_are_prebound_retained_and_point_into_the_data_store() {
    let volumes = build_volumes(&WorkspacePlan::test(), &test_config());
    let [home, imports, survey] = &volumes[..] else { panic!("three volumes: {volumes:?}") };
    let imports = json(imports);
    assert_eq!(imports["spec"]["hostPath"]["path"], "/srv/haven/workspaces/study/imports");
    assert_eq!(imports["spec"]["accessModes"], serde_json::json!(["ReadOnlyMany"]));
    let home = json(home);
    assert_eq!(home["spec"]["hostPath"]["path"], "/srv/haven/workspaces/study/home");
    assert_eq!(home["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    assert_eq!(home["spec"]["storageClassName"], "");
    assert_eq!(home["spec"]["claimRef"]["namespace"], "ws-study");
    let survey = json(survey);
    assert_eq!(survey["spec"]["hostPath"]["path"], "/srv/haven/extracts/permit-1/survey");
    assert_eq!(survey["spec"]["accessModes"], serde_json::json!(["ReadOnlyMany"]));
    assert_eq!(survey["spec"]["claimRef"]["name"], "data-survey");
}

#[test]
fn nfs_volumes_use_the_export_path() {
    let mut config = test_config();
    config.volume_backend =
        VolumeBackend::Nfs { server: "nfs.example".into(), export: "/exports/haven".into() };
    let volumes = build_volumes(&WorkspacePlan::test(), &config);
    let survey = json(&volumes[2]);
    assert_eq!(
        survey["spec"]["nfs"],
        serde_json::json!({"server": "nfs.example", "path": "/exports/haven/extracts/permit-1/survey", "readOnly": true})
    );
}

#[test]
fn claims_bind_to_their_volumes_by_name() {
    for claim in build_claims(&WorkspacePlan::test().with_datasets(&["a", "b"])) {
        let name = claim.metadata.name.clone().unwrap_or_default();
        assert_eq!(claim.spec.and_then(|s| s.volume_name), Some(format!("haven-study-{name}")));
    }
}

#[test]
fn environment_runs_restricted_without_a_token_and_mounts_data_read_only() {
    let set = json(&children().stateful_set);
    let pod = &set["spec"]["template"]["spec"];
    assert_eq!(set["spec"]["replicas"], 1);
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let container = &pod["containers"][0];
    assert_eq!(container["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(container["securityContext"]["capabilities"]["drop"], serde_json::json!(["ALL"]));
    let mounts = container["volumeMounts"].as_array().expect("mounts");
    let mount = |path: &str| mounts.iter().find(|m| m["mountPath"] == path).cloned().expect(path);
    assert_eq!(mount("/data/survey")["readOnly"], true);
    assert_eq!(mount("/home")["readOnly"], false);
    assert_eq!(
        mount("/home/imports")["readOnly"],
        true,
        "approved imports cannot be changed in the workspace"
    );
    assert_eq!(mount("/outputs")["subPath"], "outputs");
    let volumes: Vec<Volume> = serde_json::from_value(pod["volumes"].clone()).expect("volumes");
    let data = volumes.iter().find(|v| v.name == "data-survey").expect("data volume");
    assert_eq!(data.persistent_volume_claim.as_ref().and_then(|c| c.read_only), Some(true));
}

#[test]
fn paused_workspace_runs_no_replica() {
    let set = build_stateful_set(&WorkspacePlan::test().paused(), &test_config());
    assert_eq!(set.spec.and_then(|s| s.replicas), Some(0));
}

#[test]
fn service_exposes_only_the_ide_port() {
    let service = json(&children().service);
    assert_eq!(service["spec"]["type"], "ClusterIP");
    assert_eq!(
        service["spec"]["ports"],
        serde_json::json!([{"name": "ide", "port": 8888, "protocol": "TCP", "targetPort": "ide"}])
    );
}

#[test]
fn internet_egress_reaches_public_addresses_only() {
    assert!(children().network_policies.iter().all(|p| p.metadata.name.as_deref() != Some("allow-internet")));
    let plan = WorkspacePlan { egress: EgressProfile::Internet, ..WorkspacePlan::test() };
    let policies = build_network_policies(&plan, &test_config());
    let internet = json(&policy(&policies, "allow-internet").spec);
    let v4 = &internet["egress"][0]["to"][0]["ipBlock"];
    assert_eq!(v4["cidr"], "0.0.0.0/0");
    for private in ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "127.0.0.0/8"] {
        assert!(v4["except"].as_array().expect("except").iter().any(|c| c == private), "{private} excluded");
    }
    assert_eq!(internet["egress"][0]["to"][1]["ipBlock"]["cidr"], "::/0");
    assert_eq!(internet["podSelector"], json(&environment_selector(&plan)));
}

#[test]
fn internet_egress_never_reaches_the_clusters_own_ranges_even_public_ones() {
    let mut config = test_config();
    let mut data = haven_api::tier::TierProfiles::default().to_config_map();
    data.insert(
        haven_api::mirror::CLUSTER_RANGES_KEY.into(),
        "10.96.0.0/12,203.0.113.0/24,2001:db8:42::/56".into(),
    );
    config.tiers = haven_api::tier::TierProfiles::from_config_map(&data).expect("tiers");
    let plan = WorkspacePlan { egress: EgressProfile::Internet, ..WorkspacePlan::test() };
    let internet = json(&policy(&build_network_policies(&plan, &config), "allow-internet").spec);
    let except = |n: usize| internet["egress"][0]["to"][n]["ipBlock"]["except"].clone();
    let (v4, v6) = (except(0), except(1));
    assert!(v4.as_array().expect("v4").iter().any(|c| c == "203.0.113.0/24"), "{v4}");
    assert!(v6.as_array().expect("v6").iter().any(|c| c == "2001:db8:42::/56"), "{v6}");
    assert!(
        !v4.as_array().expect("v4").iter().any(|c| c == "10.96.0.0/12"),
        "inside 10.0.0.0/8 already: {v4}"
    );
    assert!(!v4.as_array().expect("v4").iter().any(|c| c == "2001:db8:42::/56"), "each family its own: {v4}");
}

#[test]
fn dedicated_nodes_pin_the_environment_to_the_permits_nodes() {
    let shared = json(&children().stateful_set.spec);
    assert!(shared["template"]["spec"]["nodeSelector"].is_null());
    assert!(shared["template"]["spec"]["tolerations"].is_null());

    let plan = WorkspacePlan { dedicated_nodes: true, ..WorkspacePlan::test() };
    let pod = json(&build_stateful_set(&plan, &test_config()).spec)["template"]["spec"].clone();
    let key = "node-restriction.kubernetes.io/haven-permit";
    assert_eq!(pod["nodeSelector"], serde_json::json!({key: "permit-1"}));
    assert_eq!(
        pod["tolerations"],
        serde_json::json!([{"key": key, "operator": "Equal", "value": "permit-1", "effect": "NoSchedule"}])
    );
}

#[test]
fn the_tiers_gateway_rules_are_annotations_on_the_service() {
    assert!(children().service.metadata.annotations.is_none());
    let rules = BTreeMap::from([("haven.io/clipboard-out".to_owned(), "disabled".to_owned())]);
    let plan = WorkspacePlan { gateway_annotations: rules.clone(), ..WorkspacePlan::test() };
    assert_eq!(build_service(&plan, &test_config()).metadata.annotations, Some(rules));
}

#[test]
fn gpus_are_requested_as_the_extended_resource() {
    let plan = WorkspacePlan::test().with_gpus(2);
    let container =
        json(&build_stateful_set(&plan, &test_config()).spec)["template"]["spec"]["containers"][0].clone();
    assert_eq!(container["resources"]["requests"]["nvidia.com/gpu"], "2");
    assert_eq!(container["resources"]["limits"]["nvidia.com/gpu"], "2");
}

#[test]
fn environment_joins_the_data_stores_group_only_when_it_has_one() {
    let supplemental = |config: &crate::config::OperatorConfig| {
        json(&build_stateful_set(&WorkspacePlan::test(), config).spec)["template"]["spec"]["securityContext"]
            ["supplementalGroups"]
            .clone()
    };
    assert_eq!(supplemental(&test_config()), Value::Null);
    let config = crate::config::OperatorConfig { data_store_group: Some(65532), ..test_config() };
    assert_eq!(supplemental(&config), serde_json::json!([65532]));
}

#[test]
fn the_environment_is_ready_only_when_its_ide_port_accepts_connections() {
    let container = json(&build_stateful_set(&WorkspacePlan::test(), &test_config()).spec)["template"]["spec"]
        ["containers"][0]
        .clone();
    assert_eq!(container["readinessProbe"]["tcpSocket"]["port"], "ide");
    assert_eq!(container["ports"][0]["name"], "ide");
}
