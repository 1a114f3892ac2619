//! `kubectl haven permit describe NAME`: the permit, its datasets' preparation reports, its
//! workspaces and, once its data is gone, its destruction record.

use chrono::{DateTime, Utc};
use haven_api::{DataPermit, Workspace, permit::ControlsInForce};
use kube::{Api, api::ListParams};
use serde_json::json;

use crate::{
    connect::Connect,
    error::{self, Target},
    format::{self, OutputFormat, Table},
    next, status,
};

pub async fn describe(connect: &Connect, name: &str, format: Option<OutputFormat>) -> anyhow::Result<()> {
    let session = connect.session().await?;
    let permit = Api::<DataPermit>::all(session.client.clone())
        .get(name)
        .await
        .map_err(|e| error::about(Target::cluster("datapermit", name), e))?;
    let mut workspaces: Vec<Workspace> = Api::<Workspace>::all(session.client)
        .list(&ListParams::default())
        .await
        .map_err(|e| error::listing("workspace", e))?
        .items
        .into_iter()
        .filter(|w| w.spec.permit == name)
        .collect();
    workspaces.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    if !format::print_structured(&json!({"permit": permit, "workspaces": workspaces}), format)? {
        print!("{}", render(&permit, &workspaces, format == Some(OutputFormat::Wide), Utc::now()));
    }
    Ok(())
}

pub fn render(permit: &DataPermit, workspaces: &[Workspace], wide: bool, now: DateTime<Utc>) -> String {
    let spec = &permit.spec;
    let status = permit.status.clone().unwrap_or_default();
    let mut out = String::new();
    let mut field =
        |label: &str, value: String| out.push_str(&format!("{:<15}{value}\n", format!("{label}:")));
    field("Name", permit.metadata.name.clone().unwrap_or_default());
    field("Permit ID", spec.permit_id.clone());
    field("Holder", format!("{} (PI {})", spec.holder.organisation, spec.holder.principal_investigator));
    field("Purpose", format!("{:?}", spec.purpose));
    field("Tier", controls_line(spec.tier, status.controls.as_ref()));
    field("Users", spec.users.join(", "));
    field("Reviewers", spec.reviewers.join(", "));
    field("Valid from", format::when(spec.valid_from, now));
    field("Valid until", format::when(spec.valid_until, now));
    field("Retention", spec.retention.clone());
    if spec.revoked {
        field("Revoked", spec.revocation_reason.clone().unwrap_or_else(|| "yes".into()));
    }
    if spec.suspended {
        field("Suspended", "yes".into());
    }
    field("Phase", format!("{:?}", status.phase));
    field("Time left", format::time_left(next::permit_expiry(permit), now));
    field("Next", next::permit_next(permit, now));
    if let Some(archived) = status.archived_at {
        field("Archived", format::when(archived, now));
    }
    if let Some(destroy) = status.destroy_after {
        field("Destroy after", format::when(destroy, now));
    }

    out.push_str("\nDatasets:\n");
    let mut table = Table::new(&[
        "DATASET",
        "ROWS IN",
        "ROWS OUT",
        "SUPPRESSED",
        "MIN K",
        "KEY FINGERPRINT",
        "OUTPUT SHA256",
        "PREPARED",
    ]);
    for grant in &spec.datasets {
        match status.datasets.iter().find(|d| d.name == grant.name) {
            Some(report) => table.row(vec![
                report.name.clone(),
                report.rows_in.to_string(),
                report.rows_out.to_string(),
                report.suppressed_rows.to_string(),
                report.minimum_k.map_or_else(|| "-".into(), |k| k.to_string()),
                format::short_hash(&report.key_fingerprint, wide),
                format::short_hash(&report.output_sha256, wide),
                format!("{} ago", format::humanize(now - report.prepared_at)),
            ]),
            None => {
                let mut row = vec![grant.name.clone()];
                row.extend(std::iter::repeat_n("-".to_owned(), 6));
                row.push("not prepared yet".into());
                table.row(row);
            }
        }
    }
    out.push_str(&table.render("  "));

    out.push_str("\nWorkspaces:\n");
    if workspaces.is_empty() {
        out.push_str("  none\n");
    } else {
        let mut table = Table::new(&["WORKSPACE", "PHASE", "NAMESPACE", "USERS", "TIME LEFT", "NEXT"]);
        for workspace in workspaces {
            let line = status::workspace_line(workspace, Some(permit), now);
            table.row(vec![
                line.name,
                line.phase,
                line.namespace,
                line.users.join(","),
                line.time_left,
                line.next,
            ]);
        }
        out.push_str(&table.render("  "));
    }

    if !status.conditions.is_empty() {
        out.push_str("\nConditions:\n");
        let mut table = Table::new(&["TYPE", "STATUS", "REASON", "MESSAGE"]);
        for condition in &status.conditions {
            table.row(vec![
                condition.type_.clone(),
                condition.status.clone(),
                condition.reason.clone(),
                condition.message.clone(),
            ]);
        }
        out.push_str(&table.render("  "));
    }

    out.push_str("\nDestruction:\n");
    match &status.destruction {
        None => match &status.pending_destruction {
            Some(pending) => out.push_str(&format!(
                "  under way: every area counted {}, not yet all deleted\n",
                format::when(pending.destroyed_at, now)
            )),
            None => out.push_str("  not destroyed\n"),
        },
        Some(record) => {
            out.push_str(&format!("  Destroyed at:     {}\n", format::when(record.destroyed_at, now)));
            let shredded = match (record.key_shredded, record.archives_sealed) {
                (true, true) => {
                    "shredded: the pseudonyms are unlinkable and any copy of its archives is unreadable"
                }
                (true, false) => "shredded: the pseudonyms are unlinkable",
                (false, _) => "NOT shredded",
            };
            out.push_str(&format!("  Key:              {} ({shredded})\n", record.key_fingerprint));
            if !record.shredding_limit.is_empty() {
                out.push_str(&format!("  Limit:            {}\n", record.shredding_limit));
            }
            let mut table = Table::new(&["PATH", "FILES", "BYTES"]);
            for area in &record.deleted {
                table.row(vec![area.path.clone(), area.files.to_string(), format::bytes(area.bytes)]);
            }
            out.push_str(&table.render("  "));
        }
    }
    out
}

