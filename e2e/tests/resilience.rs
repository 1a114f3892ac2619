//! What the operator must and must not do to a converged workspace: leave it alone when nothing
//! changes, and take back what another writer changes.

use anyhow::Result;
use haven_api::{DataPermit, Workspace, workspace::WorkspacePhase};
use haven_e2e::{
    DEADLINE, Operator, admin, data_root, ensure_namespace, eventually, eventually_advancing, fixtures,
    unique_name,
};
use k8s_openapi::api::{core::v1::ResourceQuota, networking::v1::NetworkPolicy};
use kube::{
    Api, Client, ResourceExt,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;

/// A permit for up to `workspaces` workspaces of `user`, and its operator running.
async fn permit_with_operator(
    prefix: &str,
    user: &str,
    workspaces: u32,
) -> Result<(Client, String, Operator)> {
    let client = admin().await?;
    ensure_namespace(&client, "haven-system").await?;
    let root = data_root(prefix)?;
    fixtures::write_raw_source(&root)?;
    let operator = Operator::start(&root).await?;
    let permit = unique_name(&format!("{prefix}-p"));
    let mut grant = fixtures::permit(&permit, user, -5, 900)?;
    grant.spec.environment.max_workspaces = workspaces;
    Api::<DataPermit>::all(client.clone()).create(&PostParams::default(), &grant).await?;
    Ok((client, permit, operator))
}

async fn ready_count(workspaces: &Api<Workspace>, names: &[String]) -> Result<usize> {
    let mut ready = 0;
    for name in names {
        if workspaces.get(name).await?.status.map(|s| s.phase) == Some(WorkspacePhase::Ready) {
            ready += 1;
        }
    }
    Ok(ready)
}

#[tokio::test]
async fn another_writer_cannot_loosen_isolation_but_keeps_its_own_fields() -> Result<()> {
    let user = "writer@example.org";
    let (client, permit, _operator) = permit_with_operator("writer", user, 1).await?;
    let workspaces: Api<Workspace> = Api::all(client.clone());
    let name = unique_name("writer-ws");
    workspaces.create(&PostParams::default(), &fixtures::workspace(&name, &permit, user, json!({}))?).await?;
    haven_e2e::workspace::ready(&workspaces, &name).await?;
    let namespace = format!("ws-{name}");
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), &namespace);
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &namespace);
    let operators_egress = policies.get("allow-dns").await?.spec.and_then(|s| s.egress);
    let operators_pods =
        quotas.get("workspace").await?.spec.and_then(|s| s.hard).and_then(|h| h.get("pods").cloned());

    // Another tool (as Argo CD or a hand with kubectl would) takes the egress rule and the pod
    // quota, and adds a label of its own.
    let intruder = PatchParams::apply("netops").force();
    let open_egress = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "allow-dns", "labels": {"example.org/owner": "netops"}},
        "spec": {"egress": [{}]},
    });
    policies.patch("allow-dns", &intruder, &Patch::Apply(&open_egress)).await?;
    let more_pods = json!({
        "apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": "workspace"},
        "spec": {"hard": {"pods": "50"}},
    });
    quotas.patch("workspace", &intruder, &Patch::Apply(&more_pods)).await?;

    // The operator takes its fields back; the other writer's label stays.
    eventually(DEADLINE, "egress and quota restored", || async {
        let policy = policies.get("allow-dns").await?;
        let quota = quotas.get("workspace").await?;
        let restored = policy.spec.as_ref().and_then(|s| s.egress.clone()) == operators_egress
            && quota.spec.and_then(|s| s.hard).and_then(|h| h.get("pods").cloned()) == operators_pods;
        Ok(restored.then_some(policy))
    })
    .await
    .map(|policy| {
        let label = policy.metadata.labels.unwrap_or_default().get("example.org/owner").cloned();
        assert_eq!(label.as_deref(), Some("netops"), "a field the operator does not own is left alone");
    })?;
    Ok(())
}

/// `kind/name → resourceVersion` of every object with the workspace's label in its namespace.
async fn versions(client: &Client, namespace: &str, workspace: &str) -> Result<Vec<(String, String)>> {
    use k8s_openapi::api::{
        apps::v1::StatefulSet,
        core::v1::{LimitRange, PersistentVolumeClaim, Service},
        rbac::v1::{Role, RoleBinding},
    };
    let selector = kube::api::ListParams::default()
        .labels(&format!("{}={workspace}", haven_api::constants::labels::WORKSPACE));
    let mut all = vec![];
    macro_rules! collect {
        ($($kind:ty),*) => {$(
            for item in Api::<$kind>::namespaced(client.clone(), namespace).list_metadata(&selector).await?.items {
                let name = item.metadata.name.unwrap_or_default();
                all.push((format!("{}/{name}", stringify!($kind)), item.metadata.resource_version.unwrap_or_default()));
            }
        )*};
    }
    collect!(
        NetworkPolicy,
        ResourceQuota,
        LimitRange,
        Role,
        RoleBinding,
        PersistentVolumeClaim,
        Service,
        StatefulSet
    );
    all.sort();
    Ok(all)
}

#[tokio::test]
async fn a_converged_workspace_is_left_alone() -> Result<()> {
    let user = "idle@example.org";
    let (client, permit, _operator) = permit_with_operator("idle", user, 1).await?;
    let workspaces: Api<Workspace> = Api::all(client.clone());
    let name = unique_name("idle-ws");
    workspaces.create(&PostParams::default(), &fixtures::workspace(&name, &permit, user, json!({}))?).await?;
    haven_e2e::workspace::ready(&workspaces, &name).await?;
    let namespace = format!("ws-{name}");
    // Let the last status write and its echoes pass, then nothing may change for a while.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let before = versions(&client, &namespace, &name).await?;
    assert!(before.len() >= 10, "the workspace's children: {before:?}");
    let workspace_version = workspaces.get(&name).await?.metadata.resource_version;
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    assert_eq!(versions(&client, &namespace, &name).await?, before, "no child changed while idle");
    assert_eq!(
        workspaces.get(&name).await?.metadata.resource_version,
        workspace_version,
        "nor the workspace"
    );
    Ok(())
}

#[tokio::test]
async fn an_api_server_restart_mid_provisioning_is_survived() -> Result<()> {
    let user = "restart@example.org";
    let count = 8;
    let (client, permit, mut operator) = permit_with_operator("restart", user, count).await?;
    let workspaces: Api<Workspace> = Api::all(client.clone());
    let names: Vec<String> = (0..count).map(|i| unique_name(&format!("restart-ws{i}"))).collect();
    for name in &names {
        workspaces
            .create(&PostParams::default(), &fixtures::workspace(name, &permit, user, json!({}))?)
            .await?;
    }
    // Crash the API server while the operator is half-way through: some children applied,
    // some statuses written, requests in flight.
    eventually(DEADLINE, "provisioning under way", || async {
        // This test's workspaces only: others' (from tests running beside it) have a status too.
        let all = workspaces.list(&Default::default()).await?.items;
        let started = all.iter().any(|w| names.contains(&w.name_any()) && w.status.is_some());
        Ok(started.then_some(()))
    })
    .await?;
    haven_e2e::restart_api_server()?;
    let back = std::time::Instant::now();

    eventually_advancing("every workspace Ready after the restart", || async {
        let ready = ready_count(&workspaces, &names).await.unwrap_or(0);
        Ok(((ready == names.len()).then_some(()), ready))
    })
    .await?;
    println!("[e2e] all {count} workspaces Ready {:.1?} after the API server answered again", back.elapsed());
    assert!(operator.is_running(), "the operator reconnected rather than exiting");
    Ok(())
}
