//! The airlock against the real control plane, with the operator running and every person
//! impersonated: a researcher's export is snapshotted, checked and reviewed, and delivers
//! exactly the submitted bytes (D3); self-review, reviews in another's name and edits to
//! reviews are denied at admission (S5, S6); reviewers outside the permit are ignored;
//! rejection, cancellation, hard check failures and unsafe paths end a request without
//! delivery; an import lands read-only; finished snapshots are deleted after the retention.

use std::os::unix::fs::PermissionsExt;

use anyhow::{Context, Result};
use haven_api::{
    AirlockRequest,
    airlock::{AirlockPhase, CheckOutcome},
};
use haven_e2e::{
    DEADLINE,
    airlock::{CHECKER, CO_RESEARCHER, OUTSIDER, Project, RESEARCHER, SECOND_CHECKER, partial_appears},
    as_user, eventually,
};
use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{ConfigMap, Event},
};
use kube::{
    Api, ResourceExt,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};

/// A check's detail as the output checker reads it, from the request's check report.
async fn checkers_detail(
    project: &Project,
    request: &AirlockRequest,
    file: &str,
    check: &str,
) -> Result<String> {
    let name = haven_api::airlock::check_report_name(&request.uid().context("uid")?);
    let report =
        Api::<ConfigMap>::namespaced(as_user(CHECKER, &[]).await?, &project.namespace).get(&name).await?;
    let json =
        report.data.unwrap_or_default().remove(haven_api::airlock::CHECK_REPORT_KEY).context("report")?;
    let files: Vec<haven_api::airlock::FileReport> = serde_json::from_str(&json)?;
    let found =
        files.iter().find(|f| f.path == file).and_then(|f| f.checks.iter().find(|c| c.check == check));
    Ok(found.with_context(|| format!("{check} on {file} in the report"))?.detail.clone())
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn check<'a>(
    request: &'a AirlockRequest,
    file: &str,
    check: &str,
) -> Option<&'a haven_api::airlock::CheckResult> {
    let status = request.status.as_ref()?;
    status.files.iter().find(|f| f.path == file)?.checks.iter().find(|c| c.check == check)
}

/// A category value and a column name the requester must never read back before review.
const MARKER: &str = "QZK7MARK";
const COLUMN_MARKER: &str = "qzk7band";
const AGES: &[u8] = b"qzk7band,count\n18-29,40\nQZK7MARK,4\n40-49,25\n";
const REGIONS: &[u8] = b"region,count\nNorth,120\nSouth,95\n";
const NOTES: &[u8] = b"# Methods\nCounts of patients by age band and region.\n";

