//! The data site: pulls the tasks addressed to it from each requesting site (it never listens),
//! judges each against its own permit, runs it as a Job in a task workspace of its own beside
//! its extracts, sends the outputs through its own airlock, and pushes back only the package
//! its own output checkers approved. Everything it does is kept in Kubernetes objects named
//! after the task, so a restarted agent picks up where it was, and nothing is done twice.

mod build;
mod files;
mod judge;
mod link;
mod state;

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context;
use chrono::Utc;
use haven_api::{
    AirlockRequest, DataPermit, Site, Workspace, airlock::AirlockPhase, constants::ENVIRONMENT_NAME,
    permit::PermitPhase, task::SiteTaskState, validation::workspace_namespace,
};
use haven_data::DataStore;
use k8s_openapi::api::{apps::v1::StatefulSet, batch::v1::Job, core::v1::Secret};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
    runtime::reflector::Store,
};
use serde_json::json;

pub use self::build::{REQUESTING_SITE_LABEL, TASK_UID_LABEL, task_workspace_name};
use self::{
    judge::{Verdict, judge},
    link::Link,
    state::Seen,
};
use crate::{
    audit::Trail,
    wire::{Offer, PackageUpload, Report},
};

/// How long a package not taken for now waits before it is offered again.
const PUSH_BACKOFF: Duration = Duration::from_secs(15);

/// The field manager of what the agent applies.
pub const FIELD_MANAGER: &str = "haven-federation";

/// The data-site agent.
pub struct Agent {
    pub client: Client,
    /// This site's name.
    pub site: String,
    /// Where the credential Secrets are.
    pub namespace: String,
    pub store: DataStore,
    pub trail: Arc<Trail>,
    pub sites: Store<Site>,
    /// The user the API server knows this agent as: the requester of the outputs' exports.
    pub me: String,
    pub interval: Duration,
    pub max_package_bytes: u64,
    links: Mutex<HashMap<String, (String, Arc<Link>)>>,
    sent: Mutex<HashMap<String, Report>>,
    noted: Mutex<HashSet<String>>,
    connected: Mutex<HashMap<String, String>>,
    /// Packages not taken: when to offer each again (never, once refused for good).
    held_back: Mutex<HashMap<String, Option<std::time::Instant>>>,
}

