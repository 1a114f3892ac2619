//! The DataPermit controller: its lifecycle from the clock and what exists, its key, and the
//! destruction of its data once retention ends.

mod destroy;
mod key;
pub mod phase;
mod prepare;

use std::{sync::Arc, time::Duration};

use haven_api::{
    DataPermit, DataPermitStatus, Workspace,
    constants::{FIELD_MANAGER, conditions, finalizers, reasons},
    permit::PermitPhase,
    tier::TierViolation,
    workspace::WorkspacePhase,
};
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::controller::Action,
};

pub use self::key::{PermitKey, ensure_key, existing_key, key_secret_name};
pub use self::prepare::Preparations;
use self::{
    phase::{Lifecycle, PermitFacts, lifecycle},
    prepare::Readiness,
};
use crate::{
    conditions::{Desired, set_conditions},
    context::Context,
    error::{Error, Result},
};

pub async fn reconcile(permit: Arc<DataPermit>, ctx: Arc<Context>) -> Result<Action> {
    let name = permit.name_any();
    let deleting = permit.meta().deletion_timestamp.is_some();
    if !deleting && !permit.finalizers().iter().any(|f| f == finalizers::PERMIT_DESTROY) {
        set_finalizer(&ctx, &permit, true).await?;
        return Ok(Action::await_change());
    }
    let now = ctx.clock.now();
    let workspaces = workspaces_of(&ctx, &name);
    let live = workspaces
        .iter()
        .filter(|w| w.status.as_ref().map(|s| s.phase) != Some(WorkspacePhase::Archived))
        .count();
    let key = key::existing_key(&ctx, &name).await?;
    let reports = prepare::current_reports(&ctx, &permit, key.as_ref())?;
    let facts = PermitFacts {
        extracts_present: reports.iter().all(Option::is_some),
        live_workspaces: u32::try_from(live).unwrap_or(u32::MAX),
        deleting,
    };
    let old = permit.status.clone().unwrap_or_default();
    let controls = ctx.config.tiers.controls(&permit.spec);
    let loosens = ctx.config.tiers.violations(&permit.spec);
    let plan = lifecycle(&permit.spec, &old, facts, now);

    // Preparation runs while the window is open and an extract is missing or stale.
    let readiness = match plan.phase {
        PermitPhase::Preparing => match key::ensure_key(&ctx, &name).await {
            Ok(key) => Some(prepare::advance(&ctx, &permit, &key, &reports)?),
            Err(Error::ApplyRefused { child, message }) => {
                tracing::warn!(permit = %name, %child, %message, "apply refused");
                Some(Readiness::Refused(format!(
                    "the API server refused {child}: {message}; retried with back-off and at once when the permit changes"
                )))
            }
            Err(other) => return Err(other),
        },
        PermitPhase::Active => Some(Readiness::Ready),
        _ => None,
    };
    let prepared = prepare::dataset_reports(&ctx, &permit, &reports);
    let mut new = DataPermitStatus {
        phase: plan.phase,
        observed_generation: permit.meta().generation,
        conditions: old.conditions.clone(),
        // Once extracts are destroyed, the last reports stay as the record of what was made.
        datasets: if prepared.is_empty() { old.datasets.clone() } else { prepared },
        workspaces: u32::try_from(workspaces.len()).unwrap_or(u32::MAX),
        archived_at: plan.archived_at,
        destroy_after: plan.destroy_after,
        destruction: old.destruction.clone(),
        // Cleared once the record is kept (a stop between the two writes may leave it).
        pending_destruction: old.pending_destruction.clone().filter(|_| old.destruction.is_none()),
        controls: Some(controls.in_force(&permit.spec)),
    };
    if plan.destroy_now {
        let record = destroy::destroy(&ctx, &permit, &old).await?;
        // The record is in the audit log before the status says Destroyed.
        ctx.append_audit(&permit.object_ref(&()), "Destroyed", destroy::record_detail(&record)?).await?;
        new.destruction = Some(record);
        new.pending_destruction = None;
        new.phase = PermitPhase::Destroyed;
    }
    let mut desired = permit_conditions(&new, &plan);
    desired.extend(preparation_condition(readiness.as_ref()));
    desired.push(tier_condition(permit.spec.tier, &loosens));
    let newly_loosens = !loosens.is_empty()
        && !old
            .conditions
            .iter()
            .any(|c| c.type_ == conditions::WITHIN_TIER && c.reason == reasons::LOOSENS_TIER);
    let failure = match &readiness {
        Some(Readiness::Failed(message)) => Some((reasons::PREPARATION_FAILED, message)),
        Some(Readiness::Refused(message)) => Some((reasons::APPLY_FAILED, message)),
        _ => None,
    };
    let failing_since = failure.and_then(|(reason, _)| {
        old.conditions
            .iter()
            .find(|c| c.type_ == conditions::DATASETS_PREPARED && c.reason == reason)
            .map(|c| crate::conditions::time_of(&c.last_transition_time.0))
    });
    set_conditions(&mut new.conditions, desired, permit.meta().generation, now);
    // The records before the status that shows them (see Context::record).
    if newly_loosens {
        let message = tier_message(permit.spec.tier, &loosens);
        ctx.record(&permit.object_ref(&()), true, reasons::LOOSENS_TIER, message).await?;
    }
    if let (None, Some((reason, message))) = (failing_since, failure) {
        ctx.record(&permit.object_ref(&()), true, reason, message.clone()).await?;
    }
    write_status(&permit, &ctx, &old, new.clone()).await?;

    if deleting && new.phase == PermitPhase::Destroyed {
        set_finalizer(&ctx, &permit, false).await?;
        return Ok(Action::await_change());
    }
    match readiness {
        Some(Readiness::Preparing(_)) => return Ok(Action::requeue(Duration::from_secs(2))), // progress
        Some(Readiness::Failed(_)) => return Ok(Action::requeue(Duration::from_secs(10))),   // notice a fix
        Some(Readiness::Refused(_)) => {
            let since = failing_since.unwrap_or(now);
            return Ok(Action::requeue(crate::error::refused_apply_backoff(now, since)));
        }
        _ => {}
    }
    Ok(match plan.next_change {
        Some(at) => Action::requeue(
            (at - now).to_std().unwrap_or_default().min(Duration::from_secs(300)) + Duration::from_millis(50),
        ),
        // Waiting on preparation or on workspaces: their changes wake us; poll gently as well.
        None => Action::requeue(Duration::from_secs(30)),
    })
}

