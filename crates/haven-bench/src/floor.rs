//! The raw floor: a plain client server-side-applying exactly the objects the operator
//! would, built by the operator's own pure builders, in the operator's order
//! (haven-operator/src/workspace/provision.rs), with the operator's field manager. What it
//! leaves out is what the operator adds: fetching the permit and the sibling workspaces,
//! the home directory on the data store, pruning, reading the pod, and status.

use std::fmt::Debug;

use anyhow::anyhow;
use haven_api::{DataPermit, Workspace, constants::FIELD_MANAGER};
use haven_operator::{
    config::OperatorConfig,
    workspace::{
        build::{WorkspaceChildren, build_children},
        validate::plan_workspace,
    },
};
use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{Patch, PatchParams},
};
use serde::{Serialize, de::DeserializeOwned};

/// Plans `workspace` (as created, so it has its uid for the owner reference) against
/// `permit` and applies every child.
pub async fn provision(
    client: &Client,
    workspace: &Workspace,
    permit: &DataPermit,
    config: &OperatorConfig,
) -> anyhow::Result<()> {
    let plan = plan_workspace(workspace, permit, &[]).map_err(|violations| {
        let reasons: Vec<String> =
            violations.iter().map(|v| format!("{}: {}", v.reason, v.message)).collect();
        anyhow!("workspace {} refused: {}", workspace.name_any(), reasons.join("; "))
    })?;
    // Destructured without `..`, as the operator does, so a new child kind is not forgotten.
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
    } = build_children(&plan, config);

    apply_cluster(client, &namespace).await?;
    for policy in &network_policies {
        apply_namespaced(client, policy).await?;
    }
    apply_namespaced(client, &resource_quota).await?;
    apply_namespaced(client, &limit_range).await?;
    for volume in &volumes {
        apply_cluster(client, volume).await?;
    }
    for claim in &claims {
        apply_namespaced(client, claim).await?;
    }
    apply_namespaced(client, &service).await?;
    apply_namespaced(client, &stateful_set).await?;
    for role in &roles {
        apply_namespaced(client, role).await?;
    }
    for binding in &role_bindings {
        apply_namespaced(client, binding).await?;
    }
    apply_cluster(client, &cluster_role).await?;
    apply_cluster(client, &cluster_role_binding).await?;
    Ok(())
}

fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

async fn apply_cluster<K>(client: &Client, object: &K) -> anyhow::Result<()>
where
    K: Resource<Scope = ClusterResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    Api::<K>::all(client.clone()).patch(&object.name_any(), &apply_params(), &Patch::Apply(object)).await?;
    Ok(())
}

async fn apply_namespaced<K>(client: &Client, object: &K) -> anyhow::Result<()>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let namespace = object.namespace().unwrap_or_default();
    Api::<K>::namespaced(client.clone(), &namespace)
        .patch(&object.name_any(), &apply_params(), &Patch::Apply(object))
        .await?;
    Ok(())
}
