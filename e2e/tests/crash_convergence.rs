//! D1, D4: killing the operator (SIGKILL) in the middle of provisioning and in the middle of
//! teardown, then starting it again, converges with no orphaned, duplicated or lost objects
//! or files, and every archive verifies.

use std::time::Duration;

use anyhow::Result;
use haven_api::{DataPermit, Workspace, constants::labels, workspace::WorkspacePhase};
use haven_e2e::{
    DEADLINE, Operator, admin, data_root, ensure_namespace, eventually, eventually_advancing, fixtures, keys,
    operator_turn, unique_name,
};
use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{Namespace, PersistentVolume, PersistentVolumeClaim},
    networking::v1::NetworkPolicy,
    rbac::v1::RoleBinding,
};
use kube::{
    Api, Client,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

const WORKSPACES: usize = 4;
const SCRATCH_FILES: usize = 400;
/// Early crash points, before or while the operator's watches start.
const CRASH_AFTER: [Duration; 2] = [Duration::from_millis(200), Duration::from_millis(700)];

/// `(all of names in phase, how many are)`, for [`eventually_advancing`].
async fn all_in_phase(
    workspaces: &Api<Workspace>,
    names: &[String],
    phase: WorkspacePhase,
) -> Result<(Option<()>, usize)> {
    let mut there = 0;
    for name in names {
        if workspaces.get(name).await?.status.map(|s| s.phase) == Some(phase) {
            there += 1;
        }
    }
    Ok(((there == names.len()).then_some(()), there))
}

async fn count<K>(api: Api<K>, selector: &str) -> Result<usize>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    Ok(api.list_metadata(&ListParams::default().labels(selector)).await?.items.len())
}

/// Phases of `names`, read in one list call so the test can poll fast.
async fn phases(workspaces: &Api<Workspace>, names: &[String]) -> Result<Vec<WorkspacePhase>> {
    let all = workspaces.list(&ListParams::default()).await?;
    Ok(all
        .items
        .into_iter()
        .filter(|w| w.metadata.name.as_ref().is_some_and(|n| names.contains(n)))
        .map(|w| w.status.map(|s| s.phase).unwrap_or_default())
        .collect())
}

