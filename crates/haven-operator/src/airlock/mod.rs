//! The AirlockRequest controller: `Submitted → Checking → AwaitingReview → Approved →
//! Exported | Imported`, or `Rejected`, `Blocked`, `Cancelled`, `Failed`.
//!
//! One step per reconcile, each written to status before the next, so a restarted operator
//! resumes at the step it stopped in; the file work of every step is idempotent (a snapshot
//! or delivery already in place is verified and reused). A finished request is only visited
//! again to delete its snapshot when the retention has passed; it stays as the record.

mod files;
mod report;
mod review;
mod step;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use haven_api::{
    AirlockRequest, DataPermit, Workspace,
    airlock::{AirlockPhase, CheckOutcome, Delivery, Direction, FileReport, SnapshotRecord},
    constants::{WORKSPACE_NAMESPACE_PREFIX, conditions, reasons},
    permit::PermitPhase,
    tier::Controls,
    validation::workspace_namespace,
    workspace::WorkspacePhase,
};
use kube::{Api, Resource, ResourceExt, runtime::controller::Action};

use self::{
    files::Transfer,
    review::{Verdict, tally},
    step::Step,
};
use crate::{
    context::Context,
    error::{Error, Result},
    kubeapi::apply_namespaced,
};

/// How often a request waiting on people (or a suspended permit) is looked at anyway.
const WAITING_POLL: Duration = Duration::from_secs(60);

/// The workspace and permit a request belongs to, and the controls of the permit's tier.
struct Scope {
    workspace: Workspace,
    permit: DataPermit,
    controls: Controls,
}

