//! Wires the controllers: what each watches, and how a change to a child, a pod or a permit
//! finds the object to reconcile; and the process around them: health, metrics, the lease.

use std::{fmt::Debug, future::Future, net::SocketAddr, sync::Arc, time::Instant};

use futures::{StreamExt, future};
use haven_api::{AirlockRequest, DataPermit, Workspace, constants::labels};
use haven_data::{AuditLog, DataStore};
use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{LimitRange, Namespace, PersistentVolume, PersistentVolumeClaim, Pod, ResourceQuota, Service},
    networking::v1::NetworkPolicy,
    rbac::v1::{ClusterRoleBinding, Role, RoleBinding},
};
use kube::{
    Api, Client, Resource, ResourceExt,
    runtime::{
        Controller,
        controller::Action,
        events::Recorder,
        reflector::{ObjectRef, Store},
        watcher,
    },
};
use serde::de::DeserializeOwned;

use crate::{
    airlock,
    clock::Clock,
    config::OperatorConfig,
    context::Context,
    error::Error,
    health::{self, Health, Inventory},
    leader::{self, LeaseSettings},
    permit, workspace,
};

/// Datasets prepared at once: one per core of a small operator pod.
const PREPARATION_CONCURRENCY: usize = 2;

/// How the process takes part in the cluster, beside what it reconciles.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub metrics_address: SocketAddr,
    /// Reconcile only while holding this lease; `None` to reconcile at once (one replica).
    pub leader_election: Option<LeaseSettings>,
}

/// Serves health and metrics, waits for the lease if asked to, then runs the three
/// controllers until SIGTERM/SIGINT, and releases the lease on the way out. Losing the lease
/// is an error: the process exits and is restarted as a standby.
pub async fn run(
    client: Client,
    config: OperatorConfig,
    clock: Arc<dyn Clock>,
    options: RunOptions,
) -> Result<(), Error> {
    let health = Health::default();
    let bound = health::serve(options.metrics_address, health.clone()).await?;
    tracing::info!(address = %bound, "serving /metrics, /healthz and /readyz");
    let store = DataStore::new(config.data_root.clone());
    let audit = tokio::task::spawn_blocking({
        let store = store.clone();
        move || AuditLog::open(&store)
    })
    .await?
    .map_err(Error::data_store)?;
    let ctx = Arc::new(Context {
        client: client.clone(),
        config,
        clock,
        store,
        audit: Arc::new(audit),
        recorder: Recorder::new(client.clone(), "haven-operator".into()),
        preparations: permit::Preparations::new(PREPARATION_CONCURRENCY),
        metrics: health.metrics.clone(),
    });
    health.set_ready();

    let leadership = match &options.leader_election {
        None => None,
        Some(settings) => tokio::select! {
            leadership = leader::acquire(client.clone(), settings) => Some(leadership?),
            () = shutdown_signal() => return Ok(()),
        },
    };
    let (workspaces, workspace_controller) = workspace_controller(client.clone(), ctx.clone());
    let (permits, permit_controller) = permit_controller(client.clone(), ctx.clone());
    let (requests, airlock_controller) = airlock_controller(client, ctx.clone());
    health.set_inventory(Inventory { permits, workspaces, requests });
    tracing::info!(data_root = %ctx.config.data_root.display(), "starting the DataPermit, Workspace and AirlockRequest controllers");
    let controllers = future::join3(workspace_controller, permit_controller, airlock_controller);
    let Some(mut leadership) = leadership else {
        controllers.await;
        return Ok(());
    };
    tokio::select! {
        _ = controllers => {
            leadership.release().await;
            Ok(())
        }
        () = leadership.lost() => Err(Error::Lease("lost the lease to another replica; stopping".into())),
    }
}

/// SIGTERM (how Kubernetes stops a pod) or SIGINT.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// Runs one reconcile and records it in the metrics.
async fn timed(
    controller: &'static str,
    ctx: Arc<Context>,
    reconcile: impl Future<Output = Result<Action, Error>>,
) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile.await;
    ctx.metrics.reconciled(controller, started.elapsed(), result.as_ref().err().map(Error::category));
    result
}

