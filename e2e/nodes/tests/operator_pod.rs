//! The chart, for real: the operator runs from its image as the chart's pod, holds the Lease,
//! survives the loss of its pod (a new one takes over) and reconciles a permit and a
//! workspace end to end from inside the cluster.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use haven_e2e::kubectl_ok;
use haven_e2e_nodes::{permit_and_workspace, poll_until, probe};
use serde_json::{Value, json};

const NAMESPACE: &str = "haven-system";

fn operator_pods() -> Result<Vec<Value>> {
    let list =
        kubectl_ok(&["-n", NAMESPACE, "get", "pods", "-l", "app.kubernetes.io/name=haven", "-o", "json"])?;
    let list: Value = serde_json::from_str(&list)?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

fn ready(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_null()
        && pod["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

fn lease_holder() -> Result<String> {
    Ok(kubectl_ok(&[
        "-n",
        NAMESPACE,
        "get",
        "lease",
        "haven-operator",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])?
    .trim()
    .to_owned())
}

#[test]
fn the_operator_runs_from_its_image_survives_losing_its_pod_and_reconciles_from_inside() -> Result<()> {
    let pods = operator_pods()?;
    let first = pods.iter().find(|p| ready(p)).context("no Ready operator pod")?;
    let name = first["metadata"]["name"].as_str().context("pod name")?.to_owned();
    let spec = &first["spec"];
    println!("operator pod {name}: image {} on {}", spec["containers"][0]["image"], spec["nodeName"]);
    ensure!(spec["nodeName"] != "" && !spec["nodeName"].is_null(), "the operator pod is not on a node");
    let security = &spec["containers"][0]["securityContext"];
    ensure!(security["readOnlyRootFilesystem"] == true, "root filesystem writable: {security}");
    ensure!(security["allowPrivilegeEscalation"] == false, "privilege escalation allowed: {security}");
    let runs_as = spec["securityContext"]["runAsUser"].as_i64().or(security["runAsUser"].as_i64());
    ensure!(
        runs_as.is_some_and(|uid| uid != 0),
        "the operator pod may run as root: {}",
        spec["securityContext"]
    );
    let holder = lease_holder()?;
    ensure!(holder.starts_with(&name), "the Lease is held by {holder:?}, not the running pod {name}");

    kubectl_ok(&["-n", NAMESPACE, "delete", "pod", &name, "--wait=false"])?;
    let took_over = poll_until(Duration::from_secs(180), "a new operator pod holds the Lease", || {
        let holder = lease_holder()?;
        Ok(!holder.starts_with(&name)
            && operator_pods()?
                .iter()
                .any(|p| ready(p) && holder.starts_with(p["metadata"]["name"].as_str().unwrap_or("-"))))
    })?;
    println!("a new pod took the Lease {took_over:.1?} after the old one was deleted");

    // The new pod prepares a permit's extract and provisions its workspace, whose environment
    // then answers on the IDE port.
    permit_and_workspace("op-a", "hal@example.org", json!({}))?;
    let ide = probe("ws-op-a", "workspace-0", &["get", "127.0.0.1:8888"])?;
    ensure!(ide.ok, "the environment does not answer on its IDE port: {}", ide.line);
    Ok(())
}
