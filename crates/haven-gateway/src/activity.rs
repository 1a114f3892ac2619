//! Activity reports: while someone works in a workspace the gateway sets its
//! `haven.io/last-active` annotation, at most every few minutes (each report is a reconcile),
//! and at once when a visit finds the environment stopped, which starts it again.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use chrono::Utc;
use haven_api::{Workspace, tier::LAST_ACTIVE_ANNOTATION};
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};

/// The shortest time between two reports for one workspace.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(120);

#[derive(Clone)]
pub struct Activity {
    client: Client,
    reported: Arc<Mutex<HashMap<String, Instant>>>,
}

impl std::fmt::Debug for Activity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Activity").finish_non_exhaustive()
    }
}

impl Activity {
    pub fn new(client: Client) -> Self {
        Self { client, reported: Arc::default() }
    }

    /// Reports use of a workspace unless one was sent within the interval; `wake` reports
    /// within a few seconds of the last (the environment is stopped and someone is waiting).
    pub fn report(&self, workspace: &str, wake: bool) {
        let interval = if wake { Duration::from_secs(5) } else { REPORT_INTERVAL };
        {
            let mut reported = self.reported.lock().unwrap_or_else(PoisonError::into_inner);
            if reported.get(workspace).is_some_and(|at| at.elapsed() < interval) {
                return;
            }
            reported.insert(workspace.to_owned(), Instant::now());
        }
        let api: Api<Workspace> = Api::all(self.client.clone());
        let name = workspace.to_owned();
        tokio::spawn(async move {
            let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let patch = serde_json::json!({"metadata": {"annotations": {LAST_ACTIVE_ANNOTATION: now}}});
            if let Err(error) = api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                tracing::warn!(%error, workspace = %name, "could not report activity");
            }
        });
    }
}
