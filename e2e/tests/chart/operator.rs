//! The operator as the chart runs it: `haven run` takes the chart's arguments and answers its
//! probes, and GitOps applies of the examples change nothing after it reconciled them.

use std::process::Output;

use anyhow::{Context, Result, ensure};
use haven_api::{DataPermit, Workspace, permit::PermitPhase, workspace::WorkspacePhase};
use haven_e2e::{
    DEADLINE, Operator, admin, data_root, ensure_namespace, eventually, kubectl_ok, kubectl_with_input,
    repo_path, unique_name, yaml_documents,
};
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams},
};
use serde_json::{Value, json};

use super::{find, render_values};

/// `GET path` on 127.0.0.1:`port`: the status code.
fn http_status(port: u16, path: &str) -> Result<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response.split_whitespace().nth(1).context("status line")?.parse()?)
}

#[tokio::test]
async fn haven_run_accepts_the_charts_arguments_and_answers_its_probes() -> Result<()> {
    let client = admin().await?;
    ensure_namespace(&client, "haven-system").await?;
    let root = data_root("chart-args")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let values = json!({"metrics": {"port": port}, "volumeBackend": {"hostPath": {"root": root}},
        "logging": {"level": "debug"}, "airlock": {"scanner": {"command": "true"}}});
    let documents = yaml_documents(&render_values("haven", "haven-system", &values)?)?;
    let container = &find(&documents, "Deployment", "haven")?["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> =
        container["args"].as_array().context("args")?.iter().filter_map(Value::as_str).collect();
    ensure!(args.first() == Some(&"run"), "{args:?}");
    // Everything but the data root, which the harness points at this test's own directory, and
    // the tier ConfigMap, which it points at the one of the release whose RBAC the operator has.
    ensure!(args.contains(&"--tier-config-map=haven-tiers"), "{args:?}");
    let flags: Vec<&str> = args[1..]
        .iter()
        .copied()
        .filter(|a| !a.starts_with("--data-root=") && !a.starts_with("--tier-config-map="))
        .collect();
    let _operator = Operator::start_with(&root, &flags).await?;
    let probes = |probe: &str| container[probe]["httpGet"]["path"].as_str().map(str::to_owned);
    let (liveness, readiness) =
        (probes("livenessProbe").context("liveness")?, probes("readinessProbe").context("readiness")?);
    eventually(DEADLINE, "the probes answer 200", || async {
        let ok = matches!(http_status(port, &liveness), Ok(200))
            && matches!(http_status(port, &readiness), Ok(200));
        Ok(ok.then_some(()))
    })
    .await?;
    ensure!(http_status(port, "/metrics")? == 200);
    Ok(())
}

/// The example permit and workspace under fresh names, as a GitOps repository would hold them.
fn renamed_examples(permit: &str, workspace: &str) -> Result<Vec<Value>> {
    let read = |file: &str| -> Result<Value> {
        let text = std::fs::read_to_string(repo_path(&format!("examples/{file}")))?;
        yaml_documents(&text)?.into_iter().next().with_context(|| format!("examples/{file} is empty"))
    };
    let (mut p, mut w) = (read("datapermit.yaml")?, read("workspace.yaml")?);
    p["metadata"]["name"] = json!(permit);
    w["metadata"]["name"] = json!(workspace);
    w["spec"]["permit"] = json!(permit);
    Ok(vec![p, w])
}

/// A raw source for the example's dataset that passes its k-anonymity check (k = 5).
fn write_example_source(root: &std::path::Path) -> Result<()> {
    let mut csv =
        "nhs_number,date_of_birth,postcode,age_at_diagnosis,sex,icd10_code,free_text_notes\n".to_owned();
    for i in 0..10 {
        csv += &format!("94347659{i:02},1961-03-0{},AB12 3CD,63,F,C50.{i},note {i}\n", i % 9 + 1);
    }
    std::fs::create_dir_all(root.join("raw/registry"))?;
    Ok(std::fs::write(root.join("raw/registry/cancer-2024.csv"), csv)?)
}

/// Server-side apply as Argo CD would (its own field manager, no forced conflicts).
fn gitops_apply(documents: &[Value]) -> Result<Output> {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": documents});
    kubectl_with_input(&["apply", "--server-side", "--field-manager=argocd", "-f", "-"], &list.to_string())
}

/// Generation, spec, and the field managers that own anything in spec.
fn gitops_view(kind: &str, name: &str) -> Result<(Value, Value, Vec<String>)> {
    let object: Value =
        serde_json::from_str(&kubectl_ok(&["get", kind, name, "-o", "json", "--show-managed-fields"])?)?;
    let spec_owners = object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["fieldsV1"].get("f:spec").is_some())
        .filter_map(|entry| entry["manager"].as_str().map(str::to_owned))
        .collect();
    Ok((object["metadata"]["generation"].clone(), object["spec"].clone(), spec_owners))
}

