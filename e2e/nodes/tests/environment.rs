//! The analysis environment seen from inside its pod on a real node: what a researcher's
//! process can and cannot do (SATRE 2.1.08, 3.1.12), and a file it writes leaving through the
//! airlock byte for byte.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use haven_e2e::{kubectl_ok, unique_name};
use haven_e2e_nodes::{apply_as, data_root, permit_and_workspace, poll_until, probe};
use serde_json::json;
use sha2::{Digest, Sha256};

const RESEARCHER: &str = "gil@example.org";
const CHECKER: &str = "checker@example.org";

#[test]
fn the_environment_reads_its_extract_only_writes_home_only_and_holds_no_privilege() -> Result<()> {
    permit_and_workspace("env-a", RESEARCHER, json!({}))?;
    let ns = "ws-env-a";
    let inside = |args: &[&str]| probe(ns, "workspace-0", args);

    let me = inside(&["whoami"])?.line;
    println!("whoami: {me}");
    let uid = me["uid"].as_str().unwrap_or_default().split_whitespace().next().unwrap_or_default().to_owned();
    ensure!(!uid.is_empty() && uid != "0", "the environment runs as root or unknown: {me}");
    ensure!(me["no_new_privs"] == "1", "the process could gain privileges (no_new_privs unset): {me}");
    ensure!(me["cap_eff"] == "0000000000000000", "the process holds capabilities: {me}");
    ensure!(me["service_account_token"] == false, "a service-account token is mounted: {me}");

    // The dataset is there and readable (the twin), and read-only.
    let extract = inside(&["read", "/data/survey/data.csv"])?;
    ensure!(extract.ok, "the extract is not readable: {}", extract.line);
    let write_data = inside(&["write", "/data/survey/planted.csv"])?;
    ensure!(!write_data.ok, "the dataset mount is writable: {}", write_data.line);
    ensure!(
        write_data.line["error"].as_str().unwrap_or_default().contains("Read-only"),
        "the dataset write failed for another reason than a read-only mount: {}",
        write_data.line
    );
    // It is this permit's extract, byte for byte, and nothing else of the data store is there.
    let on_store = std::fs::read(data_root()?.join("extracts/env-a/survey/data.csv"))
        .context("the extract on the store")?;
    ensure!(
        extract.line["sha256"] == hex::encode(Sha256::digest(&on_store)).as_str(),
        "/data/survey/data.csv is not the permit's extract"
    );
    let data = inside(&["list", "/data"])?.line;
    ensure!(data["names"] == json!(["survey"]), "/data shows more than the permit's datasets: {data}");
    for absent in ["/raw", "/extracts", "/data/raw", "/audit", "/var/run/secrets/kubernetes.io"] {
        let seen = inside(&["list", absent])?;
        ensure!(!seen.ok, "{absent} is visible inside the environment: {}", seen.line);
    }
    let root = inside(&["write", "/planted"])?;
    ensure!(!root.ok, "the root file system is writable: {}", root.line);

    let home = inside(&["write", "/home/notes.txt"])?;
    ensure!(home.ok, "/home is not writable: {}", home.line);
    Ok(())
}

#[test]
fn a_file_the_environment_writes_to_the_outbox_leaves_through_the_airlock_with_the_same_sha256() -> Result<()>
{
    permit_and_workspace("env-b", RESEARCHER, json!({}))?;
    let ns = "ws-env-b";
    let written = probe(ns, "workspace-0", &["write", "/outputs/result.txt"])?;
    ensure!(written.ok, "the outbox is not writable: {}", written.line);
    let inside = probe(ns, "workspace-0", &["read", "/outputs/result.txt"])?;
    let sha_inside = inside.line["sha256"].as_str().context("sha256 inside")?.to_owned();

    let name = unique_name("result");
    let name = name.as_str();
    let request = json!({
        "apiVersion": "haven.io/v1alpha1", "kind": "AirlockRequest",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"direction": "Export", "requestedBy": RESEARCHER, "files": ["result.txt"],
                 "justification": "A file written by the environment itself."}});
    apply_as(RESEARCHER, &request)?;
    let phase = || -> Result<String> {
        let phase = kubectl_ok(&["-n", ns, "get", "airlockrequest", name, "-o", "jsonpath={.status.phase}"])?;
        let conditions =
            || kubectl_ok(&["-n", ns, "get", "airlockrequest", name, "-o", "jsonpath={.status.conditions}"]);
        ensure!(
            !matches!(phase.trim(), "Failed" | "Blocked" | "Rejected"),
            "{name} is {phase}: {}",
            conditions()?
        );
        Ok(phase.trim().to_owned())
    };
    poll_until(Duration::from_secs(180), "the request awaits review", || Ok(phase()? == "AwaitingReview"))?;
    let review = json!({"spec": {"reviews": [{"reviewer": CHECKER, "decision": "Approve"}]}});
    kubectl_ok(&[
        "--as",
        CHECKER,
        "-n",
        ns,
        "patch",
        "airlockrequest",
        name,
        "--type=merge",
        "-p",
        &review.to_string(),
    ])?;
    poll_until(Duration::from_secs(180), "the request is exported", || Ok(phase()? == "Exported"))?;

    let delivered =
        kubectl_ok(&["-n", ns, "get", "airlockrequest", name, "-o", "jsonpath={.status.delivery.path}"])?;
    let exported = data_root()?.join(delivered.trim()).join("files/result.txt");
    let bytes = std::fs::read(&exported).with_context(|| format!("reading {}", exported.display()))?;
    ensure!(
        hex::encode(Sha256::digest(&bytes)) == sha_inside,
        "the exported bytes differ from what the environment wrote"
    );
    let reviewed =
        kubectl_ok(&["-n", ns, "get", "airlockrequest", name, "-o", "jsonpath={.status.files[0].sha256}"])?;
    ensure!(
        reviewed.trim() == sha_inside,
        "the reviewed sha256 {reviewed} is not the environment's {sha_inside}"
    );
    println!("exported {} with the sha256 the environment saw: {sha_inside}", exported.display());
    Ok(())
}

#[test]
fn an_environment_left_pending_for_want_of_cpu_starts_once_its_workspace_asks_for_less() -> Result<()> {
    permit_and_workspace("env-c", RESEARCHER, json!({}))?;
    // More CPU than the two-core node has: the pod stays Pending, the workspace not Ready.
    let patch = |cpu: &str| {
        let body = json!({"spec": {"resources": {"cpu": cpu, "memory": "128Mi"}}});
        kubectl_ok(&["patch", "workspace", "env-c", "--type=merge", "-p", &body.to_string()]).map(drop)
    };
    patch("3")?;
    let phase = || kubectl_ok(&["get", "workspace", "env-c", "-o", "jsonpath={.status.phase}"]);
    poll_until(Duration::from_secs(180), "the workspace waits for a node", || {
        let unscheduled = kubectl_ok(&[
            "-n",
            "ws-env-c",
            "get",
            "pod",
            "workspace-0",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].reason}",
        ])
        .unwrap_or_default();
        Ok(unscheduled.trim() == "Unschedulable" && phase()?.trim() != "Ready")
    })?;
    println!("with 3 CPUs asked: {}", phase()?);

    patch("100m")?;
    let took = poll_until(Duration::from_secs(180), "the workspace is Ready again", || {
        Ok(phase()?.trim() == "Ready")
    })?;
    let ide = probe("ws-env-c", "workspace-0", &["get", "127.0.0.1:8888"])?;
    ensure!(ide.ok, "the new environment does not answer: {}", ide.line);
    println!("Ready {took:.1?} after the workspace asked for 100m");
    Ok(())
}
