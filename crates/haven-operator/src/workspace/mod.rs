//! The Workspace controller: fetch the permit → validate → build the children → apply →
//! status; and, at expiry, on revocation or on deletion, teardown.

mod access;
pub mod build;
pub mod plan;
pub mod provision;
mod status;
mod teardown;
pub mod validate;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use haven_api::{
    DataPermit, Workspace,
    constants::{finalizers, reasons},
    permit::PermitPhase,
    workspace::WorkspacePhase,
};
use kube::{
    Api, Resource, ResourceExt,
    runtime::{
        controller::Action,
        finalizer::{Event as Finalized, finalizer},
        reflector::ObjectRef,
    },
};

use self::validate::{Sibling, created, plan_workspace, request_violations};
use crate::{
    context::Context,
    error::{Error, Result},
};

/// Reconciles one Workspace; the finalizer guarantees teardown (archive) runs before it goes.
pub async fn reconcile(workspace: Arc<Workspace>, ctx: Arc<Context>) -> Result<Action> {
    let api: Api<Workspace> = Api::all(ctx.client.clone());
    finalizer(&api, finalizers::WORKSPACE_ARCHIVE, workspace, |event| async {
        match event {
            Finalized::Apply(workspace) => reconcile_live(&ctx.written.newest(&workspace), &ctx).await,
            Finalized::Cleanup(workspace) => {
                match teardown::run(&ctx.written.newest(&workspace), &ctx, reasons::PROGRESSING, None).await?
                {
                    teardown::Progress::Done => Ok(Action::await_change()),
                    teardown::Progress::Waiting(what) => Err(Error::NotYet(what)),
                }
            }
        }
    })
    .await
    .map_err(|error| Error::Finalizer(Box::new(error)))
}

async fn reconcile_live(workspace: &Workspace, ctx: &Context) -> Result<Action> {
    let now = ctx.clock.now();
    let phase = workspace.status.as_ref().map(|s| s.phase).unwrap_or_default();
    if phase == WorkspacePhase::Archived {
        return Ok(Action::await_change()); // kept as the record of what was archived
    }
    let Some(permit) = permit_of(workspace, ctx).await? else {
        provision::suspend(workspace, ctx).await?;
        status::refused(workspace, ctx, None, &[permit_not_found(workspace)]).await?;
        return Ok(Action::requeue(Duration::from_secs(60)));
    };
    let controls = ctx.config.tiers.controls(&permit.spec);
    let expiry = validate::workspace_expiry(workspace, &permit, &controls);
    let permit_phase = permit.status.as_ref().map(|s| s.phase).unwrap_or_default();
    let permit_over = matches!(
        permit_phase,
        PermitPhase::Expired | PermitPhase::Revoked | PermitPhase::Archived | PermitPhase::Destroyed
    );
    if permit_over || now >= expiry {
        let why = if permit_phase == PermitPhase::Revoked { reasons::REVOKED } else { reasons::EXPIRED };
        let expired_at = (now >= expiry).then_some(expiry);
        return match teardown::run(workspace, ctx, why, expired_at).await? {
            teardown::Progress::Done => Ok(Action::await_change()),
            teardown::Progress::Waiting(_) => Ok(Action::requeue(Duration::from_secs(1))),
        };
    }
    let siblings = siblings(workspace, &permit, ctx);
    match plan_workspace(workspace, &permit, &controls, ctx.config.tiers.mirror_rules(), &siblings, now) {
        Err(violations) => {
            provision::suspend(workspace, ctx).await?;
            status::refused(workspace, ctx, Some(expiry), &violations).await?;
            // A permit still preparing becomes Active by itself: look again soon rather than
            // rely only on its watch event, which an API server restart can swallow.
            if violations.iter().any(|v| v.reason == reasons::PERMIT_NOT_ACTIVE) {
                return Ok(Action::requeue(PERMIT_PENDING_POLL));
            }
        }
        Ok(plan) => match provision::apply(&plan, ctx).await {
            Ok(environment) => {
                status::provisioned(workspace, ctx, &plan, expiry, &environment).await?;
                // The pod's watch event says when it runs; look again soon anyway, so a missed
                // event (a watch re-listing, an API server restart) cannot leave the workspace
                // Provisioning until its next expiry check, minutes away.
                if !plan.paused && environment != provision::Environment::Running {
                    return Ok(Action::requeue(ENVIRONMENT_POLL));
                }
            }
            Err(Error::ApplyRefused { child, message }) => {
                tracing::warn!(workspace = %workspace.name_any(), %child, %message, "apply refused");
                let failing_since = status::apply_failed(workspace, ctx, expiry, &child, &message).await?;
                return Ok(Action::requeue(crate::error::refused_apply_backoff(now, failing_since)));
            }
            Err(other) => return Err(other),
        },
    }
    // Wake when the idle timeout runs out, or expiry, whichever is first.
    let idle = validate::idle_deadline(workspace, &controls, now).filter(|deadline| *deadline > now);
    Ok(requeue_at(idle.map_or(expiry, |deadline| deadline.min(expiry)), now))
}

