use haven_api::constants::GROUP;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};

use super::{cluster_meta, namespaced_meta};
use crate::{config::OperatorConfig, workspace::plan::WorkspacePlan};

/// Role and binding names inside the workspace namespace.
pub const RESEARCHER_ROLE: &str = "haven-researcher";
pub const OUTPUT_CHECKER_ROLE: &str = "haven-output-checker";
/// The access gateway's binding in a multi-site workspace: it writes TES tasks for people here.
pub const GATEWAY_TES_BINDING: &str = "haven-gateway-tes";

fn rule(api_group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![api_group.to_owned()]),
        resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        ..PolicyRule::default()
    }
}

const READ: &[&str] = &["get", "list", "watch"];

/// What the people of a workspace may do in its namespace. Every rule answers one question,
/// "can this move data out of the environment?", next to it: a verb that can (exec, attach,
/// port-forward, logs, Secrets, a pod's termination message, Events quoting a process) is
/// never granted; the researcher learns the environment's state from the Workspace's status.
pub fn build_roles(plan: &WorkspacePlan) -> Vec<Role> {
    let researcher = Role {
        metadata: namespaced_meta(plan, RESEARCHER_ROLE, "rbac"),
        rules: Some(vec![
            // Create a request, read their requests, cancel one (patch/update: the admission
            // policy keeps everything but `cancelled` as it was). Moves nothing by itself: files
            // leave only after the checks and the output checkers' approval; the status a
            // requester reads carries no value from the files.
            rule(GROUP, &["airlockrequests"], &["get", "list", "watch", "create", "patch", "update"]),
            // Send an analysis to the data sites of a multi-site permit, follow it, cancel it
            // (the admission policy binds the requester and keeps the spec). What comes back
            // arrives only through each data site's own airlock.
            rule(GROUP, &["analysistasks"], &["get", "list", "watch", "create", "patch", "update"]),
            // The IDE Service and the volume claims: names, ports and sizes the operator wrote;
            // nothing a process inside can write into.
            rule("", &["services", "persistentvolumeclaims"], READ),
            // The environment's StatefulSet: spec and replica counts, written by the operator.
            rule("apps", &["statefulsets"], READ),
            // The access gateway asks this on every visit: cutting the binding shuts the IDE too.
            PolicyRule {
                resource_names: Some(vec![plan.name.clone()]),
                ..rule(GROUP, &["workspaces"], &["connect"])
            },
            // Not granted: pods (a container's termination message is up to 4 KiB its process
            // writes), pods/log (anything it prints), events (messages quote processes and
            // probes); exec, attach, port-forward, Secrets, ConfigMaps, any write but requests.
        ]),
    };
    let output_checker = Role {
        metadata: namespaced_meta(plan, OUTPUT_CHECKER_ROLE, "rbac"),
        // Read requests and append reviews in their own name (the admission policy); they
        // see what the requester asked to export, which is their job, and nothing else here.
        rules: Some(vec![
            rule(GROUP, &["airlockrequests"], &["get", "list", "watch", "patch", "update"]),
            // The check reports with their details (ConfigMaps `airlock-report-<uid>`): what
            // was asked to leave, which they must see to judge. The only other ConfigMap here
            // is the cluster's public CA bundle.
            rule("", &["configmaps"], &["get"]),
        ]),
    };
    vec![researcher, output_checker]
}

/// One binding per role, naming the people; removing these is how access is cut first. In a
/// multi-site workspace, also the gateway's TES ClusterRole for its ServiceAccount: the gateway
/// writes tasks in people's names (`submit-for`) here and in no other namespace.
pub fn build_role_bindings(plan: &WorkspacePlan, config: &OperatorConfig) -> Vec<RoleBinding> {
    let binding = |role: &str, people: &[String]| RoleBinding {
        metadata: namespaced_meta(plan, role, "rbac"),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: role.into(),
        },
        subjects: Some(people.iter().map(|person| user(person)).collect()),
    };
    let mut bindings =
        vec![binding(RESEARCHER_ROLE, &plan.users), binding(OUTPUT_CHECKER_ROLE, &plan.reviewers)];
    if let (true, Some(_), Some(role)) = (plan.multi_site, config.gateway_tes_port, &config.gateway_tes_role)
    {
        bindings.push(RoleBinding {
            metadata: namespaced_meta(plan, GATEWAY_TES_BINDING, "rbac"),
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "ClusterRole".into(),
                name: role.clone(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: config.gateway_service_account.clone(),
                namespace: Some(config.gateway_namespace.clone()),
                ..Subject::default()
            }]),
        });
    }
    bindings
}

/// Cluster-scoped names for a workspace's view of its own Workspace and DataPermit.
pub fn cluster_rbac_name(plan: &WorkspacePlan) -> String {
    cluster_rbac_name_for(&plan.name)
}

pub fn cluster_rbac_name_for(workspace: &str) -> String {
    format!("haven:workspace:{workspace}")
}

/// Lets the workspace's people read their own Workspace (its status says how the environment
/// is) and DataPermit, by name only: both are written by the operator and the data access
/// body, never by a process in the workspace.
pub fn build_cluster_role(plan: &WorkspacePlan) -> ClusterRole {
    let by_name = |resource: &str, name: &str| PolicyRule {
        resource_names: Some(vec![name.to_owned()]),
        ..rule(GROUP, &[resource], &["get", "watch"])
    };
    ClusterRole {
        metadata: cluster_meta(plan, &cluster_rbac_name(plan), "rbac"),
        rules: Some(vec![by_name("workspaces", &plan.name), by_name("datapermits", &plan.permit)]),
        aggregation_rule: None,
    }
}

pub fn build_cluster_role_binding(plan: &WorkspacePlan) -> ClusterRoleBinding {
    let name = cluster_rbac_name(plan);
    ClusterRoleBinding {
        metadata: cluster_meta(plan, &name, "rbac"),
        role_ref: RoleRef { api_group: "rbac.authorization.k8s.io".into(), kind: "ClusterRole".into(), name },
        subjects: Some(plan.users.iter().chain(&plan.reviewers).map(|person| user(person)).collect()),
    }
}

fn user(name: &str) -> Subject {
    Subject {
        kind: "User".into(),
        api_group: Some("rbac.authorization.k8s.io".into()),
        name: name.into(),
        namespace: None,
    }
}
