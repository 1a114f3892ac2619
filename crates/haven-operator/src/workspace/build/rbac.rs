use haven_api::constants::GROUP;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};

use super::{cluster_meta, namespaced_meta};
use crate::workspace::plan::WorkspacePlan;

/// Role and binding names inside the workspace namespace.
pub const RESEARCHER_ROLE: &str = "haven-researcher";
pub const OUTPUT_CHECKER_ROLE: &str = "haven-output-checker";

fn rule(api_group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![api_group.to_owned()]),
        resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        ..PolicyRule::default()
    }
}

const READ: &[&str] = &["get", "list", "watch"];

/// Researchers see their workspace and create and read AirlockRequests; nothing that moves
/// data: no exec/attach/port-forward, no Secrets, no writes to pods, volumes, policies or RBAC.
/// Output checkers read requests and append reviews (admission checks who they review as).
pub fn build_roles(plan: &WorkspacePlan) -> Vec<Role> {
    let researcher = Role {
        metadata: namespaced_meta(plan, RESEARCHER_ROLE, "rbac"),
        rules: Some(vec![
            // patch/update only to cancel: the admission policy keeps everything else as it was.
            rule(GROUP, &["airlockrequests"], &["get", "list", "watch", "create", "patch", "update"]),
            rule("", &["pods", "pods/log", "services", "persistentvolumeclaims", "events"], READ),
            rule("apps", &["statefulsets"], READ),
        ]),
    };
    let output_checker = Role {
        metadata: namespaced_meta(plan, OUTPUT_CHECKER_ROLE, "rbac"),
        rules: Some(vec![rule(GROUP, &["airlockrequests"], &["get", "list", "watch", "patch", "update"])]),
    };
    vec![researcher, output_checker]
}

/// One binding per role, naming the people; removing these is how access is cut first.
pub fn build_role_bindings(plan: &WorkspacePlan) -> Vec<RoleBinding> {
    let binding = |role: &str, people: &[String]| RoleBinding {
        metadata: namespaced_meta(plan, role, "rbac"),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: role.into(),
        },
        subjects: Some(people.iter().map(|person| user(person)).collect()),
    };
    vec![binding(RESEARCHER_ROLE, &plan.users), binding(OUTPUT_CHECKER_ROLE, &plan.reviewers)]
}

/// Cluster-scoped names for a workspace's view of its own Workspace and DataPermit.
pub fn cluster_rbac_name(plan: &WorkspacePlan) -> String {
    cluster_rbac_name_for(&plan.name)
}

pub fn cluster_rbac_name_for(workspace: &str) -> String {
    format!("haven:workspace:{workspace}")
}

/// Lets the workspace's people read their own Workspace and DataPermit, by name only.
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
