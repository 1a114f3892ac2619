//! The `kubectl haven` plugin against the real control plane, with the operator running and
//! each person acting as themselves (`--as`): a researcher cannot approve their own export and
//! sees the API server's reason; an output checker reads the check report and approves, and
//! the export is delivered; only the requester can cancel; `status` and `permit describe`
//! report the project; `audit verify` accepts the operator's log and detects an edited record.

use std::process::Output;

use anyhow::{Context, Result};
use haven_api::{airlock::AirlockPhase, constants::AUDIT_ANCHOR_CONFIG_MAP};
use haven_e2e::{
    DEADLINE,
    airlock::{CHECKER, Project, RESEARCHER},
    eventually, kubectl_haven,
};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use serde_json::{Value, json};

/// A table with a cell below the threshold (30-39: 4), which the threshold check fails.
const SMALL_CELL: &[u8] = b"age_band,count\n18-29,40\nQZK7MARK,4\n";
const REGIONS: &[u8] = b"region,count\nNorth,120\nSouth,95\n";

/// One run of the plugin binary.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {:?}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// `kubectl haven <args>`, whatever its outcome.
fn plugin(args: &[&str]) -> Result<Run> {
    let Output { status, stdout, stderr } = kubectl_haven(args)?;
    Ok(Run { code: status.code(), stdout: String::from_utf8(stdout)?, stderr: String::from_utf8(stderr)? })
}

/// Runs the plugin as `user` in the project's namespace.
fn plugin_as(project: &Project, user: &str, args: &[&str]) -> Result<Run> {
    let mut all = args.to_vec();
    all.extend(["-n", &project.namespace, "--as", user]);
    plugin(&all)
}

#[tokio::test]
async fn a_reviewer_approves_through_the_plugin_and_a_researcher_cannot() -> Result<()> {
    let project = Project::start("plugin-approve", json!({})).await?;
    project.output("tables/ages.csv", SMALL_CELL)?;
    project.output("tables/regions.csv", REGIONS)?;
    project.submit("tables", &["tables/ages.csv", "tables/regions.csv"]).await?;
    project.phase_reaches("tables", AirlockPhase::AwaitingReview).await?;

    // The output checker lists the namespace's requests and reads the check report.
    let list = plugin_as(&project, CHECKER, &["airlock", "list"])?;
    assert_eq!(list.code, Some(0), "{list}");
    let row = list.stdout.lines().find(|l| l.starts_with("tables ")).context("tables listed")?;
    for column in ["Export", "2", "AwaitingReview", "0/1"] {
        assert!(row.split_whitespace().any(|cell| cell == column), "{column} in {row:?}\n{list}");
    }
    let show = plugin_as(&project, CHECKER, &["airlock", "show", "tables"])?;
    assert_eq!(show.code, Some(0), "{show}");
    let report = show.stdout.split("  tables/ages.csv  (").nth(1).context("a section for ages.csv")?;
    let report = report.split("  tables/regions.csv  (").next().unwrap_or(report);
    let threshold = report.lines().find(|l| l.contains(" threshold ")).context("the threshold check")?;
    assert!(threshold.trim_start().starts_with("FAIL"), "{threshold:?}\n{show}");
    assert!(
        threshold.contains('4') && threshold.contains("QZK7MARK"),
        "the detail names the small cell: {threshold:?}"
    );
    // The requester's own `show` tells outcomes, never what the checks found in the file.
    let own_view = plugin_as(&project, RESEARCHER, &["airlock", "show", "tables"])?;
    assert_eq!(own_view.code, Some(0), "{own_view}");
    assert!(own_view.stdout.contains("threshold"), "{own_view}");
    assert!(!own_view.stdout.contains("QZK7MARK") && !own_view.stderr.contains("QZK7MARK"), "{own_view}");
    let json = plugin_as(&project, CHECKER, &["airlock", "show", "tables", "-o", "json"])?;
    let object: Value = serde_json::from_str(&json.stdout).with_context(|| json.to_string())?;
    assert_eq!(object["status"]["phase"], "AwaitingReview");

    // The researcher cannot approve their own request, and is told why by the API server,
    // verbatim (the CRD's own rule answers first, as Invalid; the admission policy agrees).
    let own = plugin_as(&project, RESEARCHER, &["airlock", "approve", "tables"])?;
    assert_eq!(own.code, Some(1), "{own}");
    assert!(own.stderr.starts_with("Error from server ("), "{own}");
    assert!(own.stderr.contains("cannot review") && own.stderr.contains("(four-eyes)"), "{own}");
    assert!(project.get("tables").await?.spec.reviews.is_empty(), "nothing was written");

    // A rejection without a reason is a usage error, caught before anything is sent.
    let reasonless = plugin_as(&project, CHECKER, &["airlock", "reject", "tables"])?;
    assert_eq!(reasonless.code, Some(2), "{reasonless}");
    assert!(reasonless.stderr.contains("--comment"), "{reasonless}");
    let missing = plugin_as(&project, CHECKER, &["airlock", "approve", "no-such-request"])?;
    assert_eq!(missing.code, Some(1), "{missing}");
    assert!(
        missing.stderr.contains(&format!(
            "airlockrequest no-such-request not found in namespace {}",
            project.namespace
        )),
        "{missing}"
    );

    // The output checker approves and waits: the export is delivered.
    let approve = plugin_as(
        &project,
        CHECKER,
        &["airlock", "approve", "tables", "--comment", "cell 30-39 is an accepted exception", "--wait"],
    )?;
    assert_eq!(approve.code, Some(0), "{approve}");
    assert!(approve.stdout.contains(&format!("airlockrequest/tables approved by {CHECKER}")), "{approve}");
    assert!(approve.stdout.contains("airlockrequest/tables Exported"), "{approve}");
    let exported = project.get("tables").await?;
    let status = exported.status.context("status")?;
    assert_eq!(status.phase, AirlockPhase::Exported);
    assert!(status.reviews.iter().any(|r| r.reviewer == CHECKER && r.counted), "{:?}", status.reviews);
    assert!(project.egress("tables").join("files/tables/ages.csv").is_file());

    // A second review by the same person is refused before anything is sent.
    let again = plugin_as(&project, CHECKER, &["airlock", "approve", "tables"])?;
    assert_eq!(again.code, Some(1), "{again}");
    assert!(again.stderr.contains("already reviewed"), "{again}");
    Ok(())
}