/// Only objects Haven made are watched, so the cache holds Haven's objects, not the cluster's.
fn managed() -> watcher::Config {
    watcher::Config::default().labels(&format!("{}={}", labels::MANAGED_BY, labels::MANAGED_BY_VALUE))
}

/// The Workspace a namespaced child belongs to, from its label (ownerReferences to a
/// cluster-scoped owner would be looked up in the child's namespace).
fn by_workspace_label<K: Resource>(child: K) -> Option<ObjectRef<Workspace>> {
    child.labels().get(labels::WORKSPACE).map(|name| ObjectRef::new(name))
}

fn child_api<K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug>(client: &Client) -> Api<K> {
    Api::all(client.clone())
}

fn workspace_controller(client: Client, ctx: Arc<Context>) -> (Store<Workspace>, impl Future<Output = ()>) {
    let controller = Controller::new(Api::<Workspace>::all(client.clone()), watcher::Config::default());
    let workspaces = controller.store();
    let store = workspaces.clone();
    let running = controller
        .owns(child_api::<Namespace>(&client), managed())
        .owns(child_api::<PersistentVolume>(&client), managed())
        .owns(child_api::<ClusterRoleBinding>(&client), managed())
        .watches(child_api::<NetworkPolicy>(&client), managed(), by_workspace_label)
        .watches(child_api::<RoleBinding>(&client), managed(), by_workspace_label)
        .watches(child_api::<Role>(&client), managed(), by_workspace_label)
        .watches(child_api::<ResourceQuota>(&client), managed(), by_workspace_label)
        .watches(child_api::<LimitRange>(&client), managed(), by_workspace_label)
        .watches(child_api::<PersistentVolumeClaim>(&client), managed(), by_workspace_label)
        .watches(child_api::<Service>(&client), managed(), by_workspace_label)
        .watches(child_api::<StatefulSet>(&client), managed(), by_workspace_label)
        .watches(
            child_api::<Pod>(&client),
            watcher::Config::default().labels(labels::WORKSPACE),
            by_workspace_label,
        )
        .watches(Api::<DataPermit>::all(client.clone()), watcher::Config::default(), move |permit| {
            let name = permit.name_any();
            workspaces
                .state()
                .into_iter()
                .filter(|w| w.spec.permit == name)
                .map(|w| ObjectRef::from_obj(&*w))
                .collect::<Vec<_>>()
        })
        .shutdown_on_signal()
        .run(
            |w, ctx| timed("workspace", ctx.clone(), workspace::reconcile(w, ctx)),
            workspace::error_policy,
            ctx,
        )
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "workspace reconcile");
            }
        });
    (store, running)
}

fn permit_controller(client: Client, ctx: Arc<Context>) -> (Store<DataPermit>, impl Future<Output = ()>) {
    let controller = Controller::new(Api::<DataPermit>::all(client.clone()), watcher::Config::default());
    let store = controller.store();
    let running = controller
        .watches(Api::<Workspace>::all(client), watcher::Config::default(), |workspace| {
            Some(ObjectRef::<DataPermit>::new(&workspace.spec.permit))
        })
        .shutdown_on_signal()
        .run(|p, ctx| timed("permit", ctx.clone(), permit::reconcile(p, ctx)), permit::error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "permit reconcile");
            }
        });
    (store, running)
}

fn airlock_controller(
    client: Client,
    ctx: Arc<Context>,
) -> (Store<AirlockRequest>, impl Future<Output = ()>) {
    let controller = Controller::new(Api::<AirlockRequest>::all(client), watcher::Config::default());
    let store = controller.store();
    let running = controller
        .shutdown_on_signal()
        .run(|r, ctx| timed("airlock", ctx.clone(), airlock::reconcile(r, ctx)), airlock::error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "airlock reconcile");
            }
        });
    (store, running)
}
