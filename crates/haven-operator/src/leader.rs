//! Leader election on a `coordination.k8s.io` Lease, so several replicas can run and only one
//! reconciles. A replica that loses the lease stops (and is restarted), rather than carry on
//! beside a new leader; one that shuts down releases it, so the next takes over at once.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::{sync::watch, task::JoinHandle};

use crate::error::Error;

/// Where the lease is and how long it lasts.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    /// Unique per process: another replica must never mistake it for itself.
    pub identity: String,
    /// How long a leader that stopped renewing keeps the lease; a standby takes over after it.
    pub duration: Duration,
}

/// The lease, held.
#[allow(missing_debug_implementations)]
pub struct Leadership {
    held: watch::Receiver<bool>,
    task: JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
}

fn lease_error(error: impl std::fmt::Display) -> Error {
    Error::Lease(error.to_string())
}

/// Waits until this process holds the lease.
pub async fn acquire(client: Client, settings: &LeaseSettings) -> Result<Leadership, Error> {
    let seconds = settings.duration.as_secs().max(2);
    let manager = LeaseManagerBuilder::new(client, &settings.name)
        .with_namespace(&settings.namespace)
        .with_identity(&settings.identity)
        .with_duration(seconds)
        // Renew a third of the way before expiry; also the clock skew tolerated between nodes.
        .with_grace((seconds / 3).max(1))
        .build()
        .await
        .map_err(lease_error)?;
    let (mut held, task) = manager.watch().await;
    tracing::info!(lease = %settings.name, namespace = %settings.namespace, identity = %settings.identity, "waiting for the lease");
    while !*held.borrow_and_update() {
        held.changed().await.map_err(lease_error)?;
    }
    tracing::info!(identity = %settings.identity, "holding the lease: this replica reconciles");
    Ok(Leadership { held, task })
}

impl Leadership {
    /// Resolves when the lease is lost.
    pub async fn lost(&mut self) {
        while *self.held.borrow_and_update() {
            if self.held.changed().await.is_err() {
                return;
            }
        }
    }

    /// Gives the lease up so a standby takes over now rather than after it expires.
    pub async fn release(self) {
        drop(self.held);
        match self.task.await {
            Ok(Ok(_)) => tracing::info!("lease released"),
            Ok(Err(error)) => tracing::warn!(%error, "could not release the lease"),
            Err(error) => tracing::warn!(%error, "the lease task failed"),
        }
    }
}
