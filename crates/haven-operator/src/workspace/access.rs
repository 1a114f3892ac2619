//! Every grant and removal of a workspace's access is evidence: who got or lost access to
//! which workspace and datasets, when, and who made the change where the API server can tell
//! (the field manager that last wrote `spec.users`). The record is appended, and synced,
//! before the status that shows the new access is written, so a stop in between repeats the
//! record rather than losing it.

use std::collections::BTreeSet;

use haven_api::{Workspace, workspace::GrantedAccess};
use kube::{Resource, ResourceExt};

use super::plan::WorkspacePlan;
use crate::{context::Context, error::Result};

/// What the workspace's people hold after a status update.
#[derive(Clone, Copy, Debug)]
pub enum Access<'a> {
    /// The plan's users and datasets (the RoleBindings were just applied).
    Granted(&'a WorkspacePlan),
    /// Nobody (the bindings are gone or were never made).
    Removed,
    /// Whatever the status last said (nothing was changed).
    Unchanged,
}

impl Access<'_> {
    /// The access after the update, given what the status said before.
    pub fn resolve(self, before: Option<&GrantedAccess>) -> Option<GrantedAccess> {
        match self {
            Self::Granted(plan) => Some(granted(plan)),
            Self::Removed => None,
            Self::Unchanged => before.cloned(),
        }
    }
}

/// The access a plan grants, sorted so that equal grants compare equal.
pub fn granted(plan: &WorkspacePlan) -> GrantedAccess {
    let sorted = |items: &[String]| items.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect();
    GrantedAccess { users: sorted(&plan.users), datasets: sorted(&plan.datasets) }
}

/// Appends the record of a change from `before` to `after` (nothing when they are equal).
pub async fn record_change(
    workspace: &Workspace,
    ctx: &Context,
    before: Option<&GrantedAccess>,
    after: Option<&GrantedAccess>,
    why: &str,
) -> Result<()> {
    if before == after {
        return Ok(());
    }
    let users = |access: Option<&GrantedAccess>| -> BTreeSet<String> {
        access.map(|a| a.users.iter().cloned().collect()).unwrap_or_default()
    };
    let (was, now) = (users(before), users(after));
    let action = match (before, after) {
        (None, Some(_)) => "AccessGranted",
        (Some(_), None) => "AccessRemoved",
        _ => "AccessChanged",
    };
    let detail = serde_json::json!({
        "users": now,
        "added": now.difference(&was).collect::<Vec<_>>(),
        "removed": was.difference(&now).collect::<Vec<_>>(),
        "datasets": after.map(|a| a.datasets.clone()).unwrap_or_default(),
        "datasetsBefore": before.map(|a| a.datasets.clone()).unwrap_or_default(),
        "permit": workspace.spec.permit,
        "why": why,
        "usersLastSetBy": users_last_set_by(workspace),
    });
    let detail = detail.as_object().cloned().unwrap_or_default();
    ctx.append_audit(&workspace.object_ref(&()), action, detail).await
}

/// The field manager that last wrote `spec.users` (from `managedFields`: the API server's own
/// account of who wrote what), e.g. `kubectl-client-side-apply` or `argocd-controller`.
pub fn users_last_set_by(workspace: &Workspace) -> Option<String> {
    workspace
        .managed_fields()
        .iter()
        .filter(|entry| {
            entry
                .fields_v1
                .as_ref()
                .is_some_and(|fields| fields.0.get("f:spec").and_then(|spec| spec.get("f:users")).is_some())
        })
        .max_by_key(|entry| entry.time.as_ref().map(|t| t.0))
        .and_then(|entry| entry.manager.clone())
}
