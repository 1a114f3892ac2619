//! Compute-to-data across three Haven sites, each its own control plane, operator, data store
//! and keys: the hub (requesting site, holding data too) and north on real nodes, so tasks
//! really run beside their extracts; south with a suspended permit, so it takes part in
//! nothing. A researcher's task fans out; north's output checker approves, the hub's rejects;
//! only north's approved package arrives, byte for byte what north's checkers saw. A task that
//! copies the extract is blocked at the data site and never leaves; a task with an image or a
//! user north's permit does not allow is refused there, the reason visible at the hub. Killing
//! the federation processes mid-task converges with nothing lost or duplicated. Every step is
//! in each site's hash-chained log, the release's manifest hash at both ends.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, Result, ensure};
use haven_api::{
    AirlockRequest, AnalysisTask, DataPermit, Workspace,
    airlock::AirlockPhase,
    permit::PermitPhase,
    task::{SiteProgress, SiteTaskState, TesState},
    workspace::WorkspacePhase,
};
use haven_e2e_federation::{Process, Site, eventually, testenv_image, unique_name};
use kube::{Api, ResourceExt, api::ListParams};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const ADA: &str = "ada@example.org";
const BEN: &str = "ben@example.org";
/// Each site's own output checker.
const CHECKER_HUB: &str = "oli@hub.example.org";
const CHECKER_NORTH: &str = "nora@north.example.org";
/// A whole task's way through a site: a workspace, a pod on a real node, checks, a review.
const TASK_DEADLINE: Duration = Duration::from_secs(300);

struct Federation {
    hub: Site,
    north: Site,
    south: Site,
    processes: Vec<(String, Process)>,
    multi_site: String,
    /// The researcher's workspace at the hub and its namespace.
    workspace: String,
    namespace: String,
}

fn permit(name: &str, multi_site: &str, users: &[&str], checker: &str, suspended: bool) -> Value {
    let now = chrono::Utc::now();
    json!({
        "apiVersion": "haven.io/v1alpha1", "kind": "DataPermit", "metadata": {"name": name},
        "spec": {
            "permitId": format!("{multi_site}-{name}"),
            "holder": {"organisation": "Haven federation tests", "principalInvestigator": "pi@example.org"},
            "purpose": "Statistics",
            "users": users, "reviewers": [checker],
            "validFrom": (now - chrono::Duration::minutes(5)).to_rfc3339(),
            "validUntil": (now + chrono::Duration::days(1)).to_rfc3339(),
            "suspended": suspended,
            "datasets": [{"name": "survey", "source": "survey/2025.csv", "columns": [
                {"name": "respondent_id", "rule": "Hmac"}, {"name": "region", "rule": "Keep"},
                {"name": "answer", "rule": "Keep"}]}],
            "environment": {"allowedImages": [testenv_image()], "resourceCeiling": {"cpu": "2", "memory": "4Gi"}},
            "multiSite": {"id": multi_site, "requestingSite": "hub", "sites": ["hub", "north", "south"]},
        }
    })
}

impl Federation {
    /// Every site's operator and federation, a multi-site permit at each (south's suspended),
    /// and ada's workspace at the hub.
    async fn start() -> Result<Self> {
        let (hub, north, south) = (Site::hub()?, Site::north()?, Site::south()?);
        let mut processes = Vec::new();
        for site in [&hub, &north, &south] {
            processes.push((format!("{} operator", site.name), site.operator()?));
            processes.push((
                format!("{} federation", site.name),
                site.federation_with(&["--pull-interval-ms=500"])?,
            ));
        }
        let multi_site = unique_name("ms").to_uppercase();
        let name = unique_name("study");
        hub.apply(&permit(&name, &multi_site, &[ADA, BEN], CHECKER_HUB, false))?;
        north.apply(&permit(&name, &multi_site, &[ADA], CHECKER_NORTH, false))?;
        south.apply(&permit(&name, &multi_site, &[ADA], "sam@south.example.org", true))?;
        for site in [&hub, &north] {
            let permits: Api<DataPermit> = Api::all(site.client().await?);
            eventually(TASK_DEADLINE, &format!("the permit Active at {}", site.name), || async {
                Ok(permits.get(&name).await?.status.filter(|s| s.phase == PermitPhase::Active))
            })
            .await?;
        }
        let workspace = json!({
            "apiVersion": "haven.io/v1alpha1", "kind": "Workspace", "metadata": {"name": name},
            "spec": {"permit": name, "users": [ADA, BEN], "image": testenv_image(), "paused": true,
                     "resources": {"cpu": "1", "memory": "1Gi"}, "homeStorage": "1Gi"},
        });
        hub.apply(&workspace)?;
        let workspaces: Api<Workspace> = Api::all(hub.client().await?);
        eventually(TASK_DEADLINE, "ada's workspace at the hub provisioned", || async {
            Ok(workspaces.get(&name).await?.status.filter(|s| s.phase == WorkspacePhase::Paused))
        })
        .await?;
        let namespace = format!("ws-{name}");
        Ok(Self { hub, north, south, processes, multi_site, workspace: name, namespace })
    }

