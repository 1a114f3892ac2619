//! Wires the controllers: what each watches, and how a change to a child, a pod or a permit
//! finds the object to reconcile; and the process around them: health, metrics, the lease.

use std::{
    collections::HashMap,
    fmt::Debug,
    future::Future,
    hash::{DefaultHasher, Hash, Hasher},
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{Stream, StreamExt, future};
use haven_api::{
    AirlockRequest, DataPermit, Workspace,
    constants::labels,
    tier::{LAST_ACTIVE_ANNOTATION, TierProfiles},
};
use haven_data::{AuditLog, DataStore};
use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{
        ConfigMap, LimitRange, Namespace, PersistentVolume, PersistentVolumeClaim, Pod, ResourceQuota,
        Service,
    },
    networking::v1::NetworkPolicy,
    rbac::v1::{ClusterRoleBinding, Role, RoleBinding},
};
use kube::{
    Api, Client, Resource, ResourceExt,
    core::PartialObjectMeta,
    runtime::{
        Controller, WatchStreamExt,
        controller::{self, Action},
        events::Recorder,
        reflector::{self, ObjectRef, Store, store::Writer},
        watcher,
    },
};
use serde::de::DeserializeOwned;

use crate::{
    airlock, anchor,
    applied::{Applied, Written},
    clock::Clock,
    config::OperatorConfig,
    context::Context,
    error::Error,
    fanout::Fanout,
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

/// The tier profiles from the ConfigMap the chart renders (and the admission policy reads), or
/// the defaults when none is named. A named ConfigMap that is missing or cannot be read stops
/// the start: running with other controls than configured would be worse than not running.
/// Read once: the chart restarts the operator when the profiles change.
async fn load_tiers(client: &Client, namespace: &str, name: Option<&str>) -> Result<TierProfiles, Error> {
    let Some(name) = name else {
        tracing::info!("no tier ConfigMap named: using the default tier profiles");
        return Ok(TierProfiles::default());
    };
    let config_map = Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await?
        .ok_or_else(|| Error::Config(format!("the tier ConfigMap {namespace}/{name} does not exist")))?;
    let tiers = TierProfiles::from_config_map(&config_map.data.unwrap_or_default())
        .map_err(|error| Error::Config(format!("ConfigMap {namespace}/{name}: {error}")))?;
    tracing::info!(namespace, name, "tier profiles loaded");
    Ok(tiers)
}

/// Serves health and metrics, waits for the lease if asked to, then runs the three
/// controllers until SIGTERM/SIGINT, and releases the lease on the way out. Losing the lease
/// is an error: the process exits and is restarted as a standby.
pub async fn run(
    client: Client,
    mut config: OperatorConfig,
    clock: Arc<dyn Clock>,
    options: RunOptions,
) -> Result<(), Error> {
    config.tiers = load_tiers(&client, &config.operator_namespace, config.tier_config_map.as_deref()).await?;
    config.data_store_group = data_store_group(&config.data_root);
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
    let shared = Shared::new();
    let ctx = Arc::new(Context {
        client: client.clone(),
        config,
        clock,
        store,
        audit: Arc::new(audit),
        recorder: Recorder::new(client.clone(), "haven-operator".into()),
        preparations: permit::Preparations::new(PREPARATION_CONCURRENCY),
        metrics: health.metrics.clone(),
        applied: Arc::default(),
        written: Written::default(),
        workspaces: shared.workspaces.clone(),
        permits: shared.permits.clone(),
    });
    health.set_ready();

    let leadership = match &options.leader_election {
        None => None,
        Some(settings) => tokio::select! {
            leadership = leader::acquire(client.clone(), settings) => Some(leadership?),
            () = shutdown_signal() => return Ok(()),
        },
    };
    let (permits, workspaces) = (shared.permits.clone(), shared.workspaces.clone());
    let (requests, airlock_controller) = airlock_controller(client.clone(), ctx.clone());
    health.set_inventory(Inventory { permits, workspaces, requests });
    tracing::info!(data_root = %ctx.config.data_root.display(), "starting the DataPermit, Workspace and AirlockRequest controllers");
    let controllers = future::join(shared.controllers(client, ctx.clone()), airlock_controller);
    // Only the replica that writes the audit log anchors it.
    let anchoring = tokio::spawn(anchor::keep_anchored(ctx.clone()));
    let outcome = match leadership {
        None => {
            controllers.await;
            Ok(())
        }
        Some(mut leadership) => tokio::select! {
            _ = controllers => {
                leadership.release().await;
                Ok(())
            }
            () = leadership.lost() => Err(Error::Lease("lost the lease to another replica; stopping".into())),
        },
    };
    anchoring.abort();
    // The last lines written before stopping are anchored too.
    if let Err(error) = anchor::anchor(&ctx, &ctx.audit.head()).await {
        tracing::warn!(%error, "could not anchor the audit log on the way out");
    }
    outcome
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

/// Workspace reconciles at once. Each holds an API connection while it works, so an unbounded
/// burst (1,000 workspaces created together) held as many connections and their buffers.
const WORKSPACE_CONCURRENCY: u16 = 32;

/// Changes to one workspace closer together than this are reconciled once: provisioning brings
/// a burst of them (volumes bound, the StatefulSet's status, the pod scheduled and started).
const WORKSPACE_DEBOUNCE: Duration = Duration::from_millis(100);

fn workspace_settings() -> controller::Config {
    controller::Config::default().concurrency(WORKSPACE_CONCURRENCY).debounce(WORKSPACE_DEBOUNCE)
}

/// Only objects Haven made are watched, so the cache holds Haven's objects, not the cluster's.
fn managed() -> watcher::Config {
    watcher::Config::default().labels(&format!("{}={}", labels::MANAGED_BY, labels::MANAGED_BY_VALUE))
}

/// A watch whose failures stay its own. It backs off and re-lists by itself, and its errors
/// are logged here rather than handed on: a controller backs off *all* its triggers together
/// on any one watch's error, which after an API server restart paused every workspace for
/// up to a minute (a dozen watches each failing a few times grew the one shared backoff).
fn watch<K>(api: Api<K>, config: watcher::Config) -> impl Stream<Item = watcher::Result<watcher::Event<K>>>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    watcher(api, config).default_backoff()
}

/// Keeps the objects of a watch and logs its interruptions (the watch retries by itself).
fn objects_only<K: Resource<DynamicType = ()>>(
    stream: impl Stream<Item = Result<K, watcher::Error>>,
) -> impl Stream<Item = Result<K, watcher::Error>> {
    stream.filter(|item| {
        if let Err(error) = item {
            tracing::warn!(kind = %K::kind(&()), %error, "watch interrupted; retrying");
        }
        future::ready(item.is_ok())
    })
}

/// Drives a shared watch: its subscribers see each object once it is in the cache.
async fn drive<K: Resource<DynamicType = ()> + Send + Sync + 'static>(
    events: impl Stream<Item = watcher::Result<watcher::Event<K>>>,
    fanout: Fanout<K>,
) {
    fanout.run(objects_only(events.applied_objects()).filter_map(|item| future::ready(item.ok()))).await;
}

