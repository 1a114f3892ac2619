//! The AirlockRequest controller: `Submitted → Checking → AwaitingReview → Approved →
//! Exported | Imported`, or `Rejected`, `Blocked`, `Cancelled`, `Failed`.
//!
//! One step per reconcile, each written to status before the next, so a restarted operator
//! resumes at the step it stopped in; the file work of every step is idempotent (a snapshot
//! or delivery already in place is verified and reused). A finished request is only visited
//! again to delete its snapshot when the retention has passed; it stays as the record.

mod files;
mod review;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use haven_api::{
    AirlockRequest, AirlockRequestStatus, DataPermit, Workspace,
    airlock::{AirlockPhase, CheckOutcome, Delivery, Direction, FileReport, SnapshotRecord},
    constants::{FIELD_MANAGER, WORKSPACE_NAMESPACE_PREFIX, conditions, reasons},
    permit::PermitPhase,
    validation::workspace_namespace,
};
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::controller::Action,
};

use self::{
    files::Paths,
    review::{Verdict, tally},
};
use crate::{
    conditions::{Desired, set_conditions},
    context::Context,
    error::{Error, Result},
};

/// How often a request waiting on people (or a suspended permit) is looked at anyway.
const WAITING_POLL: Duration = Duration::from_secs(60);

/// The workspace and permit a request belongs to.
struct Scope {
    workspace: Workspace,
    permit: DataPermit,
}

pub async fn reconcile(request: Arc<AirlockRequest>, ctx: Arc<Context>) -> Result<Action> {
    let old = request.status.clone().unwrap_or_default();
    let now = ctx.clock.now();
    if is_final(old.phase) {
        return retention(&request, &ctx, old, now).await;
    }
    let mut step = Step::new(&request, &ctx, old, now);
    let scope = match scope(&ctx, &request).await? {
        Ok(scope) => scope,
        Err(message) => return step.fail(conditions::CHECKED, reasons::WORKSPACE_NOT_FOUND, message).await,
    };
    let permit_name = scope.permit.name_any();
    match scope.permit.status.as_ref().map(|s| s.phase) {
        Some(PermitPhase::Active) => {}
        Some(PermitPhase::Suspended) => {
            let message = format!("permit {permit_name} is suspended; the request waits until it is resumed");
            step.set(conditions::REVIEWED, false, reasons::SUSPENDED, message);
            step.write(None).await?;
            return Ok(Action::requeue(WAITING_POLL));
        }
        phase => {
            let phase = phase.map_or_else(|| "not yet reconciled".to_owned(), |p| format!("{p:?}"));
            let message =
                format!("permit {permit_name} is {phase}: nothing moves through the airlock under it");
            return step.fail(conditions::DELIVERED, reasons::PERMIT_NOT_ACTIVE, message).await;
        }
    }
    let spec = &request.spec;
    let undecided = matches!(
        step.new.phase,
        AirlockPhase::Submitted | AirlockPhase::Checking | AirlockPhase::AwaitingReview
    );
    if spec.cancelled && undecided {
        step.new.phase = AirlockPhase::Cancelled;
        step.new.completed_at = Some(now);
        let message = format!("cancelled by {}", spec.requested_by);
        step.set(conditions::REVIEWED, false, reasons::CANCELLED, message.clone());
        step.write(Some((false, reasons::CANCELLED, message))).await?;
        return Ok(step.after_finish());
    }
    let paths = Paths::of(
        &ctx.store,
        spec.direction,
        &request.namespace().unwrap_or_default(),
        &request.name_any(),
        &scope.workspace.name_any(),
        &permit_name,
    )?;
    match step.new.phase {
        AirlockPhase::Submitted => take_snapshot(step, &paths, &scope).await,
        AirlockPhase::Checking => run_checks(step, &paths, &scope).await,
        AirlockPhase::AwaitingReview => count_reviews(step, &scope).await,
        AirlockPhase::Approved => deliver(step, &paths).await,
        _ => Ok(Action::await_change()),
    }
}