    fn process(&mut self, which: &str) -> &mut Process {
        &mut self.processes.iter_mut().find(|(name, _)| name == which).expect("a process of the tier").1
    }

    /// The logs' tails, for a failure's context.
    fn logs(&self) -> String {
        self.processes
            .iter()
            .map(|(name, p)| format!("--- {name} ({})\n{}", p.log().display(), p.log_tail(15)))
            .collect()
    }

    /// Creates a task as `user` in ada's workspace at the hub.
    fn submit(&self, user: &str, name: &str, image: &str, command: &[&str]) -> Result<()> {
        let task = json!({
            "apiVersion": "haven.io/v1alpha1", "kind": "AnalysisTask",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"requestedBy": user, "description": "counts per region",
                     "executors": [{"image": image, "command": command}],
                     "inputs": [{"path": "README", "content": "counts per region, nothing else\n"}],
                     "resources": {"cpuCores": 1, "ramGb": 1, "maxRunSeconds": 600}},
        });
        self.hub.apply_as(user, &task)
    }

    async fn tasks(&self) -> Result<Api<AnalysisTask>> {
        Ok(Api::namespaced(self.hub.client().await?, &self.namespace))
    }

    /// Waits until the task's entry for `site` at the hub is in `state`.
    async fn site_reaches(&self, task: &str, site: &str, state: SiteTaskState) -> Result<SiteProgress> {
        let tasks = self.tasks().await?;
        let what = format!("task {task} {state:?} at {site}");
        eventually(TASK_DEADLINE, &what, || async {
            let task = tasks.get(task).await?;
            let progress = task.status.unwrap_or_default().sites.into_iter().find(|p| p.site == site);
            Ok(progress.filter(|p| p.state == state))
        })
        .await
        .with_context(|| self.logs())
    }

    /// The export request a data site made for `task`'s outputs, once it is `phase`.
    async fn outputs_request(&self, site: &Site, task: &str, phase: AirlockPhase) -> Result<AirlockRequest> {
        let uid = self.tasks().await?.get(task).await?.uid().context("a task uid")?;
        let client = site.client().await?;
        let requests: Api<AirlockRequest> = Api::all(client);
        let selector = format!("haven.io/task-uid={uid}");
        eventually(TASK_DEADLINE, &format!("{task}'s outputs {phase:?} at {}", site.name), || async {
            let found = requests.list(&ListParams::default().labels(&selector)).await?.items;
            Ok(found.into_iter().find(|r| r.status.as_ref().is_some_and(|s| s.phase == phase)))
        })
        .await
        .with_context(|| self.logs())
    }

    fn review(
        &self,
        site: &Site,
        request: &AirlockRequest,
        reviewer: &str,
        decision: &str,
        comment: &str,
    ) -> Result<()> {
        let patch =
            json!({"spec": {"reviews": [{"reviewer": reviewer, "decision": decision, "comment": comment}]}});
        let namespace = request.namespace().unwrap_or_default();
        let (as_user, patch) = (format!("--as={reviewer}"), patch.to_string());
        let args = [
            "-n",
            &namespace,
            "patch",
            "airlockrequest",
            &request.name_any(),
            "--type=merge",
            "-p",
            &patch,
            &as_user,
            "--as-group=system:masters",
        ];
        site.kubectl_ok(&args).map(drop)
    }

    /// Where a site's package for `task` lands in ada's workspace (`/home/imports/<task>/<site>`).
    fn landed(&self, task: &str, site: &str) -> PathBuf {
        self.hub.data_root.join(format!("workspaces/{}/imports/{task}/{site}", self.workspace))
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The records of a site's federation log, after checking its chain.
fn federation_log(site: &Site) -> Result<Vec<haven_data::AuditRecord>> {
    let path = site.data_root.join("audit/federation.log");
    let (_, records) =
        haven_data::audit::read_verified(&path).with_context(|| format!("{}", path.display()))?;
    Ok(records)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_analysis_goes_to_each_sites_data_and_only_approved_results_come_back() -> Result<()> {
    let mut fed = Federation::start().await?;
    let count =
        ["count", "--input", "/data/survey/data.csv", "--by", "region", "--output", "/outputs/counts.csv"];
    fed.submit(ADA, "counts", &testenv_image(), &count)?;

    // South's data access body suspended its permit: south takes part in nothing, and says so.
    let south = fed.site_reaches("counts", "south", SiteTaskState::NotParticipating).await?;
    ensure!(south.reason == "Suspended" && south.message.contains("south"), "{south:?}");

    // Cut the line mid-task: the hub's federation and north's agent die while north runs it.
    fed.site_reaches("counts", "north", SiteTaskState::Running).await?;
    fed.process("hub federation").kill();
    fed.process("north federation").kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    fed.process("hub federation").restart()?;
    fed.process("north federation").restart()?;

    // Each data site's own checks, then its own output checker.
    let at_north = fed.outputs_request(&fed.north, "counts", AirlockPhase::AwaitingReview).await?;
    ensure!(at_north.spec.requested_by != ADA, "the data site's agent asks, on ada's behalf");
    let at_hub = fed.outputs_request(&fed.hub, "counts", AirlockPhase::AwaitingReview).await?;
    fed.site_reaches("counts", "north", SiteTaskState::AwaitingReview).await?;
    // The researcher is never a reviewer, at any site.
    ensure!(
        fed.review(&fed.north, &at_north, ADA, "Approve", "mine").is_err(),
        "ada approved her own outputs at north"
    );
    fed.review(&fed.north, &at_north, CHECKER_NORTH, "Approve", "aggregate counts, all cells over 10")?;
    fed.review(&fed.hub, &at_hub, CHECKER_HUB, "Reject", "not this week")?;

    let delivered = fed.site_reaches("counts", "north", SiteTaskState::Delivered).await?;
    let rejected = fed.site_reaches("counts", "hub", SiteTaskState::Rejected).await?;
    ensure!(
        rejected.message.contains("not this week"),
        "the reviewer's reason reaches the researcher: {rejected:?}"
    );

    // What arrived is byte for byte what north's checkers saw, under the manifest they approved.
    let approved = fed.outputs_request(&fed.north, "counts", AirlockPhase::Exported).await?;
    let approved_status = approved.status.context("status")?;
    let snapshot = approved_status.snapshot.context("snapshot")?;
    ensure!(
        delivered.manifest_sha256.as_deref() == Some(snapshot.manifest_sha256.as_str()),
        "{delivered:?} vs {snapshot:?}"
    );
    let landed = fed.landed("counts", "north");
    let manifest = std::fs::read(landed.join("MANIFEST.json"))?;
    ensure!(sha256_hex(&manifest) == snapshot.manifest_sha256, "the landed manifest is the approved one");
    let counts = std::fs::read(landed.join("files/counts.csv"))?;
    let reviewed =
        approved_status.files.iter().find(|f| f.path == "counts.csv").context("counts.csv reviewed")?;
    ensure!(sha256_hex(&counts) == reviewed.sha256, "counts.csv is not the reviewed bytes");
    let text = String::from_utf8(counts)?;
    let total: u64 = text.lines().skip(1).filter_map(|l| l.rsplit(',').next()?.parse::<u64>().ok()).sum();
    ensure!(total == fed.north.survey_rows()?, "north's counts add up to its survey: {text}");
    ensure!(!fed.landed("counts", "hub").exists(), "a rejected package landed");
    ensure!(!fed.landed("counts", "south").exists(), "a site that took no part sent something");

    let task = fed.tasks().await?.get("counts").await?;
    let status = task.status.clone().context("status")?;
    ensure!(status.state == TesState::Complete, "{status:?}");
    ensure!(
        status.summary.as_deref() == Some("1 Delivered, 1 NotParticipating, 1 Rejected"),
        "{:?}",
        status.summary
    );

    // Nothing duplicated by the kills: one workspace, one Job, one request at north for the task.
    let north_client = fed.north.client().await?;
    let selector = format!("haven.io/task-uid={}", task.uid().unwrap_or_default());
    let requests = Api::<AirlockRequest>::all(north_client.clone())
        .list(&ListParams::default().labels(&selector))
        .await?;
    ensure!(requests.items.len() == 1, "{} export requests at north", requests.items.len());

    // The release is in both sites' chained logs, under the same manifest hash.
    let released = federation_log(&fed.north)?
        .into_iter()
        .filter(|r| {
            r.action == "package-released" && r.detail["manifestSha256"] == json!(snapshot.manifest_sha256)
        })
        .count();
    ensure!(released == 1, "north's log records the release {released} times");
    let received = federation_log(&fed.hub)?
        .into_iter()
        .filter(|r| {
            r.action == "package-received" && r.detail["manifestSha256"] == json!(snapshot.manifest_sha256)
        })
        .count();
    ensure!(received == 1, "the hub's log records the arrival {received} times");
    let north_actions: Vec<String> = federation_log(&fed.north)?.into_iter().map(|r| r.action).collect();
    for step in ["task-received", "task-run", "outputs-submitted", "outputs-approved", "package-released"] {
        ensure!(north_actions.iter().any(|a| a == step), "north's log lacks {step}: {north_actions:?}");
    }

    // Row-level data never leaves: a copy of the extract is blocked by north's own checks.
    let copy = ["copy", "--input", "/data/survey/data.csv", "--output", "/outputs/rows.csv"];
    fed.submit(ADA, "rows", &testenv_image(), &copy)?;
    let blocked = fed.site_reaches("rows", "north", SiteTaskState::Blocked).await?;
    ensure!(blocked.message.contains("row-level"), "{blocked:?}");
    ensure!(!fed.landed("rows", "north").exists(), "row-level data arrived");

    // An image, or a person, north's permit does not allow: refused there, the reason here.
    fed.submit(ADA, "exfil", "registry.example.org/exfil:1", &["sh"])?;
    let refused = fed.site_reaches("exfil", "north", SiteTaskState::Refused).await?;
    ensure!(
        refused.reason == "ImageNotAllowed" && refused.message.contains("registry.example.org/exfil:1"),
        "{refused:?}"
    );
    fed.submit(BEN, "bens", &testenv_image(), &count)?;
    let refused = fed.site_reaches("bens", "north", SiteTaskState::Refused).await?;
    ensure!(refused.reason == "UserNotPermitted" && refused.message.contains(BEN), "{refused:?}");

    // A task ada cancels stops everywhere.
    fed.submit(ADA, "cancelled", &testenv_image(), &count)?;
    fed.site_reaches("cancelled", "north", SiteTaskState::Running).await?;
    let tasks = fed.tasks().await?;
    let cancel = json!({"spec": {"cancelled": true}});
    let ada = fed.hub.kubectl_ok(&[
        "-n",
        &fed.namespace,
        "patch",
        "analysistask",
        "cancelled",
        "--type=merge",
        "-p",
        &cancel.to_string(),
        &format!("--as={ADA}"),
        "--as-group=system:masters",
    ]);
    ada?;
    fed.site_reaches("cancelled", "north", SiteTaskState::Cancelled).await?;
    ensure!(
        tasks.get("cancelled").await?.status.context("status")?.state == TesState::Canceled,
        "not canceled"
    );
    let workspaces: Api<Workspace> = Api::all(north_client);
    let cancelled_uid = tasks.get("cancelled").await?.uid().unwrap_or_default();
    eventually(TASK_DEADLINE, "the cancelled task's workspace gone at north", || async {
        let left = workspaces
            .list(&ListParams::default().labels(&format!("haven.io/task-uid={cancelled_uid}")))
            .await?;
        Ok(left.items.is_empty().then_some(()))
    })
    .await?;
    // South ran nothing: no task workspace was ever made there.
    let at_south: Api<Workspace> = Api::all(fed.south.client().await?);
    let made = at_south.list(&ListParams::default().labels("haven.io/requesting-site=hub")).await?;
    ensure!(made.items.is_empty(), "south made {} task workspaces", made.items.len());
    println!(
        "multi-site permit {}: counts delivered from north, rejected at the hub, south not participating; copy blocked; image and user refused; cancel honoured",
        fed.multi_site
    );
    Ok(())
}
