//! What `airlock show` prints: the request, the check report as a table per file (worst
//! outcome first), the reviews as the operator counted them, conditions, snapshot and delivery.

use chrono::{DateTime, Utc};
use haven_api::{
    AirlockRequest,
    airlock::{CheckOutcome, FileReport},
};

use crate::format::{self, Table};

pub fn render(request: &AirlockRequest, wide: bool, now: DateTime<Utc>) -> String {
    let spec = &request.spec;
    let status = request.status.clone().unwrap_or_default();
    let phase = if request.status.is_some() {
        format!("{:?}", status.phase)
    } else {
        "(not seen by the operator yet)".into()
    };
    let mut out = String::new();
    let mut field =
        |label: &str, value: String| out.push_str(&format!("{:<15}{value}\n", format!("{label}:")));
    field("Name", request.metadata.name.clone().unwrap_or_default());
    field("Namespace", request.metadata.namespace.clone().unwrap_or_default());
    field("Direction", format!("{:?}", spec.direction));
    field("Requested by", spec.requested_by.clone());
    field("Justification", spec.justification.replace('\n', " "));
    field("Phase", phase);
    field("Checks", status.checks.clone().unwrap_or_else(|| "-".into()));
    field("Approvals", status.approvals.clone().unwrap_or_else(|| "-".into()));
    if spec.cancelled {
        field("Cancelled", "yes, by the requester".into());
    }
    field("Age", format::age(format::created(&request.metadata), now));

    out.push_str("\nFiles:\n");
    if status.files.is_empty() {
        for file in &spec.files {
            out.push_str(&format!("  {file}  (not checked yet)\n"));
        }
    }
    for file in &status.files {
        out.push_str(&render_file(file, wide));
    }

    out.push_str("\nReviews:\n");
    out.push_str(&render_reviews(request));

    if !status.conditions.is_empty() {
        let mut table = Table::new(&["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"]);
        for condition in &status.conditions {
            let since = format::instant(&condition.last_transition_time);
            table.row(vec![
                condition.type_.clone(),
                condition.status.clone(),
                condition.reason.clone(),
                format::age(since, now),
                condition.message.clone(),
            ]);
        }
        out.push_str("\nConditions:\n");
        out.push_str(&table.render("  "));
    }

    out.push('\n');
    match &status.snapshot {
        Some(snapshot) => {
            out.push_str(&format!(
                "Snapshot:      {}, taken {}, manifest sha256 {}\n",
                snapshot.path,
                format::when(snapshot.taken_at, now),
                format::short_hash(&snapshot.manifest_sha256, wide)
            ));
            if let Some(removed) = snapshot.removed_at {
                out.push_str(&format!(
                    "               deleted when its retention ended, {}\n",
                    format::when(removed, now)
                ));
            }
        }
        None => out.push_str("Snapshot:      -\n"),
    }
    match &status.delivery {
        Some(delivery) => out.push_str(&format!(
            "Delivered:     {}, {}, manifest sha256 {}\n",
            delivery.path,
            format::when(delivery.delivered_at, now),
            format::short_hash(&delivery.manifest_sha256, wide)
        )),
        None => out.push_str("Delivered:     -\n"),
    }
    out
}

/// One file's heading and its checks, failures first, then those for a human, then passes.
fn render_file(file: &FileReport, wide: bool) -> String {
    let mut out = format!(
        "  {}  ({}, sha256 {})\n",
        file.path,
        format::bytes(file.size),
        format::short_hash(&file.sha256, wide)
    );
    let mut checks: Vec<_> = file.checks.iter().collect();
    checks.sort_by_key(|c| match c.outcome {
        CheckOutcome::Fail => 0,
        CheckOutcome::Review => 1,
        CheckOutcome::Pass => 2,
    });
    let mut table = Table::new(&["OUTCOME", "CHECK", "DETAIL"]);
    for check in checks {
        let outcome = match check.outcome {
            CheckOutcome::Fail => "FAIL",
            CheckOutcome::Review => "review",
            CheckOutcome::Pass => "pass",
        };
        let detail = if check.detail.is_empty() { "-".to_owned() } else { check.detail.clone() };
        table.row(vec![outcome.into(), check.check.clone(), detail]);
    }
    if table.is_empty() {
        out.push_str("    (no checks recorded)\n");
    } else {
        out.push_str(&table.render("    "));
    }
    out
}