pub fn error_policy(request: Arc<AirlockRequest>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(request = %request.name_any(), namespace = ?request.namespace(), category = error.category(), %error, "reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

fn is_final(phase: AirlockPhase) -> bool {
    matches!(
        phase,
        AirlockPhase::Exported
            | AirlockPhase::Imported
            | AirlockPhase::Rejected
            | AirlockPhase::Blocked
            | AirlockPhase::Cancelled
            | AirlockPhase::Failed
    )
}

/// The workspace whose namespace holds the request, and its permit; or why there is none.
async fn scope(ctx: &Context, request: &AirlockRequest) -> Result<Result<Scope, String>> {
    let namespace = request.namespace().unwrap_or_default();
    let Some(workspace_name) = namespace.strip_prefix(WORKSPACE_NAMESPACE_PREFIX) else {
        return Ok(Err(format!("namespace {namespace} is not a workspace namespace (ws-<workspace>)")));
    };
    let workspace = Api::<Workspace>::all(ctx.client.clone()).get_opt(workspace_name).await?;
    let Some(workspace) = workspace.filter(|w| workspace_namespace(&w.name_any()) == namespace) else {
        return Ok(Err(format!("no workspace {workspace_name} owns namespace {namespace}")));
    };
    let permit = Api::<DataPermit>::all(ctx.client.clone()).get_opt(&workspace.spec.permit).await?;
    let Some(permit) = permit else {
        return Ok(Err(format!(
            "permit {} of workspace {workspace_name} does not exist",
            workspace.spec.permit
        )));
    };
    Ok(Ok(Scope { workspace, permit }))
}

async fn take_snapshot(mut step: Step<'_>, paths: &Paths, scope: &Scope) -> Result<Action> {
    let spec = &step.request.spec;
    let max_files = scope.permit.spec.airlock.max_files;
    if spec.files.len() > max_files as usize {
        let message = format!(
            "spec.files lists {} files; permit {} allows at most {max_files} per request (spec.airlock.maxFiles)",
            spec.files.len(),
            scope.permit.name_any()
        );
        return step.fail(conditions::CHECKED, reasons::FILE_REFUSED, message).await;
    }
    let (manifest, manifest_sha256) = match files::snapshot(paths, step.request).await? {
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
        path: paths.quarantine_rel.clone(),
        taken_at: step.now,
        manifest_sha256,
        removed_at: None,
    });
    let message = format!("snapshot of {} files ({bytes} bytes) taken; checks running", new.file_count);
    step.set(conditions::CHECKED, false, reasons::CHECKING, message.clone());
    step.write(Some((false, reasons::SNAPSHOT_TAKEN, message))).await?;
    Ok(Action::await_change())
}

async fn run_checks(mut step: Step<'_>, paths: &Paths, scope: &Scope) -> Result<Action> {
    let policy = files::check_policy(&scope.permit);
    let scanner = step.ctx.config.airlock_scanner.clone();
    let reports = match files::check(paths, step.request, policy, scanner, step.now).await? {
        Ok(reports) => reports,
        Err(refused) => return step.fail(conditions::CHECKED, reasons::SNAPSHOT_CORRUPT, refused).await,
    };
    let blocking = files::blocking(&reports);
    let summary = summary(&reports);
    step.new.checks = Some(summary.clone());
    step.new.files = reports;
    if !blocking.is_empty() {
        step.new.phase = AirlockPhase::Blocked;
        step.new.completed_at = Some(step.now);
        let message = format!("blocked by an automated check: {}", blocking.join("; "));
        step.set(conditions::CHECKED, false, reasons::CHECK_FAILED, message.clone());
        step.write(Some((true, reasons::CHECK_FAILED, message))).await?;
        return Ok(step.after_finish());
    }
    let all_pass = step.new.files.iter().all(|f| f.checks.iter().all(|c| c.outcome == CheckOutcome::Pass));
    let reason = if all_pass { reasons::CHECKS_PASSED } else { reasons::CHECKS_NEED_REVIEW };
    step.new.phase = AirlockPhase::AwaitingReview;
    let required = scope.permit.spec.airlock.required_approvals;
    step.new.approvals = Some(format!("0/{required}"));
    step.set(conditions::CHECKED, true, reason, summary.clone());
    step.set(conditions::REVIEWED, false, reasons::AWAITING_REVIEW, format!("0/{required} approvals"));
    step.write(Some((false, reason, format!("checks: {summary}; awaiting review")))).await?;
    Ok(Action::await_change())
}

async fn count_reviews(mut step: Step<'_>, scope: &Scope) -> Result<Action> {
    let permit_name = scope.permit.name_any();
    let tally = tally(&step.request.spec, &permit_name, &scope.permit.spec, &scope.workspace.spec.users);
    let newly_ignored: Vec<String> = tally
        .records
        .iter()
        .filter(|r| !r.counted && !step.old.reviews.contains(r))
        .filter_map(|r| r.reason.clone())
        .collect();
    step.new.reviews = tally.records.clone();
    step.new.approvals = Some(tally.approvals_text());
    let event = match tally.verdict() {
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
            step.new.phase = AirlockPhase::Rejected;
            step.new.completed_at = Some(step.now);
            let message = format!("rejected by {who}: {comment}");
            step.set(conditions::REVIEWED, true, reasons::REJECTED, message.clone());
            Some((true, reasons::REJECTED, message))
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
    let finished = step.new.phase == AirlockPhase::Rejected;
    step.write(event).await?;
    for reason in newly_ignored {
        step.ctx.record(&step.request.object_ref(&()), true, reasons::REVIEWER_NOT_PERMITTED, reason).await;
    }
    Ok(if finished { step.after_finish() } else { Action::requeue(WAITING_POLL) })
}

async fn deliver(mut step: Step<'_>, paths: &Paths) -> Result<Action> {
    let delivered = match files::deliver(paths).await? {
        Ok(delivered) => delivered,
        Err(refused) => return step.fail(conditions::DELIVERED, reasons::DELIVERY_FAILED, refused).await,
    };
    let reviewed = step.new.snapshot.as_ref().map(|s| s.manifest_sha256.as_str());
    if reviewed != Some(delivered.manifest_sha256.as_str()) {
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
    step.new.phase = phase;
    step.new.completed_at = Some(step.now);
    step.new.delivery = Some(Delivery {
        path: paths.target_rel.clone(),
        delivered_at: step.now,
        manifest_sha256: delivered.manifest_sha256,
    });
    let message =
        format!("{} files ({} bytes) delivered to {}", delivered.files, delivered.bytes, paths.target_rel);
    step.set(conditions::DELIVERED, true, reason, message.clone());
    step.write(Some((false, reason, message))).await?;
    Ok(step.after_finish())
}

/// Deletes a finished request's snapshot once the retention has passed.
async fn retention(
    request: &AirlockRequest,
    ctx: &Context,
    old: AirlockRequestStatus,
    now: DateTime<Utc>,
) -> Result<Action> {
    let Some(snapshot) = old.snapshot.clone().filter(|s| s.removed_at.is_none()) else {
        return Ok(Action::await_change());
    };
    let due = old.completed_at.unwrap_or(snapshot.taken_at)
        + chrono::Duration::from_std(ctx.config.airlock_retention).unwrap_or(chrono::Duration::MAX);
    if now < due {
        return Ok(Action::requeue(until(now, due)));
    }
    let quarantine = ctx
        .store
        .quarantine(&request.namespace().unwrap_or_default(), &request.name_any())
        .map_err(Error::data_store)?;
    tokio::task::spawn_blocking(move || haven_data::airlock::remove_snapshot(&quarantine))
        .await?
        .map_err(Error::data_store)?;
    let mut step = Step::new(request, ctx, old, now);
    if let Some(snapshot) = step.new.snapshot.as_mut() {
        snapshot.removed_at = Some(now);
    }
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

/// One reconcile's status change: the old status, the new one being built, and how to write it.
struct Step<'a> {
    request: &'a AirlockRequest,
    ctx: &'a Context,
    old: AirlockRequestStatus,
    new: AirlockRequestStatus,
    now: DateTime<Utc>,
}

impl<'a> Step<'a> {
    fn new(
        request: &'a AirlockRequest,
        ctx: &'a Context,
        old: AirlockRequestStatus,
        now: DateTime<Utc>,
    ) -> Self {
        let mut new = old.clone();
        new.observed_generation = request.meta().generation;
        Self { request, ctx, old, new, now }
    }

    fn set(&mut self, type_: &'static str, status: bool, reason: &'static str, message: String) {
        let desired = vec![Desired { type_, status, reason, message }];
        set_conditions(&mut self.new.conditions, desired, self.request.meta().generation, self.now);
    }

    /// Ends the request as Failed, saying why in the condition of the step that failed.
    async fn fail(mut self, type_: &'static str, reason: &'static str, message: String) -> Result<Action> {
        self.new.phase = AirlockPhase::Failed;
        self.new.completed_at = Some(self.now);
        self.set(type_, false, reason, message.clone());
        self.write(Some((true, reason, message))).await?;
        Ok(self.after_finish())
    }

    /// What to do after reaching a final phase: come back when the snapshot is due for deletion.
    fn after_finish(&self) -> Action {
        Action::requeue(
            self.ctx.config.airlock_retention.min(Duration::from_secs(3600)) + Duration::from_millis(50),
        )
    }

    /// Writes the status if it changed; records the event (Event, log line, audit record).
    async fn write(&self, event: Option<(bool, &str, String)>) -> Result<()> {
        if self.new != self.old {
            let patch = serde_json::json!({
                "apiVersion": "haven.io/v1alpha1", "kind": "AirlockRequest", "status": self.new,
            });
            let params = PatchParams::apply(FIELD_MANAGER).force();
            Api::<AirlockRequest>::namespaced(
                self.ctx.client.clone(),
                &self.request.namespace().unwrap_or_default(),
            )
            .patch_status(&self.request.name_any(), &params, &Patch::Apply(&patch))
            .await?;
        }
        if let Some((warning, reason, note)) = event {
            self.ctx.record(&self.request.object_ref(&()), warning, reason, note).await;
        }
        Ok(())
    }
}
