//! Apply a workspace's children in dependency order, prune what is no longer wanted, and
//! suspend access when the permit stops allowing it.

use chrono::{DateTime, Utc};
use haven_api::{Workspace, validation::workspace_namespace};
use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{Namespace, PersistentVolume, PersistentVolumeClaim, Pod},
    networking::v1::NetworkPolicy,
    rbac::v1::{ClusterRoleBinding, RoleBinding},
};
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, Patch, PatchParams},
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

/// How far a provisioned workspace has come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Its claims are not bound yet, so its environment and access wait.
    AwaitingVolumes,
    /// Everything is applied; the environment pod is not Running yet.
    Starting,
    /// The environment pod is Running.
    Running,
}

/// Creates or updates everything the workspace consists of, as far as it can yet.
pub async fn apply(plan: &WorkspacePlan, ctx: &Context) -> Result<Progress> {
    let (store, workspace) = (ctx.store.clone(), plan.name.clone());
    tokio::task::spawn_blocking(move || store.ensure_workspace_home(&workspace))
        .await?
        .map_err(Error::data_store)?;

    let client = &ctx.client;
    let children = build_children(plan, &ctx.config);
    let claims_bound = async |environment: &StatefulSet| {
        // Once the environment stands as applied, its volumes were bound: no need to look.
        if ctx.applied.is_current(environment, fingerprint(environment)) {
            return Ok(true);
        }
        claims_bound(client, plan, ctx.clock.now()).await
    };
    let whole = apply_children(client, &ctx.applied, &children, claims_bound).await?;

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

    if !whole {
        return Ok(Progress::AwaitingVolumes);
    }
    let pod = Api::<Pod>::namespaced(client.clone(), ns).get_opt(&format!("{ENVIRONMENT_NAME}-0")).await?;
    let running = pod.and_then(|p| p.status).and_then(|s| s.phase).as_deref() == Some("Running");
    Ok(if running { Progress::Running } else { Progress::Starting })
}

/// How long a claim may wait for its pre-bound volume before the operator touches it.
const CLAIM_BIND_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(1);

/// Whether every claim of the workspace is Bound. The volume binder can lose a race on a claim
/// created right behind its pre-bound volume (its claim and volume workers both write the
/// volume) and then retries only at its next resync, 15 s by default; annotating a claim still
/// Pending after a second makes it look again at once (the volume is in its cache by then).
async fn claims_bound(client: &Client, plan: &WorkspacePlan, now: DateTime<Utc>) -> Result<bool> {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &plan.namespace);
    let selector = format!("{}={}", haven_api::constants::labels::WORKSPACE, plan.name);
    let listed = claims.list(&ListParams::default().labels(&selector)).await?;
    let bound =
        listed.items.iter().all(|c| c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"));
    for name in claims_to_nudge(&listed.items, now) {
        let touch = serde_json::json!({"metadata": {"annotations": {BIND_NUDGED_AT: now.to_rfc3339()}}});
        claims.patch(&name, &PatchParams::default(), &Patch::Merge(&touch)).await?;
    }
    Ok(bound && !listed.items.is_empty())
}

/// Annotation set on a claim the binder left Pending (see [`claims_bound`]).
pub const BIND_NUDGED_AT: &str = "haven.io/bind-nudged-at";

/// Claims still Pending more than [`CLAIM_BIND_GRACE`] after they were created, and not nudged
/// before: once is enough to undo the race, and more would only add load to a binder that is
/// merely busy (a thousand workspaces at once).
fn claims_to_nudge(claims: &[PersistentVolumeClaim], now: DateTime<Utc>) -> Vec<String> {
    claims
        .iter()
        .filter(|c| c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending"))
        .filter(|c| !c.annotations().contains_key(BIND_NUDGED_AT))
        .filter(|c| {
            let created = c
                .metadata
                .creation_timestamp
                .as_ref()
                .and_then(|t| DateTime::from_timestamp_millis(t.0.as_millisecond()));
            created.is_some_and(|created| now - created > CLAIM_BIND_GRACE)
        })
        .map(ResourceExt::name_any)
        .collect()
}

/// Server-side applies every child in dependency order: isolation first (nothing runs in the
/// namespace before its policies and quota exist), access last (people get in only once the
/// workspace is whole). A child the ledger shows already standing is skipped. Public so the
/// benchmark's raw floor applies exactly the same way. The environment (and so access) waits
/// until `volumes_bound` says its claims are bound: a pod created before then is turned away
/// by the scheduler and retried only after a backoff. Returns whether everything was applied.
pub async fn apply_children(
    client: &Client,
    applied: &Applied,
    children: &WorkspaceChildren,
    volumes_bound: impl AsyncFnOnce(&StatefulSet) -> Result<bool>,
) -> Result<bool> {
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
    if !volumes_bound(stateful_set).await? {
        return Ok(false);
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
    Ok(true)
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

#[cfg(test)]
mod tests {
    use k8s_openapi::{api::core::v1::PersistentVolumeClaimStatus, apimachinery::pkg::apis::meta::v1::Time};
    use kube::api::ObjectMeta;

    use super::*;

    fn claim(name: &str, phase: &str, created: &str, nudged: Option<&str>) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(Time(created.parse().expect("time"))),
                annotations: nudged.map(|t| [(BIND_NUDGED_AT.to_owned(), t.to_owned())].into()),
                ..ObjectMeta::default()
            },
            status: Some(PersistentVolumeClaimStatus { phase: Some(phase.into()), ..Default::default() }),
            ..PersistentVolumeClaim::default()
        }
    }

    #[test]
    fn only_claims_pending_past_the_grace_are_nudged_and_only_once() {
        let now: DateTime<Utc> = "2026-11-24T10:00:10Z".parse().expect("time");
        let claims = [
            claim("home", "Bound", "2026-11-24T10:00:00Z", None),
            claim("imports", "Pending", "2026-11-24T10:00:00Z", None),
            claim("data-new", "Pending", "2026-11-24T10:00:09.500Z", None),
            claim("data-nudged", "Pending", "2026-11-24T10:00:00Z", Some("2026-11-24T10:00:09.800Z")),
            claim("data-old-nudge", "Pending", "2026-11-24T10:00:00Z", Some("2026-11-24T10:00:05Z")),
        ];
        assert_eq!(claims_to_nudge(&claims, now), ["imports"]);
    }
}