/// `WithinTier`: whether the permit asks for more than its tier allows. Admission refuses
/// that, so it is false only when the tier profiles were tightened after the permit was
/// admitted; the tier's limits are enforced either way.
fn tier_condition(tier: u8, loosens: &[TierViolation]) -> Desired<'static> {
    if loosens.is_empty() {
        let message = format!("within the controls of tier {tier} (see status.controls)");
        return Desired {
            type_: conditions::WITHIN_TIER,
            status: true,
            reason: reasons::WITHIN_TIER,
            message,
        };
    }
    let message = tier_message(tier, loosens);
    Desired { type_: conditions::WITHIN_TIER, status: false, reason: reasons::LOOSENS_TIER, message }
}

fn tier_message(tier: u8, loosens: &[TierViolation]) -> String {
    let what: Vec<&str> = loosens.iter().map(|v| v.message.as_str()).collect();
    format!("{}; tier {tier}'s limits are enforced instead", what.join("; "))
}

fn preparation_condition(readiness: Option<&Readiness>) -> Option<Desired<'static>> {
    let (status, reason, message) = match readiness? {
        Readiness::Ready => (true, reasons::PROVISIONED, "every dataset has a current extract".to_owned()),
        Readiness::Preparing(progress) => (false, reasons::PROGRESSING, progress.clone()),
        Readiness::Failed(message) => (false, reasons::PREPARATION_FAILED, message.clone()),
        Readiness::Refused(message) => (false, reasons::APPLY_FAILED, message.clone()),
    };
    Some(Desired { type_: conditions::DATASETS_PREPARED, status, reason, message })
}