/// Starts and SIGKILLs the operator at the early crash points, then once more as soon as the
/// work is under way but unfinished (some workspace has left its starting phase and not all
/// have reached `done`), and finally leaves one running.
async fn crash_repeatedly(
    root: &std::path::Path,
    workspaces: &Api<Workspace>,
    names: &[String],
    started: WorkspacePhase,
    done: WorkspacePhase,
) -> Result<Operator> {
    let mut turn = operator_turn().await;
    for after in CRASH_AFTER {
        let operator = Operator::start_in_turn(root, turn)?;
        tokio::time::sleep(after).await;
        turn = operator.crash();
    }
    let operator = Operator::start_in_turn(root, turn)?;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let seen = loop {
        let now = phases(workspaces, names).await?;
        let finished = now.iter().filter(|p| **p == done).count();
        if now.iter().any(|p| *p == started || *p == done) || tokio::time::Instant::now() > deadline {
            break format!("{finished}/{} {done:?}, phases {now:?}", names.len());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    turn = operator.crash();
    eprintln!("crashed mid-way: {seen}");
    Operator::start_in_turn(root, turn)
}

#[tokio::test]
async fn killing_the_operator_mid_provisioning_and_mid_teardown_converges_without_loss() -> Result<()> {
    let client: Client = admin().await?;
    ensure_namespace(&client, "haven-system").await?;
    let root = data_root("crash")?;
    let permit = unique_name("crash");
    let user = format!("{permit}@example.org");
    fixtures::write_raw_source(&root)?;
    let permits: Api<DataPermit> = Api::all(client.clone());
    let workspaces: Api<Workspace> = Api::all(client.clone());
    let mut grant = fixtures::permit(&permit, &user, -5, 600)?;
    grant.spec.environment.max_workspaces = WORKSPACES as u32;
    // The archives are read after the revocation: the data must outlive the test's checks.
    grant.spec.retention = "1h".into();
    permits.create(&PostParams::default(), &grant).await?;
    let names: Vec<String> = (0..WORKSPACES).map(|_| unique_name("crashws")).collect();
    for name in &names {
        workspaces
            .create(&PostParams::default(), &fixtures::workspace(name, &permit, &user, json!({}))?)
            .await?;
    }

    // Provisioning, interrupted three times.
    let operator =
        crash_repeatedly(&root, &workspaces, &names, WorkspacePhase::Provisioning, WorkspacePhase::Ready)
            .await?;
    eventually_advancing("every workspace Ready", || {
        all_in_phase(&workspaces, &names, WorkspacePhase::Ready)
    })
    .await?;
    for name in &names {
        let ns = format!("ws-{name}");
        let selector = format!("{}={name}", labels::WORKSPACE);
        assert_eq!(count(Api::<StatefulSet>::namespaced(client.clone(), &ns), &selector).await?, 1, "{name}");
        assert_eq!(
            count(Api::<NetworkPolicy>::namespaced(client.clone(), &ns), &selector).await?,
            3,
            "{name}"
        );
        assert_eq!(count(Api::<RoleBinding>::namespaced(client.clone(), &ns), &selector).await?, 2, "{name}");
        assert_eq!(
            count(Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns), &selector).await?,
            3, // home, imports and the one dataset
            "{name}"
        );
        assert_eq!(count(Api::<PersistentVolume>::all(client.clone()), &selector).await?, 3, "{name}");
    }
    let permit_selector = format!("{}={permit}", labels::PERMIT);
    assert_eq!(
        count(Api::<Namespace>::all(client.clone()), &permit_selector).await?,
        WORKSPACES,
        "no orphan namespaces"
    );

    // Each researcher leaves a result and enough scratch files that archiving takes a while;
    // then teardown, interrupted three times.
    fixtures::fill_homes(&root, &names, SCRATCH_FILES)?;
    let revoke = json!({"spec": {"revoked": true, "revocationReason": "e2e crash test"}});
    permits.patch(&permit, &PatchParams::default(), &Patch::Merge(&revoke)).await?;
    drop(operator);
    let _operator =
        crash_repeatedly(&root, &workspaces, &names, WorkspacePhase::Expiring, WorkspacePhase::Archived)
            .await?;
    eventually_advancing("every workspace Archived", || {
        all_in_phase(&workspaces, &names, WorkspacePhase::Archived)
    })
    .await?;

    let key = keys::archive_key(&client, &permit).await?;
    for (i, name) in names.iter().enumerate() {
        let (archive, kept) = fixtures::archived_result(&root, &permit, name, &key)?;
        assert_eq!(archive.files, 1 + SCRATCH_FILES as u64, "{name}: {archive:?}");
        assert_eq!(kept, format!("workspace,{i}\n"), "{name}: archived bytes differ");
        let recorded = workspaces.get(name).await?.status.and_then(|s| s.archive).map(|a| a.manifest_sha256);
        assert_eq!(recorded, Some(archive.manifest_sha256), "{name}: status records the verified archive");
    }
    // Six kills, and every change the statuses show has its record: each workspace was
    // recorded Ready and Archived, granted access and had it removed, in a whole chain.
    let audit = root.join("audit/audit.log");
    haven_data::audit::verify(&audit)?;
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&audit)?.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    for name in &names {
        let object = format!("workspace/{name}");
        for action in ["Ready", "Archived", "AccessGranted", "AccessRemoved"] {
            assert!(
                lines.iter().any(|l| l["object"] == object.as_str() && l["action"] == action),
                "{name}: no {action} record after the kills"
            );
        }
    }
    eventually(DEADLINE, "no namespace or volume left", || async {
        let left = count(Api::<Namespace>::all(client.clone()), &permit_selector).await?
            + count(Api::<PersistentVolume>::all(client.clone()), &permit_selector).await?;
        // Namespaces may still be terminating; none may be live.
        let live = Api::<Namespace>::all(client.clone())
            .list(&ListParams::default().labels(&permit_selector))
            .await?
            .items
            .into_iter()
            .filter(|n| n.metadata.deletion_timestamp.is_none())
            .count();
        Ok((live == 0 && left <= WORKSPACES).then_some(()))
    })
    .await?;
    Ok(())
}