#[tokio::test]
async fn an_export_is_checked_reviewed_and_delivers_exactly_the_submitted_bytes() -> Result<()> {
    let project = Project::start("export", json!({})).await?;
    project.output("tables/ages.csv", AGES)?;
    let regions = project.output("tables/regions.csv", REGIONS)?;
    project.output("notes.md", NOTES)?;
    let files = ["tables/ages.csv", "tables/regions.csv", "notes.md"];

    // requestedBy is bound to the user creating the request.
    let forged = project.request("forged", "Export", CO_RESEARCHER, &files)?;
    let denied = project.requests_as(RESEARCHER).await?.create(&PostParams::default(), &forged).await;
    let message = denied.err().context("a request in another user's name is denied")?.to_string();
    assert!(message.contains("spec.requestedBy must be the user creating the request"), "{message}");

    project.submit("tables", &files).await?;
    let request = project.phase_reaches("tables", AirlockPhase::AwaitingReview).await?;
    let status = request.status.clone().context("status")?;
    assert_eq!(status.file_count, 3);
    assert_eq!(status.approvals.as_deref(), Some("0/1"));
    for (file, bytes) in [("tables/ages.csv", AGES), ("tables/regions.csv", REGIONS), ("notes.md", NOTES)] {
        let report = status.files.iter().find(|f| f.path == file).context(file)?;
        assert_eq!(
            (report.size, report.sha256.as_str()),
            (bytes.len() as u64, sha256(bytes).as_str()),
            "{file}"
        );
    }
    // The status names outcomes only; the reviewer sees the small cell in their report.
    let threshold = check(&request, "tables/ages.csv", "threshold").context("threshold check on ages.csv")?;
    assert_eq!(threshold.outcome, CheckOutcome::Fail, "{threshold:?}");
    let detail = checkers_detail(&project, &request, "tables/ages.csv", "threshold").await?;
    assert!(detail.contains('4') && detail.contains(MARKER), "the detail names the cell: {detail:?}");
    // 1b: the requester, from their own machine, reads nothing of the file before review.
    let as_requester = project.requests_as(RESEARCHER).await?.get("tables").await?;
    let readable = serde_json::to_string(&as_requester)?;
    assert!(as_requester.status.is_some(), "the requester reads the status (canary)");
    for marker in [MARKER, COLUMN_MARKER] {
        assert!(!readable.contains(marker), "{marker} in what the requester reads: {readable}");
    }
    let report_name = haven_api::airlock::check_report_name(&request.uid().context("uid")?);
    let denied = Api::<ConfigMap>::namespaced(as_user(RESEARCHER, &[]).await?, &project.namespace)
        .get(&report_name)
        .await;
    assert!(
        matches!(&denied, Err(kube::Error::Api(status)) if status.code == 403),
        "the requester cannot read the checkers' report: {denied:?}"
    );
    assert_eq!(
        check(&request, "tables/regions.csv", "threshold").map(|c| c.outcome),
        Some(CheckOutcome::Pass)
    );
    assert_eq!(check(&request, "notes.md", "content").map(|c| c.outcome), Some(CheckOutcome::Review));
    assert!(status.checks.as_deref().is_some_and(|c| c.contains("fail")), "{:?}", status.checks);
    let report: Value =
        serde_json::from_slice(&std::fs::read(project.quarantine("tables").join("results.json"))?)?;
    assert!(report["results"].as_object().is_some_and(|r| r.len() == 3), "ACRO-shaped report: {report}");

    // The researcher changes a file after submission: the snapshot is what gets reviewed.
    std::fs::write(&regions, b"region,count\nNorth,120\nSouth,95\nIsland,2\n")?;

    // S5: no self-approval, no review in another's name; S6: no edits of earlier reviews.
    let approve = |who: &str| json!({"reviewer": who, "decision": "Approve"});
    let own = project.review(RESEARCHER, "tables", json!([approve(RESEARCHER)])).await.err();
    assert!(own.as_deref().is_some_and(|m| m.contains("cannot review")), "self-approval: {own:?}");
    let impersonated = project.review(RESEARCHER, "tables", json!([approve(CHECKER)])).await.err();
    assert!(
        impersonated.as_deref().is_some_and(|m| m.contains("only be added in your own name")),
        "review in another's name: {impersonated:?}"
    );
    // A co-researcher may write a review (their role may patch, to cancel) but it never counts.
    project
        .review(CO_RESEARCHER, "tables", json!([approve(CO_RESEARCHER)]))
        .await
        .map_err(anyhow::Error::msg)?;
    let ignored = eventually(DEADLINE, "bob's review recorded as ignored", || async {
        let status = project.get("tables").await?.status.unwrap_or_default();
        Ok(status.reviews.into_iter().find(|r| r.reviewer == CO_RESEARCHER))
    })
    .await?;
    assert!(!ignored.counted);
    assert!(ignored.reason.as_deref().is_some_and(|r| r.contains("user of this project")), "{ignored:?}");
    assert_eq!(project.get("tables").await?.status.map(|s| s.phase), Some(AirlockPhase::AwaitingReview));

    // A reviewer of the permit approves: the export is delivered.
    let both = json!([approve(CO_RESEARCHER), approve(CHECKER)]);
    project.review(CHECKER, "tables", both.clone()).await.map_err(anyhow::Error::msg)?;
    let exported = project.phase_reaches("tables", AirlockPhase::Exported).await?;
    let status = exported.status.context("status")?;
    let delivery = status.delivery.clone().context("delivery")?;
    let snapshot = status.snapshot.clone().context("snapshot")?;
    assert_eq!(delivery.path, format!("egress/{}/{}/tables", project.permit, project.namespace));
    assert_eq!(delivery.manifest_sha256, snapshot.manifest_sha256, "D3: the reviewed manifest was delivered");
    let egress = project.egress("tables");
    assert_eq!(
        std::fs::read(egress.join("files/tables/regions.csv"))?,
        REGIONS,
        "D3: the submitted bytes, not the edit"
    );
    assert_eq!(std::fs::read(egress.join("files/tables/ages.csv"))?, AGES);
    assert_eq!(sha256(&std::fs::read(egress.join("MANIFEST.json"))?), delivery.manifest_sha256);
    assert!(egress.join("results.json").is_file(), "the check report travels with the export");
    assert_eq!(status.approvals.as_deref(), Some("1/1"));

    // S6 after the decision: an earlier review cannot be changed or removed, and only the
    // requester can cancel.
    let edited = json!([approve(CO_RESEARCHER), {"reviewer": CHECKER, "decision": "Reject", "comment": "changed my mind"}]);
    let edit = project.review(CHECKER, "tables", edited).await.err();
    assert!(edit.as_deref().is_some_and(|m| m.contains("append-only")), "edit: {edit:?}");
    let removal = project.review(CHECKER, "tables", json!([approve(CO_RESEARCHER)])).await.err();
    assert!(removal.as_deref().is_some_and(|m| m.contains("append-only")), "removal: {removal:?}");
    let cancel = project
        .requests_as(CHECKER)
        .await?
        .patch("tables", &PatchParams::default(), &Patch::Merge(&json!({"spec": {"cancelled": true}})))
        .await
        .err()
        .map(|e| e.to_string());
    assert!(
        cancel.as_deref().is_some_and(|m| m.contains("only the requester")),
        "cancel by a reviewer: {cancel:?}"
    );

    // Every transition was an Event and an audit record.
    let events = Api::<Event>::namespaced(project.client.clone(), &project.namespace)
        .list(&ListParams::default().fields("involvedObject.name=tables"))
        .await?;
    let reasons: Vec<String> = events.items.iter().filter_map(|e| e.reason.clone()).collect();
    for reason in ["SnapshotTaken", "ChecksNeedReview", "Approved", "Exported"] {
        assert!(reasons.iter().any(|r| r == reason), "no {reason} Event in {reasons:?}");
        assert_eq!(project.audited("tables", reason)?, 1, "one {reason} audit record");
    }

    // After the retention the snapshot goes; the request and its report stay as the record.
    let record = eventually(DEADLINE, "snapshot deleted after the retention", || async {
        let status = project.get("tables").await?.status.unwrap_or_default();
        Ok(status.snapshot.as_ref().and_then(|s| s.removed_at).map(|_| status))
    })
    .await?;
    assert!(!project.quarantine("tables").exists());
    assert_eq!(record.files.len(), 3);
    assert!(egress.join("files/tables/ages.csv").is_file(), "the export itself is not touched");
    Ok(())
}

