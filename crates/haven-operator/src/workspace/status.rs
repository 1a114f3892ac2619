//! The Workspace's status: computed from what was applied and observed, written only when it
//! changed, with an Event and an audit record for every phase change.

use chrono::{DateTime, Utc};
use haven_api::{
    Workspace,
    constants::{conditions, reasons},
    tier::LAST_ACTIVE_ANNOTATION,
    workspace::{ArchiveManifest, WorkspacePhase, WorkspaceStatus},
};
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
};

use super::{
    access::{self, Access},
    plan::WorkspacePlan,
    provision::Environment,
    validate::Violation,
};
use crate::{
    conditions::{Desired, set_conditions},
    context::Context,
    error::Result,
};

fn desired(
    type_: &'static str,
    status: bool,
    reason: &'static str,
    message: impl Into<String>,
) -> Desired<'static> {
    Desired { type_, status, reason, message: message.into() }
}

/// The permit does not allow the workspace: nothing is provisioned, access is cut.
pub async fn refused(
    workspace: &Workspace,
    ctx: &Context,
    expiry: Option<DateTime<Utc>>,
    violations: &[Violation],
) -> Result<()> {
    let reason = violations.first().map_or(reasons::PERMIT_NOT_ACTIVE, |v| v.reason);
    let message = violations.iter().map(|v| v.message.as_str()).collect::<Vec<_>>().join("; ");
    let update = vec![
        desired(conditions::PERMIT_VALID, false, reason, message),
        desired(
            conditions::ACCESS_GRANTED,
            false,
            reason,
            "no access while the permit does not allow the workspace",
        ),
        desired(conditions::READY, false, reason, "not provisioned"),
    ];
    write(workspace, ctx, WorkspacePhase::Pending, expiry, update, None, Access::Removed).await
}

/// Everything is applied; Ready once the environment pod runs.
pub async fn provisioned(
    workspace: &Workspace,
    ctx: &Context,
    plan: &WorkspacePlan,
    expiry: DateTime<Utc>,
    environment: &Environment,
) -> Result<()> {
    let phase = match (plan.paused, environment) {
        (true, _) => WorkspacePhase::Paused,
        (false, Environment::Running) => WorkspacePhase::Ready,
        (false, Environment::Starting(_) | Environment::Waiting(_)) => WorkspacePhase::Provisioning,
    };
    let (ready_reason, ready_message) = match (phase, environment) {
        (WorkspacePhase::Paused, _) if plan.idle => (
            reasons::IDLE,
            format!(
                "stopped while idle: no activity reported (annotation {LAST_ACTIVE_ANNOTATION}) within the tier's idle timeout; files are kept and the access gateway starts it again"
            ),
        ),
        (WorkspacePhase::Paused, _) => (reasons::PAUSED, "paused: no environment runs".into()),
        (WorkspacePhase::Ready, _) => (reasons::PROVISIONED, "the analysis environment is running".into()),
        (_, Environment::Starting(Some(why))) => {
            (reasons::UNSCHEDULABLE, format!("the analysis environment cannot be scheduled: {why}"))
        }
        (_, Environment::Waiting(why)) => {
            (reasons::ENVIRONMENT_NOT_RUNNING, format!("the analysis environment is not running: {why}"))
        }
        _ => (reasons::PROGRESSING, "waiting for the analysis environment to run".into()),
    };
    let update = vec![
        desired(conditions::PERMIT_VALID, true, reasons::VALID, format!("allowed by permit {}", plan.permit)),
        desired(
            conditions::ISOLATED,
            true,
            reasons::PROVISIONED,
            "default-deny network policies, Pod Security restricted and quota applied",
        ),
        desired(
            conditions::DATA_MOUNTED,
            true,
            reasons::PROVISIONED,
            format!("read-only datasets: {}", plan.datasets.join(", ")),
        ),
        desired(
            conditions::ACCESS_GRANTED,
            true,
            reasons::PROVISIONED,
            format!("users: {}", plan.users.join(", ")),
        ),
        desired(conditions::READY, phase == WorkspacePhase::Ready, ready_reason, ready_message),
    ];
    write(workspace, ctx, phase, Some(expiry), update, None, Access::Granted(plan)).await
}