fn permit_conditions(status: &DataPermitStatus, plan: &Lifecycle) -> Vec<Desired<'static>> {
    let active = status.phase == PermitPhase::Active;
    let (reason, message) = match status.phase {
        PermitPhase::Pending => (reasons::NOT_YET_VALID, "before validFrom".to_owned()),
        PermitPhase::Preparing => (reasons::PROGRESSING, "waiting for every dataset's extract".to_owned()),
        PermitPhase::Active => (reasons::VALID, "workspaces may run".to_owned()),
        PermitPhase::Suspended => (reasons::SUSPENDED, "spec.suspended is true".to_owned()),
        PermitPhase::Expired => {
            (reasons::EXPIRED, "validUntil has passed; workspaces are being archived".to_owned())
        }
        PermitPhase::Revoked => (reasons::REVOKED, "revoked; workspaces are being archived".to_owned()),
        PermitPhase::Archived => (
            reasons::ARCHIVE_VERIFIED,
            format!("every workspace archived; data kept until {:?}", plan.destroy_after),
        ),
        PermitPhase::Destroyed => (reasons::RETENTION_ENDED, "data and key destroyed".to_owned()),
    };
    let mut desired = vec![Desired { type_: conditions::PERMIT_ACTIVE, status: active, reason, message }];
    if status.phase == PermitPhase::Destroyed {
        desired.push(Desired {
            type_: conditions::DESTROYED,
            status: true,
            reason: reasons::RETENTION_ENDED,
            message: "see status.destruction".into(),
        });
    }
    desired
}

/// The permit's workspaces, from the workspace controller's watch cache.
fn workspaces_of(ctx: &Context, permit: &str) -> Vec<Arc<Workspace>> {
    ctx.workspaces.state().into_iter().filter(|w| w.spec.permit == permit).collect()
}

async fn write_status(
    permit: &DataPermit,
    ctx: &Context,
    old: &DataPermitStatus,
    new: DataPermitStatus,
) -> Result<()> {
    if *old == new {
        return Ok(());
    }
    if old.phase != new.phase || old.observed_generation.is_none() {
        let warning = matches!(new.phase, PermitPhase::Revoked | PermitPhase::Suspended);
        let note = format!("permit {} is {:?}", permit.name_any(), new.phase);
        ctx.record(&permit.object_ref(&()), warning, &format!("{:?}", new.phase), note).await?;
    }
    // pendingDestruction is written and cleared by merge patches only (see destroy.rs): owning
    // part of it through this apply would make the apply that drops it remove only that part.
    let applied = DataPermitStatus { pending_destruction: None, ..new.clone() };
    let patch =
        serde_json::json!({"apiVersion": "haven.io/v1alpha1", "kind": "DataPermit", "status": applied});
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let api = Api::<DataPermit>::all(ctx.client.clone());
    api.patch_status(&permit.name_any(), &params, &Patch::Apply(&patch)).await?;
    if old.pending_destruction.is_some() && new.pending_destruction.is_none() {
        let clear = serde_json::json!({"status": {"pendingDestruction": null}});
        api.patch_status(&permit.name_any(), &PatchParams::default(), &Patch::Merge(&clear)).await?;
    }
    Ok(())
}

/// Adds or removes the destroy finalizer, keeping anyone else's; the resourceVersion makes the
/// write fail (and retry) if the list changed meanwhile.
async fn set_finalizer(ctx: &Context, permit: &DataPermit, present: bool) -> Result<()> {
    let mut finalizers: Vec<String> =
        permit.finalizers().iter().filter(|f| *f != finalizers::PERMIT_DESTROY).cloned().collect();
    if present {
        finalizers.push(finalizers::PERMIT_DESTROY.to_owned());
    }
    let patch = serde_json::json!({
        "metadata": {"finalizers": finalizers, "resourceVersion": permit.resource_version()}
    });
    Api::<DataPermit>::all(ctx.client.clone())
        .patch(&permit.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

pub fn error_policy(permit: Arc<DataPermit>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(permit = %permit.name_any(), category = error.category(), %error, "reconcile failed");
    Action::requeue(Duration::from_secs(5))
}
