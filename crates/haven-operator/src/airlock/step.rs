//! One reconcile's status change: the status as read, the one being built, and how to write
//! it (only when changed) and record the transition.

use std::time::Duration;

use chrono::{DateTime, Utc};
use haven_api::{
    AirlockRequest, AirlockRequestStatus,
    airlock::AirlockPhase,
    constants::{FIELD_MANAGER, conditions},
};
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::controller::Action,
};

use crate::{
    conditions::{Desired, set_conditions},
    context::Context,
    error::{Error, Result},
};

pub struct Step<'a> {
    pub request: &'a AirlockRequest,
    pub ctx: &'a Context,
    pub old: AirlockRequestStatus,
    pub new: AirlockRequestStatus,
    pub now: DateTime<Utc>,
}

impl<'a> Step<'a> {
    pub fn new(request: &'a AirlockRequest, ctx: &'a Context, now: DateTime<Utc>) -> Self {
        let old = request.status.clone().unwrap_or_default();
        let mut new = old.clone();
        new.observed_generation = request.meta().generation;
        Self { request, ctx, old, new, now }
    }

    pub fn set(&mut self, type_: &'static str, status: bool, reason: &'static str, message: String) {
        let desired = vec![Desired { type_, status, reason, message }];
        set_conditions(&mut self.new.conditions, desired, self.request.meta().generation, self.now);
    }

    /// Ends the request in `phase` (a final one), with the condition saying why.
    pub async fn finish(
        mut self,
        phase: AirlockPhase,
        condition: (&'static str, bool),
        reason: &'static str,
        message: String,
    ) -> Result<Action> {
        // A crash during the checks can leave their decrypted scratch copy; a finished request
        // needs none, and it must not wait for the snapshot's retention.
        let quarantine = self
            .ctx
            .store
            .quarantine(&self.request.namespace().unwrap_or_default(), &self.request.name_any())
            .map_err(Error::data_store)?;
        tokio::task::spawn_blocking(move || haven_data::airlock::remove_scratch(&quarantine))
            .await?
            .map_err(Error::data_store)?;
        self.new.phase = phase;
        self.new.completed_at = Some(self.now);
        self.set(condition.0, condition.1, reason, message.clone());
        let warning = matches!(phase, AirlockPhase::Failed | AirlockPhase::Blocked | AirlockPhase::Rejected);
        self.write(Some((warning, reason, message))).await?;
        if let Some(created) = self.request.meta().creation_timestamp.as_ref() {
            let took = (self.now.timestamp() - created.0.as_second()).max(0).unsigned_abs();
            let direction = format!("{:?}", self.request.spec.direction);
            self.ctx.metrics.airlock_finished(&direction, &format!("{phase:?}"), Duration::from_secs(took));
        }
        // Come back when the snapshot is due for deletion.
        Ok(Action::requeue(
            self.ctx.config.airlock_retention.min(Duration::from_secs(3600)) + Duration::from_millis(50),
        ))
    }

    /// Ends the request as Failed.
    pub async fn fail(
        self,
        condition: &'static str,
        reason: &'static str,
        message: String,
    ) -> Result<Action> {
        self.finish(AirlockPhase::Failed, (condition, false), reason, message).await
    }

    /// Ends the request as Failed because of its workspace or permit.
    pub async fn fail_scope(self, reason: &'static str, message: String) -> Result<Action> {
        self.fail(conditions::PERMIT_VALID, reason, message).await
    }

    /// Records the event (audit record, Event, log line), then writes the status if it
    /// changed. The write carries the resourceVersion read, so a reconcile that worked from a
    /// stale copy fails with a conflict instead of repeating a step; the retry sees the news.
    pub async fn write(&self, event: Option<(bool, &str, String)>) -> Result<()> {
        // The record before the status that shows it (see Context::record).
        if let Some((warning, reason, note)) = event {
            self.ctx.record(&self.request.object_ref(&()), warning, reason, note).await?;
        }
        if self.new != self.old {
            let patch = serde_json::json!({
                "apiVersion": "haven.io/v1alpha1", "kind": "AirlockRequest",
                "metadata": {"resourceVersion": self.request.resource_version()},
                "status": self.new,
            });
            let params = PatchParams::apply(FIELD_MANAGER).force();
            let namespace = self.request.namespace().unwrap_or_default();
            Api::<AirlockRequest>::namespaced(self.ctx.client.clone(), &namespace)
                .patch_status(&self.request.name_any(), &params, &Patch::Apply(&patch))
                .await?;
        }
        Ok(())
    }
}