#[tokio::test]
async fn only_the_requester_cancels_and_a_rejection_carries_its_reason() -> Result<()> {
    let project = Project::start("plugin-cancel", json!({})).await?;
    project.output("t.csv", REGIONS)?;
    project.submit("withdrawn", &["t.csv"]).await?;
    project.submit("refused", &["t.csv"]).await?;
    project.phase_reaches("withdrawn", AirlockPhase::AwaitingReview).await?;
    project.phase_reaches("refused", AirlockPhase::AwaitingReview).await?;

    let by_checker = plugin_as(&project, CHECKER, &["airlock", "cancel", "withdrawn"])?;
    assert_eq!(by_checker.code, Some(1), "{by_checker}");
    assert!(
        by_checker.stderr.contains(&format!("only the requester ({RESEARCHER}) can cancel")),
        "{by_checker}"
    );
    assert!(!project.get("withdrawn").await?.spec.cancelled);

    let by_requester = plugin_as(&project, RESEARCHER, &["airlock", "cancel", "withdrawn", "--wait"])?;
    assert_eq!(by_requester.code, Some(0), "{by_requester}");
    assert!(by_requester.stdout.contains("airlockrequest/withdrawn Cancelled"), "{by_requester}");
    assert_eq!(project.get("withdrawn").await?.status.map(|s| s.phase), Some(AirlockPhase::Cancelled));

    let reason = "South is identifiable with the linked registry";
    let reject =
        plugin_as(&project, CHECKER, &["airlock", "reject", "refused", "--comment", reason, "--wait"])?;
    assert_eq!(reject.code, Some(0), "{reject}");
    assert!(reject.stdout.contains("airlockrequest/refused Rejected"), "{reject}");
    let show = plugin_as(&project, RESEARCHER, &["airlock", "show", "refused"])?;
    let review =
        show.stdout.lines().find(|l| l.contains(CHECKER) && l.contains("Reject")).context("review")?;
    assert!(
        review.contains("yes") && review.contains(reason),
        "counted, with the comment: {review:?}\n{show}"
    );
    assert!(!project.egress("refused").exists(), "a rejection delivers nothing");
    Ok(())
}

