//! The operator's HTTP endpoint: `/metrics` (Prometheus text), `/healthz` (the process is
//! alive) and `/readyz` (it has started: the data store is open; a standby waiting for the
//! lease is ready too, so a rollout of several replicas can proceed).

use std::{
    net::SocketAddr,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{Router, extract::State, http::StatusCode, http::header, response::IntoResponse, routing::get};
use haven_api::{AirlockRequest, DataPermit, Workspace};
use kube::runtime::reflector::Store;

use crate::{error::Error, metrics::Metrics};

/// The controllers' caches, for counting objects by phase at scrape time (no API calls).
#[derive(Clone)]
#[allow(missing_debug_implementations)] // Store has no Debug
pub struct Inventory {
    pub permits: Store<DataPermit>,
    pub workspaces: Store<Workspace>,
    pub requests: Store<AirlockRequest>,
}

impl Inventory {
    fn phases(&self) -> Vec<(&'static str, String)> {
        let permits = self
            .permits
            .state()
            .into_iter()
            .map(|p| ("DataPermit", phase(p.status.as_ref().map(|s| s.phase))));
        let workspaces = self
            .workspaces
            .state()
            .into_iter()
            .map(|w| ("Workspace", phase(w.status.as_ref().map(|s| s.phase))));
        let requests = self
            .requests
            .state()
            .into_iter()
            .map(|r| ("AirlockRequest", phase(r.status.as_ref().map(|s| s.phase))));
        permits.chain(workspaces).chain(requests).collect()
    }
}

fn phase(phase: Option<impl std::fmt::Debug>) -> String {
    phase.map_or_else(|| "None".to_owned(), |p| format!("{p:?}"))
}

/// What the endpoint reports; shared with the run loop, which fills it in as it starts.
#[derive(Clone, Default)]
#[allow(missing_debug_implementations)]
pub struct Health {
    pub metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    inventory: Arc<OnceLock<Inventory>>,
}

impl Health {
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    pub fn set_inventory(&self, inventory: Inventory) {
        let _ = self.inventory.set(inventory);
    }
}

/// Binds `address` and serves the endpoint in the background; returns the bound address
/// (useful with port 0).
pub async fn serve(address: SocketAddr, health: Health) -> Result<SocketAddr, Error> {
    let listener = tokio::net::TcpListener::bind(address).await.map_err(|e| Error::Serve(address, e))?;
    let bound = listener.local_addr().map_err(|e| Error::Serve(address, e))?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(health);
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the metrics and health endpoint stopped");
        }
    });
    Ok(bound)
}

async fn metrics(State(health): State<Health>) -> impl IntoResponse {
    let phases = health.inventory.get().map(Inventory::phases).unwrap_or_default();
    let text = health.metrics.render(phases);
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
}

async fn ready(State(health): State<Health>) -> impl IntoResponse {
    if health.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    }
}
