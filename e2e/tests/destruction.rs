//! Destroying a permit's data yields the true record whatever stops the operator part-way.
//! Each permit below is left as a stop at one step of destruction leaves it (the survey
//! recorded and nothing deleted; the data deleted but not the key; the key deleted too), with
//! its workspace deleted long before, so only the data store remembers it. A restarted
//! operator must record what was there, not what was left, in the status and the audit log,
//! and leave none of the permit's areas behind: extracts, archive, egress, quarantine, imports.

use anyhow::{Context, Result, ensure};
use haven_api::{DataPermit, Workspace, permit::PermitPhase, workspace::WorkspacePhase};
use haven_data::{
    DataStore, archived_workspaces, destroy_permit_data, prepare::key_fingerprint, survey_permit_data,
};
use haven_e2e::{
    DEADLINE, Operator, admin, data_root, ensure_namespace, eventually, eventually_advancing, fixtures, keys,
    kubectl_haven, unique_name,
};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

/// Where a stop interrupted the destruction.
#[derive(Clone, Copy, Debug)]
enum StoppedAfter {
    Survey,
    DataDeleted,
    KeyDeleted,
}

const STOPS: [StoppedAfter; 3] = [StoppedAfter::Survey, StoppedAfter::DataDeleted, StoppedAfter::KeyDeleted];

/// Long enough to stop the operator after archiving and before destruction is due.
const RETENTION: &str = "40s";

async fn phase_of(permits: &Api<DataPermit>, name: &str) -> Result<PermitPhase> {
    Ok(permits.get(name).await?.status.map(|s| s.phase).unwrap_or_default())
}

/// Leaves `permit` as the operator would leave it if it stopped after `stop`; returns the
/// survey (the true record's areas) and the key's fingerprint.
async fn stop_after(
    client: &Client,
    store: &DataStore,
    permit: &str,
    stop: StoppedAfter,
) -> Result<(serde_json::Value, String)> {
    let workspaces = archived_workspaces(store, permit)?;
    ensure!(!workspaces.is_empty(), "{permit}: the deleted workspace's archive is its only trace");
    let survey = survey_permit_data(store, permit, &workspaces)?;
    ensure!(survey.files() >= 3, "{permit}: archive, import and extract files to count: {survey:?}");
    let key = keys::permit_key(client, permit).await?.context("the permit's key")?;
    let fingerprint = key_fingerprint(&key);
    let areas = serde_json::to_value(&survey.areas)?;
    let pending = json!({"status": {"pendingDestruction": {
        "destroyedAt": chrono::Utc::now().to_rfc3339(), "deleted": areas.clone(),
        "keyFingerprint": fingerprint, "keyShredded": false, "archivesSealed": survey.archives_sealed,
    }}});
    Api::<DataPermit>::all(client.clone())
        .patch_status(permit, &PatchParams::default(), &Patch::Merge(&pending))
        .await?;
    if matches!(stop, StoppedAfter::DataDeleted | StoppedAfter::KeyDeleted) {
        destroy_permit_data(store, permit, &workspaces)?;
    }
    if matches!(stop, StoppedAfter::KeyDeleted) {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), "haven-system");
        secrets.delete(&format!("haven-key-{permit}"), &DeleteParams::default()).await?;
    }
    Ok((areas, fingerprint))
}

