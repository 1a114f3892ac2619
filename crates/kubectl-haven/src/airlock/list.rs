//! The table `airlock list` prints: the CRD's printer columns, plus who asked and who reviewed
//! with `-o wide`.

use chrono::{DateTime, Utc};
use haven_api::AirlockRequest;

use crate::format::{self, Table};

pub fn render(requests: &[AirlockRequest], all_namespaces: bool, wide: bool, now: DateTime<Utc>) -> String {
    let mut headers = Vec::new();
    if all_namespaces {
        headers.push("NAMESPACE");
    }
    headers.extend(["NAME", "DIRECTION", "FILES", "PHASE", "CHECKS", "APPROVALS", "AGE"]);
    if wide {
        headers.extend(["REQUESTED BY", "REVIEWS"]);
    }
    let mut table = Table::new(&headers);
    for request in requests {
        let status = request.status.clone().unwrap_or_default();
        let files = if status.file_count > 0 { status.file_count as usize } else { request.spec.files.len() };
        let phase = if request.status.is_some() { format!("{:?}", status.phase) } else { "-".into() };
        let mut row = Vec::new();
        if all_namespaces {
            row.push(request.metadata.namespace.clone().unwrap_or_default());
        }
        row.extend([
            request.metadata.name.clone().unwrap_or_default(),
            format!("{:?}", request.spec.direction),
            files.to_string(),
            phase,
            status.checks.unwrap_or_else(|| "-".into()),
            status.approvals.unwrap_or_else(|| "-".into()),
            format::age(format::created(&request.metadata), now),
        ]);
        if wide {
            let reviews: Vec<String> =
                request.spec.reviews.iter().map(|r| format!("{}:{:?}", r.reviewer, r.decision)).collect();
            row.push(request.spec.requested_by.clone());
            row.push(if reviews.is_empty() { "-".into() } else { reviews.join(",") });
        }
        table.row(row);
    }
    table.render("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{NOW, request};

    fn now() -> DateTime<Utc> {
        NOW.parse().expect("fixture time")
    }

    #[test]
    fn the_list_shows_direction_files_phase_checks_approvals_and_age() {
        let awaiting =
            request("phase: AwaitingReview\nfileCount: 2\nchecks: 5 pass, 1 fail\napprovals: 0/1\n");
        let text = render(&[awaiting], false, false, now());
        let expected = "\
NAME     DIRECTION   FILES   PHASE            CHECKS           APPROVALS   AGE
tables   Export      2       AwaitingReview   5 pass, 1 fail   0/1         2m
";
        assert_eq!(text, expected);
    }

    #[test]
    fn a_request_the_operator_has_not_seen_counts_its_requested_files() {
        let text = render(&[request("")], true, true, now());
        let expected = "\
NAMESPACE     NAME     DIRECTION   FILES   PHASE   CHECKS   APPROVALS   AGE   REQUESTED BY        REVIEWS
ws-analysis   tables   Export      2       -       -        -           2m    alice@example.org   bob@example.org:Approve,carol@example.org:Reject
";
        assert_eq!(text, expected);
    }
}