/// Changes to one kind of workspace child, as metadata only (labels say which workspace; a
/// child's spec is the operator's own and its status is read when needed). The operator's
/// own writes coming back are dropped (see [`Applied`]); after a re-list, which can hide a
/// deletion, the ledger forgets the kind so everything is applied afresh.
fn child_changes<K>(
    client: &Client,
    config: watcher::Config,
    applied: Arc<Applied>,
) -> impl Stream<Item = Result<PartialObjectMeta<K>, watcher::Error>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let metadata = Api::<PartialObjectMeta<K>>::all(client.clone());
    let changes = watch(metadata, config).filter_map(move |event| {
        future::ready(match event {
            Ok(watcher::Event::Init) => {
                applied.forget_kind::<K>();
                None
            }
            Ok(watcher::Event::InitDone) => None,
            Ok(
                watcher::Event::InitApply(child)
                | watcher::Event::Apply(child)
                | watcher::Event::Delete(child),
            ) => applied.observe(&child).then_some(Ok(child)),
            Err(error) => Some(Err(error)),
        })
    });
    objects_only(changes)
}

/// The Workspace a child belongs to, from its label (ownerReferences to a cluster-scoped
/// owner would be looked up in the child's namespace).
fn by_workspace_label<K: Resource>(child: K) -> Option<ObjectRef<Workspace>> {
    child.labels().get(labels::WORKSPACE).map(|name| ObjectRef::new(name))
}

