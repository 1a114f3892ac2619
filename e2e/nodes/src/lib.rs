//! Helpers for the real-node tier: the node's addresses, pods running `haven-testenv`, probes
//! run inside them, and the guard's drop count. `e2e/run-nodes.sh` starts a cluster with a
//! real node (e2e/node.sh), installs the chart with the operator's image and runs these tests.
#![forbid(unsafe_code)]

pub mod chromium;
pub mod gateway_browser;
pub mod oidc_login;

pub use gateway_browser::{Browser, GATEWAY_DOMAIN, GATEWAY_PORT, node_address, workspace_url};
pub use oidc_login::{IdpEnv, IdpUser, jwt_claims, login, login_from, totp_now};

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context, Result, bail};
use haven_e2e::{kubectl, kubectl_ok, kubectl_with_input, repo_path};
use serde_json::{Value, json};

/// The node's addresses and the outside stand-ins, as `e2e/node.sh env` prints them.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    /// The node's address (its end of the veth; kubelet, NodePorts).
    pub ip: String,
    /// The host's end of the node's veth: the API server's advertised address and the OpenID
    /// provider's (e2e/idp.sh).
    pub host_ip: String,
    /// A host in a namespace of the test's own, standing in for the internet.
    pub internet: String,
    /// The same, at the cloud metadata address.
    pub metadata: String,
    /// The same, standing in for a permit's package mirror (listening on 3128, 80, 443, 8888).
    pub mirror: String,
}

