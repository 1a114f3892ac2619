//! What every reconcile gets: the client, settings, clock, data store, audit log, Events,
//! metrics, the ledger of applied children and the cache of workspaces.

use std::sync::Arc;

use haven_api::{DataPermit, Workspace};
use haven_data::{AuditLog, AuditRecord, DataStore};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::{
    Client,
    runtime::{
        events::{Event, EventType, Recorder},
        reflector::Store,
    },
};

use crate::{
    applied::{Applied, Written},
    clock::Clock,
    config::OperatorConfig,
    error::Error,
    metrics::Metrics,
    permit::Preparations,
};

/// Shared by every reconcile of every controller.
#[allow(missing_debug_implementations)] // Client and Recorder have no Debug
pub struct Context {
    pub client: Client,
    pub config: OperatorConfig,
    pub clock: Arc<dyn Clock>,
    pub store: DataStore,
    pub audit: Arc<AuditLog>,
    pub recorder: Recorder,
    pub preparations: Preparations,
    pub metrics: Arc<Metrics>,
    /// What was last applied to each workspace child (see [`Applied`]).
    pub applied: Arc<Applied>,
    /// Workspaces as the operator last wrote their status (see [`Written`]).
    pub written: Written<Workspace>,
    /// Every Workspace, as the workspace controller's watch last saw it.
    pub workspaces: Store<Workspace>,
    /// Every DataPermit, as the shared permit watch last saw it.
    pub permits: Store<DataPermit>,
}

impl Context {
    /// Records a state change three ways: a hash-chained audit record first, then an Event on
    /// the object and a structured log line. Call it before writing the status that shows the
    /// change: if the record cannot be written, the error stops the change (the reconcile is
    /// retried, counted under `haven_reconcile_failures{category="audit"}`), so no change is
    /// ever shown without its record; a stop in between repeats the record, never loses it.
    pub async fn record(
        &self,
        object: &ObjectReference,
        warning: bool,
        reason: &str,
        note: String,
    ) -> Result<(), Error> {
        let mut detail = serde_json::Map::new();
        detail.insert("note".into(), note.clone().into());
        self.append_audit(object, reason, detail).await?;
        self.event(object, warning, reason, note).await;
        Ok(())
    }

    /// An Event on the object and a structured log line, for what another record already holds
    /// as evidence (the access records of [`crate::workspace`]).
    pub async fn event(&self, object: &ObjectReference, warning: bool, reason: &str, note: String) {
        let kind = object.kind.clone().unwrap_or_default();
        let name = object.name.clone().unwrap_or_default();
        tracing::info!(%kind, %name, reason, note = %note, "state change");
        let event = Event {
            type_: if warning { EventType::Warning } else { EventType::Normal },
            reason: reason.to_owned(),
            note: Some(note),
            action: reason.to_owned(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, object).await {
            tracing::warn!(%error, "could not publish event");
        }
    }

    /// Appends one audit record and waits until it is written: for records that must exist
    /// before the state change they describe (an error stops the change; it is retried).
    pub async fn append_audit(
        &self,
        object: &ObjectReference,
        action: &str,
        detail: serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), Error> {
        let kind = object.kind.clone().unwrap_or_default().to_lowercase();
        let name = object.name.clone().unwrap_or_default();
        let record = AuditRecord {
            time: self.clock.now(),
            actor: "haven-operator".into(),
            action: action.to_owned(),
            object: match &object.namespace {
                Some(namespace) => format!("{kind}/{namespace}/{name}"),
                None => format!("{kind}/{name}"),
            },
            detail,
        };
        let audit = self.audit.clone();
        let appended = tokio::task::spawn_blocking(move || {
            // A write cut short earlier leaves the log unusable until its partial line is gone.
            audit.recover().and_then(|()| audit.append(record))
        })
        .await?;
        appended.map_err(|error| {
            tracing::error!(%error, "could not append to the audit log: the change waits for its record");
            Error::Audit(error.to_string())
        })
    }
}