/// What in a Workspace asks for a reconcile: its spec (generation), its deletion, its
/// finalizers and the access gateway's activity report. Its status is the operator's own
/// output, so writing it must not wake it.
fn needs_reconcile(workspace: &Workspace) -> u64 {
    let mut hasher = DefaultHasher::new();
    let meta = workspace.meta();
    // The gateway's activity report starts an idle-stopped environment again.
    let last_active = workspace.annotations().get(LAST_ACTIVE_ANNOTATION);
    (meta.generation, meta.deletion_timestamp.is_some(), &meta.finalizers, last_active).hash(&mut hasher);
    hasher.finish()
}

/// Passes an object on only when `fingerprint` of it changed. The map keeps one number per
/// object ever seen by this process.
fn changes_in<K>(
    objects: impl Stream<Item = Arc<K>>,
    fingerprint: fn(&K) -> u64,
) -> impl Stream<Item = Arc<K>>
where
    K: Resource<DynamicType = ()> + 'static,
{
    let mut seen: HashMap<ObjectRef<K>, u64> = HashMap::new();
    objects.filter(move |object| {
        let now = fingerprint(object);
        future::ready(seen.insert(ObjectRef::from_obj(&**object), now) != Some(now))
    })
}

/// What in a DataPermit can change its workspaces: its spec, phase, prepared datasets and
/// deletion. Not its count of workspaces or its conditions, which change with every workspace
/// and would otherwise reconcile all of a permit's workspaces for each one (N² in a burst).
fn affects_workspaces(permit: &DataPermit) -> u64 {
    let mut hasher = DefaultHasher::new();
    let status = permit.status.as_ref();
    let datasets = status.map(|s| serde_json::to_string(&s.datasets).unwrap_or_default());
    (
        permit.meta().generation,
        permit.meta().deletion_timestamp.is_some(),
        status.map(|s| format!("{:?}", s.phase)),
        datasets,
    )
        .hash(&mut hasher);
    hasher.finish()
}

/// The watches of Workspaces and DataPermits, each shared by both controllers so that a
/// reconcile woken by a change always finds that change in the cache it reads.
struct Shared {
    workspaces: Store<Workspace>,
    permits: Store<DataPermit>,
    workspace_writer: Writer<Workspace>,
    permit_writer: Writer<DataPermit>,
}

impl Shared {
    fn new() -> Self {
        let (workspaces, workspace_writer) = reflector::store();
        let (permits, permit_writer) = reflector::store();
        Self { workspaces, permits, workspace_writer, permit_writer }
    }

    /// Both controllers, and the two watches that feed them.
    fn controllers(self, client: Client, ctx: Arc<Context>) -> impl Future<Output = ()> {
        let (mut workspace_fanout, mut permit_fanout) = (Fanout::default(), Fanout::default());
        let workspaces = workspace_controller(
            client.clone(),
            ctx.clone(),
            workspace_fanout.subscribe(),
            permit_fanout.subscribe(),
            self.workspaces.clone(),
        );
        let permits =
            permit_controller(ctx, permit_fanout.subscribe(), workspace_fanout.subscribe(), self.permits);
        let watch_workspaces = drive(
            watch(Api::<Workspace>::all(client.clone()), watcher::Config::default())
                .reflect(self.workspace_writer),
            workspace_fanout,
        );
        let watch_permits = drive(
            watch(Api::<DataPermit>::all(client), watcher::Config::default()).reflect(self.permit_writer),
            permit_fanout,
        );
        // The controllers stop on SIGTERM; the watches feeding them stop with them.
        async move {
            let watches = future::join(watch_workspaces, watch_permits);
            tokio::select! {
                _ = future::join(workspaces, permits) => {}
                _ = watches => {}
            }
        }
    }
}

