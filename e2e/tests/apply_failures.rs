//! A child the API server refuses at apply time is never a silent retry loop: the Workspace
//! says which child and why (`Ready=False`, reason `ApplyFailed`, phase `Failed`), a Warning
//! Event is recorded, the operator backs off, and fixing the spec recovers it.

use anyhow::{Context, Result, ensure};
use haven_api::{
    Workspace,
    constants::{conditions, reasons},
    workspace::WorkspacePhase,
};
use haven_e2e::{DEADLINE, Operator, admin, data_root, ensure_namespace, eventually, fixtures, unique_name};
use k8s_openapi::api::{
    admissionregistration::v1::{ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding},
    core::v1::{Namespace, ResourceQuota},
    events::v1::Event,
};
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

/// The quota the test's admission policy refuses: valid by every schema, refused by this cluster.
const REFUSED_MEMORY: &str = "7777Mi";

/// A policy refusing ResourceQuotas of `REFUSED_MEMORY` in `namespaces`.
async fn refuse_quotas(client: &Client, name: &str, namespaces: &[&str]) -> Result<()> {
    let policy: ValidatingAdmissionPolicy = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                "operations": ["CREATE", "UPDATE"], "resources": ["resourcequotas"]}]},
            "validations": [{
                "expression": format!("!has(object.spec.hard) || !('limits.memory' in object.spec.hard) || string(object.spec.hard['limits.memory']) != '{REFUSED_MEMORY}'"),
                "message": format!("this cluster refuses a memory quota of {REFUSED_MEMORY}"),
            }],
        }
    }))?;
    let binding: ValidatingAdmissionPolicyBinding = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": namespaces}]}}}
    }))?;
    Api::<ValidatingAdmissionPolicy>::all(client.clone()).create(&PostParams::default(), &policy).await?;
    Api::<ValidatingAdmissionPolicyBinding>::all(client.clone())
        .create(&PostParams::default(), &binding)
        .await?;
    Ok(())
}

fn quota(memory: &str) -> Result<ResourceQuota> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": "canary"}, "spec": {"hard": {"limits.memory": memory}}
    }))?)
}

fn ready_condition(workspace: &Workspace) -> Option<(String, String, String)> {
    let status = workspace.status.as_ref()?;
    let ready = status.conditions.iter().find(|c| c.type_ == conditions::READY)?;
    Some((format!("{:?}", status.phase), ready.reason.clone(), ready.message.clone()))
}

#[tokio::test]
async fn a_child_the_api_server_refuses_is_reported_backed_off_and_recovered() -> Result<()> {
    let client = admin().await?;
    ensure_namespace(&client, "haven-system").await?;
    let (permit, name, policy) =
        (unique_name("applyfail"), unique_name("applyfail"), unique_name("refuse-quota"));
    let (namespace, canary) = (format!("ws-{name}"), unique_name("canary"));
    refuse_quotas(&client, &policy, &[&namespace, &canary]).await?;
    let outcome = async {
        // The canary: the policy is in force before the operator meets it.
        ensure_namespace(&client, &canary).await?;
        let canary_quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &canary);
        eventually(DEADLINE, "the test's policy refuses the quota", || async {
            Ok(canary_quotas
                .create(&PostParams { dry_run: true, ..PostParams::default() }, &quota(REFUSED_MEMORY)?)
                .await
                .is_err()
                .then_some(()))
        })
        .await?;
        canary_quotas.create(&PostParams { dry_run: true, ..PostParams::default() }, &quota("6Gi")?).await?;

        let root = data_root("applyfail")?;
        fixtures::write_raw_source(&root)?;
        let _operator = Operator::start(&root).await?;
        Api::all(client.clone())
            .create(
                &PostParams::default(),
                &fixtures::permit(&permit, &format!("{name}@example.org"), -5, 600)?,
            )
            .await?;
        let workspaces: Api<Workspace> = Api::all(client.clone());
        let spec = json!({"resources": {"cpu": "1", "memory": REFUSED_MEMORY}});
        workspaces
            .create(
                &PostParams::default(),
                &fixtures::workspace(&name, &permit, &format!("{name}@example.org"), spec)?,
            )
            .await?;

        let (phase, _, message) = eventually(DEADLINE, "the workspace says why it failed", || async {
            let workspace = workspaces.get(&name).await?;
            Ok(ready_condition(&workspace).filter(|(_, reason, _)| reason == reasons::APPLY_FAILED))
        })
        .await?;
        ensure!(phase == format!("{:?}", WorkspacePhase::Failed), "phase {phase}");
        ensure!(
            message.contains("ResourceQuota") && message.contains("refuses a memory quota"),
            "the condition names the child and the API server's reason: {message}"
        );
        let events: Api<Event> = Api::all(client.clone());
        eventually(DEADLINE, "a Warning Event on the workspace", || async {
            let all = events.list(&ListParams::default()).await?.items;
            Ok(all
                .iter()
                .any(|e| {
                    e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name.as_str())
                        && e.type_.as_deref() == Some("Warning")
                        && e.reason.as_deref() == Some("Failed")
                })
                .then_some(()))
        })
        .await?;

        // Back-off: over a window where a fixed 5 s retry would try 8 times, count the attempts.
        let log = std::path::PathBuf::from(format!("{}.operator.log", root.display()));
        let attempts = || -> Result<usize> {
            let text = std::fs::read_to_string(&log).with_context(|| format!("reading {}", log.display()))?;
            Ok(text.lines().filter(|l| l.contains("apply refused") && l.contains(&name)).count())
        };
        let before = attempts()?;
        tokio::time::sleep(std::time::Duration::from_secs(40)).await;
        let during = attempts()? - before;
        ensure!(during >= 1, "the operator gave up instead of retrying ({during} attempts in 40 s)");
        ensure!(during < 8, "no back-off: {during} attempts in 40 s");

        // Fixing the spec recovers at once, with nothing left refused.
        let fixed = json!({"spec": {"resources": {"cpu": "1", "memory": "6Gi"}}});
        workspaces.patch(&name, &PatchParams::default(), &Patch::Merge(&fixed)).await?;
        eventually(DEADLINE, "the fixed workspace is Ready", || async {
            let workspace = workspaces.get(&name).await?;
            Ok((workspace.status.map(|s| s.phase) == Some(WorkspacePhase::Ready)).then_some(()))
        })
        .await?;
        eprintln!("[e2e] {during} apply attempts in 40 s while refused");
        Ok(())
    }
    .await;
    Api::<ValidatingAdmissionPolicyBinding>::all(client.clone())
        .delete(&policy, &DeleteParams::default())
        .await?;
    Api::<ValidatingAdmissionPolicy>::all(client.clone()).delete(&policy, &DeleteParams::default()).await?;
    let _ = Api::<Namespace>::all(client.clone()).delete(&canary, &DeleteParams::default()).await;
    outcome
}