/// The workspace's permit, from the shared watch cache (complete once ready, so a miss after
/// start-up cannot be mistaken for a deleted permit); on a miss the API server is asked, as a
/// permit applied together with its workspace may not have reached the cache yet.
async fn permit_of(workspace: &Workspace, ctx: &Context) -> Result<Option<Arc<DataPermit>>> {
    // Err only when the watch is gone, that is, while shutting down.
    let _ = ctx.permits.wait_until_ready().await;
    if let Some(permit) = ctx.permits.get(&ObjectRef::new(&workspace.spec.permit)) {
        return Ok(Some(permit));
    }
    let fetched = Api::<DataPermit>::all(ctx.client.clone()).get_opt(&workspace.spec.permit).await?;
    Ok(fetched.map(Arc::new))
}

/// How often a workspace refused for a permit that is not Active yet is looked at again.
const PERMIT_PENDING_POLL: Duration = Duration::from_secs(5);

/// How often a workspace whose environment is not running yet is looked at again.
const ENVIRONMENT_POLL: Duration = Duration::from_secs(10);

/// Requeue exactly when the workspace expires (bounded, so a clock jump is noticed).
fn requeue_at(at: DateTime<Utc>, now: DateTime<Utc>) -> Action {
    let wait = (at - now).to_std().unwrap_or_default();
    Action::requeue(wait.min(Duration::from_secs(300)) + Duration::from_millis(50))
}

fn permit_not_found(workspace: &Workspace) -> validate::Violation {
    validate::Violation {
        reason: reasons::PERMIT_NOT_FOUND,
        message: format!("spec.permit: DataPermit {} does not exist", workspace.spec.permit),
    }
}

/// The permit's other workspaces that hold (or wait for) a slot, from the watch cache: one
/// watch delivers workspaces in order, so it holds every workspace created before this one.
/// A workspace asking for something the permit does not grant holds no slot.
fn siblings(workspace: &Workspace, permit: &DataPermit, ctx: &Context) -> Vec<Sibling> {
    ctx.workspaces
        .state()
        .iter()
        .filter(|other| {
            other.spec.permit == workspace.spec.permit && other.name_any() != workspace.name_any()
        })
        .filter(|other| other.meta().deletion_timestamp.is_none())
        .filter(|other| other.status.as_ref().map(|s| s.phase) != Some(WorkspacePhase::Archived))
        .filter(|other| request_violations(other, permit).is_empty())
        .map(|other| Sibling { created: created(other), name: other.name_any() })
        .collect()
}

/// Transient errors retry with a short backoff; the object's status already says what failed.
pub fn error_policy(workspace: Arc<Workspace>, error: &Error, _ctx: Arc<Context>) -> Action {
    match error {
        Error::NotYet(_) => Action::requeue(Duration::from_secs(1)),
        _ => {
            tracing::warn!(workspace = %workspace.name_any(), category = error.category(), %error, "reconcile failed");
            Action::requeue(Duration::from_secs(5))
        }
    }
}