/// Whether files may move under the scope now.
enum Gate {
    Open,
    /// Temporarily closed (permit suspended, workspace not ready yet): wait.
    Wait(&'static str, String),
    /// Closed for good (permit expired or revoked, workspace being archived): fail.
    Closed(&'static str, String),
}

pub async fn reconcile(request: Arc<AirlockRequest>, ctx: Arc<Context>) -> Result<Action> {
    let now = ctx.clock.now();
    let mut step = Step::new(&request, &ctx, now);
    if step.old.phase.is_final() {
        return retention(step).await;
    }
    let scope = match scope(&ctx, &request).await? {
        Ok(scope) => scope,
        Err(message) => return step.fail_scope(reasons::WORKSPACE_NOT_FOUND, message).await,
    };
    let transfer = Transfer::of(&ctx.store, &request, &scope.workspace.name_any(), &scope.permit)?;
    // A delivery already in place is recorded whatever happened since: the bytes are out.
    let delivered_already = step.new.phase == AirlockPhase::Approved && files::delivered(&transfer);
    match gate(&scope) {
        Gate::Open => {
            let message = format!(
                "workspace {} and permit {} are active",
                scope.workspace.name_any(),
                scope.permit.name_any()
            );
            step.set(conditions::PERMIT_VALID, true, reasons::VALID, message);
        }
        _ if delivered_already => {}
        Gate::Wait(reason, message) => {
            step.set(conditions::PERMIT_VALID, false, reason, message);
            step.write(None).await?;
            return Ok(Action::requeue(WAITING_POLL));
        }
        Gate::Closed(reason, message) => return step.fail_scope(reason, message).await,
    }
    let spec = &request.spec;
    let undecided = matches!(
        step.new.phase,
        AirlockPhase::Submitted | AirlockPhase::Checking | AirlockPhase::AwaitingReview
    );
    if spec.cancelled && undecided {
        let message = format!("cancelled by {}", spec.requested_by);
        return step
            .finish(AirlockPhase::Cancelled, (conditions::REVIEWED, false), reasons::CANCELLED, message)
            .await;
    }
    match step.new.phase {
        AirlockPhase::Submitted => take_snapshot(step, &transfer, &scope).await,
        AirlockPhase::Checking => run_checks(step, &transfer, &scope).await,
        AirlockPhase::AwaitingReview => count_reviews(step, &scope).await,
        AirlockPhase::Approved => deliver(step, &transfer).await,
        _ => Ok(Action::await_change()),
    }
}

pub fn error_policy(request: Arc<AirlockRequest>, error: &Error, _ctx: Arc<Context>) -> Action {
    let namespace = request.namespace().unwrap_or_default();
    tracing::warn!(request = %request.name_any(), %namespace, category = error.category(), %error, "reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

/// The workspace whose namespace holds the request, and its permit; or why there is none.
async fn scope(ctx: &Context, request: &AirlockRequest) -> Result<Result<Scope, String>> {
    let namespace = request.namespace().unwrap_or_default();
    let Some(workspace_name) = namespace.strip_prefix(WORKSPACE_NAMESPACE_PREFIX) else {
        return Ok(Err(format!("namespace {namespace} is not a workspace namespace (ws-<workspace>)")));
    };
    let workspace = Api::<Workspace>::all(ctx.client.clone()).get_opt(workspace_name).await?;
    // The namespace the operator provisioned for it, not merely one with a matching name.
    let owns = |w: &Workspace| {
        w.status.as_ref().and_then(|s| s.namespace.as_deref()).unwrap_or(&workspace_namespace(&w.name_any()))
            == namespace
    };
    let Some(workspace) = workspace.filter(owns) else {
        return Ok(Err(format!("no workspace {workspace_name} owns namespace {namespace}")));
    };
    let permit = Api::<DataPermit>::all(ctx.client.clone()).get_opt(&workspace.spec.permit).await?;
    let Some(permit) = permit else {
        return Ok(Err(format!(
            "permit {} of workspace {workspace_name} does not exist",
            workspace.spec.permit
        )));
    };
    let controls = ctx.config.tiers.controls(&permit.spec);
    Ok(Ok(Scope { workspace, permit, controls }))
}

fn gate(scope: &Scope) -> Gate {
    let (workspace, permit) = (scope.workspace.name_any(), scope.permit.name_any());
    let workspace_phase = scope.workspace.status.as_ref().map(|s| s.phase).unwrap_or_default();
    if scope.workspace.meta().deletion_timestamp.is_some()
        || matches!(
            workspace_phase,
            WorkspacePhase::Expiring | WorkspacePhase::Archived | WorkspacePhase::Failed
        )
    {
        let message = format!(
            "workspace {workspace} is {workspace_phase:?} or being deleted: nothing moves through its airlock"
        );
        return Gate::Closed(reasons::WORKSPACE_NOT_FOUND, message);
    }
    if matches!(workspace_phase, WorkspacePhase::Pending | WorkspacePhase::Provisioning) {
        return Gate::Wait(
            reasons::PROGRESSING,
            format!("workspace {workspace} is {workspace_phase:?}; waiting"),
        );
    }
    match scope.permit.status.as_ref().map(|s| s.phase) {
        Some(PermitPhase::Active) => Gate::Open,
        Some(PermitPhase::Suspended) => Gate::Wait(
            reasons::SUSPENDED,
            format!("permit {permit} is suspended; the request waits until it is resumed"),
        ),
        phase => {
            let phase = phase.map_or_else(|| "not yet reconciled".to_owned(), |p| format!("{p:?}"));
            Gate::Closed(
                reasons::PERMIT_NOT_ACTIVE,
                format!("permit {permit} is {phase}: nothing moves through the airlock under it"),
            )
        }
    }
}

async fn take_snapshot(mut step: Step<'_>, transfer: &Transfer, scope: &Scope) -> Result<Action> {
    let max_files = scope.permit.spec.airlock.max_files;
    if transfer.files.len() > max_files as usize {
        let message = format!(
            "spec.files lists {} files; permit {} allows at most {max_files} per request (spec.airlock.maxFiles)",
            transfer.files.len(),
            scope.permit.name_any()
        );
        return step.fail(conditions::CHECKED, reasons::FILE_REFUSED, message).await;
    }
    let key = files::quarantine_key(step.ctx, transfer).await?;
    let (manifest, manifest_sha256) = match files::snapshot(transfer, key).await? {
        Ok(snapshot) => snapshot,
        Err(refused) => return step.fail(conditions::CHECKED, reasons::FILE_REFUSED, refused).await,
    };
    let bytes: u64 = manifest.files.iter().map(|f| f.size).sum();
    let new = &mut step.new;
    new.phase = AirlockPhase::Checking;
    new.file_count = u32::try_from(manifest.files.len()).unwrap_or(u32::MAX);
    new.files = manifest
        .files
        .into_iter()
        .map(|f| FileReport { path: f.path, size: f.size, sha256: f.sha256, checks: vec![] })
        .collect();
    new.snapshot = Some(SnapshotRecord {
        path: transfer.quarantine_rel.clone(),
        taken_at: step.now,
        manifest_sha256,
        removed_at: None,
    });
    let message = format!("snapshot of {} files ({bytes} bytes) taken; checks running", new.file_count);
    step.set(conditions::CHECKED, false, reasons::CHECKING, message.clone());
    step.write(Some((false, reasons::SNAPSHOT_TAKEN, message))).await?;
    Ok(Action::await_change())
}

async fn run_checks(mut step: Step<'_>, transfer: &Transfer, scope: &Scope) -> Result<Action> {
    let policy = files::check_policy(&scope.permit, &scope.controls);
    let scanner = step.ctx.config.airlock_scanner.clone();
    let direction = step.request.spec.direction;
    let key = files::quarantine_key(step.ctx, transfer).await?;
    let reports = match files::check(transfer, key, direction, policy, scanner, step.now).await? {
        Ok(reports) => reports,
        Err(refused) => return step.fail(conditions::CHECKED, reasons::SNAPSHOT_CORRUPT, refused).await,
    };
    // The details first, where only the output checkers read them; the status the requester
    // reads says which check gave which outcome.
    let full = report::build_report(step.request, &reports);
    match apply_namespaced(&step.ctx.client, &step.ctx.applied, &full).await {
        Err(Error::ApplyRefused { child, message }) => {
            let why = format!("the API server refused the check report {child}: {message}");
            return step.fail(conditions::CHECKED, reasons::APPLY_FAILED, why).await;
        }
        other => other?,
    }
    let reports = report::for_requester(&reports);
    let blocking = files::blocking(&reports);
    let summary = summary(&reports);
    step.new.checks = Some(summary.clone());
    step.new.files = reports;
    if !blocking.is_empty() {
        let message = format!("blocked by an automated check: {}", blocking.join("; "));
        return step
            .finish(AirlockPhase::Blocked, (conditions::CHECKED, false), reasons::CHECK_FAILED, message)
            .await;
    }
    let all_pass = step.new.files.iter().all(|f| f.checks.iter().all(|c| c.outcome == CheckOutcome::Pass));
    let reason = if all_pass { reasons::CHECKS_PASSED } else { reasons::CHECKS_NEED_REVIEW };
    if direction == Direction::Import && all_pass && !scope.controls.import_review {
        step.new.phase = AirlockPhase::Approved;
        let message = format!(
            "no review needed: tier {} imports that pass every automated check go straight in",
            scope.permit.spec.tier
        );
        step.set(conditions::CHECKED, true, reason, summary.clone());
        step.set(conditions::REVIEWED, true, reasons::REVIEW_NOT_REQUIRED, message.clone());
        step.write(Some((false, reasons::REVIEW_NOT_REQUIRED, message))).await?;
        return Ok(Action::await_change());
    }
    step.new.phase = AirlockPhase::AwaitingReview;
    let required = scope.controls.required_approvals;
    step.new.approvals = Some(format!("0/{required}"));
    step.set(conditions::CHECKED, true, reason, summary.clone());
    step.set(conditions::REVIEWED, false, reasons::AWAITING_REVIEW, format!("0/{required} approvals"));
    step.write(Some((false, reason, format!("checks: {summary}; awaiting review")))).await?;
    Ok(Action::await_change())
}

async fn count_reviews(mut step: Step<'_>, scope: &Scope) -> Result<Action> {
    let permit_name = scope.permit.name_any();
    let tally = tally(
        &step.request.spec,
        &permit_name,
        &scope.permit.spec,
        scope.controls.required_approvals,
        &scope.workspace.spec.users,
    );
    let newly_ignored: Vec<String> = tally
        .records
        .iter()
        .filter(|r| !r.counted && !step.old.reviews.contains(r))
        .filter_map(|r| r.reason.clone())
        .collect();
    step.new.reviews = tally.records.clone();
    step.new.approvals = Some(tally.approvals_text());
    let decided = match tally.verdict() {
        Verdict::Approved => {
            step.new.phase = AirlockPhase::Approved;
            let by: Vec<&str> =
                tally.records.iter().filter(|r| r.counted).map(|r| r.reviewer.as_str()).collect();
            let message = format!("approved by {} ({})", by.join(", "), tally.approvals_text());
            step.set(conditions::REVIEWED, true, reasons::APPROVED, message.clone());
            Some((false, reasons::APPROVED, message))
        }
        Verdict::Rejected => {
            let (who, comment) = tally.rejection.clone().unwrap_or_default();
            let message = format!("rejected by {who}: {comment}");
            return step
                .finish(AirlockPhase::Rejected, (conditions::REVIEWED, true), reasons::REJECTED, message)
                .await;
        }
        Verdict::Waiting => {
            let mut message = format!("{} approvals", tally.approvals_text());
            if tally.records.iter().any(|r| !r.counted) {
                message.push_str("; some reviews are ignored, see status.reviews");
            }
            step.set(conditions::REVIEWED, false, reasons::AWAITING_REVIEW, message);
            None
        }
    };
    let approved = decided.is_some();
    for reason in newly_ignored {
        step.ctx.record(&step.request.object_ref(&()), true, reasons::REVIEWER_NOT_PERMITTED, reason).await?;
    }
    step.write(decided).await?;
    Ok(if approved { Action::await_change() } else { Action::requeue(WAITING_POLL) })
}

async fn deliver(mut step: Step<'_>, transfer: &Transfer) -> Result<Action> {
    // A delivery already in place is recorded whatever the permit's phase, and needs no key; a
    // new one is made only while the permit is Active, when the key may be asked for.
    let key = if files::delivered(transfer) {
        None
    } else {
        Some(files::quarantine_key(step.ctx, transfer).await?)
    };
    let delivered = match files::deliver(transfer, key).await? {
        Ok(delivered) => delivered,
        Err(refused) => return step.fail(conditions::DELIVERED, reasons::DELIVERY_FAILED, refused).await,
    };
    let reviewed = step.new.snapshot.as_ref().map(|s| s.manifest_sha256.clone());
    if reviewed.as_deref() != Some(delivered.manifest_sha256.as_str()) {
        let message = format!(
            "the delivered manifest {} is not the reviewed snapshot's {reviewed:?}",
            delivered.manifest_sha256
        );
        return step.fail(conditions::DELIVERED, reasons::DELIVERY_FAILED, message).await;
    }
    let (phase, reason) = match step.request.spec.direction {
        Direction::Export => (AirlockPhase::Exported, reasons::EXPORTED),
        Direction::Import => (AirlockPhase::Imported, reasons::IMPORTED),
    };
    step.new.delivery = Some(Delivery {
        path: transfer.target_rel.clone(),
        delivered_at: step.now,
        manifest_sha256: delivered.manifest_sha256,
    });
    let message =
        format!("{} files ({} bytes) delivered to {}", delivered.files, delivered.bytes, transfer.target_rel);
    step.finish(phase, (conditions::DELIVERED, true), reason, message).await
}

/// Deletes a finished request's snapshot once the retention has passed (also one taken just
/// before a crash that the status never recorded).
async fn retention(mut step: Step<'_>) -> Result<Action> {
    if step.old.snapshot.as_ref().is_some_and(|s| s.removed_at.is_some()) {
        return Ok(Action::await_change());
    }
    let finished =
        step.old.completed_at.or(step.old.snapshot.as_ref().map(|s| s.taken_at)).unwrap_or(step.now);
    let due = finished
        + chrono::Duration::from_std(step.ctx.config.airlock_retention).unwrap_or(chrono::Duration::MAX);
    if step.now < due {
        return Ok(Action::requeue(until(step.now, due)));
    }
    let request = step.request;
    let quarantine = step
        .ctx
        .store
        .quarantine(&request.namespace().unwrap_or_default(), &request.name_any())
        .map_err(Error::data_store)?;
    tokio::task::spawn_blocking(move || haven_data::airlock::remove_snapshot(&quarantine))
        .await?
        .map_err(Error::data_store)?;
    let now = step.now;
    let Some(snapshot) = step.new.snapshot.as_mut() else {
        return Ok(Action::await_change());
    };
    snapshot.removed_at = Some(now);
    let message =
        format!("snapshot {} deleted after the retention; this request stays as the record", snapshot.path);
    step.write(Some((false, reasons::SNAPSHOT_REMOVED, message))).await?;
    Ok(Action::await_change())
}

fn until(now: DateTime<Utc>, at: DateTime<Utc>) -> Duration {
    (at - now).to_std().unwrap_or_default().min(Duration::from_secs(3600)) + Duration::from_millis(50)
}

/// `3 pass, 1 review, 1 fail` over every check of every file.
fn summary(files: &[FileReport]) -> String {
    let count = |outcome| files.iter().flat_map(|f| &f.checks).filter(|c| c.outcome == outcome).count();
    [(CheckOutcome::Pass, "pass"), (CheckOutcome::Review, "review"), (CheckOutcome::Fail, "fail")]
        .into_iter()
        .map(|(outcome, word)| (count(outcome), word))
        .filter(|(n, _)| *n > 0)
        .map(|(n, word)| format!("{n} {word}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[path = "gate_tests.rs"]
mod tests;
