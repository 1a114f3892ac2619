//! A child the API server refuses at apply time is never a silent retry loop: the Workspace
//! says which child and why (`Ready=False`, reason `ApplyFailed`, phase `Failed`), or the
//! DataPermit does (`DatasetsPrepared=False`, reason `ApplyFailed`, for its key Secret), a
//! Warning Event is recorded, the operator backs off, and a fix recovers it.

use anyhow::{Context, Result, ensure};
use haven_api::{
    DataPermit, Workspace,
    constants::{conditions, labels, reasons},
    permit::PermitPhase,
    workspace::WorkspacePhase,
};
use haven_e2e::{DEADLINE, Operator, admin, data_root, ensure_namespace, eventually, fixtures, unique_name};
use k8s_openapi::api::{
    admissionregistration::v1::{ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding},
    core::v1::{Namespace, ResourceQuota, Secret},
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

/// Waits for a Warning Event on the object named `name` that `matches`.
async fn warning_event(client: &Client, name: &str, matches: impl Fn(&Event) -> bool) -> Result<()> {
    let events: Api<Event> = Api::all(client.clone());
    eventually(DEADLINE, &format!("a Warning Event on {name}"), || async {
        let all = events.list(&ListParams::default()).await?.items;
        Ok(all
            .iter()
            .any(|e| {
                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                    && e.type_.as_deref() == Some("Warning")
                    && matches(e)
            })
            .then_some(()))
    })
    .await
}

/// Back-off: over a window where a fixed 5 s retry would try 8 times, counts the operator's
/// refused attempts for `name` (its "apply refused" log lines); at least one, fewer than 8.
async fn backed_off(root: &std::path::Path, name: &str) -> Result<usize> {
    let log = std::path::PathBuf::from(format!("{}.operator.log", root.display()));
    let attempts = || -> Result<usize> {
        let text = std::fs::read_to_string(&log).with_context(|| format!("reading {}", log.display()))?;
        Ok(text.lines().filter(|l| l.contains("apply refused") && l.contains(name)).count())
    };
    let before = attempts()?;
    tokio::time::sleep(std::time::Duration::from_secs(40)).await;
    let during = attempts()? - before;
    ensure!(during >= 1, "the operator gave up instead of retrying ({during} attempts in 40 s)");
    ensure!(during < 8, "no back-off: {during} attempts in 40 s");
    Ok(during)
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
        warning_event(&client, &name, |e| e.reason.as_deref() == Some("Failed")).await?;

        let during = backed_off(&root, &name).await?;

        // Fixing the spec recovers at once, with nothing left refused.
        let fixed = json!({"spec": {"resources": {"cpu": "1", "memory": "6Gi"}}});
        workspaces.patch(&name, &PatchParams::default(), &Patch::Merge(&fixed)).await?;
        haven_e2e::workspace::ready(&workspaces, &name).await?;
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

/// A policy refusing Secrets labelled for `permit` (its pseudonymisation key) in the operator's
/// namespace: a cluster rule the operator cannot know about.
async fn refuse_key_secrets(client: &Client, name: &str, permit: &str) -> Result<()> {
    let policy: ValidatingAdmissionPolicy = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                "operations": ["CREATE", "UPDATE"], "resources": ["secrets"]}]},
            "validations": [{
                "expression": format!("!has(object.metadata.labels) || !('{}' in object.metadata.labels) || object.metadata.labels['{}'] != '{permit}'", labels::PERMIT, labels::PERMIT),
                "message": "this cluster refuses the key Secret of this permit",
            }],
        }
    }))?;
    let binding: ValidatingAdmissionPolicyBinding = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"]}
    }))?;
    Api::<ValidatingAdmissionPolicy>::all(client.clone()).create(&PostParams::default(), &policy).await?;
    Api::<ValidatingAdmissionPolicyBinding>::all(client.clone())
        .create(&PostParams::default(), &binding)
        .await?;
    Ok(())
}

