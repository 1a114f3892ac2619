//! Teardown, in the order that loses nothing and leaks nothing: cut access, stop the
//! workload, archive the files and verify the archive, then delete the namespace. Every step
//! is idempotent, so a restart anywhere converges.

use haven_api::{
    DataPermit, Workspace,
    permit::PermitPhase,
    validation::workspace_namespace,
    workspace::{ArchiveManifest, WorkspacePhase},
};
use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{Namespace, PersistentVolume, Pod},
    rbac::v1::ClusterRole,
};
use kube::{Api, Resource, ResourceExt};

use super::{
    build::{ENVIRONMENT_NAME, cluster_rbac_name_for},
    provision::cut_access,
    status,
};
use crate::{
    context::Context,
    error::Result,
    kubeapi::{delete_if_exists, prune},
};

/// Whether teardown finished or waits on the cluster.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    Done,
    Waiting(&'static str),
}

/// Tears the workspace down, step by step; `expired_at` is when it expired, if it did (for
/// the teardown-lag metric).
pub async fn run(
    workspace: &Workspace,
    ctx: &Context,
    reason: &'static str,
    expired_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Progress> {
    if workspace.status.as_ref().map(|s| s.phase) == Some(WorkspacePhase::Archived) {
        return Ok(Progress::Done);
    }
    let name = workspace.name_any();
    let namespace = workspace_namespace(&name);
    let client = &ctx.client;

    // 1. Access first: within one reconcile of the decision.
    if cut_access(workspace, ctx).await? {
        if let Some(lag) = expired_at.and_then(|at| (ctx.clock.now() - at).to_std().ok()) {
            ctx.metrics.access_removed(lag);
        }
        // The audit record is the access record the Expiring status write appends first.
        ctx.event(&workspace.object_ref(&()), false, "AccessRemoved", format!("{reason}: access removed"))
            .await;
    }
    status::expiring(workspace, ctx, reason).await?;

    // 2. Stop the workload, and wait until its pod is gone so no file changes under the archive.
    delete_if_exists(&Api::<StatefulSet>::namespaced(client.clone(), &namespace), ENVIRONMENT_NAME).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    if pods.get_opt(&format!("{ENVIRONMENT_NAME}-0")).await?.is_some() {
        delete_if_exists(&pods, &format!("{ENVIRONMENT_NAME}-0")).await?;
        return Ok(Progress::Waiting("the environment pod to stop"));
    }

    // 3. Archive and verify, off the async runtime; on failure the namespace stays. Sealed with
    //    a key derived from the permit's, which a permit never prepared may not have yet.
    let Some(permit_key) = archive_key(workspace, ctx).await? else {
        return without_a_key(workspace, ctx, &namespace).await;
    };
    let key = haven_data::SealKey::archive(&permit_key.bytes).map_err(crate::error::Error::data_store)?;
    let (store, permit, ws) = (ctx.store.clone(), workspace.spec.permit.clone(), name.clone());
    let archived = tokio::task::spawn_blocking(move || {
        let record = haven_data::archive_workspace(&store, &permit, &ws, &key)?;
        haven_data::remove_workspace_files(&store, &ws)?;
        Ok::<_, haven_data::ArchiveError>(record)
    })
    .await?;
    let record = match archived {
        Ok(record) => record,
        Err(error) => {
            status::archive_failed(workspace, ctx, format!("archiving failed, namespace kept: {error}"))
                .await?;
            return Err(crate::error::Error::data_store(error));
        }
    };

    // 4. Only now the namespace, and the cluster-scoped pieces it does not garbage-collect.
    remove_from_cluster(ctx, &name, &namespace).await?;

    let manifest = ArchiveManifest {
        path: record.path,
        files: record.files,
        bytes: record.bytes,
        manifest_sha256: record.manifest_sha256,
        archived_at: ctx.clock.now(),
    };
    status::archived(workspace, ctx, manifest).await?;
    Ok(Progress::Done)
}

/// The permit's key to archive with: the existing one, or a new one for a permit that exists and
/// was never prepared. `None` when the permit is gone or Destroyed: its key was shredded with
/// its data and must not come back (nothing would ever shred it again).
async fn archive_key(workspace: &Workspace, ctx: &Context) -> Result<Option<crate::permit::PermitKey>> {
    let permit = &workspace.spec.permit;
    if let Some(key) = crate::permit::existing_key(ctx, permit).await? {
        return Ok(Some(key));
    }
    let destroyed = |p: &DataPermit| p.status.as_ref().is_some_and(|s| s.phase == PermitPhase::Destroyed);
    match super::permit_of(workspace, ctx).await? {
        None => Ok(None),
        Some(found) if destroyed(&found) => Ok(None),
        Some(_) => Ok(Some(crate::permit::ensure_key(ctx, permit).await?)),
    }
}

/// Teardown of a workspace whose permit and key are gone. Such a workspace never ran (a
/// permit's workspaces are archived before its data is destroyed), so it holds no files and
/// there is nothing to archive. If it does hold files, they stay where they are, for an
/// administrator, rather than be deleted unarchived.
async fn without_a_key(workspace: &Workspace, ctx: &Context, namespace: &str) -> Result<Progress> {
    let (store, name) = (ctx.store.clone(), workspace.name_any());
    let held = tokio::task::spawn_blocking(move || haven_data::archive::workspace_files(&store, &name))
        .await?
        .map_err(crate::error::Error::data_store)?;
    if held > 0 {
        let message = format!(
            "permit {} is destroyed or does not exist, and its key with it, so {held} files in workspaces/{} cannot be archived; they are kept for an administrator",
            workspace.spec.permit,
            workspace.name_any()
        );
        status::archive_failed(workspace, ctx, message.clone()).await?;
        return Err(crate::error::Error::DataStore(message));
    }
    remove_from_cluster(ctx, &workspace.name_any(), namespace).await?;
    status::nothing_to_archive(
        workspace,
        ctx,
        format!(
            "permit {} is destroyed or does not exist; the workspace held no files",
            workspace.spec.permit
        ),
    )
    .await?;
    Ok(Progress::Done)
}

/// The namespace, and the cluster-scoped pieces it does not garbage-collect.
async fn remove_from_cluster(ctx: &Context, workspace: &str, namespace: &str) -> Result<()> {
    let client = &ctx.client;
    delete_if_exists(&Api::<Namespace>::all(client.clone()), namespace).await?;
    prune(&Api::<PersistentVolume>::all(client.clone()), workspace, &[]).await?;
    delete_if_exists(&Api::<ClusterRole>::all(client.clone()), &cluster_rbac_name_for(workspace)).await?;
    Ok(())
}