#[tokio::test]
async fn rejection_cancellation_outsiders_and_hard_failures_deliver_nothing() -> Result<()> {
    let project = Project::start("decide", json!({"requiredApprovals": 2})).await?;
    project.output("t.csv", REGIONS)?;
    project.output("tool.csv", b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00binary")?;
    project.output("virus.txt", b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*")?;
    for name in ["rejected", "cancelled", "outsider", "two-of-two"] {
        project.submit(name, &["t.csv"]).await?;
    }
    project.submit("executable", &["tool.csv"]).await?;
    project.submit("infected", &["virus.txt"]).await?;

    // An executable dressed as a table, and a file the scanner flags, are blocked outright.
    let blocked = project.phase_reaches("executable", AirlockPhase::Blocked).await?;
    assert_eq!(check(&blocked, "tool.csv", "file-policy").map(|c| c.outcome), Some(CheckOutcome::Fail));
    let condition =
        blocked.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == "Checked").cloned());
    assert!(
        condition.is_some_and(|c| c.reason == "CheckFailed" && c.message.contains("tool.csv: file-policy"))
    );
    let infected = project.phase_reaches("infected", AirlockPhase::Blocked).await?;
    check(&infected, "virus.txt", "scanner").context("scanner check")?;
    let scanner = checkers_detail(&project, &infected, "virus.txt", "scanner").await?;
    assert!(scanner.contains("Eicar-Test-Signature FOUND"), "{scanner:?}");

    // One counted rejection rejects.
    project.phase_reaches("rejected", AirlockPhase::AwaitingReview).await?;
    let reject = json!([{"reviewer": CHECKER, "decision": "Reject", "comment": "cell South is too small"}]);
    project.review(CHECKER, "rejected", reject).await.map_err(anyhow::Error::msg)?;
    let rejected = project.phase_reaches("rejected", AirlockPhase::Rejected).await?;
    let reviewed =
        rejected.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == "Reviewed").cloned());
    assert!(reviewed.is_some_and(|c| c.message.contains("cell South is too small")));

    // The requester cancels before a decision.
    project.phase_reaches("cancelled", AirlockPhase::AwaitingReview).await?;
    project
        .requests_as(RESEARCHER)
        .await?
        .patch("cancelled", &PatchParams::default(), &Patch::Merge(&json!({"spec": {"cancelled": true}})))
        .await?;
    project.phase_reaches("cancelled", AirlockPhase::Cancelled).await?;

    // Someone with the rights to write a review, but not a reviewer of this permit, is ignored.
    project.phase_reaches("outsider", AirlockPhase::AwaitingReview).await?;
    let outsider =
        Api::<AirlockRequest>::namespaced(as_user(OUTSIDER, &["system:masters"]).await?, &project.namespace);
    let review = json!({"spec": {"reviews": [{"reviewer": OUTSIDER, "decision": "Approve"}]}});
    outsider.patch("outsider", &PatchParams::default(), &Patch::Merge(&review)).await?;
    let ignored = eventually(DEADLINE, "the outsider's review recorded", || async {
        let status = project.get("outsider").await?.status.unwrap_or_default();
        Ok(status.reviews.into_iter().find(|r| r.reviewer == OUTSIDER))
    })
    .await?;
    assert!(!ignored.counted);
    let reason = ignored.reason.unwrap_or_default();
    assert!(reason.contains(&format!("not one of permit {}'s reviewers", project.permit)), "{reason}");

    // requiredApprovals 2: one approval waits, the second approves.
    project.phase_reaches("two-of-two", AirlockPhase::AwaitingReview).await?;
    let first = json!([{"reviewer": CHECKER, "decision": "Approve"}]);
    project.review(CHECKER, "two-of-two", first.clone()).await.map_err(anyhow::Error::msg)?;
    eventually(DEADLINE, "1/2 approvals", || async {
        let status = project.get("two-of-two").await?.status.unwrap_or_default();
        Ok((status.approvals.as_deref() == Some("1/2")).then_some(()))
    })
    .await?;
    assert_eq!(project.get("two-of-two").await?.status.map(|s| s.phase), Some(AirlockPhase::AwaitingReview));
    let second = json!([{"reviewer": CHECKER, "decision": "Approve"}, {"reviewer": SECOND_CHECKER, "decision": "Approve"}]);
    project.review(SECOND_CHECKER, "two-of-two", second).await.map_err(anyhow::Error::msg)?;
    project.phase_reaches("two-of-two", AirlockPhase::Exported).await?;

    for name in ["rejected", "cancelled", "executable", "infected", "outsider"] {
        assert!(!project.egress(name).exists(), "{name} delivered nothing");
    }
    Ok(())
}

