//! Apply a workspace's children in dependency order, prune what is no longer wanted, and
//! suspend access when the permit stops allowing it.

use haven_api::{Workspace, validation::workspace_namespace};
use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{ContainerStatus, Namespace, PersistentVolume, PersistentVolumeClaim, Pod},
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
    /// Its container is not running, for the kubelet's reason (`CrashLoopBackOff`,
    /// `ImagePullBackOff`, a last exit `OOMKilled`...). Only reasons, never a message: a
    /// termination message is text the process wrote, and researchers read this in the status.
    Waiting(String),
}

impl Environment {
    fn of(pod: Option<Pod>) -> Self {
        let status = pod.and_then(|p| p.status);
        let container = status.as_ref().and_then(|s| s.container_statuses.as_ref()).and_then(|c| c.first());
        if let Some(waiting) = container.and_then(container_not_running) {
            return Self::Waiting(waiting);
        }
        // Running means the IDE answers: the container's readiness probe (a TCP connection to
        // the IDE port) has passed, not merely that the process started.
        let ready = container.is_none_or(|c| c.ready);
        if status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") && ready {
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

/// Why the environment's container is not running, from the kubelet's reasons alone; `None`
/// while it runs or has not been created yet (`ContainerCreating` is just starting).
fn container_not_running(container: &ContainerStatus) -> Option<String> {
    let state = container.state.as_ref()?;
    let now = state
        .waiting
        .as_ref()
        .and_then(|w| w.reason.clone())
        .filter(|reason| reason != "ContainerCreating" && reason != "PodInitializing")
        .or_else(|| {
            state.terminated.as_ref().map(|t| t.reason.clone().unwrap_or_else(|| "Terminated".into()))
        })?;
    let last =
        container.last_state.as_ref().and_then(|s| s.terminated.as_ref()).and_then(|t| t.reason.clone());
    Some(match last {
        Some(last) if last != now => format!("{now} (last exit: {last})"),
        _ => now,
    })
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

    // Datasets, the mirror or multi-site may have been removed from the plan: prune once per change of
    // the set of children (and once after every start).
    let ns = plan.namespace.as_str();
    let (policies, claims, volumes, bindings) = (
        names(&children.network_policies),
        names(&children.claims),
        names(&children.volumes),
        names(&children.role_bindings),
    );
    let kept = fingerprint(&(&policies, &claims, &volumes, &bindings));
    if !ctx.applied.is_pruned(&plan.name, kept) {
        prune(&Api::<NetworkPolicy>::namespaced(client.clone(), ns), &plan.name, &policies).await?;
        // The gateway's TES binding goes when the permit is no longer multi-site.
        prune(&Api::<RoleBinding>::namespaced(client.clone(), ns), &plan.name, &bindings).await?;
        prune(&Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns), &plan.name, &claims).await?;
        prune(&Api::<PersistentVolume>::all(client.clone()), &plan.name, &volumes).await?;
        ctx.applied.pruned(&plan.name, kept);
    }

    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    let pod = pods.get_opt(&format!("{ENVIRONMENT_NAME}-0")).await?;
    let environment = Environment::of(pod.clone());
    if let Some(pod) = pod.filter(|_| environment != Environment::Running) {
        replace_if_stale(&pods, &pod, ns, client).await?;
    }
    Ok(environment)
}

/// A StatefulSet never replaces a pod that is not Running and Ready: a pod left Pending (no
/// node has the CPU it asked for) or crash-looping on an old template stays so after the
/// workspace is fixed (kubernetes/kubernetes#67250). The operator deletes such a pod when
/// its template is not the StatefulSet's current one, and the StatefulSet makes it anew.
async fn replace_if_stale(pods: &Api<Pod>, pod: &Pod, ns: &str, client: &Client) -> Result<()> {
    let Some(set) = Api::<StatefulSet>::namespaced(client.clone(), ns).get_opt(ENVIRONMENT_NAME).await?
    else {
        return Ok(());
    };
    if is_stale(pod, &set) {
        tracing::info!(namespace = ns, "replacing an environment pod that never ran on its old template");
        crate::kubeapi::delete_if_exists(pods, &format!("{ENVIRONMENT_NAME}-0")).await?;
    }
    Ok(())
}

/// The pod was made from another revision than the StatefulSet's current one.
fn is_stale(pod: &Pod, set: &StatefulSet) -> bool {
    let revision = pod.metadata.labels.as_ref().and_then(|l| l.get("controller-revision-hash"));
    let current = set.status.as_ref().and_then(|s| s.update_revision.as_ref());
    matches!((revision, current), (Some(revision), Some(current)) if revision != current)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(status: serde_json::Value) -> Option<Pod> {
        Some(serde_json::from_value(serde_json::json!({"status": status})).expect("a pod"))
    }

    #[test]
    fn a_crash_looping_environment_is_described_by_reasons_never_by_what_the_process_wrote() {
        let crashing = pod(serde_json::json!({
            "phase": "Running",
            "containerStatuses": [{
                "name": "environment", "image": "img:1", "imageID": "", "ready": false, "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "message": "SECRET-ROW-42"}},
            }],
        }));
        let environment = Environment::of(crashing);
        assert_eq!(environment, Environment::Waiting("CrashLoopBackOff (last exit: Error)".into()));
        assert!(!format!("{environment:?}").contains("SECRET"));
    }

    #[test]
    fn a_starting_or_running_container_is_not_reported_as_waiting() {
        let creating = pod(serde_json::json!({
            "phase": "Pending",
            "containerStatuses": [{
                "name": "environment", "image": "img:1", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ContainerCreating"}},
            }],
        }));
        assert_eq!(Environment::of(creating), Environment::Starting(None));
        let running = pod(serde_json::json!({
            "phase": "Running",
            "containerStatuses": [{
                "name": "environment", "image": "img:1", "imageID": "", "ready": true, "restartCount": 0,
                "state": {"running": {}},
            }],
        }));
        assert_eq!(Environment::of(running), Environment::Running);
    }

    #[test]
    fn only_a_pod_of_another_revision_than_the_current_one_is_stale() {
        let pod = |revision: &str| -> Pod {
            serde_json::from_value(
                serde_json::json!({"metadata": {"labels": {"controller-revision-hash": revision}}}),
            )
            .expect("a pod")
        };
        let set: StatefulSet = serde_json::from_value(
            serde_json::json!({"status": {"replicas": 1, "updateRevision": "workspace-2"}}),
        )
        .expect("a set");
        assert!(is_stale(&pod("workspace-1"), &set));
        assert!(!is_stale(&pod("workspace-2"), &set));
        assert!(!is_stale(&pod("workspace-1"), &StatefulSet::default()), "no revision known yet: keep it");
    }

    #[test]
    fn a_running_container_whose_ide_does_not_answer_yet_is_still_starting() {
        let listening_soon = pod(serde_json::json!({
            "phase": "Running",
            "containerStatuses": [{
                "name": "environment", "image": "img:1", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"running": {}},
            }],
        }));
        assert_eq!(Environment::of(listening_soon), Environment::Starting(None));
    }
}
