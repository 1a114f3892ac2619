//! The requesting site: offers each data site its tasks, records what each site reports in the
//! task's status, and lands each approved package read-only in the researcher's workspace.
//! It only answers; it never dials a data site.

mod intake;
pub mod offers;
pub mod progress;
mod status;

use std::sync::Arc;

use haven_api::{AnalysisTask, DataPermit, Site, Workspace, task::SiteTaskState};
use haven_data::DataStore;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::{
    Client, Resource, ResourceExt,
    runtime::{
        events::{Event, EventType, Recorder},
        reflector::Store,
    },
};
use serde_json::json;

pub use intake::Delivery;

use crate::{
    audit::Trail,
    wire::{Offers, Report},
};

/// Why a peer's call was not taken; each maps to an HTTP status the agent understands.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// No such task for this peer (404).
    #[error("{0}")]
    NotFound(String),
    /// Not now (409): e.g. the package before the approval was reported, a suspended permit.
    #[error("{0}")]
    NotNow(String),
    /// Never (410): the package must not land, e.g. the permit here has ended.
    #[error("{0}")]
    Never(String),
    /// Malformed (400).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Internal(String),
}

impl From<kube::Error> for HubError {
    fn from(error: kube::Error) -> Self {
        Self::Internal(format!("the API server: {error}"))
    }
}

/// The requesting site's state: caches of the objects it reads, and where it writes.
pub struct Hub {
    pub client: Client,
    /// This site's name.
    pub site: String,
    pub store: DataStore,
    pub trail: Arc<Trail>,
    pub tasks: Store<AnalysisTask>,
    pub workspaces: Store<Workspace>,
    pub permits: Store<DataPermit>,
    pub sites: Store<Site>,
    /// Events on tasks: each site's state change, and a task that cannot be sent.
    pub recorder: Recorder,
}

/// A task with the workspace and permit it runs under.
#[derive(Debug)]
pub struct TaskContext {
    pub task: Arc<AnalysisTask>,
    pub workspace: Option<Arc<Workspace>>,
    pub permit: Option<Arc<DataPermit>>,
}

impl TaskContext {
    pub fn scope(&self, local: &str) -> progress::Scope {
        offers::scope(&self.task, self.workspace.as_deref(), self.permit.as_deref(), local)
    }
}

impl Hub {
    fn context(&self, task: Arc<AnalysisTask>) -> TaskContext {
        let workspace = offers::workspace_of(&task)
            .and_then(|name| self.workspaces.state().into_iter().find(|w| w.name_any() == name));
        // The namespace the operator provisioned for the workspace, not merely a look-alike.
        let workspace = workspace.filter(|w| {
            w.status.as_ref().and_then(|s| s.namespace.as_deref()) == task.namespace().as_deref()
        });
        let permit = workspace
            .as_ref()
            .and_then(|w| self.permits.state().into_iter().find(|p| p.name_any() == w.spec.permit));
        TaskContext { task, workspace, permit }
    }

    fn find(&self, uid: &str) -> Option<TaskContext> {
        let task = self.tasks.state().into_iter().find(|t| t.uid().as_deref() == Some(uid))?;
        Some(self.context(task))
    }

    /// The tasks `peer` has to do, and those it has finished.
    pub fn offers(&self, peer: &str) -> Offers {
        let (mut tasks, mut closed) = (Vec::new(), Vec::new());
        for task in self.tasks.state() {
            let context = self.context(task);
            let permit = context.permit.as_deref();
            let scope = context.scope(&self.site);
            if offers::finished_at(peer, &context.task, &scope) {
                closed.extend(context.task.uid());
            } else if let Some(offer) = offers::offer_for(
                peer,
                &context.task,
                &scope,
                offers::cancellation(&context.task, permit),
                offers::held(permit),
            ) {
                tasks.push(offer);
            }
        }
        Offers { requesting_site: self.site.clone(), tasks, closed }
    }

    /// Records `report` from `peer` on task `uid`.
    pub async fn report(&self, peer: &str, uid: &str, report: Report) -> Result<(), HubError> {
        let context = self.find(uid).ok_or_else(|| HubError::NotFound(format!("no task {uid}")))?;
        let scope = context.scope(&self.site);
        let targets = scope.as_ref().map_err(|e| HubError::NotFound(e.clone()))?;
        if !targets.sites.iter().any(|s| s == peer) {
            return Err(HubError::NotFound(format!("task {uid} is not for site {peer}")));
        }
        let cancelled = context.task.spec.cancelled;
        // New entries take this site's clock; a peer's own times are clamped to it.
        let now = chrono::Utc::now();
        let report = Report { at: report.at.min(now), ..report };
        let changed = status::update(&self.client, &context.task, |status| {
            let mut next = progress::derive(status, &scope, cancelled, now);
            let changed = progress::apply_report(&mut next, peer, &report)
                .map_err(|e| HubError::Invalid(e.to_string()))?;
            Ok(changed.then(|| progress::derive(&next, &scope, cancelled, now)))
        })
        .await?;
        if changed {
            let warning = matches!(
                report.state,
                SiteTaskState::Refused
                    | SiteTaskState::NotParticipating
                    | SiteTaskState::Rejected
                    | SiteTaskState::Blocked
                    | SiteTaskState::Failed
            );
            let message =
                if report.message.is_empty() { String::new() } else { format!(": {}", report.message) };
            let note = format!("site {peer}: {:?}{message}", report.state);
            self.event(&context.task, Some(peer), warning, &format!("{:?}", report.state), note).await;
            let object = format!(
                "analysistask/{}/{}",
                context.task.namespace().unwrap_or_default(),
                context.task.name_any()
            );
            let detail = json!({"site": peer, "state": report.state, "reason": report.reason, "message": report.message, "manifestSha256": report.manifest_sha256});
            self.trail
                .record(peer, "task-report", &object, detail)
                .map_err(|e| HubError::Internal(e.to_string()))?;
        }
        Ok(())
    }
}

impl Hub {
    /// An Event on `task` (for `kubectl describe`), about `site` when one reported it; a
    /// failure to publish is only logged.
    pub async fn event(
        &self,
        task: &AnalysisTask,
        site: Option<&str>,
        warning: bool,
        reason: &str,
        note: String,
    ) {
        let event = Event {
            type_: if warning { EventType::Warning } else { EventType::Normal },
            reason: reason.into(),
            // An Event's note is at most 1 KiB.
            note: Some(note.chars().take(1000).collect()),
            action: reason.into(),
            // The recorder folds Events of one object, reason and related object into one
            // series that keeps the first note: naming the Site keeps each site's own.
            secondary: site.map(site_reference),
        };
        if let Err(error) = self.recorder.publish(&event, &task.object_ref(&())).await {
            tracing::warn!(task = %task.name_any(), %error, "could not publish an event");
        }
    }
}

/// A reference to the Site named `name` (cluster-scoped), for an Event's related object.
fn site_reference(name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some(Site::api_version(&()).into_owned()),
        kind: Some(Site::kind(&()).into_owned()),
        name: Some(name.to_owned()),
        ..ObjectReference::default()
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("site", &self.site).finish_non_exhaustive()
    }
}
