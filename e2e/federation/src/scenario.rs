//! A multi-site permit across the tier's sites, as the tests and the demo drive it: every
//! site's operator and federation started, a permit at each (some suspended), the researcher's
//! workspace at the hub, tasks submitted as a person, reviews written by each site's own
//! output checkers, and where packages land.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, Result};
use haven_api::{
    AirlockRequest, AnalysisTask, DataPermit, Workspace,
    airlock::AirlockPhase,
    permit::PermitPhase,
    task::{SiteProgress, SiteTaskState},
    workspace::WorkspacePhase,
};
use kube::{Api, ResourceExt, api::ListParams};
use serde_json::{Value, json};

use crate::{Process, Site, eventually, testenv_image, unique_name};

/// The researcher, a user of the permit at every site.
pub const ADA: &str = "ada@example.org";
/// A user of the hub's permit only.
pub const BEN: &str = "ben@example.org";
/// A whole task's way through a site: a workspace, a pod on a real node, checks, a review.
pub const TASK_DEADLINE: Duration = Duration::from_secs(300);

/// Each site's own output checker.
pub fn checker(site: &str) -> String {
    format!("checker@{site}.example.org")
}

/// The tier's sites under one multi-site permit, with their processes.
#[derive(Debug)]
pub struct Federation {
    pub sites: Vec<Site>,
    pub processes: Vec<(String, Process)>,
    pub multi_site: String,
    /// The researcher's workspace at the hub, and its namespace.
    pub workspace: String,
    pub namespace: String,
}

fn permit(
    name: &str,
    multi_site: &str,
    sites: &[String],
    users: &[&str],
    checker: &str,
    suspended: bool,
) -> Value {
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
            "multiSite": {"id": multi_site, "requestingSite": "hub", "sites": sites},
        }
    })
}

impl Federation {
    /// Every site's operator and federation; a multi-site permit at each for its own survey
    /// (suspended at the sites in `suspended`; ada and ben at the hub, ada elsewhere); ada's
    /// workspace at the hub.
    pub async fn start(suspended: &[&str]) -> Result<Self> {
        let sites = Site::all()?;
        let mut processes = Vec::new();
        for site in &sites {
            processes.push((format!("{} operator", site.name), site.operator()?));
            processes.push((
                format!("{} federation", site.name),
                site.federation_with(&["--pull-interval-ms=500"])?,
            ));
        }
        let multi_site = unique_name("ms").to_uppercase();
        let name = unique_name("study");
        let names: Vec<String> = sites.iter().map(|s| s.name.clone()).collect();
        for site in &sites {
            let users: &[&str] = if site.name == "hub" { &[ADA, BEN] } else { &[ADA] };
            let off = suspended.contains(&site.name.as_str());
            site.apply(&permit(&name, &multi_site, &names, users, &checker(&site.name), off))?;
        }
        for site in sites.iter().filter(|s| !suspended.contains(&s.name.as_str())) {
            let permits: Api<DataPermit> = Api::all(site.client().await?);
            eventually(TASK_DEADLINE, &format!("the permit Active at {}", site.name), || async {
                Ok(permits.get(&name).await?.status.filter(|s| s.phase == PermitPhase::Active))
            })
            .await?;
        }
        let hub = sites.iter().find(|s| s.name == "hub").context("a site named hub")?;
        hub.apply(&json!({
            "apiVersion": "haven.io/v1alpha1", "kind": "Workspace", "metadata": {"name": name},
            "spec": {"permit": name, "users": [ADA, BEN], "image": testenv_image(), "paused": true,
                     "resources": {"cpu": "1", "memory": "1Gi"}, "homeStorage": "1Gi"},
        }))?;
        let workspaces: Api<Workspace> = Api::all(hub.client().await?);
        eventually(TASK_DEADLINE, "ada's workspace at the hub provisioned", || async {
            Ok(workspaces.get(&name).await?.status.filter(|s| s.phase == WorkspacePhase::Paused))
        })
        .await?;
        let namespace = format!("ws-{name}");
        Ok(Self { sites, processes, multi_site, workspace: name, namespace })
    }

    pub fn site(&self, name: &str) -> &Site {
        self.sites.iter().find(|s| s.name == name).expect("a site of the tier")
    }

