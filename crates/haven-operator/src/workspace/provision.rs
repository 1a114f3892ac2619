//! Apply a workspace's children in dependency order, prune what is no longer wanted, and
//! suspend access when the permit stops allowing it.

use haven_api::{Workspace, validation::workspace_namespace};
use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{Namespace, PersistentVolume, PersistentVolumeClaim, Pod},
    networking::v1::NetworkPolicy,
    rbac::v1::{ClusterRoleBinding, RoleBinding},
};
use kube::{
    Api, Client, ResourceExt,
    api::{Patch, PatchParams},
};

use super::{
    build::{self, ENVIRONMENT_NAME, WorkspaceChildren, build_children},
    plan::WorkspacePlan,
};
use crate::{
    applied::{Applied, fingerprint},
    context::Context,
    error::{Error, Result},
    kubeapi::{apply_cluster, apply_namespaced, delete_if_exists, prune},
};

/// How far the analysis environment's pod has got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Environment {
    Running,
    /// Not running yet; with the scheduler's reason when no node will take it (e.g. no node
    /// dedicated to the permit).
    Starting(Option<String>),
}

impl Environment {
    fn of(pod: Option<Pod>) -> Self {
        let status = pod.and_then(|p| p.status);
        if status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") {
            return Self::Running;
        }
        let unschedulable = status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .find(|c| {
                c.type_ == "PodScheduled"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("Unschedulable")
            })
            .map(|c| c.message.unwrap_or_else(|| "no node can run it".into()));
        Self::Starting(unschedulable)
    }
}

/// Creates or updates everything the workspace consists of; returns how far its environment
/// pod has got.
pub async fn apply(plan: &WorkspacePlan, ctx: &Context) -> Result<Environment> {
    let (store, workspace) = (ctx.store.clone(), plan.name.clone());
    tokio::task::spawn_blocking(move || store.ensure_workspace_home(&workspace))
        .await?
        .map_err(Error::data_store)?;

    let client = &ctx.client;
    let children = build_children(plan, &ctx.config);
    apply_children(client, &ctx.applied, &children).await?;

    // Datasets or the mirror may have been removed from the plan: prune once per change of
    // the set of children (and once after every start).
    let ns = plan.namespace.as_str();
    let (policies, claims, volumes) =
        (names(&children.network_policies), names(&children.claims), names(&children.volumes));
    let kept = fingerprint(&(&policies, &claims, &volumes));
    if !ctx.applied.is_pruned(&plan.name, kept) {
        prune(&Api::<NetworkPolicy>::namespaced(client.clone(), ns), &plan.name, &policies).await?;
        prune(&Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns), &plan.name, &claims).await?;
        prune(&Api::<PersistentVolume>::all(client.clone()), &plan.name, &volumes).await?;
        ctx.applied.pruned(&plan.name, kept);
    }

    let pod = Api::<Pod>::namespaced(client.clone(), ns).get_opt(&format!("{ENVIRONMENT_NAME}-0")).await?;
    Ok(Environment::of(pod))
}

/// Server-side applies every child in dependency order: isolation first (nothing runs in the
/// namespace before its policies and quota exist), access last (people get in only once the
/// workspace is whole). A child the ledger shows already standing is skipped. Public so the
/// benchmark's raw floor applies exactly the same way.
pub async fn apply_children(client: &Client, applied: &Applied, children: &WorkspaceChildren) -> Result<()> {
    // Destructured without `..`, so a new child kind cannot be forgotten here.
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
    } = children;
    apply_cluster(client, applied, namespace).await?;
    for policy in network_policies {
        apply_namespaced(client, applied, policy).await?;
    }
    apply_namespaced(client, applied, resource_quota).await?;
    apply_namespaced(client, applied, limit_range).await?;
    for volume in volumes {
        apply_cluster(client, applied, volume).await?;
    }
    for claim in claims {
        apply_namespaced(client, applied, claim).await?;
    }
    apply_namespaced(client, applied, service).await?;
    apply_namespaced(client, applied, stateful_set).await?;
    for role in roles {
        apply_namespaced(client, applied, role).await?;
    }
    for binding in role_bindings {
        apply_namespaced(client, applied, binding).await?;
    }
    apply_cluster(client, applied, cluster_role).await?;
    apply_cluster(client, applied, cluster_role_binding).await?;
    Ok(())
}

fn names<K: ResourceExt>(objects: &[K]) -> Vec<String> {
    objects.iter().map(ResourceExt::name_any).collect()
}

/// Removes every person's access to the workspace (RoleBindings and the ClusterRoleBinding).
/// The first step of every teardown, and what a suspension or a refusal does.
pub async fn cut_access(workspace: &Workspace, ctx: &Context) -> Result<bool> {
    let namespace = workspace_namespace(&workspace.name_any());
    let bindings: Api<RoleBinding> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut removed = false;
    for role in [build::RESEARCHER_ROLE, build::OUTPUT_CHECKER_ROLE] {
        ctx.applied.forget::<RoleBinding>(&namespace, role);
        removed |= delete_if_exists(&bindings, role).await?;
    }
    let cluster_binding = build::cluster_rbac_name_for(&workspace.name_any());
    ctx.applied.forget::<ClusterRoleBinding>("", &cluster_binding);
    removed |=
        delete_if_exists(&Api::<ClusterRoleBinding>::all(ctx.client.clone()), &cluster_binding).await?;
    Ok(removed)
}

/// Cuts access and stops the environment, keeping files and everything else.
pub async fn suspend(workspace: &Workspace, ctx: &Context) -> Result<()> {
    let namespace = workspace_namespace(&workspace.name_any());
    if Api::<Namespace>::all(ctx.client.clone()).get_opt(&namespace).await?.is_none() {
        return Ok(());
    }
    cut_access(workspace, ctx).await?;
    let sets: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &namespace);
    if sets.get_opt(ENVIRONMENT_NAME).await?.is_some() {
        ctx.applied.forget::<StatefulSet>(&namespace, ENVIRONMENT_NAME);
        let params = PatchParams::apply(haven_api::constants::FIELD_MANAGER);
        sets.patch(ENVIRONMENT_NAME, &params, &Patch::Merge(serde_json::json!({"spec": {"replicas": 0}})))
            .await?;
    }
    Ok(())
}
