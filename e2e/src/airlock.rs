//! A project with an airlock for the airlock and plugin tests: a permit (users alice and bob,
//! reviewers carol and dave), a Ready workspace, and the operator running with a short
//! snapshot retention and a scanner; helpers to write outputs, submit and review as people.

use std::{os::unix::fs::PermissionsExt, path::PathBuf};

use anyhow::{Context, Result, bail};
use haven_api::{AirlockRequest, DataPermit, Workspace, airlock::AirlockPhase, permit::PermitPhase};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};

use crate::{
    DEADLINE, LONG_DEADLINE, Operator, admin, as_user, bytes_under, data_root, ensure_namespace, eventually,
    eventually_progressing, fixtures, unique_name,
};

pub const RESEARCHER: &str = "alice@example.org";
pub const CO_RESEARCHER: &str = "bob@example.org";
pub const CHECKER: &str = "carol@example.org";
pub const SECOND_CHECKER: &str = "dave@example.org";
/// Someone with rights to write reviews (a cluster admin) who is not one of the permit's reviewers.
pub const OUTSIDER: &str = "mallory@example.org";
/// The snapshot retention the operator runs with here.
pub const RETENTION: &str = "4s";

/// A permit (users alice and bob, reviewers carol and dave) with a Ready workspace, and the
/// operator running with a short snapshot retention and a scanner that flags "EICAR".
#[allow(missing_debug_implementations)] // kube::Client has no Debug
pub struct Project {
    pub client: Client,
    pub root: PathBuf,
    pub permit: String,
    pub workspace: String,
    pub namespace: String,
    pub operator: Option<Operator>,
}

impl Project {
    /// A tier-3 permit (the default) with `airlock` as its airlock rules, and a Ready workspace.
    pub async fn start(prefix: &str, airlock: Value) -> Result<Self> {
        Self::start_at_tier(prefix, 3, airlock).await
    }

    /// [`Project::start`] with a permit of sensitivity `tier`.
    pub async fn start_at_tier(prefix: &str, tier: u8, airlock: Value) -> Result<Self> {
        let client = admin().await?;
        ensure_namespace(&client, "haven-system").await?;
        let root = data_root(prefix)?;
        fixtures::write_raw_source(&root)?;
        let operator = Operator::start_with(&root, &flags(&operator_flags(&root)?)).await?;
        let (permit, workspace) = (unique_name(&format!("{prefix}-p")), unique_name(&format!("{prefix}-w")));
        let mut permit_object = fixtures::permit(&permit, RESEARCHER, -5, 900)?;
        permit_object.spec.users.push(CO_RESEARCHER.into());
        permit_object.spec.reviewers = vec![CHECKER.into(), SECOND_CHECKER.into()];
        permit_object.spec.airlock = serde_json::from_value(airlock)?;
        permit_object.spec.tier = tier;
        let permits: Api<DataPermit> = Api::all(client.clone());
        permits.create(&PostParams::default(), &permit_object).await?;
        eventually(DEADLINE, "permit Active", || async {
            let phase = permits.get(&permit).await?.status.map(|s| s.phase);
            Ok((phase == Some(PermitPhase::Active)).then_some(()))
        })
        .await?;
        let workspaces: Api<Workspace> = Api::all(client.clone());
        let users = json!({"users": [RESEARCHER, CO_RESEARCHER]});
        workspaces
            .create(&PostParams::default(), &fixtures::workspace(&workspace, &permit, RESEARCHER, users)?)
            .await?;
        crate::workspace::ready(&workspaces, &workspace).await?;
        let namespace = format!("ws-{workspace}");
        Ok(Self { client, root, permit, workspace, namespace, operator: Some(operator) })
    }

    /// Writes a file into the outbox, as the researcher's notebook would.
    pub fn output(&self, rel: &str, bytes: &[u8]) -> Result<PathBuf> {
        let path = self.root.join("workspaces").join(&self.workspace).join("home/outputs").join(rel);
        std::fs::create_dir_all(path.parent().context("parent")?)?;
        std::fs::write(&path, bytes)?;
        Ok(path)
    }

    pub async fn requests_as(&self, user: &str) -> Result<Api<AirlockRequest>> {
        Ok(Api::namespaced(as_user(user, &[]).await?, &self.namespace))
    }

