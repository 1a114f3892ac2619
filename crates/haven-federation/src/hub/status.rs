//! Writing a task's status: read, change, write with the object's resourceVersion (so a
//! concurrent report is never overwritten), again on conflict; nothing when nothing changed.
//! The tidy loop keeps every task's derived fields and `Accepted` condition current.

use std::time::Duration;

use chrono::Utc;
use haven_api::{AnalysisTask, task::AnalysisTaskStatus};
use k8s_openapi::{
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
    jiff::Timestamp,
};
use kube::{Api, ResourceExt, api::PostParams};

use super::{Hub, HubError, progress};

/// Condition: a multi-site permit of this workspace allows the task.
pub const ACCEPTED: &str = "Accepted";

const ATTEMPTS: usize = 5;

/// Applies `change` to the task's current status and writes the result if there is one and it
/// differs. Whether it wrote.
pub async fn update<F>(client: &kube::Client, task: &AnalysisTask, mut change: F) -> Result<bool, HubError>
where
    F: FnMut(&AnalysisTaskStatus) -> Result<Option<AnalysisTaskStatus>, HubError>,
{
    let api: Api<AnalysisTask> = Api::namespaced(client.clone(), &task.namespace().unwrap_or_default());
    for _ in 0..ATTEMPTS {
        let Some(mut fresh) = api.get_opt(&task.name_any()).await? else {
            return Err(HubError::NotFound(format!("task {} was deleted", task.name_any())));
        };
        if fresh.uid() != task.uid() {
            return Err(HubError::NotFound(format!("task {} was replaced", task.name_any())));
        }
        let old = fresh.status.clone().unwrap_or_default();
        let Some(new) = change(&old)? else { return Ok(false) };
        if new == old {
            return Ok(false);
        }
        fresh.status = Some(new);
        match api.replace_status(&task.name_any(), &PostParams::default(), &fresh).await {
            Ok(_) => return Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(HubError::Internal(format!("task {}: status kept changing under us", task.name_any())))
}

/// Sets condition `type_` in `conditions`, keeping its transition time when its status holds.
fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
) {
    let status = if ok { "True" } else { "False" };
    let kept = conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone());
    conditions.retain(|c| c.type_ != type_);
    conditions.push(Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time: kept.unwrap_or_else(|| {
            Time(Timestamp::from_second(Utc::now().timestamp()).unwrap_or(Timestamp::UNIX_EPOCH))
        }),
    });
}

impl Hub {
    /// Every 2 s: each task's sites, state, summary and `Accepted` condition, written only
    /// when they changed.
    pub async fn tidy(&self) {
        loop {
            for task in self.tasks.state() {
                let context = self.context(task);
                let scope = context.scope(&self.site);
                let cancelled = context.task.spec.cancelled;
                let generation = context.task.metadata.generation;
                let result = update(&self.client, &context.task, |old| {
                    let mut next = progress::derive(old, &scope, cancelled, Utc::now());
                    match &scope {
                        Ok(targets) => set_condition(
                            &mut next.conditions,
                            ACCEPTED,
                            true,
                            "MultiSitePermit",
                            format!(
                                "sent to {} under multi-site permit {}",
                                targets.sites.join(", "),
                                targets.multi_site_permit
                            ),
                            generation,
                        ),
                        Err(why) => set_condition(
                            &mut next.conditions,
                            ACCEPTED,
                            false,
                            "NotSent",
                            why.clone(),
                            generation,
                        ),
                    }
                    // Derived fields only: a fresh time on a Waiting entry is not a change.
                    let settled = next.sites.iter().all(|p| old.sites.iter().any(|o| o.site == p.site));
                    let same = settled
                        && next.state == old.state
                        && next.summary == old.summary
                        && next.multi_site_permit == old.multi_site_permit
                        && same_conditions(&next, old);
                    Ok((!same).then_some(next))
                })
                .await;
                match result {
                    // Written because it could not be sent (newly, or for a new reason): say why.
                    Ok(true) if let Err(why) = &scope => {
                        let was = context
                            .task
                            .status
                            .as_ref()
                            .and_then(|s| s.conditions.iter().find(|c| c.type_ == ACCEPTED));
                        if was.is_none_or(|c| c.status != "False" || &c.message != why) {
                            self.event(&context.task, None, true, "NotSent", why.clone()).await;
                        }
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(task = %context.task.name_any(), %error, "task status not written")
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

fn same_conditions(a: &AnalysisTaskStatus, b: &AnalysisTaskStatus) -> bool {
    let key = |s: &AnalysisTaskStatus| {
        let mut v: Vec<_> = s
            .conditions
            .iter()
            .map(|c| {
                (
                    c.type_.clone(),
                    c.status.clone(),
                    c.reason.clone(),
                    c.message.clone(),
                    c.observed_generation,
                )
            })
            .collect();
        v.sort();
        v
    };
    key(a) == key(b)
}