fn key_secret(permit: &str) -> Result<Secret> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": format!("canary-{permit}"), "labels": {labels::PERMIT: permit}},
        "stringData": {"key": "canary"}
    }))?)
}

fn preparation_condition(permit: &DataPermit) -> Option<(String, String, String)> {
    let status = permit.status.as_ref()?;
    let prepared = status.conditions.iter().find(|c| c.type_ == conditions::DATASETS_PREPARED)?;
    Some((format!("{:?}", status.phase), prepared.reason.clone(), prepared.message.clone()))
}

#[tokio::test]
async fn a_key_secret_the_api_server_refuses_is_reported_on_the_permit_backed_off_and_recovered() -> Result<()>
{
    let client = admin().await?;
    ensure_namespace(&client, "haven-system").await?;
    let (permit, policy) = (unique_name("keyfail"), unique_name("refuse-key"));
    refuse_key_secrets(&client, &policy, &permit).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "haven-system");
    let outcome = async {
        // The canary: the policy is in force before the operator meets it, and refuses only
        // this permit's Secrets.
        eventually(DEADLINE, "the test's policy refuses the key Secret", || async {
            let dry_run = PostParams { dry_run: true, ..PostParams::default() };
            Ok(secrets.create(&dry_run, &key_secret(&permit)?).await.is_err().then_some(()))
        })
        .await?;
        let dry_run = PostParams { dry_run: true, ..PostParams::default() };
        secrets.create(&dry_run, &key_secret("another-permit")?).await?;

        let root = data_root("keyfail")?;
        fixtures::write_raw_source(&root)?;
        let _operator = Operator::start(&root).await?;
        let permits: Api<DataPermit> = Api::all(client.clone());
        permits
            .create(&PostParams::default(), &fixtures::permit(&permit, "alice@example.org", -5, 600)?)
            .await?;
        let (phase, _, message) = eventually(DEADLINE, "the permit says why it cannot prepare", || async {
            let permit = permits.get(&permit).await?;
            Ok(preparation_condition(&permit).filter(|(_, reason, _)| reason == reasons::APPLY_FAILED))
        })
        .await?;
        ensure!(phase == format!("{:?}", PermitPhase::Preparing), "phase {phase}");
        ensure!(
            message.contains("Secret haven-system/haven-key-") && message.contains("refuses the key Secret"),
            "the condition names the child and the API server's reason: {message}"
        );
        warning_event(&client, &permit, |e| {
            e.note.as_deref().is_some_and(|n| n.contains("refuses the key Secret"))
        })
        .await?;

        let during = backed_off(&root, &permit).await?;

        // The cluster's rule is lifted; a change to the permit is tried at once and it prepares.
        delete_policy(&client, &policy).await?;
        eventually(DEADLINE, "the policy is gone", || async {
            let dry_run = PostParams { dry_run: true, ..PostParams::default() };
            Ok(secrets.create(&dry_run, &key_secret(&permit)?).await.is_ok().then_some(()))
        })
        .await?;
        let nudge = json!({"metadata": {"annotations": {"example.org/nudge": "policy lifted"}}});
        permits.patch(&permit, &PatchParams::default(), &Patch::Merge(&nudge)).await?;
        eventually(DEADLINE, "the permit is Active", || async {
            let permit = permits.get(&permit).await?;
            Ok((permit.status.map(|s| s.phase) == Some(PermitPhase::Active)).then_some(()))
        })
        .await?;
        eprintln!("[e2e] {during} key Secret attempts in 40 s while refused");
        Ok(())
    }
    .await;
    let _ = delete_policy(&client, &policy).await;
    outcome
}

async fn delete_policy(client: &Client, name: &str) -> Result<()> {
    Api::<ValidatingAdmissionPolicyBinding>::all(client.clone())
        .delete(name, &DeleteParams::default())
        .await?;
    Api::<ValidatingAdmissionPolicy>::all(client.clone()).delete(name, &DeleteParams::default()).await?;
    Ok(())
}
