//! The RBAC audit: every verb each kind of person holds, as the API server itself reports it
//! (a SelfSubjectRulesReview made as that person, like `kubectl auth can-i --list --as`),
//! compared with an allow-list where each entry says why it is safe. A verb added to any role
//! for people (the workspace's Roles, its ClusterRole, the chart's aggregated roles) fails
//! this test until someone writes here why it cannot move data out.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, ensure};
use haven_api::{DataPermit, Workspace};
use haven_e2e::{
    Operator, TestNamespace, admin, as_user, data_root, ensure_namespace, fixtures, tier_config_map,
    unique_name,
};
use k8s_openapi::api::{
    authorization::v1::{SelfSubjectRulesReview, SelfSubjectRulesReviewSpec},
    rbac::v1::{ClusterRoleBinding, RoleBinding},
};
use kube::{
    Api, Client,
    api::{DeleteParams, PostParams},
};
use serde_json::json;

/// What every authenticated user may do, from Kubernetes' own default roles
/// (system:basic-user): ask what they themselves may do, and who they are. Reveals nothing.
const EVERYONE: &[(&str, &str)] = &[
    ("authorization.k8s.io/selfsubjectaccessreviews:create", "asks what I may do"),
    ("authorization.k8s.io/selfsubjectrulesreviews:create", "asks what I may do"),
    ("authentication.k8s.io/selfsubjectreviews:create", "asks who I am"),
];

/// Everyone of a workspace, researchers and checkers, everywhere (its ClusterRole, by name):
/// the Workspace (its status tells the environment's state) and the permit they work under,
/// written by the operator and the data access body, never by a process in the workspace.
const OWN_OBJECTS: &[(&str, &str)] = &[
    ("haven.io/workspaces[{workspace}]:get", "their own Workspace, by name"),
    ("haven.io/workspaces[{workspace}]:watch", "as get"),
    ("haven.io/datapermits[{permit}]:get", "the permit they work under, by name"),
    ("haven.io/datapermits[{permit}]:watch", "as get"),
];

/// A researcher of a workspace, in its namespace (the operator's Role and ClusterRole).
const RESEARCHER: &[(&str, &str)] = &[
    ("haven.io/airlockrequests:create", "asks to export; files leave only after checks and approval"),
    ("haven.io/airlockrequests:get", "their requests; the status carries no value from the files"),
    ("haven.io/airlockrequests:list", "as get"),
    ("haven.io/airlockrequests:watch", "as get"),
    ("haven.io/airlockrequests:patch", "cancel only: the admission policy freezes the rest"),
    ("haven.io/airlockrequests:update", "as patch"),
    ("haven.io/analysistasks:create", "sends an analysis to data sites; what returns passes their airlocks"),
    ("haven.io/analysistasks:get", "their analyses' progress per site; no value from any data"),
    ("haven.io/analysistasks:list", "as get"),
    ("haven.io/analysistasks:watch", "as get"),
    ("haven.io/analysistasks:patch", "cancel only: the CRD freezes the spec, admission the requester"),
    ("haven.io/analysistasks:update", "as patch"),
    ("/services:get", "the IDE Service: ports the operator wrote"),
    ("/services:list", "as get"),
    ("/services:watch", "as get"),
    ("/persistentvolumeclaims:get", "claim names and sizes the operator wrote"),
    ("/persistentvolumeclaims:list", "as get"),
    ("/persistentvolumeclaims:watch", "as get"),
    ("apps/statefulsets:get", "the environment's spec and replica counts, written by the operator"),
    ("apps/statefulsets:list", "as get"),
    ("apps/statefulsets:watch", "as get"),
    ("haven.io/workspaces[{workspace}]:connect", "enters their own IDE through the access gateway"),
];

/// An output checker of a workspace, in its namespace.
const CHECKER: &[(&str, &str)] = &[
    ("haven.io/airlockrequests:get", "reading what was asked to leave is the checker's job"),
    ("haven.io/airlockrequests:list", "as get"),
    ("haven.io/airlockrequests:watch", "as get"),
    ("haven.io/airlockrequests:patch", "appends a review in their own name (admission policy)"),
    ("haven.io/airlockrequests:update", "as patch"),
    ("/configmaps:get", "the check reports' details: what was asked to leave, theirs to judge"),
];

