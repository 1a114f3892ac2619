//! Where a task stands here, read from the objects this site made for it: its workspace, its
//! Job and its export request. Pure; the agent reports what these say.

use haven_api::{
    AirlockRequest, Workspace,
    airlock::{AirlockPhase, CheckOutcome, Decision},
    task::SiteTaskState,
    workspace::WorkspacePhase,
};
use k8s_openapi::api::batch::v1::Job;

/// A state with its reason and message, and the approved manifest once there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub state: SiteTaskState,
    pub reason: String,
    pub message: String,
    pub manifest_sha256: Option<String>,
}

fn seen(state: SiteTaskState, reason: &str, message: impl Into<String>) -> Seen {
    Seen { state, reason: reason.into(), message: message.into(), manifest_sha256: None }
}

/// What the workspace alone says, while there is no Job yet; `None` once it is ready for one.
pub fn from_workspace(workspace: &Workspace) -> Option<Seen> {
    let status = workspace.status.as_ref();
    let phase = status.map(|s| s.phase).unwrap_or_default();
    let why = || {
        status
            .and_then(|s| s.conditions.iter().find(|c| c.status == "False"))
            .map(|c| format!("{}: {}", c.reason, c.message))
            .unwrap_or_default()
    };
    match phase {
        WorkspacePhase::Paused => None,
        WorkspacePhase::Failed => Some(seen(SiteTaskState::Failed, "WorkspaceFailed", why())),
        WorkspacePhase::Expiring | WorkspacePhase::Archived => Some(seen(
            SiteTaskState::Cancelled,
            "WorkspaceEnded",
            format!("the task's workspace is {phase:?}"),
        )),
        _ => Some(seen(SiteTaskState::Pulled, "Preparing", "preparing the task's isolated workspace")),
    }
}

/// What the Job says: `None` once it succeeded (its outputs go to the airlock next).
pub fn from_job(job: &Job) -> Option<Seen> {
    let status = job.status.as_ref();
    if status.and_then(|s| s.succeeded).unwrap_or(0) > 0 {
        return None;
    }
    let failed = status.and_then(|s| s.conditions.as_ref()).and_then(|c| {
        c.iter().find(|c| c.type_ == "Failed" && c.status == "True").map(|c| {
            format!("{}: {}", c.reason.clone().unwrap_or_default(), c.message.clone().unwrap_or_default())
        })
    });
    Some(match failed {
        Some(why) => {
            seen(SiteTaskState::Failed, "RunFailed", format!("the run failed ({why}); nothing is released"))
        }
        None => seen(SiteTaskState::Running, "Running", "running beside this site's extracts"),
    })
}

/// What the export request of the outputs says.
pub fn from_request(request: &AirlockRequest) -> Seen {
    let Some(status) = request.status.as_ref() else {
        return seen(SiteTaskState::Checking, "Submitted", "outputs submitted to this site's airlock");
    };
    let manifest = status.snapshot.as_ref().map(|s| s.manifest_sha256.clone());
    match status.phase {
        AirlockPhase::Submitted | AirlockPhase::Checking => {
            seen(SiteTaskState::Checking, "Checking", "this site's disclosure checks are running")
        }
        AirlockPhase::AwaitingReview => seen(
            SiteTaskState::AwaitingReview,
            "AwaitingReview",
            format!(
                "checked ({}); waiting for this site's output checkers",
                status.checks.clone().unwrap_or_default()
            ),
        ),
        AirlockPhase::Approved | AirlockPhase::Exported => Seen {
            manifest_sha256: manifest,
            ..seen(
                SiteTaskState::Approved,
                "Approved",
                format!(
                    "approved by this site's output checkers ({})",
                    status.approvals.clone().unwrap_or_default()
                ),
            )
        },
        AirlockPhase::Rejected => {
            let why: Vec<_> = request
                .spec
                .reviews
                .iter()
                .filter(|r| r.decision == Decision::Reject)
                .map(|r| format!("{}: {}", r.reviewer, r.comment.clone().unwrap_or_default()))
                .collect();
            seen(
                SiteTaskState::Rejected,
                "Rejected",
                format!("rejected by this site's output checkers ({})", why.join("; ")),
            )
        }
        AirlockPhase::Blocked => {
            // Which checks, never which files: the names are the task's to choose, and could
            // carry what the checks kept in.
            let mut failed: Vec<&str> = status
                .files
                .iter()
                .flat_map(|f| {
                    f.checks.iter().filter(|c| c.outcome == CheckOutcome::Fail).map(|c| c.check.as_str())
                })
                .collect();
            failed.sort_unstable();
            failed.dedup();
            seen(
                SiteTaskState::Blocked,
                "Blocked",
                format!("blocked by this site's checks ({}); it never leaves", failed.join(", ")),
            )
        }
        AirlockPhase::Cancelled => {
            seen(SiteTaskState::Cancelled, "Cancelled", "the outputs' request was cancelled")
        }
        AirlockPhase::Failed | AirlockPhase::Imported => {
            seen(SiteTaskState::Failed, "AirlockFailed", "this site's airlock could not process the outputs")
        }
    }
}