fn node_script(args: &[&str]) -> Result<String> {
    let output = std::process::Command::new(repo_path("e2e/node.sh"))
        .args(args)
        .output()
        .context("running e2e/node.sh")?;
    if !output.status.success() {
        bail!("e2e/node.sh {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

pub fn node() -> Result<Node> {
    let text = node_script(&["env"])?;
    let vars: BTreeMap<&str, &str> = text.lines().filter_map(|line| line.split_once('=')).collect();
    let get = |key: &str| vars.get(key).map(|v| (*v).to_owned()).with_context(|| format!("{key} missing"));
    Ok(Node {
        name: get("NODE_NAME")?,
        ip: get("NODE_IP")?,
        host_ip: get("HOST_IP")?,
        internet: get("OUTSIDE_INTERNET")?,
        metadata: get("OUTSIDE_METADATA")?,
        mirror: get("OUTSIDE_MIRROR")?,
    })
}

/// Packets the node's guard dropped: any pod packet bound off the node. Must stay 0.
pub fn guard_drops() -> Result<u64> {
    let text = node_script(&["guard-drops"])?;
    text.trim().parse().with_context(|| format!("guard count {text:?}"))
}

/// The test environment image, as e2e/run-nodes.sh imported it.
pub fn testenv_image() -> String {
    std::env::var("HAVEN_TESTENV_IMAGE")
        .unwrap_or_else(|_| format!("haven.local/testenv:{}", env!("CARGO_PKG_VERSION")))
}

/// The Python environment with a TES client (images/python-tes.sh), as e2e/run-nodes.sh
/// imported it; it serves HTTP on 8888 and runs as 1000:100 under a read-only root.
pub fn python_tes_image() -> String {
    std::env::var("HAVEN_PYTHON_TES_IMAGE").unwrap_or_else(|_| {
        let version = include_str!("../../versions.env")
            .lines()
            .find_map(|line| line.strip_prefix("PY_TES_VERSION="))
            .expect("PY_TES_VERSION in e2e/versions.env");
        format!("haven.local/python-tes:{version}")
    })
}

/// The data store the in-cluster operator uses (a hostPath on the node).
pub fn data_root() -> Result<std::path::PathBuf> {
    std::env::var_os("HAVEN_NODES_DATA")
        .map(Into::into)
        .context("HAVEN_NODES_DATA is not set: run e2e/run-nodes.sh")
}

/// What a probe inside a pod saw: whether it succeeded, and its JSON line.
#[derive(Debug, Clone)]
pub struct Probe {
    pub ok: bool,
    pub line: Value,
}

/// Runs `haven-testenv ARGS` in `namespace/pod` (as the cluster admin: `exec` is an admin's
/// tool here, never a researcher's).
pub fn probe(namespace: &str, pod: &str, args: &[&str]) -> Result<Probe> {
    let mut command = vec!["-n", namespace, "exec", pod, "--", "/haven-testenv"];
    command.extend_from_slice(args);
    let output = kubectl(&command)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().and_then(|l| serde_json::from_str(l).ok());
    match line {
        Some(line) => Ok(Probe { ok: output.status.success(), line }),
        None => bail!(
            "probe {args:?} in {namespace}/{pod} printed no result (the exec itself failed): {}",
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

/// A namespace with one `haven-testenv` pod (`testenv`) serving on 8888, meeting Pod Security
/// `restricted`; returns once it is Ready.
pub fn testenv_pod(namespace: &str) -> Result<()> {
    let manifest = json!({
        "apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "testenv", "namespace": namespace,
              "labels": {"app": "testenv"}},
             "spec": {
                "automountServiceAccountToken": false,
                "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{"name": "testenv", "image": testenv_image(),
                    "ports": [{"containerPort": 8888}],
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}},
                    "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                        "capabilities": {"drop": ["ALL"]}}}]}}]});
    apply(&manifest)?;
    wait_ready(namespace, "pod/testenv")
}

pub fn apply(document: &Value) -> Result<()> {
    applied(kubectl_with_input(&["apply", "-f", "-"], &document.to_string())?)
}

/// `kubectl apply --server-side --as USER` (server-side: it needs `patch`, not `get`).
pub fn apply_as(user: &str, document: &Value) -> Result<()> {
    let args = ["--as", user, "apply", "--server-side", "--field-manager=haven-e2e-nodes", "-f", "-"];
    applied(kubectl_with_input(&args, &document.to_string())?)
}

fn applied(output: std::process::Output) -> Result<()> {
    if !output.status.success() {
        bail!("kubectl apply: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(())
}

/// Waits for a pod to be Ready (generous: a cold node pulls nothing, but a busy one is slow).
pub fn wait_ready(namespace: &str, pod: &str) -> Result<()> {
    kubectl_ok(&["-n", namespace, "wait", "--for=condition=Ready", pod, "--timeout=180s"]).map(drop)
}

pub fn pod_ip(namespace: &str, pod: &str) -> Result<String> {
    let ip = kubectl_ok(&["-n", namespace, "get", "pod", pod, "-o", "jsonpath={.status.podIP}"])?;
    if ip.trim().is_empty() {
        bail!("{namespace}/{pod} has no IP");
    }
    Ok(ip.trim().to_owned())
}

pub fn service_ip(namespace: &str, service: &str) -> Result<String> {
    Ok(kubectl_ok(&["-n", namespace, "get", "service", service, "-o", "jsonpath={.spec.clusterIP}"])?
        .trim()
        .to_owned())
}

/// A permit over the tier's survey extract for `user`, allowing the test environment image,
/// with `environment` merged into its environment section (e.g. a package mirror); and one
/// workspace under it, small enough for a two-core node. Returns once the environment pod
/// is Ready; the pod is `workspace-0` in namespace `ws-<name>`.
pub fn permit_and_workspace(name: &str, user: &str, environment: Value) -> Result<()> {
    permit_and_workspace_for(name, &[user], "checker@example.org", environment)
}

/// [`permit_and_workspace`] for several users (all of them the workspace's) and a reviewer.
pub fn permit_and_workspace_for(
    name: &str,
    users: &[&str],
    reviewer: &str,
    environment: Value,
) -> Result<()> {
    permit_and_workspace_with(name, users, reviewer, environment, json!({}), &testenv_image())
}

/// [`permit_and_workspace_for`] with more of the permit's spec (e.g. `multiSite`) and the
/// workspace's environment image (which the permit then allows too).
pub fn permit_and_workspace_with(
    name: &str,
    users: &[&str],
    reviewer: &str,
    environment: Value,
    permit: Value,
    image: &str,
) -> Result<()> {
    let mut images = vec![testenv_image()];
    if image != images[0] {
        images.push(image.to_owned());
    }
    let mut env = json!({"allowedImages": images});
    if let (Some(target), Some(extra)) = (env.as_object_mut(), environment.as_object()) {
        target.extend(extra.clone());
    }
    let mut spec = json!({
        "permitId": format!("HDAB-NODES-{name}"),
        "holder": {"organisation": "Haven real-node tests", "principalInvestigator": "pi@example.org"},
        "purpose": "Statistics",
        "users": users, "reviewers": [reviewer],
        "validFrom": "2026-01-01T00:00:00Z", "validUntil": "2030-01-01T00:00:00Z",
        "datasets": [{"name": "survey", "source": "survey/2025.csv", "columns": [
            {"name": "respondent_id", "rule": "Hmac"}, {"name": "region", "rule": "Keep"},
            {"name": "answer", "rule": "Keep"}]}],
        "environment": env,
    });
    if let (Some(target), Some(extra)) = (spec.as_object_mut(), permit.as_object()) {
        target.extend(extra.clone());
    }
    apply(&json!({
        "apiVersion": "haven.io/v1alpha1", "kind": "DataPermit", "metadata": {"name": name}, "spec": spec
    }))?;
    kubectl_ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Active",
        &format!("datapermit/{name}"),
        "--timeout=180s",
    ])?;
    apply(&json!({
        "apiVersion": "haven.io/v1alpha1", "kind": "Workspace", "metadata": {"name": name},
        "spec": {"permit": name, "users": users, "image": image,
                 "resources": {"cpu": "100m", "memory": "128Mi"}, "homeStorage": "1Gi"}
    }))?;
    kubectl_ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Ready",
        &format!("workspace/{name}"),
        "--timeout=180s",
    ])?;
    wait_ready(&format!("ws-{name}"), "pod/workspace-0")
}

/// Retries `check` every half second until it returns true or `limit` passes; returns the
/// time it took (for the figures a test prints) or fails naming `what`.
pub fn poll_until(limit: Duration, what: &str, mut check: impl FnMut() -> Result<bool>) -> Result<Duration> {
    let start = std::time::Instant::now();
    loop {
        if check()? {
            return Ok(start.elapsed());
        }
        if start.elapsed() > limit {
            bail!("{what}: not within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