/// Each review from the spec with the operator's judgement from the status: counted, ignored
/// (with the reason), or not yet seen.
fn render_reviews(request: &AirlockRequest) -> String {
    if request.spec.reviews.is_empty() {
        return "  none yet\n".into();
    }
    let records = request.status.as_ref().map(|s| s.reviews.as_slice()).unwrap_or_default();
    let mut table = Table::new(&["REVIEWER", "DECISION", "COUNTED", "COMMENT"]);
    for review in &request.spec.reviews {
        let counted = match records.iter().find(|r| r.reviewer == review.reviewer) {
            Some(record) if record.counted => "yes".to_owned(),
            Some(record) => match &record.reason {
                Some(reason) => format!("no: {reason}"),
                None => "no".to_owned(),
            },
            None => "not yet seen by the operator".to_owned(),
        };
        table.row(vec![
            review.reviewer.clone(),
            format!("{:?}", review.decision),
            counted,
            review.comment.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    table.render("  ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{NOW, request};

    fn now() -> DateTime<Utc> {
        NOW.parse().expect("fixture time")
    }

    const CHECKED: &str = r#"
phase: Rejected
fileCount: 2
checks: 4 pass, 1 review, 1 fail
approvals: 0/1
files:
- path: tables/ages.csv
  size: 40
  sha256: 3f0a5b2c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a
  checks:
  - {check: file-policy, outcome: pass, detail: "csv, 40 B"}
  - {check: threshold, outcome: fail, detail: "cell 30-39: count 4 is below the threshold of 10"}
  - {check: dominance, outcome: pass}
- path: notes.md
  size: 60
  sha256: 00aa
  checks:
  - {check: content, outcome: review, detail: "free text: a human must read it"}
reviews:
- {reviewer: bob@example.org, decision: Approve, counted: false, reason: "bob@example.org is a user of this project"}
- {reviewer: carol@example.org, decision: Reject, counted: true}
conditions:
- {type: Reviewed, status: "False", reason: Rejected, message: "carol@example.org: cell 30-39 is 4", lastTransitionTime: "2026-06-01T11:59:00Z"}
snapshot: {path: quarantine/ws-analysis/tables, takenAt: "2026-06-01T11:58:30Z", manifestSha256: 9999aaaabbbbccccdddd}
"#;

    #[test]
    fn the_check_report_is_a_table_per_file_with_failures_first() {
        let text = render(&request(CHECKED), false, now());
        let expected_ages = "\
  tables/ages.csv  (40 B, sha256 3f0a5b2c9d8e…)
    OUTCOME   CHECK         DETAIL
    FAIL      threshold     cell 30-39: count 4 is below the threshold of 10
    pass      file-policy   csv, 40 B
    pass      dominance     -
";
        assert!(text.contains(expected_ages), "{text}");
        assert!(text.contains("    review    content   free text: a human must read it\n"), "{text}");
    }

    #[test]
    fn reviews_show_whether_the_operator_counted_them_and_why_not() {
        let text = render(&request(CHECKED), false, now());
        let expected = "\
Reviews:
  REVIEWER            DECISION   COUNTED                                         COMMENT
  bob@example.org     Approve    no: bob@example.org is a user of this project   -
  carol@example.org   Reject     yes                                             cell 30-39 is 4
";
        assert!(text.contains(expected), "{text}");
    }

    #[test]
    fn conditions_snapshot_and_delivery_are_shown() {
        let text = render(&request(CHECKED), false, now());
        assert!(text.contains("Phase:         Rejected\n"), "{text}");
        assert!(
            text.contains("  Reviewed   False    Rejected   1m    carol@example.org: cell 30-39 is 4\n"),
            "{text}"
        );
        assert!(
            text.contains("Snapshot:      quarantine/ws-analysis/tables, taken 2026-06-01 11:58 UTC (1m 30s ago), manifest sha256 9999aaaabbbb…\n"),
            "{text}"
        );
        assert!(text.contains("Delivered:     -\n"), "{text}");
    }

    #[test]
    fn wide_output_shows_whole_hashes() {
        let text = render(&request(CHECKED), true, now());
        assert!(
            text.contains("sha256 3f0a5b2c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a)"),
            "{text}"
        );
    }

    #[test]
    fn a_request_not_yet_checked_lists_its_files_and_pending_reviews() {
        let text = render(&request(""), false, now());
        assert!(text.contains("Phase:         (not seen by the operator yet)\n"), "{text}");
        assert!(text.contains("  tables/ages.csv  (not checked yet)\n"), "{text}");
        assert!(text.contains("not yet seen by the operator"), "{text}");
    }
}