/// The tier and, once the operator has recorded them, the controls in force (the tier the
/// operator last saw, which may trail a change to `spec.tier` by a reconcile).
fn controls_line(tier: u8, controls: Option<&ControlsInForce>) -> String {
    let Some(c) = controls else { return format!("{tier}") };
    let mut parts = vec![
        format!("egress {:?}", c.egress),
        format!("{} approval(s) per export", c.required_approvals),
        format!("types {}", c.allowed_file_types.join(",")),
        if c.import_review { "imports reviewed".into() } else { "imports unreviewed".into() },
    ];
    parts.extend(c.max_workspace_lifetime.as_ref().map(|l| format!("workspaces live {l} at most")));
    parts.extend(c.idle_timeout.as_ref().map(|i| format!("idle stop after {i}")));
    if c.dedicated_nodes {
        parts.push("dedicated nodes".into());
    }
    format!("{} ({})", c.tier, parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{NOW, permit, workspace};

    fn now() -> DateTime<Utc> {
        NOW.parse().expect("fixture time")
    }

    const PREPARED: &str = r#"
phase: Active
workspaces: 1
datasets:
- name: survey
  rowsIn: 1200
  rowsOut: 1180
  suppressedRows: 20
  minimumK: 5
  keyFingerprint: 5f2c9a0b1d3e4f5a
  outputSha256: a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90
  preparedAt: "2026-05-01T12:05:00Z"
"#;

    #[test]
    fn the_preparation_report_of_each_dataset_is_a_table() {
        let text = render(&permit(PREPARED), &[], false, now());
        let expected = "\
Datasets:
  DATASET   ROWS IN   ROWS OUT   SUPPRESSED   MIN K   KEY FINGERPRINT   OUTPUT SHA256   PREPARED
  survey    1200      1180       20           5       5f2c9a0b1d3e…     a1b2c3d4e5f6…   30d 23h ago
";
        assert!(text.contains(expected), "{text}");
        assert!(
            text.contains("Next:          expires 2026-06-13 16:30 UTC → workspaces archived\n"),
            "{text}"
        );
        assert!(text.contains("Destruction:\n  not destroyed\n"), "{text}");
    }

    #[test]
    fn an_unprepared_dataset_says_so() {
        let text = render(&permit("phase: Preparing\n"), &[], false, now());
        assert!(text.contains("  survey    -         -          -            -       -                 -               not prepared yet\n"), "{text}");
        assert!(text.contains("Workspaces:\n  none\n"), "{text}");
    }

    #[test]
    fn the_permits_workspaces_are_listed_with_what_happens_next() {
        let workspaces = [workspace("phase: Ready\nnamespace: ws-analysis\n")];
        let text = render(&permit(PREPARED), &workspaces, false, now());
        assert!(
            text.contains("  analysis    Ready   ws-analysis   alice@example.org   12d 4h      expires 2026-06-13 16:30 UTC → archived and torn down\n"),
            "{text}"
        );
    }

    #[test]
    fn the_tier_shows_the_controls_in_force() {
        let tiered = permit(
            r#"
phase: Active
controls: {tier: 4, egress: None, requiredApprovals: 2, allowedFileTypes: [csv, pdf], importReview: true,
  maxWorkspaceLifetime: 720h, idleTimeout: 8h, dedicatedNodes: true}
"#,
        );
        let text = render(&tiered, &[], false, now());
        assert!(
            text.contains("Tier:          4 (egress None; 2 approval(s) per export; types csv,pdf; imports reviewed; workspaces live 720h at most; idle stop after 8h; dedicated nodes)\n"),
            "{text}"
        );
    }

    #[test]
    fn a_destroyed_permit_shows_its_destruction_record() {
        let destroyed = permit(
            r#"
phase: Destroyed
destruction:
  destroyedAt: "2026-05-31T12:00:00Z"
  keyFingerprint: 5f2c9a0b1d3e4f5a
  keyShredded: true
  deleted:
  - {path: extracts/study, files: 2, bytes: 2048}
  - {path: archive/study, files: 14, bytes: 1048576}
"#,
        );
        let text = render(&destroyed, &[], false, now());
        let expected = "\
Destruction:
  Destroyed at:     2026-05-31 12:00 UTC (1d ago)
  Key:              5f2c9a0b1d3e4f5a (shredded: the pseudonyms are unlinkable)
  PATH             FILES   BYTES
  extracts/study   2       2.0 KiB
  archive/study    14      1.0 MiB
";
        assert!(text.contains(expected), "{text}");
    }
}
