//! A workspace's life against the real control plane with the operator running: the permit
//! activates, the workspace is provisioned and Ready, its user is confined (S1-S4), drift is
//! repaired, revocation cuts access first, archives the files, then deletes the namespace,
//! and after the retention the permit's data and key are destroyed, with a record.

use anyhow::{Context, Result};
use haven_api::{DataPermit, Workspace, permit::PermitPhase, workspace::WorkspacePhase};
use haven_e2e::{
    DEADLINE, Operator, admin, data_root, ensure_namespace, eventually, fixtures, keys, kubectl, unique_name,
    within,
};
use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{Namespace, PersistentVolume, Secret},
    networking::v1::NetworkPolicy,
    rbac::v1::RoleBinding,
};
use kube::{
    Api, Client,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

async fn permit_phase(permits: &Api<DataPermit>, name: &str) -> Result<PermitPhase> {
    Ok(permits.get(name).await?.status.map(|s| s.phase).unwrap_or_default())
}

async fn workspace_phase(workspaces: &Api<Workspace>, name: &str) -> Result<WorkspacePhase> {
    Ok(workspaces.get(name).await?.status.map(|s| s.phase).unwrap_or_default())
}

/// `kubectl --as user ...`: Ok(true) when allowed, Ok(false) when the API server says Forbidden.
fn allowed_as(user: &str, args: &[&str]) -> Result<bool> {
    let mut full = vec!["--as", user, "--as-group", "researchers"];
    full.extend_from_slice(args);
    let output = kubectl(&full)?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.success() {
        return Ok(true);
    }
    anyhow::ensure!(
        stderr.contains("Forbidden") || stderr.contains("forbidden"),
        "kubectl {args:?} failed for another reason: {stderr}"
    );
    Ok(false)
}

#[tokio::test]
async fn a_workspace_is_provisioned_confined_repaired_and_archived_on_revocation() -> Result<()> {
    let client: Client = admin().await?;
    ensure_namespace(&client, "haven-system").await?;
    let root = data_root("lifecycle")?;
    let (permit_name, ws_name) = (unique_name("perm"), unique_name("ws"));
    let user = format!("{ws_name}@example.org");
    let namespace = format!("ws-{ws_name}");
    // Only the raw source exists: the operator prepares the extract before the permit is Active.
    fixtures::write_raw_source(&root)?;
    let _operator = Operator::start(&root).await?;

    let permits: Api<DataPermit> = Api::all(client.clone());
    let workspaces: Api<Workspace> = Api::all(client.clone());
    permits.create(&PostParams::default(), &fixtures::permit(&permit_name, &user, -5, 600)?).await?;
    eventually(DEADLINE, "permit Active", || async {
        Ok((permit_phase(&permits, &permit_name).await? == PermitPhase::Active).then_some(()))
    })
    .await?;

    // Preparation: an extract and its report exist, the status summarises the report, and no
    // raw identifier reached the extract.
    let extract = root.join("extracts").join(&permit_name).join("survey");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(extract.join("report.json"))?)?;
    assert_eq!((report["rowsIn"].as_u64(), report["rowsOut"].as_u64()), (Some(3), Some(3)), "{report}");
    let prepared = std::fs::read_to_string(extract.join("data.csv"))?;
    for raw in fixtures::RAW_IDS {
        assert!(!prepared.contains(raw), "raw id {raw} leaked into the extract: {prepared}");
    }
    let summary = permits.get(&permit_name).await?.status.map(|s| s.datasets).unwrap_or_default();
    assert_eq!(summary.len(), 1, "{summary:?}");
    assert_eq!(summary[0].output_sha256, report["outputSha256"].as_str().unwrap_or_default());
    assert!(summary[0].key_fingerprint.starts_with("sha256:"));

    workspaces
        .create(&PostParams::default(), &fixtures::workspace(&ws_name, &permit_name, &user, json!({}))?)
        .await?;
    haven_e2e::workspace::ready(&workspaces, &ws_name).await?;

    // The workspace mounts the extract, never the raw source.
    let volume =
        Api::<PersistentVolume>::all(client.clone()).get(&format!("haven-{ws_name}-data-survey")).await?;
    let path = volume.spec.and_then(|s| s.host_path).map(|h| h.path).unwrap_or_default();
    assert_eq!(std::path::PathBuf::from(&path), extract, "dataset volume path");
    assert!(!path.contains("/raw/"));

    // Confinement, as the workspace's own user (DESIGN §6 S1-S4); the allowed actions first,
    // so the denials below are RBAC and not a broken setup.
    let ns = namespace.as_str();
    assert!(allowed_as(&user, &["get", "workspace", &ws_name])?, "user can see their workspace");
    assert!(
        allowed_as(&user, &["get", "statefulset", "workspace", "-n", ns])?,
        "user can see their environment"
    );
    let request = json!({"apiVersion": "haven.io/v1alpha1", "kind": "AirlockRequest",
        "metadata": {"name": "results", "namespace": ns},
        "spec": {"direction": "Export", "requestedBy": user, "files": ["t.csv"], "justification": "counts"}});
    let output = haven_e2e::kubectl_with_input(&["--as", &user, "create", "-f", "-"], &request.to_string())?;
    assert!(
        output.status.success(),
        "user can create an AirlockRequest: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!allowed_as(&user, &["exec", "-n", ns, "workspace-0", "--", "ls"])?, "S1 exec");
    // Channels a process's output could take to the user's own machine, around the airlock.
    assert!(!allowed_as(&user, &["logs", "-n", ns, "workspace-0"])?, "S1 logs");
    assert!(!allowed_as(&user, &["get", "pods", "-n", ns])?, "S1 pods (termination messages)");
    assert!(!allowed_as(&user, &["get", "events", "-n", ns])?, "S1 events");
    assert!(!allowed_as(&user, &["get", "configmaps", "-n", ns])?, "S1 configmaps");
    assert!(
        !allowed_as(&user, &["port-forward", "-n", ns, "pod/workspace-0", "18888:8888"])?,
        "S1 port-forward"
    );
    assert!(!allowed_as(&user, &["get", "secrets", "-n", ns])?, "S2 secrets here");
    assert!(!allowed_as(&user, &["get", "secrets", "-n", "haven-system"])?, "S2 the operator's secrets");
    assert!(!allowed_as(&user, &["run", "-n", ns, "extra", "--image=busybox"])?, "S3 create pods");
    assert!(
        !allowed_as(&user, &["delete", "networkpolicy", "default-deny", "-n", ns])?,
        "S3 network policies"
    );
    assert!(
        !allowed_as(&user, &["delete", "rolebinding", "haven-researcher", "-n", ns])?,
        "S3 role bindings"
    );
    assert!(
        !allowed_as(
            &user,
            &["create", "rolebinding", "x", "-n", ns, "--clusterrole=admin", "--user", &user]
        )?,
        "S3 new role bindings"
    );
    assert!(!allowed_as(&user, &["get", "pods", "-n", "kube-system"])?, "S4 other namespaces");
    assert!(!allowed_as(&user, &["get", "workspaces"])?, "S4 other workspaces");

    // Drift: deleted isolation and access objects come back.
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), ns);
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), ns);
    policies.delete("default-deny", &DeleteParams::default()).await?;
    bindings.delete("haven-researcher", &DeleteParams::default()).await?;
    eventually(DEADLINE, "default-deny restored", || async {
        Ok(policies.get_opt("default-deny").await?.map(|_| ()))
    })
    .await?;
    eventually(DEADLINE, "binding restored", || async {
        Ok(bindings.get_opt("haven-researcher").await?.map(|_| ()))
    })
    .await?;

    // Paused: the environment stops and everything else stays; unpaused, it runs again.
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    let pause = |paused: bool| json!({"spec": {"paused": paused}});
    workspaces.patch(&ws_name, &PatchParams::default(), &Patch::Merge(&pause(true))).await?;
    eventually(DEADLINE, "workspace Paused", || async {
        Ok((workspace_phase(&workspaces, &ws_name).await? == WorkspacePhase::Paused).then_some(()))
    })
    .await?;
    assert_eq!(sets.get("workspace").await?.spec.and_then(|s| s.replicas), Some(0));
    assert!(bindings.get_opt("haven-researcher").await?.is_some(), "pausing keeps access");
    workspaces.patch(&ws_name, &PatchParams::default(), &Patch::Merge(&pause(false))).await?;
    haven_e2e::workspace::ready(&workspaces, &ws_name).await?;

    // The researcher's work, written through the home volume.
    let outputs = root.join("workspaces").join(&ws_name).join("home").join("outputs");
    std::fs::write(outputs.join("table.csv"), "region,count\nnorth,12\n")?;

    // Revocation: access goes first, while the namespace still exists.
    let revoke = json!({"spec": {"revoked": true, "revocationReason": "e2e: breach of agreement"}});
    permits.patch(&permit_name, &PatchParams::default(), &Patch::Merge(&revoke)).await?;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let revoked_at = std::time::Instant::now();
    // Polled tightly: when the binding is first seen gone the namespace must still be live, or
    // the binding went with the namespace and access was never cut first.
    let namespace_then = within(DEADLINE, async {
        loop {
            if bindings.get_opt("haven-researcher").await?.is_none() {
                let live = namespaces.get_opt(&namespace).await?;
                return anyhow::Ok(live.is_some_and(|n| n.metadata.deletion_timestamp.is_none()));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .context("access removed")??;
    assert!(namespace_then, "access was removed only with the namespace, not before it");
    eprintln!("[e2e] access removed {:?} after the revocation", revoked_at.elapsed());

    eventually(DEADLINE, "workspace Archived", || async {
        Ok((workspace_phase(&workspaces, &ws_name).await? == WorkspacePhase::Archived).then_some(()))
    })
    .await?;
    let archive =
        workspaces.get(&ws_name).await?.status.and_then(|s| s.archive).context("archive in status")?;
    assert_eq!(archive.files, 1, "{archive:?}");
    // Sealed: it opens only with the permit's key (see encryption.rs).
    let opened = root.with_extension("opened");
    let key = keys::archive_key(&client, &permit_name).await?;
    haven_data::open_archive(&haven_data::DataStore::new(&root), &permit_name, &ws_name, &key, &opened)?;
    let archived = std::fs::read_to_string(opened.join("files/home/outputs/table.csv"))?;
    assert_eq!(archived, "region,count\nnorth,12\n");
    eventually(DEADLINE, "namespace deleted", || async {
        Ok(namespaces
            .get_opt(&namespace)
            .await?
            .is_none_or(|n| n.metadata.deletion_timestamp.is_some())
            .then_some(()))
    })
    .await?;
    eventually(DEADLINE, "permit Archived", || async {
        Ok((permit_phase(&permits, &permit_name).await? == PermitPhase::Archived).then_some(()))
    })
    .await?;

    // Retention ends: the data and the key are destroyed, and the record stays.
    let keys: Api<Secret> = Api::namespaced(client.clone(), "haven-system");
    assert!(
        keys.get_opt(&format!("haven-key-{permit_name}")).await?.is_some(),
        "the permit has a key before destruction"
    );
    assert!(root.join("archive").join(&permit_name).exists(), "the archive exists before destruction");
    eventually(DEADLINE, "permit Destroyed", || async {
        Ok((permit_phase(&permits, &permit_name).await? == PermitPhase::Destroyed).then_some(()))
    })
    .await?;
    let record =
        permits.get(&permit_name).await?.status.and_then(|s| s.destruction).context("destruction record")?;
    assert!(record.key_shredded && record.key_fingerprint.starts_with("sha256:"), "{record:?}");
    assert!(record.archives_sealed, "{record:?}");
    let deleted_files: u64 = record.deleted.iter().map(|area| area.files).sum();
    assert_eq!(
        deleted_files, 4,
        "the extract and its report, the archived table and its manifest: {record:?}"
    );
    assert!(keys.get_opt(&format!("haven-key-{permit_name}")).await?.is_none(), "key shredded");
    assert!(!root.join("archive").join(&permit_name).exists(), "archive destroyed");
    assert!(!root.join("extracts").join(&permit_name).exists(), "extracts destroyed");

    // The audit chain verifies.
    let verify = std::process::Command::new(std::env::var("HAVEN_BIN")?)
        .args(["audit", "verify"])
        .arg(&root)
        .output()?;
    assert!(verify.status.success(), "audit verify: {}", String::from_utf8_lossy(&verify.stderr));
    Ok(())
}