#[tokio::test]
async fn examples_applied_again_by_gitops_change_nothing_after_the_operator_reconciled_them() -> Result<()> {
    let client = admin().await?;
    ensure_namespace(&client, "haven-system").await?;
    let root = data_root("gitops")?;
    write_example_source(&root)?;
    let (permit, workspace) = (unique_name("gitops-permit"), unique_name("gitops-ws"));
    let documents = renamed_examples(&permit, &workspace)?;
    let _operator = Operator::start(&root).await?;

    let first = gitops_apply(&documents)?;
    ensure!(first.status.success(), "first apply: {}", String::from_utf8_lossy(&first.stderr));
    let (permits, workspaces) =
        (Api::<DataPermit>::all(client.clone()), Api::<Workspace>::all(client.clone()));
    eventually(DEADLINE, "permit Active and workspace Ready", || async {
        let permit_phase = permits.get(&permit).await?.status.map(|s| s.phase);
        let workspace_phase = workspaces.get(&workspace).await?.status.map(|s| s.phase);
        Ok((permit_phase == Some(PermitPhase::Active) && workspace_phase == Some(WorkspacePhase::Ready))
            .then_some(()))
    })
    .await?;
    let before = [gitops_view("datapermit", &permit)?, gitops_view("workspace", &workspace)?];

    // What Argo CD's diff would show, then the sync itself: nothing, and no conflict.
    let list = json!({"apiVersion": "v1", "kind": "List", "items": documents}).to_string();
    let diff = kubectl_with_input(&["diff", "--server-side", "--field-manager=argocd", "-f", "-"], &list)?;
    ensure!(
        diff.status.code() == Some(0),
        "kubectl diff after reconcile: {}{}",
        String::from_utf8_lossy(&diff.stdout),
        String::from_utf8_lossy(&diff.stderr)
    );
    let second = gitops_apply(&documents)?;
    ensure!(second.status.success(), "second apply: {}", String::from_utf8_lossy(&second.stderr));
    let after = [gitops_view("datapermit", &permit)?, gitops_view("workspace", &workspace)?];
    ensure!(before == after, "the second apply changed something: {before:?} -> {after:?}");
    for (_, _, owners) in &after {
        ensure!(owners == &["argocd"], "spec is owned by {owners:?}, not only by argocd");
    }

    // Clean up through the operator: teardown, then a short retention so the permit goes too.
    workspaces.delete(&workspace, &DeleteParams::default()).await?;
    eventually(DEADLINE, "workspace gone", || async {
        Ok(workspaces.get_opt(&workspace).await?.is_none().then_some(()))
    })
    .await?;
    let retention = Patch::Merge(json!({"spec": {"retention": "1s"}}));
    permits.patch(&permit, &PatchParams::default(), &retention).await?;
    permits.delete(&permit, &DeleteParams::default()).await?;
    eventually(DEADLINE, "permit gone", || async {
        Ok(permits.get_opt(&permit).await?.is_none().then_some(()))
    })
    .await
}