fn workspace_controller(
    client: Client,
    ctx: Arc<Context>,
    workspaces: impl Stream<Item = Arc<Workspace>> + Send + 'static,
    permits: impl Stream<Item = Arc<DataPermit>> + Send + 'static,
    store: Store<Workspace>,
) -> impl Future<Output = ()> {
    let (applied, client) = (ctx.applied.clone(), &client);
    let by_permit = store.clone();
    Controller::for_shared_stream(changes_in(workspaces, needs_reconcile), store)
        .with_config(workspace_settings())
        .watches_stream(child_changes::<Namespace>(client, managed(), applied.clone()), by_workspace_label)
        .watches_stream(
            child_changes::<PersistentVolume>(client, managed(), applied.clone()),
            by_workspace_label,
        )
        .watches_stream(
            child_changes::<ClusterRoleBinding>(client, managed(), applied.clone()),
            by_workspace_label,
        )
        .watches_stream(
            child_changes::<NetworkPolicy>(client, managed(), applied.clone()),
            by_workspace_label,
        )
        .watches_stream(child_changes::<RoleBinding>(client, managed(), applied.clone()), by_workspace_label)
        .watches_stream(child_changes::<Role>(client, managed(), applied.clone()), by_workspace_label)
        .watches_stream(
            child_changes::<ResourceQuota>(client, managed(), applied.clone()),
            by_workspace_label,
        )
        .watches_stream(child_changes::<LimitRange>(client, managed(), applied.clone()), by_workspace_label)
        .watches_stream(
            child_changes::<PersistentVolumeClaim>(client, managed(), applied.clone()),
            by_workspace_label,
        )
        .watches_stream(child_changes::<Service>(client, managed(), applied.clone()), by_workspace_label)
        .watches_stream(child_changes::<StatefulSet>(client, managed(), applied.clone()), by_workspace_label)
        .watches_stream(
            child_changes::<Pod>(client, watcher::Config::default().labels(labels::WORKSPACE), applied),
            by_workspace_label,
        )
        .watches_shared_stream(changes_in(permits, affects_workspaces), move |permit| {
            let name = permit.name_any();
            by_permit
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
        })
}

fn permit_controller(
    ctx: Arc<Context>,
    permits: impl Stream<Item = Arc<DataPermit>> + Send + 'static,
    workspaces: impl Stream<Item = Arc<Workspace>> + Send + 'static,
    store: Store<DataPermit>,
) -> impl Future<Output = ()> {
    Controller::for_shared_stream(permits, store)
        .watches_shared_stream(workspaces, |workspace| {
            Some(ObjectRef::<DataPermit>::new(&workspace.spec.permit))
        })
        .shutdown_on_signal()
        .run(|p, ctx| timed("permit", ctx.clone(), permit::reconcile(p, ctx)), permit::error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "permit reconcile");
            }
        })
}

fn airlock_controller(
    client: Client,
    ctx: Arc<Context>,
) -> (Store<AirlockRequest>, impl Future<Output = ()>) {
    let (store, writer) = reflector::store();
    let requests = objects_only(
        watch(Api::<AirlockRequest>::all(client), watcher::Config::default())
            .reflect(writer)
            .applied_objects(),
    );
    let running = Controller::for_stream(requests, store.clone())
        .shutdown_on_signal()
        .run(|r, ctx| timed("airlock", ctx.clone(), airlock::reconcile(r, ctx)), airlock::error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "airlock reconcile");
            }
        });
    (store, running)
}

/// The group owning the data store's root; none when it is root's (a development data store
/// made by hand) or unreadable, in which case the environment gets no extra group.
fn data_store_group(data_root: &std::path::Path) -> Option<i64> {
    use std::os::unix::fs::MetadataExt;
    let gid = std::fs::metadata(data_root).ok()?.gid();
    (gid != 0).then_some(i64::from(gid))
}