    pub fn hub(&self) -> &Site {
        self.site("hub")
    }

    pub fn process(&mut self, which: &str) -> &mut Process {
        &mut self.processes.iter_mut().find(|(name, _)| name == which).expect("a process of the tier").1
    }

    /// The processes' last log lines, for a failure's context.
    pub fn logs(&self) -> String {
        self.processes
            .iter()
            .map(|(name, p)| format!("--- {name} ({})\n{}\n", p.log().display(), p.log_tail(15)))
            .collect()
    }

    /// Creates a task as `user` in ada's workspace at the hub.
    pub fn submit(&self, user: &str, name: &str, image: &str, command: &[&str]) -> Result<()> {
        let task = json!({
            "apiVersion": "haven.io/v1alpha1", "kind": "AnalysisTask",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"requestedBy": user, "description": "counts per category",
                     "executors": [{"image": image, "command": command}],
                     "inputs": [{"path": "README", "content": "aggregate counts only\n"}],
                     "resources": {"cpuCores": 1, "ramGb": 1, "maxRunSeconds": 600}},
        });
        self.hub().apply_as(user, &task)
    }

    pub async fn tasks(&self) -> Result<Api<AnalysisTask>> {
        Ok(Api::namespaced(self.hub().client().await?, &self.namespace))
    }

    /// Waits until the task's entry for `site` at the hub is in `state`.
    pub async fn site_reaches(&self, task: &str, site: &str, state: SiteTaskState) -> Result<SiteProgress> {
        self.site_reaches_one_of(task, site, &[state]).await
    }

    /// Waits until the task's entry for `site` at the hub is in one of `states`.
    pub async fn site_reaches_one_of(
        &self,
        task: &str,
        site: &str,
        states: &[SiteTaskState],
    ) -> Result<SiteProgress> {
        let tasks = self.tasks().await?;
        eventually(TASK_DEADLINE, &format!("task {task} {states:?} at {site}"), || async {
            let task = tasks.get(task).await?;
            let progress = task.status.unwrap_or_default().sites.into_iter().find(|p| p.site == site);
            Ok(progress.filter(|p| states.contains(&p.state)))
        })
        .await
        .with_context(|| self.logs())
    }

    /// The export request `site` made for `task`'s outputs, once it is `phase`.
    pub async fn outputs_request(
        &self,
        site: &str,
        task: &str,
        phase: AirlockPhase,
    ) -> Result<AirlockRequest> {
        let uid = self.tasks().await?.get(task).await?.uid().context("a task uid")?;
        let requests: Api<AirlockRequest> = Api::all(self.site(site).client().await?);
        let selector = format!("haven.io/task-uid={uid}");
        eventually(TASK_DEADLINE, &format!("{task}'s outputs {phase:?} at {site}"), || async {
            let found = requests.list(&ListParams::default().labels(&selector)).await?.items;
            Ok(found.into_iter().find(|r| r.status.as_ref().is_some_and(|s| s.phase == phase)))
        })
        .await
        .with_context(|| self.logs())
    }

    /// `reviewer` adds a review to a data site's request, as themselves.
    pub fn review(
        &self,
        site: &str,
        request: &AirlockRequest,
        reviewer: &str,
        decision: &str,
        comment: &str,
    ) -> Result<()> {
        let patch =
            json!({"spec": {"reviews": [{"reviewer": reviewer, "decision": decision, "comment": comment}]}});
        let namespace = request.namespace().unwrap_or_default();
        let (as_user, patch) = (format!("--as={reviewer}"), patch.to_string());
        let name = request.name_any();
        let args = [
            "-n",
            &namespace,
            "patch",
            "airlockrequest",
            &name,
            "--type=merge",
            "-p",
            &patch,
            &as_user,
            "--as-group=system:masters",
        ];
        self.site(site).kubectl_ok(&args).map(drop)
    }

    /// Where `site`'s package for `task` lands in ada's workspace (`/home/imports/<task>/<site>`).
    pub fn landed(&self, task: &str, site: &str) -> PathBuf {
        self.hub().data_root.join(format!("workspaces/{}/imports/{task}/{site}", self.workspace))
    }
}
