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
    /// Records a state change three ways: an Event on the object, a structured log line, and
    /// a hash-chained audit record.
    pub async fn record(&self, object: &ObjectReference, warning: bool, reason: &str, note: String) {
        let kind = object.kind.clone().unwrap_or_default();
        let name = object.name.clone().unwrap_or_default();
        tracing::info!(%kind, %name, reason, note = %note, "state change");
        let event = Event {
            type_: if warning { EventType::Warning } else { EventType::Normal },
            reason: reason.to_owned(),
            note: Some(note.clone()),
            action: reason.to_owned(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, object).await {
            tracing::warn!(%error, "could not publish event");
        }
        let mut detail = serde_json::Map::new();
        detail.insert("note".into(), note.into());
        if let Err(error) = self.append_audit(object, reason, detail).await {
            tracing::error!(%error, "could not append to the audit log");
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
        tokio::task::spawn_blocking(move || audit.append(record)).await?.map_err(Error::data_store)
    }
}
