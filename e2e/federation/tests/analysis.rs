//! Compute-to-data across three Haven sites, each its own control plane, operator, data store
//! and keys: the hub (requesting site, holding data too) and north on real nodes, so tasks
//! really run beside their extracts; south with a suspended permit, so it takes part in
//! nothing. A researcher's task fans out; north's output checker approves, the hub's rejects;
//! only north's approved package arrives, byte for byte what north's checkers saw. A task that
//! copies the extract is blocked at the data site and never leaves; a task with an image or a
//! user north's permit does not allow is refused there, the reason visible at the hub. Killing
//! the federation processes and north's operator mid-task converges with nothing lost or
//! duplicated. Every step is in each site's hash-chained log, the release's manifest hash at
//! both ends.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use haven_api::{
    AirlockRequest, Workspace,
    airlock::AirlockPhase,
    task::{SiteTaskState, TesState},
};
use haven_e2e_federation::{
    Site, eventually,
    scenario::{ADA, BEN, Federation, TASK_DEADLINE, checker},
    testenv_image,
};
use k8s_openapi::api::events::v1::Event;
use kube::{Api, ResourceExt, api::ListParams};
use serde_json::json;
use sha2::{Digest, Sha256};

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The records of a site's federation log, after checking its chain.
fn federation_log(site: &Site) -> Result<Vec<haven_data::AuditRecord>> {
    let path = site.data_root.join("audit/federation.log");
    let (_, records) =
        haven_data::audit::read_verified(&path).with_context(|| format!("{}", path.display()))?;
    Ok(records)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_analysis_goes_to_each_sites_data_and_only_approved_results_come_back() -> Result<()> {
    let mut fed = Federation::start(&["south"]).await?;
    let count = [
        "/haven-testenv",
        "count",
        "--input",
        "/data/survey/data.csv",
        "--by",
        "region",
        "--output",
        "/outputs/counts.csv",
    ];
    fed.submit(ADA, "counts", &testenv_image(), &count)?;

    // South's data access body suspended its permit: south takes part in nothing, and says so.
    let south = fed.site_reaches("counts", "south", SiteTaskState::NotParticipating).await?;
    ensure!(south.reason == "Suspended" && south.message.contains("south"), "{south:?}");

    // Cut the line mid-task: the hub's federation and north's agent die while north runs it.
    let under_way = [SiteTaskState::Running, SiteTaskState::Checking, SiteTaskState::AwaitingReview];
    fed.site_reaches_one_of("counts", "north", &under_way).await?;
    fed.process("hub federation").kill();
    fed.process("north federation").kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    fed.process("hub federation").restart()?;
    fed.process("north federation").restart()?;
    // And north's operator, while its airlock takes the outputs in.
    fed.site_reaches_one_of("counts", "north", &[SiteTaskState::Checking, SiteTaskState::AwaitingReview])
        .await?;
    fed.process("north operator").kill();
    fed.process("north operator").restart()?;

    // Each data site's own checks, then its own output checker.
    let at_north = fed.outputs_request("north", "counts", AirlockPhase::AwaitingReview).await?;
    ensure!(at_north.spec.requested_by != ADA, "the data site's agent asks, on ada's behalf");
    let at_hub = fed.outputs_request("hub", "counts", AirlockPhase::AwaitingReview).await?;
    fed.site_reaches("counts", "north", SiteTaskState::AwaitingReview).await?;
    // The researcher is never a reviewer, at any site.
    ensure!(
        fed.review("north", &at_north, ADA, "Approve", "mine").is_err(),
        "ada approved her own outputs at north"
    );
    fed.review("north", &at_north, &checker("north"), "Approve", "aggregate counts, all cells over 10")?;
    fed.review("hub", &at_hub, &checker("hub"), "Reject", "not this week")?;

    let delivered = fed.site_reaches("counts", "north", SiteTaskState::Delivered).await?;
    let rejected = fed.site_reaches("counts", "hub", SiteTaskState::Rejected).await?;
    ensure!(
        rejected.message.contains("not this week"),
        "the reviewer's reason reaches the researcher: {rejected:?}"
    );

    // What arrived is byte for byte what north's checkers saw, under the manifest they approved.
    let approved = fed.outputs_request("north", "counts", AirlockPhase::Exported).await?;
    let approved_status = approved.status.context("status")?;
    let snapshot = approved_status.snapshot.context("snapshot")?;
    ensure!(
        delivered.manifest_sha256.as_deref() == Some(snapshot.manifest_sha256.as_str()),
        "{delivered:?} vs {snapshot:?}"
    );
    let landed = fed.landed("counts", "north");
    let manifest = std::fs::read(landed.join("MANIFEST.json"))?;
    ensure!(sha256_hex(&manifest) == snapshot.manifest_sha256, "the landed manifest is the approved one");
    let counts = std::fs::read(landed.join("files/counts.csv"))?;
    let reviewed =
        approved_status.files.iter().find(|f| f.path == "counts.csv").context("counts.csv reviewed")?;
    ensure!(sha256_hex(&counts) == reviewed.sha256, "counts.csv is not the reviewed bytes");
    let text = String::from_utf8(counts)?;
    let total: u64 = text.lines().skip(1).filter_map(|l| l.rsplit(',').next()?.parse::<u64>().ok()).sum();
    ensure!(total == fed.site("north").survey_rows()?, "north's counts add up to its survey: {text}");
    ensure!(!fed.landed("counts", "hub").exists(), "a rejected package landed");
    ensure!(!fed.landed("counts", "south").exists(), "a site that took no part sent something");

    let task = fed.tasks().await?.get("counts").await?;
    let status = task.status.clone().context("status")?;
    ensure!(status.state == TesState::Complete, "{status:?}");
    ensure!(
        status.summary.as_deref() == Some("1 Delivered, 1 NotParticipating, 1 Rejected"),
        "{:?}",
        status.summary
    );

    // Nothing duplicated by the kills: one workspace, one Job, one request at north for the task.
    let north_client = fed.site("north").client().await?;
    let selector = format!("haven.io/task-uid={}", task.uid().unwrap_or_default());
    let requests = Api::<AirlockRequest>::all(north_client.clone())
        .list(&ListParams::default().labels(&selector))
        .await?;
    ensure!(requests.items.len() == 1, "{} export requests at north", requests.items.len());

    // The release is in both sites' chained logs, under the same manifest hash.
    let released = federation_log(fed.site("north"))?
        .into_iter()
        .filter(|r| {
            r.action == "package-released" && r.detail["manifestSha256"] == json!(snapshot.manifest_sha256)
        })
        .count();
    ensure!(released == 1, "north's log records the release {released} times");
    let received = federation_log(fed.hub())?
        .into_iter()
        .filter(|r| {
            r.action == "package-received" && r.detail["manifestSha256"] == json!(snapshot.manifest_sha256)
        })
        .count();
    ensure!(received == 1, "the hub's log records the arrival {received} times");
    let north_actions: Vec<String> =
        federation_log(fed.site("north"))?.into_iter().map(|r| r.action).collect();
    for step in ["task-received", "task-run", "outputs-submitted", "outputs-approved", "package-released"] {
        ensure!(north_actions.iter().any(|a| a == step), "north's log lacks {step}: {north_actions:?}");
    }

    // Row-level data never leaves: a copy of the extract is blocked by north's own checks.
    let copy =
        ["/haven-testenv", "copy", "--input", "/data/survey/data.csv", "--output", "/outputs/rows.csv"];
    fed.submit(ADA, "rows", &testenv_image(), &copy)?;
    let blocked = fed.site_reaches("rows", "north", SiteTaskState::Blocked).await?;
    ensure!(blocked.message.contains("row-level"), "{blocked:?}");
    ensure!(!fed.landed("rows", "north").exists(), "row-level data arrived");

    // An image, or a person, north's permit does not allow: refused there, the reason here.
    fed.submit(ADA, "exfil", "registry.example.org/exfil:1", &["sh"])?;
    let refused = fed.site_reaches("exfil", "north", SiteTaskState::Refused).await?;
    ensure!(
        refused.reason == "ImageNotAllowed" && refused.message.contains("registry.example.org/exfil:1"),
        "{refused:?}"
    );
    let events: Api<Event> = Api::namespaced(fed.hub().client().await?, &fed.namespace);
    eventually(TASK_DEADLINE, "a Warning Event on exfil naming the image", || async {
        let all = events.list(&ListParams::default()).await?.items;
        Ok(all.into_iter().find(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("exfil")
                && e.type_.as_deref() == Some("Warning")
                && e.note
                    .as_deref()
                    .is_some_and(|n| n.contains("site north") && n.contains("registry.example.org/exfil:1"))
        }))
    })
    .await?;
    fed.submit(BEN, "bens", &testenv_image(), &count)?;
    let refused = fed.site_reaches("bens", "north", SiteTaskState::Refused).await?;
    ensure!(refused.reason == "UserNotPermitted" && refused.message.contains(BEN), "{refused:?}");

    // A task ada cancels stops everywhere.
    fed.submit(ADA, "cancelled", &testenv_image(), &count)?;
    fed.site_reaches_one_of("cancelled", "north", &under_way).await?;
    let tasks = fed.tasks().await?;
    let cancel = json!({"spec": {"cancelled": true}});
    let ada = fed.hub().kubectl_ok(&[
        "-n",
        &fed.namespace,
        "patch",
        "analysistask",
        "cancelled",
        "--type=merge",
        "-p",
        &cancel.to_string(),
        &format!("--as={ADA}"),
        "--as-group=system:masters",
    ]);
    ada?;
    fed.site_reaches("cancelled", "north", SiteTaskState::Cancelled).await?;
    ensure!(
        tasks.get("cancelled").await?.status.context("status")?.state == TesState::Canceled,
        "not canceled"
    );
    let workspaces: Api<Workspace> = Api::all(north_client);
    let cancelled_uid = tasks.get("cancelled").await?.uid().unwrap_or_default();
    eventually(TASK_DEADLINE, "the cancelled task's workspace gone at north", || async {
        let left = workspaces
            .list(&ListParams::default().labels(&format!("haven.io/task-uid={cancelled_uid}")))
            .await?;
        Ok(left.items.is_empty().then_some(()))
    })
    .await?;
    // South ran nothing: no task workspace was ever made there.
    let at_south: Api<Workspace> = Api::all(fed.site("south").client().await?);
    let made = at_south.list(&ListParams::default().labels("haven.io/requesting-site=hub")).await?;
    ensure!(made.items.is_empty(), "south made {} task workspaces", made.items.len());
    println!(
        "multi-site permit {}: counts delivered from north, rejected at the hub, south not participating; copy blocked; image and user refused; cancel honoured",
        fed.multi_site
    );
    Ok(())
}
