//! Which tasks the requesting site offers to which data site: pure functions of the task, its
//! workspace and the workspace's permit.

use haven_api::{
    AnalysisTask, DataPermit, Workspace, constants::WORKSPACE_NAMESPACE_PREFIX, permit::PermitPhase,
    task::SiteTaskState,
};
use kube::ResourceExt;

use super::progress::{Scope, Targets};
use crate::wire::Offer;

/// The workspace a task's namespace belongs to (`ws-<workspace>`).
pub fn workspace_of(task: &AnalysisTask) -> Option<String> {
    task.namespace()?.strip_prefix(WORKSPACE_NAMESPACE_PREFIX).map(str::to_owned)
}

/// What `task` runs under at this (the requesting) site `local`, or why it cannot run: its
/// workspace's permit must be part of a multi-site permit this site requests for, the
/// requester one of the workspace's users, and every site it names one of the permit's.
pub fn scope(
    task: &AnalysisTask,
    workspace: Option<&Workspace>,
    permit: Option<&DataPermit>,
    local: &str,
) -> Scope {
    let Some(workspace) = workspace else {
        return Err(format!("namespace {} is not a workspace's", task.namespace().unwrap_or_default()));
    };
    let Some(permit) = permit else {
        return Err(format!(
            "permit {} of workspace {} does not exist",
            workspace.spec.permit,
            workspace.name_any()
        ));
    };
    let Some(multi) = &permit.spec.multi_site else {
        return Err(format!(
            "permit {} is not part of a multi-site permit (spec.multiSite)",
            permit.name_any()
        ));
    };
    if multi.requesting_site != local {
        return Err(format!(
            "multi-site permit {} is requested from site {}, not this site ({local})",
            multi.id, multi.requesting_site
        ));
    }
    if !workspace.spec.users.contains(&task.spec.requested_by) {
        return Err(format!(
            "{} is not a user of workspace {}",
            task.spec.requested_by,
            workspace.name_any()
        ));
    }
    let unknown: Vec<_> = task.spec.sites.iter().filter(|s| !multi.sites.contains(s)).cloned().collect();
    if !unknown.is_empty() {
        return Err(format!(
            "spec.sites: {} is not a data site of multi-site permit {} ({})",
            unknown.join(", "),
            multi.id,
            multi.sites.join(", ")
        ));
    }
    let sites = if task.spec.sites.is_empty() { multi.sites.clone() } else { task.spec.sites.clone() };
    Ok(Targets { multi_site_permit: multi.id.clone(), sites })
}

/// Why the task must stop everywhere, if it must: cancelled by its requester, or its permit
/// here has ended.
pub fn cancellation(task: &AnalysisTask, permit: Option<&DataPermit>) -> Option<String> {
    if task.spec.cancelled {
        return Some(format!("cancelled by {}", task.spec.requested_by));
    }
    let phase = permit.and_then(|p| p.status.as_ref()).map(|s| s.phase)?;
    matches!(
        phase,
        PermitPhase::Expired | PermitPhase::Revoked | PermitPhase::Archived | PermitPhase::Destroyed
    )
    .then(|| {
        format!(
            "permit {} at the requesting site is {phase:?}",
            permit.map(|p| p.name_any()).unwrap_or_default()
        )
    })
}

/// Whether the requesting side holds new work back: its permit is not Active (suspended, or
/// not yet prepared). Work already taken goes on; nothing new is offered.
pub fn held(permit: Option<&DataPermit>) -> bool {
    permit.and_then(|p| p.status.as_ref()).map(|s| s.phase) != Some(PermitPhase::Active)
}

/// Whether `peer` has finished `task` (its state there is final): it may clean up.
pub fn finished_at(peer: &str, task: &AnalysisTask, scope: &Scope) -> bool {
    let targeted = scope.as_ref().is_ok_and(|t| t.sites.iter().any(|s| s == peer));
    let state = task.status.as_ref().and_then(|s| s.sites.iter().find(|p| p.site == peer)).map(|p| p.state);
    targeted && state.is_some_and(SiteTaskState::is_final)
}

/// The offer of `task` to `peer`, if it has one: the peer is one of its sites and has not
/// finished it. A cancelled task is offered (with why) until the peer says it stopped.
pub fn offer_for(
    peer: &str,
    task: &AnalysisTask,
    scope: &Scope,
    cancelled: Option<String>,
    held: bool,
) -> Option<Offer> {
    let targets = scope.as_ref().ok()?;
    if !targets.sites.iter().any(|s| s == peer) {
        return None;
    }
    let state = task.status.as_ref().and_then(|s| s.sites.iter().find(|p| p.site == peer)).map(|p| p.state);
    if state.is_some_and(SiteTaskState::is_final) {
        return None;
    }
    let not_started = matches!(state, None | Some(SiteTaskState::Waiting));
    if cancelled.is_none() && held && not_started {
        return None;
    }
    Some(Offer {
        uid: task.uid()?,
        task: format!("{}/{}", task.namespace()?, task.name_any()),
        multi_site_permit: targets.multi_site_permit.clone(),
        requested_by: task.spec.requested_by.clone(),
        description: task.spec.description.clone(),
        executors: task.spec.executors.clone(),
        inputs: task.spec.inputs.clone(),
        resources: task.spec.resources.clone(),
        cancelled,
    })
}