#[tokio::test]
async fn status_permit_describe_and_audit_verify_report_the_project() -> Result<()> {
    let project = Project::start("plugin-status", json!({})).await?;

    let status = plugin(&["status"])?;
    assert_eq!(status.code, Some(0), "{status}");
    let permit_row = status.stdout.lines().find(|l| l.starts_with(&format!("{} ", project.permit)));
    let permit_row = permit_row.context("the permit is listed")?;
    assert!(
        permit_row.contains(" Active ") && permit_row.contains("→ workspaces archived"),
        "{permit_row:?}"
    );
    let workspace_row = status.stdout.lines().find(|l| l.starts_with(&format!("{} ", project.workspace)));
    let workspace_row = workspace_row.context("the workspace is listed")?;
    assert!(
        workspace_row.contains(" Ready ") && workspace_row.contains(&project.namespace),
        "{workspace_row:?}"
    );
    assert!(workspace_row.contains("→ archived and torn down"), "{workspace_row:?}");
    let json = plugin(&["status", "-o", "json"])?;
    let summary: Value = serde_json::from_str(&json.stdout).with_context(|| json.to_string())?;
    let listed = summary["permits"].as_array().context("permits")?;
    let permit = listed.iter().find(|p| p["name"] == project.permit.as_str()).context("permit in json")?;
    assert_eq!(permit["phase"], "Active");
    assert_ne!(permit["timeLeft"], "-", "an active permit has time left: {permit}");

    let describe = plugin(&["permit", "describe", &project.permit])?;
    assert_eq!(describe.code, Some(0), "{describe}");
    let dataset =
        describe.stdout.lines().find(|l| l.trim_start().starts_with("survey ")).context("survey")?;
    let cells: Vec<&str> = dataset.split_whitespace().collect();
    assert_eq!(cells.get(1..3), Some(&["3", "3"][..]), "rows in and out of the 3-row source: {dataset:?}");
    assert!(describe.stdout.contains(&format!("  {} ", project.workspace)), "{describe}");
    assert!(describe.stdout.contains("Destruction:\n  not destroyed\n"), "{describe}");
    let missing = plugin(&["permit", "describe", "no-such-permit"])?;
    assert_eq!(
        (missing.code, missing.stderr.trim()),
        (Some(1), "error: datapermit no-such-permit not found")
    );

    // The operator's audit log verifies, from the data store root or the file.
    let log = project.root.join("audit/audit.log");
    eventually(DEADLINE, "the operator has written audit records", || async {
        let lines = std::fs::read_to_string(&log).unwrap_or_default().lines().count();
        Ok((lines >= 2).then_some(()))
    })
    .await?;
    let verified = plugin(&["audit", "verify", &project.root.to_string_lossy()])?;
    assert_eq!(verified.code, Some(0), "{verified}");
    assert!(verified.stdout.contains("chain intact"), "{verified}");

    // S12: one byte of the first record changed, in a copy, is detected.
    let copy = project.root.with_extension("audit-copy.log");
    let mut bytes = std::fs::read(&log)?;
    let at = find(&bytes, b"\"action\":\"").context("an action field")? + b"\"action\":\"".len();
    bytes[at] ^= 0x20; // flips the case of the action's first letter: still valid JSON
    std::fs::write(&copy, &bytes)?;
    let tampered = plugin(&["audit", "verify", &copy.to_string_lossy()])?;
    assert_eq!(tampered.code, Some(1), "{tampered}");
    assert!(tampered.stderr.contains("is broken at line 2"), "{tampered}");

    // The operator anchors its log in the cluster. Against that anchor, a copy cut short, or
    // rewritten and chained again, fails, though its chain alone verifies.
    let config_maps: Api<ConfigMap> = Api::namespaced(project.client.clone(), "haven-system");
    eventually(DEADLINE, "the operator anchored its log", || async {
        let head = haven_data::audit::verify(&log)?;
        let data =
            config_maps.get_opt(AUDIT_ANCHOR_CONFIG_MAP).await?.and_then(|c| c.data).unwrap_or_default();
        let anchored =
            data.get("hash") == Some(&head.head) && data.get("seq") == Some(&head.records.to_string());
        Ok(anchored.then_some(()))
    })
    .await?;
    let anchored = plugin(&["audit", "verify", &project.root.to_string_lossy(), "--cluster"])?;
    assert_eq!(anchored.code, Some(0), "{anchored}");
    assert!(anchored.stdout.contains("holds anchored line"), "{anchored}");
    let honest: Vec<String> = std::fs::read_to_string(&log)?.lines().map(str::to_owned).collect();
    let cut = project.root.with_extension("audit-cut.log");
    std::fs::write(&cut, honest[..honest.len() - 1].join("\n") + "\n")?;
    assert_eq!(plugin(&["audit", "verify", &cut.to_string_lossy()])?.code, Some(0), "the chain alone passes");
    let refused = plugin(&["audit", "verify", &cut.to_string_lossy(), "--cluster"])?;
    assert_eq!(refused.code, Some(1), "{refused}");
    assert!(refused.stderr.contains("cut short"), "{refused}");
    let rechained = project.root.with_extension("audit-rechained.log");
    std::fs::write(&rechained, rechain(&honest)?)?;
    assert_eq!(
        plugin(&["audit", "verify", &rechained.to_string_lossy()])?.code,
        Some(0),
        "the chain alone passes"
    );
    let refused = plugin(&["audit", "verify", &rechained.to_string_lossy(), "--cluster"])?;
    assert_eq!(refused.code, Some(1), "{refused}");
    assert!(refused.stderr.contains("rewritten"), "{refused}");
    Ok(())
}

/// The log with every record's action changed and the chain computed again, as someone who
/// can write the data store (but not the cluster) could.
fn rechain(lines: &[String]) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut prev = haven_data::audit::GENESIS.to_owned();
    let mut out = String::new();
    for line in lines {
        let mut value: Value = serde_json::from_str(line)?;
        value["action"] = json!("Forged");
        value["prev"] = json!(prev);
        let text = serde_json::to_string(&value)?;
        prev = hex::encode(Sha256::digest(text.as_bytes()));
        out += &text;
        out.push('\n');
    }
    Ok(out)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}