/// The chart's `haven-researcher`, bound by a site with a RoleBinding in a namespace.
const CHART_RESEARCHER: &[(&str, &str)] = &[
    ("haven.io/airlockrequests:create", "as in the workspace Role"),
    ("haven.io/airlockrequests:get", "as in the workspace Role"),
    ("haven.io/airlockrequests:list", "as in the workspace Role"),
    ("haven.io/airlockrequests:watch", "as in the workspace Role"),
    ("haven.io/airlockrequests:patch", "as in the workspace Role"),
    ("haven.io/airlockrequests:update", "as in the workspace Role"),
    ("haven.io/analysistasks:create", "as in the workspace Role"),
    ("haven.io/analysistasks:get", "as in the workspace Role"),
    ("haven.io/analysistasks:list", "as in the workspace Role"),
    ("haven.io/analysistasks:watch", "as in the workspace Role"),
    ("haven.io/analysistasks:patch", "as in the workspace Role"),
    ("haven.io/analysistasks:update", "as in the workspace Role"),
    ("/services:get", "as in the workspace Role"),
    ("/services:list", "as in the workspace Role"),
    ("/services:watch", "as in the workspace Role"),
    ("/persistentvolumeclaims:get", "as in the workspace Role"),
    ("/persistentvolumeclaims:list", "as in the workspace Role"),
    ("/persistentvolumeclaims:watch", "as in the workspace Role"),
    ("apps/statefulsets:get", "as in the workspace Role"),
    ("apps/statefulsets:list", "as in the workspace Role"),
    ("apps/statefulsets:watch", "as in the workspace Role"),
];

/// The chart's `haven-output-checker`, bound cluster-wide for a checking team.
const CHART_CHECKER: &[(&str, &str)] = &[
    ("haven.io/airlockrequests:get", "as in the workspace's checker Role"),
    ("haven.io/airlockrequests:list", "as in the workspace's checker Role"),
    ("haven.io/airlockrequests:watch", "as in the workspace's checker Role"),
    ("haven.io/airlockrequests:patch", "as in the workspace's checker Role"),
    ("haven.io/airlockrequests:update", "as in the workspace's checker Role"),
    ("/configmaps:get", "as in the workspace's checker Role"),
];

/// The chart's `haven-admin`, bound cluster-wide: manages permits and workspaces (specs only:
/// the data stays in the workspaces), oversees the airlock without reviewing.
const CHART_ADMIN: &[(&str, &str)] = &[
    ("haven.io/datapermits:create", "issues permits"),
    ("haven.io/datapermits:get", "permits are metadata, not data"),
    ("haven.io/datapermits:list", "as get"),
    ("haven.io/datapermits:watch", "as get"),
    ("haven.io/datapermits:update", "changes, suspends, revokes permits"),
    ("haven.io/datapermits:patch", "as update"),
    ("haven.io/datapermits:delete", "removes a permit (its finalizer destroys the data)"),
    ("haven.io/workspaces:create", "creates workspaces"),
    ("haven.io/workspaces:get", "workspaces are metadata, not data"),
    ("haven.io/workspaces:list", "as get"),
    ("haven.io/workspaces:watch", "as get"),
    ("haven.io/workspaces:update", "pauses, resizes workspaces"),
    ("haven.io/workspaces:patch", "as update"),
    ("haven.io/workspaces:delete", "tears a workspace down (archived first)"),
    ("haven.io/airlockrequests:get", "oversees requests; never reviews (no patch)"),
    ("haven.io/airlockrequests:list", "as get"),
    ("haven.io/airlockrequests:watch", "as get"),
    ("haven.io/datapermits/status:get", "as the objects' get"),
    ("haven.io/workspaces/status:get", "as the objects' get"),
    ("haven.io/airlockrequests/status:get", "as the objects' get"),
];

/// Every resource rule the API server says `user` holds in `namespace`, one string per verb:
/// `group/resource[names]:verb`.
async fn rules_of(user: &str, namespace: &str) -> Result<BTreeSet<String>> {
    let client = as_user(user, &[]).await?;
    let review = SelfSubjectRulesReview {
        spec: SelfSubjectRulesReviewSpec { namespace: Some(namespace.to_owned()) },
        ..SelfSubjectRulesReview::default()
    };
    let answer = Api::<SelfSubjectRulesReview>::all(client).create(&PostParams::default(), &review).await?;
    let status = answer.status.context("the rules review has a status")?;
    ensure!(!status.incomplete, "the rules review is incomplete: {:?}", status.evaluation_error);
    let mut held = BTreeSet::new();
    for rule in status.resource_rules {
        let names = rule.resource_names.unwrap_or_default();
        let names = if names.is_empty() { String::new() } else { format!("[{}]", names.join(",")) };
        for group in rule.api_groups.unwrap_or_default() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    held.insert(format!("{group}/{resource}{names}:{verb}"));
                }
            }
        }
    }
    Ok(held)
}