    /// A request as `requester` would write it.
    pub fn request(
        &self,
        name: &str,
        direction: &str,
        requester: &str,
        files: &[&str],
    ) -> Result<AirlockRequest> {
        Ok(serde_json::from_value(json!({
            "apiVersion": "haven.io/v1alpha1", "kind": "AirlockRequest",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"direction": direction, "requestedBy": requester, "files": files,
                     "justification": "Tables for the paper."},
        }))?)
    }

    /// The researcher submits an export of `files`.
    pub async fn submit(&self, name: &str, files: &[&str]) -> Result<()> {
        let request = self.request(name, "Export", RESEARCHER, files)?;
        self.requests_as(RESEARCHER).await?.create(&PostParams::default(), &request).await?;
        Ok(())
    }

    pub async fn get(&self, name: &str) -> Result<AirlockRequest> {
        Ok(Api::<AirlockRequest>::namespaced(self.client.clone(), &self.namespace).get(name).await?)
    }

    pub async fn phase_reaches(&self, name: &str, phase: AirlockPhase) -> Result<AirlockRequest> {
        // Snapshots and deliveries of large files take as long as the machine needs: fail on a
        // data store that stopped changing, not on a slow one.
        let progress = || bytes_under(&self.root);
        eventually_progressing(
            DEADLINE,
            LONG_DEADLINE,
            &format!("{name} reaches {phase:?}"),
            progress,
            || async {
                let request = self.get(name).await?;
                let now = request.status.as_ref().map(|s| s.phase).unwrap_or_default();
                if now != phase && matches!(now, AirlockPhase::Failed | AirlockPhase::Blocked) {
                    bail!("{name} is {now:?}, not {phase:?}: {:?}", request.status);
                }
                Ok((now == phase).then_some(request))
            },
        )
        .await
    }

    /// `user` appends a review (a merge patch of the whole list, as `kubectl edit` would send).
    pub async fn review(&self, user: &str, name: &str, reviews: Value) -> Result<(), String> {
        let api = self.requests_as(user).await.map_err(|e| e.to_string())?;
        let patch = json!({"spec": {"reviews": reviews}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    pub fn egress(&self, request: &str) -> PathBuf {
        self.root.join("egress").join(&self.permit).join(&self.namespace).join(request)
    }

    pub fn quarantine(&self, request: &str) -> PathBuf {
        self.root.join("quarantine").join(&self.namespace).join(request)
    }

    /// Audit records for one request with the given action.
    pub fn audited(&self, request: &str, action: &str) -> Result<usize> {
        let object = format!("airlockrequest/{}/{request}", self.namespace);
        let log = std::fs::read_to_string(self.root.join("audit/audit.log"))?;
        let mut count = 0;
        for line in log.lines() {
            let record: Value = serde_json::from_str(line)?;
            count += usize::from(record["object"] == object.as_str() && record["action"] == action);
        }
        Ok(count)
    }
}

/// `--airlock-retention` and a scanner script that flags any file containing "EICAR".
pub fn operator_flags(root: &std::path::Path) -> Result<Vec<String>> {
    let scanner = root.with_extension("scanner.sh");
    std::fs::write(
        &scanner,
        "#!/bin/sh\nif grep -q EICAR \"$1\"; then echo \"$1: Eicar-Test-Signature FOUND\"; exit 1; fi\n",
    )?;
    std::fs::set_permissions(&scanner, std::fs::Permissions::from_mode(0o755))?;
    Ok(vec![
        "--airlock-retention".into(),
        RETENTION.into(),
        "--airlock-scanner".into(),
        scanner.to_string_lossy().into_owned(),
    ])
}

pub fn flags(owned: &[String]) -> Vec<&str> {
    owned.iter().map(String::as_str).collect()
}

/// Polls (every 5 ms) until a hidden partial directory of `request` appears under `parent`,
/// i.e. the operator is in the middle of writing it. Fails if the work finished first.
pub async fn partial_appears(parent: &std::path::Path, request: &str) -> Result<()> {
    let prefix = format!(".{request}.partial-");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while tokio::time::Instant::now() < deadline {
        if parent.join(request).exists() {
            bail!(
                "{request} under {} finished before the crash point; make the files larger",
                parent.display()
            );
        }
        let partial = std::fs::read_dir(parent)
            .into_iter()
            .flatten()
            .flatten()
            .any(|entry| entry.file_name().to_str().is_some_and(|name| name.starts_with(&prefix)));
        if partial {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    bail!("no partial directory of {request} appeared under {}", parent.display())
}

impl Project {
    /// SIGKILLs the operator and starts a new one with the same flags.
    pub fn crash_and_restart(&mut self) -> Result<()> {
        let turn = self.operator.take().context("an operator is running")?.crash();
        self.operator =
            Some(Operator::start_in_turn_with(&self.root, turn, &flags(&operator_flags(&self.root)?))?);
        Ok(())
    }

    pub fn hidden_entries(dir: &std::path::Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .filter(|name| name.starts_with('.'))
            .collect()
    }
}
