//! The three sites stand on their own before anything joins them: at each, the operator the
//! test starts prepares that site's own survey for a permit there (never the raw identifiers),
//! and a workspace under it is provisioned; on a real node its environment reads the extract
//! and writes its home, the data store's permissions being right for a host-run operator.

use anyhow::{Context, Result, ensure};
use futures::future::try_join_all;
use haven_api::{DataPermit, Workspace, permit::PermitPhase, workspace::WorkspacePhase};
use haven_e2e_federation::{DEADLINE, Site, TEST_MANAGER, eventually, testenv_image, unique_name};
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams},
};
use serde_json::json;
use sha2::{Digest, Sha256};

const RESEARCHER: &str = "ada@example.org";

#[tokio::test(flavor = "multi_thread")]
async fn each_site_prepares_its_own_survey_and_provisions_a_workspace_with_its_own_operator() -> Result<()> {
    let sites = Site::all()?;
    ensure!(sites.len() == 3, "the tier has three sites, not {}", sites.len());
    let rows = try_join_all(sites.iter().map(permit_and_workspace_at)).await?;
    let summary: Vec<String> =
        sites.iter().zip(&rows).map(|(site, rows)| format!("{} {rows}", site.name)).collect();
    println!("survey rows prepared per site: {}", summary.join(", "));
    Ok(())
}

/// The permit's extract at `site`, checked against its raw survey, and a workspace under it;
/// returns the rows prepared.
async fn permit_and_workspace_at(site: &Site) -> Result<u64> {
    let operator = site.operator()?;
    let checked = check_site(site).await;
    checked.with_context(|| {
        format!("at {} (operator log {}):\n{}", site.name, operator.log().display(), operator.log_tail(20))
    })
}

async fn check_site(site: &Site) -> Result<u64> {
    let client = site.client().await?;
    let name = unique_name(&format!("smoke-{}", site.name));
    let permits: Api<DataPermit> = Api::all(client.clone());
    let now = chrono::Utc::now();
    let permit = json!({
        "apiVersion": "haven.io/v1alpha1", "kind": "DataPermit", "metadata": {"name": name},
        "spec": {
            "permitId": format!("FED-SMOKE-{name}"),
            "holder": {"organisation": "Haven federation tests", "principalInvestigator": "pi@example.org"},
            "purpose": "Statistics",
            "users": [RESEARCHER], "reviewers": ["checker@example.org"],
            "validFrom": (now - chrono::Duration::minutes(5)).to_rfc3339(),
            "validUntil": (now + chrono::Duration::days(1)).to_rfc3339(),
            "retention": "3s",
            "datasets": [{"name": "survey", "source": "survey/2025.csv", "columns": [
                {"name": "respondent_id", "rule": "Hmac"}, {"name": "region", "rule": "Keep"},
                {"name": "answer", "rule": "Keep"}]}],
            "environment": {"allowedImages": [testenv_image()]},
        }
    });
    let apply = PatchParams::apply(TEST_MANAGER).force();
    permits.patch(&name, &apply, &Patch::Apply(&permit)).await?;
    let report = eventually(DEADLINE, "the permit Active with its survey prepared", || async {
        let status = permits.get(&name).await?.status.unwrap_or_default();
        let prepared = status.datasets.into_iter().find(|d| d.name == "survey");
        Ok(prepared.filter(|_| status.phase == PermitPhase::Active))
    })
    .await?;

    // This site's survey, every row of it, and none of its respondents' identifiers.
    let raw_rows = site.survey_rows()?;
    ensure!(
        (report.rows_in, report.rows_out) == (raw_rows, raw_rows),
        "read {} rows and wrote {}, but {} holds {raw_rows}",
        report.rows_in,
        report.rows_out,
        site.raw_survey().display()
    );
    let extract = std::fs::read(site.data_root.join(format!("extracts/{name}/survey/data.csv")))
        .context("the extract on the site's data store")?;
    ensure!(
        hex::encode(Sha256::digest(&extract)) == report.output_sha256,
        "the extract is not the one reported"
    );
    let extract = String::from_utf8(extract)?;
    let raw = std::fs::read_to_string(site.raw_survey())?;
    let leaked: Vec<&str> = raw
        .lines()
        .skip(1)
        .filter_map(|line| line.split(',').next())
        .filter(|id| extract.contains(id))
        .collect();
    ensure!(leaked.is_empty(), "raw respondent ids in the extract: {leaked:?}");

    let workspaces: Api<Workspace> = Api::all(client.clone());
    let workspace = json!({
        "apiVersion": "haven.io/v1alpha1", "kind": "Workspace", "metadata": {"name": name},
        "spec": {"permit": name, "users": [RESEARCHER], "image": testenv_image(),
                 "resources": {"cpu": "100m", "memory": "128Mi"}, "homeStorage": "1Gi"}
    });
    workspaces.patch(&name, &apply, &Patch::Apply(&workspace)).await?;
    eventually(DEADLINE, "the workspace Ready", || async {
        let phase = workspaces.get(&name).await?.status.map(|s| s.phase);
        Ok((phase == Some(WorkspacePhase::Ready)).then_some(()))
    })
    .await?;
    if site.has_real_node()? {
        let (site, namespace, sha256) = (site.clone(), format!("ws-{name}"), report.output_sha256.clone());
        tokio::task::spawn_blocking(move || {
            environment_reads_the_extract_and_writes_home(&site, &namespace, &sha256)
        })
        .await??;
    }

    workspaces.delete(&name, &DeleteParams::default()).await?;
    eventually(DEADLINE, "the workspace gone", || async {
        Ok(workspaces.get_opt(&name).await?.is_none().then_some(()))
    })
    .await?;
    permits.delete(&name, &DeleteParams::default()).await?;
    eventually(DEADLINE, "the permit gone", || async {
        Ok(permits.get_opt(&name).await?.is_none().then_some(()))
    })
    .await?;
    Ok(raw_rows)
}

/// On a real node: the environment pod (uid 65532, the data store's group) reads the permit's
/// extract and writes its home on the data store the host-run operator made.
fn environment_reads_the_extract_and_writes_home(site: &Site, namespace: &str, sha256: &str) -> Result<()> {
    site.kubectl_ok(&[
        "-n",
        namespace,
        "wait",
        "--for=condition=Ready",
        "pod/workspace-0",
        "--timeout=120s",
    ])?;
    let probe = |args: &[&str]| -> Result<serde_json::Value> {
        let mut command = vec!["-n", namespace, "exec", "workspace-0", "--", "/haven-testenv"];
        command.extend_from_slice(args);
        let output = site.kubectl(&command)?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout.lines().last().context("the probe printed nothing")?;
        let line: serde_json::Value = serde_json::from_str(line)?;
        ensure!(output.status.success(), "{args:?} inside the environment: {line}");
        Ok(line)
    };
    let read = probe(&["read", "/data/survey/data.csv"])?;
    ensure!(read["sha256"] == sha256, "the environment sees another extract: {read}");
    probe(&["write", "/home/notes.txt"])?;
    println!("{}: the environment on the real node read its extract and wrote its home", site.name);
    Ok(())
}