#[tokio::test]
async fn paths_outside_the_outbox_are_refused() -> Result<()> {
    let project = Project::start("paths", json!({})).await?;
    let requests = project.requests_as(RESEARCHER).await?;
    for (name, file, expected) in [
        ("dotdot", "../home/secret.csv", "'..' is not allowed"),
        ("absolute", "/etc/passwd", "an absolute path is not allowed"),
    ] {
        let request = project.request(name, "Export", RESEARCHER, &[file])?;
        let message =
            requests.create(&PostParams::default(), &request).await.err().context(name)?.to_string();
        assert!(message.contains("spec.files") && message.contains(expected), "{name}: {message}");
    }
    // A link in the outbox to the raw source (outside it) is refused when the snapshot is taken.
    project.output("ok.csv", REGIONS)?;
    let link = project.root.join("workspaces").join(&project.workspace).join("home/outputs/linked.csv");
    std::os::unix::fs::symlink(project.root.join("raw/survey.csv"), &link)?;
    project.submit("escape", &["ok.csv", "linked.csv"]).await?;
    let failed = eventually(DEADLINE, "escape refused", || async {
        let request = project.get("escape").await?;
        Ok((request.status.as_ref().map(|s| s.phase) == Some(AirlockPhase::Failed)).then_some(request))
    })
    .await?;
    let condition =
        failed.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == "Checked").cloned());
    let condition = condition.context("Checked condition")?;
    assert_eq!(condition.reason, "FileRefused");
    assert!(
        condition.message.contains("spec.files[1] \"linked.csv\": leads outside the outbox"),
        "{}",
        condition.message
    );
    assert!(!project.quarantine("escape").exists(), "nothing was copied");
    Ok(())
}

