//! Wires the controllers: what each watches, and how a change to a child, a pod or a permit
//! finds the object to reconcile.

use std::{fmt::Debug, sync::Arc};

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
    runtime::{Controller, events::Recorder, reflector::ObjectRef, watcher},
};
use serde::de::DeserializeOwned;

use crate::{
    airlock, clock::Clock, config::OperatorConfig, context::Context, error::Error, permit, workspace,
};

/// Datasets prepared at once: one per core of a small operator pod.
const PREPARATION_CONCURRENCY: usize = 2;

/// Runs the three controllers until SIGTERM/SIGINT.
pub async fn run(client: Client, config: OperatorConfig, clock: Arc<dyn Clock>) -> Result<(), Error> {
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
    });
    tracing::info!(data_root = %ctx.config.data_root.display(), "starting the DataPermit, Workspace and AirlockRequest controllers");
    future::join3(
        workspace_controller(client.clone(), ctx.clone()),
        permit_controller(client.clone(), ctx.clone()),
        airlock_controller(client, ctx),
    )
    .await;
    Ok(())
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

async fn workspace_controller(client: Client, ctx: Arc<Context>) {
    let controller = Controller::new(Api::<Workspace>::all(client.clone()), watcher::Config::default());
    let workspaces = controller.store();
    controller
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
        .run(workspace::reconcile, workspace::error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "workspace reconcile");
            }
        })
        .await;
}

async fn permit_controller(client: Client, ctx: Arc<Context>) {
    Controller::new(Api::<DataPermit>::all(client.clone()), watcher::Config::default())
        .watches(Api::<Workspace>::all(client), watcher::Config::default(), |workspace| {
            Some(ObjectRef::<DataPermit>::new(&workspace.spec.permit))
        })
        .shutdown_on_signal()
        .run(permit::reconcile, permit::error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "permit reconcile");
            }
        })
        .await;
}

async fn airlock_controller(client: Client, ctx: Arc<Context>) {
    Controller::new(Api::<AirlockRequest>::all(client), watcher::Config::default())
        .shutdown_on_signal()
        .run(airlock::reconcile, airlock::error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "airlock reconcile");
            }
        })
        .await;
}