#[tokio::test]
async fn a_destruction_stopped_at_any_step_records_what_was_there() -> Result<()> {
    let client = admin().await?;
    ensure_namespace(&client, "haven-system").await?;
    let root = data_root("destroy")?;
    fixtures::write_raw_source(&root)?;
    let store = DataStore::new(&root);
    let permits: Api<DataPermit> = Api::all(client.clone());
    let workspaces: Api<Workspace> = Api::all(client.clone());
    let names: Vec<(String, String)> =
        STOPS.iter().map(|_| (unique_name("destroy-p"), unique_name("destroy-ws"))).collect();

    // Each permit gets a workspace that leaves a result and an import, then is deleted.
    let operator = Operator::start(&root).await?;
    for (permit, workspace) in &names {
        let user = format!("{workspace}@example.org");
        let mut spec = serde_json::to_value(fixtures::permit(permit, &user, -5, 600)?)?;
        spec["spec"]["retention"] = json!(RETENTION);
        permits.create(&PostParams::default(), &serde_json::from_value(spec)?).await?;
        workspaces
            .create(&PostParams::default(), &fixtures::workspace(workspace, permit, &user, json!({}))?)
            .await?;
    }
    eventually_advancing("every workspace Ready", || async {
        let mut ready = 0;
        for (_, workspace) in &names {
            ready += usize::from(
                workspaces.get(workspace).await?.status.map(|s| s.phase) == Some(WorkspacePhase::Ready),
            );
        }
        Ok(((ready == names.len()).then_some(()), ready))
    })
    .await?;
    for (permit, workspace) in &names {
        std::fs::write(
            root.join("workspaces").join(workspace).join("home/outputs/result.csv"),
            "a,b\n1,2\n",
        )?;
        let imports = store.imports(workspace)?;
        std::fs::create_dir_all(&imports)?;
        std::fs::write(imports.join("incoming.csv"), "x\n1\n")?;
        workspaces.delete(workspace, &DeleteParams::default()).await?;
        let revoke = json!({"spec": {"revoked": true, "revocationReason": "e2e: destruction"}});
        permits.patch(permit, &PatchParams::default(), &Patch::Merge(&revoke)).await?;
    }
    eventually_advancing("every permit Archived, its workspace gone", || async {
        let mut archived = 0;
        for (permit, workspace) in &names {
            let gone = workspaces.get_opt(workspace).await?.is_none();
            archived += usize::from(gone && phase_of(&permits, permit).await? == PermitPhase::Archived);
        }
        Ok(((archived == names.len()).then_some(()), archived))
    })
    .await?;
    drop(operator);

    let mut expected = Vec::new();
    for ((permit, _), stop) in names.iter().zip(STOPS) {
        ensure!(phase_of(&permits, permit).await? == PermitPhase::Archived, "{permit}: destroyed too early");
        expected.push((permit.clone(), stop, stop_after(&client, &store, permit, stop).await?));
    }

    let _operator = Operator::start(&root).await?;
    eventually_advancing("every permit Destroyed", || async {
        let mut destroyed = 0;
        for (permit, _) in &names {
            destroyed += usize::from(phase_of(&permits, permit).await? == PermitPhase::Destroyed);
        }
        Ok(((destroyed == names.len()).then_some(()), destroyed))
    })
    .await?;
    let audit = std::fs::read_to_string(store.audit_log())?;
    for (permit, stop, (areas, fingerprint)) in &expected {
        let status = permits.get(permit).await?.status.context("status")?;
        ensure!(status.pending_destruction.is_none(), "{permit} ({stop:?}): the pending record is cleared");
        let record = status.destruction.context("destruction record")?;
        ensure!(
            serde_json::to_value(&record.deleted)? == *areas,
            "{permit} ({stop:?}): {record:?} != {areas}"
        );
        ensure!(record.key_fingerprint == *fingerprint, "{permit} ({stop:?}): {record:?}");
        ensure!(record.key_shredded && record.archives_sealed, "{permit} ({stop:?}): {record:?}");
        ensure!(record.shredding_limit.contains("etcd"), "{permit}: the limit of shredding is stated");
        ensure!(keys::permit_key(&client, permit).await?.is_none(), "{permit}: the key Secret is gone");
        let left = survey_permit_data(&store, permit, &archived_names(areas))?;
        ensure!(left.files() == 0, "{permit} ({stop:?}): areas left behind: {left:?}");
        // The audit log holds the whole record, with the counts of what was there.
        let logged = audit
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|line| line["action"] == "Destroyed" && line["object"] == format!("datapermit/{permit}"))
            .with_context(|| format!("{permit}: no Destroyed record in the audit log"))?;
        ensure!(logged["detail"]["deleted"] == *areas, "{permit}: audit {logged}");
        // And the plugin shows this real record to an auditor.
        let described = kubectl_haven(&["permit", "describe", permit])?;
        let text = String::from_utf8_lossy(&described.stdout);
        ensure!(described.status.success(), "{}", String::from_utf8_lossy(&described.stderr));
        ensure!(text.contains(fingerprint.as_str()) && text.contains("(shredded"), "{text}");
        ensure!(text.contains("Limit:") && text.contains("etcd"), "{text}");
        for area in areas.as_array().into_iter().flatten() {
            let path = area["path"].as_str().unwrap_or_default();
            ensure!(text.contains(path), "{permit}: {path} missing from:\n{text}");
        }
    }
    eventually(DEADLINE, "the destroyed permits can be deleted", || async {
        for (permit, _) in &names {
            let _ = permits.delete(permit, &DeleteParams::default()).await;
        }
        let mut left = 0;
        for (permit, _) in &names {
            left += usize::from(permits.get_opt(permit).await?.is_some());
        }
        Ok((left == 0).then_some(()))
    })
    .await
}

/// The workspaces a recorded survey covered (its `imports/<workspace>` areas).
fn archived_names(areas: &serde_json::Value) -> Vec<String> {
    areas
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["path"].as_str()?.strip_prefix("imports/").map(str::to_owned))
        .collect()
}
