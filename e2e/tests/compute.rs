//! Compute separation against the real scheduler and kwok's fake nodes: a permit with
//! `dedicatedNodes` runs only on the nodes labelled and tainted for it, so two permits' pods
//! never share a node; GPUs are requested and bounded by the quota; and a workspace with no
//! node to run on says so in its Ready condition.

use anyhow::{Context, Result};
use haven_api::{DataPermit, Workspace, constants::reasons, workspace::WorkspacePhase};
use haven_e2e::{DEADLINE, Operator, admin, data_root, eventually, fixtures, unique_name};
use k8s_openapi::api::core::v1::{Node, Pod, ResourceQuota};
use kube::{
    Api, Client,
    api::{DeleteParams, PostParams},
};
use serde_json::json;

const USER: &str = "compute@example.org";

/// A fake node, run by kwok, set aside for `permit`: labelled and tainted
/// `node-restriction.kubernetes.io/haven-permit`.
async fn dedicated_node(client: &Client, name: &str, permit: &str) -> Result<()> {
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"type": "kwok", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                       "node-restriction.kubernetes.io/haven-permit": permit},
        },
        "spec": {"taints": [{"key": "node-restriction.kubernetes.io/haven-permit", "value": permit, "effect": "NoSchedule"}]},
        "status": {
            "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "110", "nvidia.com/gpu": "4"},
            "capacity": {"cpu": "64", "memory": "256Gi", "pods": "110", "nvidia.com/gpu": "4"},
        },
    }))?;
    Api::<Node>::all(client.clone()).create(&PostParams::default(), &node).await?;
    Ok(())
}

fn dedicated_permit(name: &str) -> Result<DataPermit> {
    let mut permit = fixtures::permit(name, USER, -5, 900)?;
    permit.spec.environment.dedicated_nodes = true;
    permit.spec.environment.resource_ceiling.gpu = 1;
    Ok(permit)
}

/// The node the workspace's environment pod was scheduled to, once it runs.
async fn node_of(client: &Client, workspaces: &Api<Workspace>, workspace: &str) -> Result<String> {
    haven_e2e::workspace::ready(workspaces, workspace).await?;
    let pod = Api::<Pod>::namespaced(client.clone(), &format!("ws-{workspace}")).get("workspace-0").await?;
    pod.spec.and_then(|s| s.node_name).context("scheduled")
}

#[tokio::test]
async fn two_permits_pods_never_share_a_dedicated_node() -> Result<()> {
    let client = admin().await?;
    let root = data_root("compute")?;
    fixtures::write_raw_source(&root)?;
    let _operator = Operator::start(&root).await?;
    let permits: Api<DataPermit> = Api::all(client.clone());
    let workspaces: Api<Workspace> = Api::all(client.clone());

    let (a, b, shared) = (unique_name("sep-a"), unique_name("sep-b"), unique_name("sep-shared"));
    let (node_a, node_b) = (format!("{a}-node"), format!("{b}-node"));
    dedicated_node(&client, &node_a, &a).await?;
    dedicated_node(&client, &node_b, &b).await?;
    permits.create(&PostParams::default(), &dedicated_permit(&a)?).await?;
    permits.create(&PostParams::default(), &dedicated_permit(&b)?).await?;
    permits.create(&PostParams::default(), &fixtures::permit(&shared, USER, -5, 900)?).await?;

    let mut placed = Vec::new();
    for (permit, count) in [(&a, 2), (&b, 2), (&shared, 2)] {
        for i in 0..count {
            let name = unique_name(&format!("sep{i}"));
            // One workspace of each dedicated permit asks for a GPU.
            let changes =
                if i == 0 && permit != &shared { json!({"resources": {"gpu": 1}}) } else { json!({}) };
            workspaces
                .create(&PostParams::default(), &fixtures::workspace(&name, permit, USER, changes)?)
                .await?;
            placed.push((permit.clone(), name));
        }
    }
    for (permit, workspace) in &placed {
        let node = node_of(&client, &workspaces, workspace).await?;
        match permit {
            p if p == &a => assert_eq!(node, node_a, "{workspace} of {a}"),
            p if p == &b => assert_eq!(node, node_b, "{workspace} of {b}"),
            _ => assert!(
                node != node_a && node != node_b,
                "{workspace} of {shared} is on a dedicated node {node}"
            ),
        }
    }

    let (_, gpu_workspace) = &placed[0];
    let namespace = format!("ws-{gpu_workspace}");
    let pod = Api::<Pod>::namespaced(client.clone(), &namespace).get("workspace-0").await?;
    let requests = pod.spec.context("spec")?.containers[0].resources.clone().and_then(|r| r.requests);
    assert_eq!(requests.unwrap_or_default().get("nvidia.com/gpu").map(|q| q.0.as_str()), Some("1"));
    let quota =
        Api::<ResourceQuota>::namespaced(client.clone(), &namespace).list(&Default::default()).await?;
    let hard = quota.items.first().and_then(|q| q.spec.clone()).and_then(|s| s.hard).unwrap_or_default();
    assert_eq!(hard.get("requests.nvidia.com/gpu").map(|q| q.0.as_str()), Some("1"));

    for node in [&node_a, &node_b] {
        Api::<Node>::all(client.clone()).delete(node, &DeleteParams::default()).await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_workspace_without_a_matching_node_says_why_it_is_not_ready() -> Result<()> {
    let client = admin().await?;
    let root = data_root("unplaced")?;
    fixtures::write_raw_source(&root)?;
    let _operator = Operator::start(&root).await?;
    let permits: Api<DataPermit> = Api::all(client.clone());
    let workspaces: Api<Workspace> = Api::all(client.clone());
    let (permit, workspace) = (unique_name("nonode-p"), unique_name("nonode-w"));
    permits.create(&PostParams::default(), &dedicated_permit(&permit)?).await?;
    workspaces
        .create(&PostParams::default(), &fixtures::workspace(&workspace, &permit, USER, json!({}))?)
        .await?;

    // The scheduler's first attempt may find the claims not yet bound; the reason that stays
    // is the nodes'.
    let (phase, message) = eventually(DEADLINE, "Ready=False, Unschedulable for want of a node", || async {
        let status = workspaces.get(&workspace).await?.status.unwrap_or_default();
        let ready = status.conditions.iter().find(|c| {
            c.type_ == "Ready" && c.reason == reasons::UNSCHEDULABLE && c.message.contains("didn't match")
        });
        Ok(ready.map(|c| (status.phase, c.message.clone())))
    })
    .await?;
    assert_eq!(phase, WorkspacePhase::Provisioning);
    assert!(message.starts_with("the analysis environment cannot be scheduled: "), "{message}");

    // Once the platform sets a node aside for the permit, the workspace runs there.
    let node = format!("{permit}-node");
    dedicated_node(&client, &node, &permit).await?;
    assert_eq!(node_of(&client, &workspaces, &workspace).await?, node);
    Api::<Node>::all(client.clone()).delete(&node, &DeleteParams::default()).await?;
    Ok(())
}
