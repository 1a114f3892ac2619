//! Every grant and removal of a workspace's access is an audit record: who, which workspace,
//! which datasets, and which field manager last set the users. Adding and removing a user of a
//! Ready workspace, and deleting it, each leave one.

use anyhow::{Context, Result, ensure};
use haven_api::{DataPermit, Workspace, workspace::WorkspacePhase};
use haven_data::DataStore;
use haven_e2e::{DEADLINE, Operator, admin, data_root, ensure_namespace, eventually, fixtures, unique_name};
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};

/// The test's own field manager, which the records must name.
const MANAGER: &str = "e2e-access-admin";

/// The access records of `workspace`, in order.
fn records(store: &DataStore, workspace: &str) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(store.audit_log()).unwrap_or_default();
    Ok(text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["object"] == format!("workspace/{workspace}"))
        .filter(|line| line["action"].as_str().is_some_and(|a| a.starts_with("Access")))
        .collect())
}

#[tokio::test]
async fn every_grant_and_removal_of_access_is_recorded_with_who_changed_it() -> Result<()> {
    let client = admin().await?;
    ensure_namespace(&client, "haven-system").await?;
    let root = data_root("access")?;
    fixtures::write_raw_source(&root)?;
    let store = DataStore::new(&root);
    let _operator = Operator::start(&root).await?;
    let (permit, name) = (unique_name("access-p"), unique_name("access-ws"));
    let (alice, bob) = (format!("alice-{name}@example.org"), format!("bob-{name}@example.org"));
    let mut spec = serde_json::to_value(fixtures::permit(&permit, &alice, -5, 600)?)?;
    spec["spec"]["users"] = json!([alice, bob]);
    let permits: Api<DataPermit> = Api::all(client.clone());
    permits.create(&PostParams::default(), &serde_json::from_value(spec)?).await?;
    let workspaces: Api<Workspace> = Api::all(client.clone());
    workspaces
        .create(&PostParams::default(), &fixtures::workspace(&name, &permit, &alice, json!({}))?)
        .await?;
    let users_now = |expected: Vec<String>| {
        let workspaces = workspaces.clone();
        let name = name.clone();
        async move {
            eventually(DEADLINE, "the access in status", || async {
                let status = workspaces.get(&name).await?.status.unwrap_or_default();
                let users = status.access.map(|a| a.users);
                Ok((status.phase == WorkspacePhase::Ready && users.as_ref() == Some(&expected)).then_some(()))
            })
            .await
        }
    };
    users_now(vec![alice.clone()]).await?;
    let granted = records(&store, &name)?;
    ensure!(granted.len() == 1 && granted[0]["action"] == "AccessGranted", "{granted:#?}");
    ensure!(
        granted[0]["detail"]["users"] == json!([alice])
            && granted[0]["detail"]["datasets"] == json!(["survey"])
    );

    // Bob added by another manager, then Alice removed: each change is its own record.
    let by_admin = PatchParams { field_manager: Some(MANAGER.into()), ..PatchParams::default() };
    let both = json!({"spec": {"users": [alice, bob]}});
    workspaces.patch(&name, &by_admin, &Patch::Merge(&both)).await?;
    let mut sorted = vec![alice.clone(), bob.clone()];
    sorted.sort();
    users_now(sorted).await?;
    let only_bob = json!({"spec": {"users": [bob]}});
    workspaces.patch(&name, &by_admin, &Patch::Merge(&only_bob)).await?;
    users_now(vec![bob.clone()]).await?;
    let changes = records(&store, &name)?;
    ensure!(changes.len() == 3, "{changes:#?}");
    let (added, removed) = (&changes[1]["detail"], &changes[2]["detail"]);
    ensure!(changes[1]["action"] == "AccessChanged" && added["added"] == json!([bob]), "{changes:#?}");
    ensure!(changes[2]["action"] == "AccessChanged" && removed["removed"] == json!([alice]), "{changes:#?}");
    ensure!(added["usersLastSetBy"] == MANAGER && removed["usersLastSetBy"] == MANAGER, "{changes:#?}");

    // Deleting the workspace removes everyone's access: recorded before it is gone.
    workspaces.delete(&name, &DeleteParams::default()).await?;
    eventually(DEADLINE, "the workspace is gone", || async {
        Ok(workspaces.get_opt(&name).await?.is_none().then_some(()))
    })
    .await?;
    let all = records(&store, &name)?;
    let last = all.last().context("records")?;
    ensure!(last["action"] == "AccessRemoved" && last["detail"]["removed"] == json!([bob]), "{all:#?}");
    haven_data::audit::verify(&store.audit_log())?;
    permits.delete(&permit, &DeleteParams::default()).await?;
    Ok(())
}