impl Agent {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: Client,
        site: String,
        namespace: String,
        store: DataStore,
        trail: Arc<Trail>,
        sites: Store<Site>,
        me: String,
        interval: Duration,
        max_package_bytes: u64,
    ) -> Self {
        Self {
            client,
            site,
            namespace,
            store,
            trail,
            sites,
            me,
            interval,
            max_package_bytes,
            links: Mutex::default(),
            sent: Mutex::default(),
            noted: Mutex::default(),
            connected: Mutex::default(),
            held_back: Mutex::default(),
        }
    }

    /// Pulls from every requesting site, every interval, until the process ends.
    pub async fn run(self: Arc<Self>) {
        loop {
            for site in self.sites.state().into_iter().filter(|s| s.spec.endpoint.is_some()) {
                if let Err(error) = self.pull(&site).await {
                    tracing::warn!(site = %site.name_any(), error = format!("{error:#}"), "pull failed");
                    self.mark(&site, Err(format!("{error:#}"))).await;
                }
            }
            tokio::time::sleep(self.interval).await;
        }
    }

    async fn link(&self, site: &Site) -> anyhow::Result<Arc<Link>> {
        let secret_name = site.spec.credential_secret.clone().context("spec.credentialSecret is not set")?;
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        let secret = secrets.get_opt(&secret_name).await?.with_context(|| {
            format!("Secret {}/{secret_name} (spec.credentialSecret) does not exist", self.namespace)
        })?;
        let version = format!(
            "{}/{}",
            site.resource_version().unwrap_or_default(),
            secret.resource_version().unwrap_or_default()
        );
        let mut links = self.links.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((seen, link)) = links.get(&site.name_any())
            && *seen == version
        {
            return Ok(Arc::clone(link));
        }
        let data = secret.data.unwrap_or_default();
        let field = |key: &str| {
            data.get(key).map(|b| b.0.clone()).with_context(|| format!("Secret {secret_name} has no {key}"))
        };
        let link = Arc::new(Link::new(site, &field("tls.crt")?, &field("tls.key")?)?);
        links.insert(site.name_any(), (version, Arc::clone(&link)));
        Ok(link)
    }

    async fn pull(&self, site: &Site) -> anyhow::Result<()> {
        let link = self.link(site).await?;
        let offers = link.offers().await.context("pulling offers")?;
        self.mark(site, Ok(())).await;
        for offer in &offers.tasks {
            match self.advance(&link.site, offer).await {
                Ok((seen, delivery)) => {
                    let approved = seen.manifest_sha256.clone();
                    if let Err(error) = self.send(&link, offer, seen).await {
                        tracing::warn!(task = %offer.task, error = format!("{error:#}"), "report not taken");
                        continue;
                    }
                    if let (Some(path), Some(manifest)) = (delivery, approved) {
                        self.push_when_due(&link, offer, path, &manifest).await;
                    }
                }
                Err(error) => {
                    tracing::warn!(task = %offer.task, error = format!("{error:#}"), "task not advanced")
                }
            }
        }
        self.collect(&link.site, &offers.closed).await
    }

    /// Records `action` on `object` once per process (a repeated pull does not repeat it).
    fn note(&self, key: &str, action: &str, object: &str, detail: serde_json::Value) -> anyhow::Result<()> {
        let key = format!("{key}/{action}");
        if self.noted.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&key) {
            return Ok(());
        }
        self.trail.record(&self.me, action, object, detail)?;
        self.noted.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key);
        Ok(())
    }

    /// One step for `offer` from `hub`: what stands now, and the approved delivery to push.
    async fn advance(&self, hub: &str, offer: &Offer) -> anyhow::Result<(Seen, Option<PathBuf>)> {
        let name = task_workspace_name(hub, &offer.uid);
        let key = format!("{hub}/{}", offer.uid);
        let object = format!("task/{hub}/{}", offer.task);
        let workspaces: Api<Workspace> = Api::all(self.client.clone());
        let existing = workspaces.get_opt(&name).await?;
        if let Some(why) = &offer.cancelled {
            if existing.as_ref().is_some_and(|w| w.metadata.deletion_timestamp.is_none()) {
                workspaces.delete(&name, &DeleteParams::default()).await?;
            }
            self.note(&key, "task-cancelled", &object, json!({"why": why}))?;
            return Ok((seen(SiteTaskState::Cancelled, "Cancelled", why.clone()), None));
        }
        let permits = Api::<DataPermit>::all(self.client.clone()).list(&ListParams::default()).await?.items;
        let Some(workspace) = existing else {
            let ours = workspaces.list(&ListParams::default().labels(TASK_UID_LABEL)).await?.items;
            let held = |permit: &str| ours.iter().filter(|w| w.spec.permit == permit).count() as u32;
            return match judge(offer, &permits, &self.site, hub, held) {
                Verdict::Refuse { state, reason, message } => {
                    self.note(
                        &key,
                        "task-refused",
                        &object,
                        json!({"reason": reason, "message": message, "requestedBy": offer.requested_by}),
                    )?;
                    Ok((seen(state, &reason, message), None))
                }
                Verdict::Run { permit } => {
                    let images: Vec<_> = offer.executors.iter().map(|e| e.image.clone()).collect();
                    let inputs: Vec<_> = offer
                        .inputs
                        .iter()
                        .map(|i| json!({"path": i.path, "sha256": files::sha256(i.content.as_bytes())}))
                        .collect();
                    self.note(&key, "task-received", &object, json!({"permit": permit, "requestedBy": offer.requested_by, "images": images, "inputs": inputs, "workspace": name, "offerSha256": build::offer_digest(offer)}))?;
                    let desired = build::build_workspace(hub, offer, &permit);
                    workspaces
                        .patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&desired))
                        .await?;
                    Ok((
                        seen(SiteTaskState::Pulled, "Preparing", "preparing the task's isolated workspace"),
                        None,
                    ))
                }
            };
        };
        let phase = permits
            .iter()
            .find(|p| p.name_any() == workspace.spec.permit)
            .and_then(|p| p.status.as_ref())
            .map(|s| s.phase)
            .unwrap_or_default();
        if phase != PermitPhase::Active {
            if workspace.metadata.deletion_timestamp.is_none() {
                workspaces.delete(&name, &DeleteParams::default()).await?;
            }
            let message = format!(
                "permit {} at site {} is {phase:?}: this site takes part in nothing",
                workspace.spec.permit, self.site
            );
            self.note(&key, "task-stopped", &object, json!({"why": message}))?;
            return Ok((seen(SiteTaskState::NotParticipating, &format!("{phase:?}"), message), None));
        }
        let pinned = workspace.annotations().get(build::OFFER_DIGEST_ANNOTATION).map(String::as_str);
        if pinned != Some(build::offer_digest(offer).as_str()) {
            if workspace.metadata.deletion_timestamp.is_none() {
                workspaces.delete(&name, &DeleteParams::default()).await?;
            }
            let message =
                "the requesting site changed the task after this site judged it: stopped, nothing released";
            self.note(
                &key,
                "task-offer-changed",
                &object,
                json!({"judged": pinned, "now": build::offer_digest(offer)}),
            )?;
            return Ok((seen(SiteTaskState::Failed, "OfferChanged", message), None));
        }
        if workspace.metadata.deletion_timestamp.is_some() {
            return Ok((
                seen(
                    SiteTaskState::Failed,
                    "WorkspaceDeleted",
                    "the task's workspace was deleted at this site",
                ),
                None,
            ));
        }
        if let Some(seen) = state::from_workspace(&workspace) {
            return Ok((seen, None));
        }
        let namespace = workspace
            .status
            .as_ref()
            .and_then(|s| s.namespace.clone())
            .unwrap_or_else(|| workspace_namespace(&name));
        self.run_job(hub, offer, &name, &namespace, &key, &object).await
    }

    /// The Job, then the outputs' export: what stands, and the delivery once exported.
    async fn run_job(
        &self,
        hub: &str,
        offer: &Offer,
        name: &str,
        namespace: &str,
        key: &str,
        object: &str,
    ) -> anyhow::Result<(Seen, Option<PathBuf>)> {
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), namespace);
        let Some(job) = jobs.get_opt(build::JOB_NAME).await? else {
            let home = self.store.workspace_home(name)?;
            let inputs = offer.inputs.clone();
            tokio::task::spawn_blocking(move || files::write_inputs(&home, &inputs)).await??;
            let sets: Api<StatefulSet> = Api::namespaced(self.client.clone(), namespace);
            let template = sets.get_opt(ENVIRONMENT_NAME).await?.and_then(|s| s.spec).map(|s| s.template);
            let Some(job) = template.and_then(|t| build::build_job(&t, offer, namespace)) else {
                return Ok((
                    seen(SiteTaskState::Pulled, "Preparing", "waiting for the task workspace's pod template"),
                    None,
                ));
            };
            match jobs.create(&PostParams::default(), &job).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 409 => {}
                Err(error) => return Err(error.into()),
            }
            self.note(key, "task-run", object, json!({"namespace": namespace}))?;
            return Ok((
                seen(SiteTaskState::Running, "Running", "running beside this site's extracts"),
                None,
            ));
        };
        if job.labels().get(TASK_UID_LABEL).map(String::as_str) != Some(offer.uid.as_str()) {
            let message = "a Job named task that this site's agent did not make is in the task's namespace";
            return Ok((seen(SiteTaskState::Failed, "JobTampered", message), None));
        }
        if let Some(seen) = state::from_job(&job) {
            if seen.state == SiteTaskState::Failed {
                self.note(key, "task-failed", object, json!({"why": seen.message}))?;
            }
            return Ok((seen, None));
        }
        let requests: Api<AirlockRequest> = Api::namespaced(self.client.clone(), namespace);
        let Some(request) = requests.get_opt(build::OUTPUTS_REQUEST).await? else {
            let outbox = self.store.outbox(name)?;
            let outputs = tokio::task::spawn_blocking(move || files::list(&outbox)).await??;
            if outputs.is_empty() {
                return Ok((
                    seen(SiteTaskState::Failed, "NoOutputs", "the task wrote nothing to /outputs"),
                    None,
                ));
            }
            if outputs.len() > 100 {
                let message = "the task wrote more than 100 files to /outputs; an export takes at most 100";
                return Ok((seen(SiteTaskState::Failed, "TooManyOutputs", message), None));
            }
            let request = build::build_outputs_request(offer, hub, namespace, &self.me, outputs.clone());
            match requests.create(&PostParams::default(), &request).await {
                Ok(_) => {}
                // Made a moment ago by this agent (a restart), or by someone else: read next time.
                Err(kube::Error::Api(status)) if status.code == 409 => {}
                Err(error) => return Err(error.into()),
            }
            self.note(key, "outputs-submitted", object, json!({"files": outputs, "namespace": namespace}))?;
            return Ok((
                seen(SiteTaskState::Checking, "Submitted", "outputs submitted to this site's airlock"),
                None,
            ));
        };
        // Only the request this agent made for this task speaks for its outputs.
        let ours = request.spec.requested_by == self.me
            && request.labels().get(TASK_UID_LABEL).map(String::as_str) == Some(offer.uid.as_str());
        if !ours {
            let message = "an export request named outputs that this site's agent did not make is in the task's namespace";
            return Ok((seen(SiteTaskState::Failed, "OutputsTampered", message), None));
        }
        let seen = state::from_request(&request);
        let status = request.status.as_ref();
        if seen.state != SiteTaskState::Checking && seen.state != SiteTaskState::AwaitingReview {
            self.note(
                key,
                &format!("outputs-{:?}", seen.state).to_lowercase(),
                object,
                json!({"message": seen.message, "manifestSha256": seen.manifest_sha256}),
            )?;
        }
        let delivery = status
            .filter(|s| s.phase == AirlockPhase::Exported)
            .and_then(|s| s.delivery.as_ref())
            .map(|d| self.store.root().join(&d.path));
        Ok((seen, delivery))
    }

    /// Reports to the requesting site what stands, when it differs from what it was last told.
    async fn send(&self, link: &Link, offer: &Offer, seen: Seen) -> anyhow::Result<()> {
        let report = Report {
            state: seen.state,
            reason: seen.reason,
            message: seen.message,
            at: Utc::now(),
            manifest_sha256: seen.manifest_sha256,
        };
        let key = format!("{}/{}", link.site, offer.uid);
        let same = |old: &Report| {
            (old.state, &old.reason, &old.message, &old.manifest_sha256)
                == (report.state, &report.reason, &report.message, &report.manifest_sha256)
        };
        if self.sent.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key).is_some_and(same) {
            return Ok(());
        }
        link.report(&offer.uid, &report).await?;
        self.sent.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key, report);
        Ok(())
    }

    /// [`Agent::push`], unless an earlier push was refused: for good (400, 410: never again, the
    /// reason in the log) or for now (again after [`PUSH_BACKOFF`]).
    async fn push_when_due(&self, link: &Link, offer: &Offer, path: PathBuf, manifest: &str) {
        let key = format!("{}/{}", link.site, offer.uid);
        let held = |map: &HashMap<String, Option<std::time::Instant>>| match map.get(&key) {
            Some(None) => true,
            Some(Some(until)) => std::time::Instant::now() < *until,
            None => false,
        };
        if held(&self.held_back.lock().unwrap_or_else(std::sync::PoisonError::into_inner)) {
            return;
        }
        let Err(error) = self.push(link, offer, path, manifest).await else {
            self.held_back.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&key);
            return;
        };
        let for_good =
            error.downcast_ref::<link::Refused>().is_some_and(|r| matches!(r.status.as_u16(), 400 | 410));
        let next = (!for_good).then(|| std::time::Instant::now() + PUSH_BACKOFF);
        if for_good {
            tracing::error!(task = %offer.task, error = format!("{error:#}"), "package refused for good by the requesting site");
        } else {
            tracing::warn!(task = %offer.task, error = format!("{error:#}"), "package not taken yet");
        }
        self.held_back.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key, next);
    }

    /// Pushes the approved delivery at `path`, checked against the manifest it was approved as.
    async fn push(&self, link: &Link, offer: &Offer, path: PathBuf, approved: &str) -> anyhow::Result<()> {
        let max = self.max_package_bytes;
        let (package, manifest_sha256) =
            tokio::task::spawn_blocking(move || haven_data::airlock::read_package(&path, max)).await??;
        anyhow::ensure!(
            manifest_sha256 == approved,
            "the delivery's manifest {manifest_sha256} is not the approved {approved}"
        );
        let files = package.files.len();
        let bytes: usize = package.files.iter().map(|f| f.bytes.len()).sum();
        link.push(&offer.uid, &PackageUpload { manifest_sha256: manifest_sha256.clone(), package }).await?;
        let object = format!("task/{}/{}", link.site, offer.task);
        self.note(
            &format!("{}/{}", link.site, offer.uid),
            "package-released",
            &object,
            json!({"manifestSha256": manifest_sha256, "files": files, "bytes": bytes, "to": link.site}),
        )
    }

    /// Task workspaces for tasks `hub` says this site has finished (its report of a final state
    /// recorded there) are deleted: the operator archives them first, as any workspace. A task
    /// merely missing from the offers (a hub restored from a backup, a scope it cannot resolve
    /// for a while) keeps its workspace; the permit's end at this site tears it down.
    async fn collect(&self, hub: &str, closed: &[String]) -> anyhow::Result<()> {
        let closed: HashSet<&str> = closed.iter().map(String::as_str).collect();
        let workspaces: Api<Workspace> = Api::all(self.client.clone());
        let selector = format!("{REQUESTING_SITE_LABEL}={hub}");
        for workspace in workspaces.list(&ListParams::default().labels(&selector)).await?.items {
            let uid = workspace.labels().get(TASK_UID_LABEL).cloned().unwrap_or_default();
            if !closed.contains(uid.as_str()) || workspace.metadata.deletion_timestamp.is_some() {
                continue;
            }
            workspaces.delete(&workspace.name_any(), &DeleteParams::default()).await?;
            let object = format!(
                "task/{hub}/{}",
                workspace.annotations().get(build::TASK_ANNOTATION).cloned().unwrap_or_default()
            );
            self.note(
                &format!("{hub}/{uid}"),
                "task-closed",
                &object,
                json!({"workspace": workspace.name_any()}),
            )?;
            self.sent
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&format!("{hub}/{uid}"));
        }
        Ok(())
    }

    /// The Site's `Connected` condition, written only when it changes.
    async fn mark(&self, site: &Site, result: Result<(), String>) {
        let (status, reason, message) = match &result {
            Ok(()) => ("True", "Pulled", format!("pulling tasks from {}", site.name_any())),
            Err(why) => ("False", "Unreachable", why.clone()),
        };
        let key = format!("{status}/{message}");
        {
            let mut connected = self.connected.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if connected.get(&site.name_any()) == Some(&key) {
                return;
            }
            connected.insert(site.name_any(), key);
        }
        let now = Utc::now();
        let patch = json!({"status": {"lastContact": result.is_ok().then_some(now), "conditions": [{
            "type": "Connected", "status": status, "reason": reason, "message": message,
            "lastTransitionTime": now, "observedGeneration": site.metadata.generation,
        }]}});
        let sites: Api<Site> = Api::all(self.client.clone());
        if let Err(error) =
            sites.patch_status(&site.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await
        {
            tracing::warn!(site = %site.name_any(), %error, "Site status not written");
        }
    }
}

fn seen(state: SiteTaskState, reason: &str, message: impl Into<String>) -> Seen {
    Seen { state, reason: reason.into(), message: message.into(), manifest_sha256: None }
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent").field("site", &self.site).finish_non_exhaustive()
    }
}
