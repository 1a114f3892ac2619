//! Pure builders: a [`WorkspacePlan`] in, the Kubernetes objects of the workspace out.
//! One file per child kind; no client, clock or randomness.

mod environment;
mod namespace;
mod network;
mod quota;
mod rbac;
mod storage;

use std::collections::BTreeMap;

use haven_api::constants::labels;
use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{LimitRange, Namespace, PersistentVolume, PersistentVolumeClaim, ResourceQuota, Service},
    networking::v1::NetworkPolicy,
    rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding},
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

pub use environment::{ENVIRONMENT_NAME, build_service, build_stateful_set};
pub use namespace::build_namespace;
pub use network::build_network_policies;
pub use quota::{build_limit_range, build_resource_quota};
pub use rbac::{
    OUTPUT_CHECKER_ROLE, RESEARCHER_ROLE, build_cluster_role, build_cluster_role_binding,
    build_role_bindings, build_roles, cluster_rbac_name, cluster_rbac_name_for,
};
pub use storage::{build_claims, build_volumes};

use super::plan::WorkspacePlan;
use crate::config::OperatorConfig;

/// Every object a workspace consists of. Apply destructures it without `..`, so a new child
/// kind cannot be forgotten.
#[derive(Clone, Debug)]
pub struct WorkspaceChildren {
    pub namespace: Namespace,
    pub volumes: Vec<PersistentVolume>,
    pub cluster_role: ClusterRole,
    pub cluster_role_binding: ClusterRoleBinding,
    pub network_policies: Vec<NetworkPolicy>,
    pub resource_quota: ResourceQuota,
    pub limit_range: LimitRange,
    pub roles: Vec<Role>,
    pub role_bindings: Vec<RoleBinding>,
    pub claims: Vec<PersistentVolumeClaim>,
    pub service: Service,
    pub stateful_set: StatefulSet,
}

/// The whole workspace.
pub fn build_children(plan: &WorkspacePlan, config: &OperatorConfig) -> WorkspaceChildren {
    WorkspaceChildren {
        namespace: build_namespace(plan),
        volumes: build_volumes(plan, config),
        cluster_role: build_cluster_role(plan),
        cluster_role_binding: build_cluster_role_binding(plan),
        network_policies: build_network_policies(plan, config),
        resource_quota: build_resource_quota(plan),
        limit_range: build_limit_range(plan),
        roles: build_roles(plan),
        role_bindings: build_role_bindings(plan, config),
        claims: build_claims(plan),
        service: build_service(plan, config),
        stateful_set: build_stateful_set(plan, config),
    }
}

/// Labels every child carries, so it can be found, audited and pruned.
pub fn workspace_labels(plan: &WorkspacePlan, component: &str) -> BTreeMap<String, String> {
    [
        (labels::MANAGED_BY, labels::MANAGED_BY_VALUE),
        (labels::WORKSPACE, plan.name.as_str()),
        (labels::PERMIT, plan.permit.as_str()),
        (labels::COMPONENT, component),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Metadata of a child in the workspace's namespace, owned by the Workspace.
fn namespaced_meta(plan: &WorkspacePlan, name: &str, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(plan.namespace.clone()),
        labels: Some(workspace_labels(plan, component)),
        owner_references: Some(vec![plan.owner.clone()]),
        ..ObjectMeta::default()
    }
}

/// Metadata of a cluster-scoped child, owned by the Workspace.
fn cluster_meta(plan: &WorkspacePlan, name: &str, component: &str) -> ObjectMeta {
    ObjectMeta { namespace: None, ..namespaced_meta(plan, name, component) }
}

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;