/// Compares what `user` holds with `allowed` (plus what everyone holds, and with `names` of a
/// workspace and permit, what all of its people hold): every verb held must
/// be allowed with a reason, and every allowed verb held (so the list stays true, and a review
/// that came back empty cannot pass).
async fn audit(
    who: &str,
    user: &str,
    namespace: &str,
    allowed: &[(&str, &str)],
    names: &[(&str, &str)],
) -> Result<()> {
    let expected: BTreeMap<String, &str> = allowed
        .iter()
        .chain(EVERYONE)
        .chain(if names.is_empty() { &[][..] } else { OWN_OBJECTS })
        .map(|(rule, why)| (names.iter().fold((*rule).to_owned(), |r, (k, v)| r.replace(k, v)), *why))
        .collect();
    let held = rules_of(user, namespace).await?;
    let unexplained: Vec<&String> = held.iter().filter(|rule| !expected.contains_key(*rule)).collect();
    let missing: Vec<&String> = expected.keys().filter(|rule| !held.contains(*rule)).collect();
    ensure!(
        unexplained.is_empty() && missing.is_empty(),
        "{who} ({user} in {namespace}): verbs held that no entry explains (add them to the allow-list \
         with why they cannot move data out, or remove them): {unexplained:?}; listed but not held: {missing:?}"
    );
    Ok(())
}

#[tokio::test]
async fn every_verb_people_hold_is_on_the_allow_list_with_a_reason() -> Result<()> {
    let client: Client = admin().await?;
    ensure_namespace(&client, "haven-system").await?;
    let root = data_root("rbac-audit")?;
    fixtures::write_raw_source(&root)?;
    let operator = Operator::start(&root).await?;
    let (permit, workspace) = (unique_name("audit"), unique_name("audit"));
    // People of their own: in a shared cluster the fixtures' checker reviews other tests' workspaces.
    let (researcher, checker) =
        (format!("{workspace}@example.org"), format!("checker-{workspace}@example.org"));
    let permits: Api<DataPermit> = Api::all(client.clone());
    let workspaces: Api<Workspace> = Api::all(client.clone());
    let mut granted = fixtures::permit(&permit, &researcher, -5, 600)?;
    granted.spec.reviewers = vec![checker.clone()];
    permits.create(&PostParams::default(), &granted).await?;
    workspaces
        .create(&PostParams::default(), &fixtures::workspace(&workspace, &permit, &researcher, json!({}))?)
        .await?;
    haven_e2e::workspace::ready(&workspaces, &workspace).await?;
    let namespace = format!("ws-{workspace}");
    let names = [("{workspace}", workspace.as_str()), ("{permit}", permit.as_str())];
    audit("a workspace's researcher", &researcher, &namespace, RESEARCHER, &names).await?;
    audit("a workspace's output checker", &checker, &namespace, CHECKER, &names).await?;
    // Outside their workspace they hold only their own Workspace and permit, by name.
    audit("a researcher elsewhere", &researcher, "default", &[], &names).await?;

    // The chart's roles, bound as a site would: a RoleBinding for a researcher, ClusterRoleBindings
    // for a checking team and an admin.
    let release = tier_config_map().trim_end_matches("-tiers").to_owned();
    let site = TestNamespace::create(&client, "rbac-audit", &[]).await?;
    let (chart_researcher, chart_checker, chart_admin) =
        (unique_name("researcher"), unique_name("checker"), unique_name("admin"));
    let binding = |name: &str, role: &str, user: &str| {
        json!({"metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": user}]})
    };
    let role_bindings: Api<RoleBinding> = Api::namespaced(client.clone(), &site.name);
    role_bindings
        .create(
            &PostParams::default(),
            &serde_json::from_value(binding(
                &chart_researcher,
                &format!("{release}-researcher"),
                &chart_researcher,
            ))?,
        )
        .await?;
    let cluster_bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    for (user, role) in [(&chart_checker, "output-checker"), (&chart_admin, "admin")] {
        cluster_bindings
            .create(
                &PostParams::default(),
                &serde_json::from_value(binding(user, &format!("{release}-{role}"), user))?,
            )
            .await?;
    }
    let outcome = async {
        audit("the chart's researcher", &chart_researcher, &site.name, CHART_RESEARCHER, &[]).await?;
        audit("the chart's output checker", &chart_checker, &site.name, CHART_CHECKER, &[]).await?;
        audit("the chart's admin", &chart_admin, &site.name, CHART_ADMIN, &[]).await
    }
    .await;
    for user in [&chart_checker, &chart_admin] {
        cluster_bindings.delete(user, &DeleteParams::default()).await?;
    }
    site.delete().await?;
    drop(operator);
    outcome
}