/// The API server refused one of the workspace's children: what stands stays, nothing
/// further is applied, and the `Ready` condition names the child and the server's words.
/// Returns since when it has been failing (to back off by).
pub async fn apply_failed(
    workspace: &Workspace,
    ctx: &Context,
    expiry: DateTime<Utc>,
    child: &str,
    message: &str,
) -> Result<DateTime<Utc>> {
    let update = vec![desired(
        conditions::READY,
        false,
        reasons::APPLY_FAILED,
        format!(
            "the API server refused {child}: {message}; retried with back-off and at once when the spec changes"
        ),
    )];
    write(workspace, ctx, WorkspacePhase::Failed, Some(expiry), update, None, Access::Unchanged).await?;
    let since = workspace
        .status
        .as_ref()
        .and_then(|s| {
            s.conditions.iter().find(|c| c.type_ == conditions::READY && c.reason == reasons::APPLY_FAILED)
        })
        .map_or_else(|| ctx.clock.now(), |c| crate::conditions::time_of(&c.last_transition_time.0));
    Ok(since)
}

/// Access is cut and files are being archived.
pub async fn expiring(workspace: &Workspace, ctx: &Context, reason: &'static str) -> Result<()> {
    let update = vec![
        desired(conditions::ACCESS_GRANTED, false, reason, "access removed for teardown"),
        desired(conditions::READY, false, reason, "tearing down"),
    ];
    let expiry = workspace.status.as_ref().and_then(|s| s.expires_at);
    write(workspace, ctx, WorkspacePhase::Expiring, expiry, update, None, Access::Removed).await
}

/// Archiving failed: the namespace stays, and the condition says why.
pub async fn archive_failed(workspace: &Workspace, ctx: &Context, message: String) -> Result<()> {
    let update = vec![desired(conditions::ARCHIVED, false, "ArchiveFailed", message)];
    let expiry = workspace.status.as_ref().and_then(|s| s.expires_at);
    write(workspace, ctx, WorkspacePhase::Expiring, expiry, update, None, Access::Removed).await
}

/// Nothing to archive (the workspace held no files and its permit is gone); torn down.
pub async fn nothing_to_archive(workspace: &Workspace, ctx: &Context, message: String) -> Result<()> {
    let update = vec![desired(conditions::ARCHIVED, true, reasons::NOTHING_TO_ARCHIVE, message)];
    let expiry = workspace.status.as_ref().and_then(|s| s.expires_at);
    write(workspace, ctx, WorkspacePhase::Archived, expiry, update, None, Access::Removed).await
}

/// Files archived and verified; the namespace is being deleted.
pub async fn archived(workspace: &Workspace, ctx: &Context, archive: ArchiveManifest) -> Result<()> {
    let message = format!(
        "{} files, {} bytes in {} (manifest sha256 {})",
        archive.files, archive.bytes, archive.path, archive.manifest_sha256
    );
    let update = vec![desired(conditions::ARCHIVED, true, reasons::ARCHIVE_VERIFIED, message)];
    let expiry = workspace.status.as_ref().and_then(|s| s.expires_at);
    write(workspace, ctx, WorkspacePhase::Archived, expiry, update, Some(archive), Access::Removed).await
}

async fn write(
    workspace: &Workspace,
    ctx: &Context,
    phase: WorkspacePhase,
    expires_at: Option<DateTime<Utc>>,
    update: Vec<Desired<'static>>,
    archive: Option<ArchiveManifest>,
    access: Access<'_>,
) -> Result<()> {
    let old = workspace.status.clone().unwrap_or_default();
    let messages: Vec<String> = update.iter().map(|d| d.message.clone()).collect();
    let mut new = WorkspaceStatus {
        phase,
        observed_generation: workspace.meta().generation,
        namespace: Some(haven_api::validation::workspace_namespace(&workspace.name_any())),
        expires_at,
        conditions: old.conditions.clone(),
        archive: archive.or_else(|| old.archive.clone()),
        access: access.resolve(old.access.as_ref()),
    };
    set_conditions(&mut new.conditions, update, workspace.meta().generation, ctx.clock.now());
    if new == old {
        return Ok(());
    }
    // The records first: a stop before the status is written repeats them, never loses them.
    let why = format!("{phase:?}: {}", messages.join("; "));
    access::record_change(workspace, ctx, old.access.as_ref(), new.access.as_ref(), &why).await?;
    if new.phase != old.phase || old.observed_generation.is_none() {
        // The note is what this update said: why it is refused, or what changed.
        let note = messages.join("; ");
        let warning = matches!(phase, WorkspacePhase::Pending | WorkspacePhase::Failed);
        ctx.record(&workspace.object_ref(&()), warning, &format!("{phase:?}"), note).await?;
    }
    let patch = serde_json::json!({
        "apiVersion": "haven.io/v1alpha1",
        "kind": "Workspace",
        "status": new,
    });
    let params = PatchParams::apply(haven_api::constants::FIELD_MANAGER).force();
    let returned = Api::<Workspace>::all(ctx.client.clone())
        .patch_status(&workspace.name_any(), &params, &Patch::Apply(&patch))
        .await?;
    ctx.written.record(returned);
    Ok(())
}
