//! Waiting for a workspace to be Ready, and saying where it stuck when it is not: a failed
//! wait names the workspace's phase, its Ready condition and its environment pod's state,
//! which is all a reader of CI's output has to go on.

use anyhow::Result;
use haven_api::{
    Workspace,
    constants::{ENVIRONMENT_NAME, conditions},
    validation::workspace_namespace,
    workspace::WorkspacePhase,
};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;

use crate::eventually_advancing;

/// What a wait for readiness last saw of a workspace.
#[derive(Debug, PartialEq)]
pub struct Progress {
    pub phase: Option<WorkspacePhase>,
    /// The Ready condition's reason and message.
    pub ready: Option<String>,
    /// The environment pod's phase and its conditions that are not true, with their reasons.
    pub pod: Option<String>,
}

/// Waits until the workspace `name` is Ready and returns it. Fails when what it shows has not
/// changed for [`crate::DEADLINE`] (see [`eventually_advancing`]), naming what it showed.
pub async fn ready(workspaces: &Api<Workspace>, name: &str) -> Result<Workspace> {
    let pods: Api<Pod> = Api::namespaced(workspaces.clone().into_client(), &workspace_namespace(name));
    eventually_advancing(&format!("workspace {name} Ready"), || async {
        let workspace = workspaces.get_opt(name).await?;
        let status = workspace.as_ref().and_then(|w| w.status.as_ref());
        let phase = status.map(|s| s.phase);
        if phase == Some(WorkspacePhase::Ready) {
            return Ok((workspace, Progress { phase, ready: None, pod: None }));
        }
        let ready = status
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == conditions::READY))
            .map(|c| format!("{}: {}", c.reason, c.message));
        let pod = pods.get_opt(&format!("{ENVIRONMENT_NAME}-0")).await?.map(|pod| pod_summary(&pod));
        Ok((None, Progress { phase, ready, pod }))
    })
    .await
}

/// `Pending; PodScheduled=False Unschedulable: 0/1 nodes are available...`
fn pod_summary(pod: &Pod) -> String {
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("no phase");
    let unmet =
        status.and_then(|s| s.conditions.as_ref()).into_iter().flatten().filter(|c| c.status != "True");
    let unmet = unmet.map(|c| {
        let (reason, message) =
            (c.reason.as_deref().unwrap_or_default(), c.message.as_deref().unwrap_or_default());
        format!("{}={} {reason}: {message}", c.type_, c.status)
    });
    std::iter::once(phase.to_owned()).chain(unmet).collect::<Vec<_>>().join("; ")
}