#[tokio::test]
async fn an_approved_import_lands_read_only_in_the_workspace() -> Result<()> {
    let project = Project::start("import", json!({})).await?;
    let lookup = b"code,label\nC50,Breast\nC61,Prostate\n";
    let drop_zone = project.root.join("imports").join(&project.workspace);
    std::fs::create_dir_all(&drop_zone)?;
    std::fs::write(drop_zone.join("lookup.csv"), lookup)?;
    let request = project.request("codes", "Import", RESEARCHER, &["lookup.csv"])?;
    project.requests_as(RESEARCHER).await?.create(&PostParams::default(), &request).await?;
    project.phase_reaches("codes", AirlockPhase::AwaitingReview).await?;
    let approve = json!([{"reviewer": CHECKER, "decision": "Approve"}]);
    project.review(CHECKER, "codes", approve).await.map_err(anyhow::Error::msg)?;
    let imported = project.phase_reaches("codes", AirlockPhase::Imported).await?;

    let delivery = imported.status.and_then(|s| s.delivery).context("delivery")?;
    assert_eq!(delivery.path, format!("workspaces/{}/imports/codes", project.workspace));
    let landed = project.root.join(&delivery.path).join("files/lookup.csv");
    assert_eq!(std::fs::read(&landed)?, lookup);
    assert_eq!(std::fs::metadata(&landed)?.permissions().mode() & 0o777, 0o444);
    // In the workspace it is /home/imports/codes/files/lookup.csv, on a read-only mount.
    let environment =
        Api::<StatefulSet>::namespaced(project.client.clone(), &project.namespace).get("workspace").await?;
    let pod = environment.spec.context("spec")?.template.spec.context("pod spec")?;
    let mount = pod.containers[0]
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == "/home/imports")
        .cloned()
        .context("/home/imports is mounted")?;
    assert_eq!(mount.read_only, Some(true));
    Ok(())
}

#[tokio::test]
async fn killing_the_operator_during_snapshot_and_export_converges_exactly_once() -> Result<()> {
    let mut project =
        Project::start("crash", json!({"maxFileSize": "1Gi", "allowedFileTypes": ["txt"]})).await?;
    // Large enough that copying and syncing takes a while: 3 x 96 MiB of text lines.
    let line = b"abcdefghijklmnopqrstuvwxyz abcdefghijklmnopqrstuvwxyz abcdefghijklmnopqrstuvwxyz\n";
    let big: Vec<u8> = line.iter().copied().cycle().take(96 << 20).collect();
    let files = ["big-0.txt", "big-1.txt", "big-2.txt"];
    for file in files {
        project.output(file, &big)?;
    }
    project.submit("large", &files).await?;
    partial_appears(&project.root.join("quarantine").join(&project.namespace), "large").await?;
    project.crash_and_restart()?;
    let request = project.phase_reaches("large", AirlockPhase::AwaitingReview).await?;
    for report in request.status.map(|s| s.files).unwrap_or_default() {
        assert_eq!(
            (report.size, report.sha256.as_str()),
            (big.len() as u64, sha256(&big).as_str()),
            "{}",
            report.path
        );
    }
    assert_eq!(project.audited("large", "SnapshotTaken")?, 1, "the snapshot was recorded once");
    assert!(Project::hidden_entries(&project.root.join("quarantine").join(&project.namespace)).is_empty());

    let approve = json!([{"reviewer": CHECKER, "decision": "Approve"}]);
    project.review(CHECKER, "large", approve).await.map_err(anyhow::Error::msg)?;
    let egress_parent = project.root.join("egress").join(&project.permit).join(&project.namespace);
    partial_appears(&egress_parent, "large").await?;
    project.crash_and_restart()?;
    let exported = project.phase_reaches("large", AirlockPhase::Exported).await?;
    assert_eq!(project.audited("large", "Exported")?, 1, "delivered once");
    assert!(Project::hidden_entries(&egress_parent).is_empty(), "no partial files left in egress");
    for file in files {
        let delivered = std::fs::read(project.egress("large").join("files").join(file))?;
        assert!(delivered == big, "{file} delivered byte for byte");
    }
    let delivery = exported.status.and_then(|s| s.delivery).context("delivery")?;
    assert_eq!(
        sha256(&std::fs::read(project.egress("large").join("MANIFEST.json"))?),
        delivery.manifest_sha256
    );
    Ok(())
}
