//! The objects a benchmark creates: permits `bench-p-<i>`, and workspaces `<run>-<i>`
//! labelled with their run, which is what a run's watches select.

use chrono::{DateTime, Duration, Utc};
use haven_api::{DataPermit, Workspace};
use serde_json::json;

/// Label on every benchmark object: the run it belongs to (`permits` for the permits).
pub const RUN_LABEL: &str = "bench.haven.io/run";
/// The run label's value on the permits.
pub const PERMITS_RUN: &str = "permits";
/// The one user of every permit and workspace.
pub const USER: &str = "bench@example.org";
/// The image every workspace runs (kwok never pulls it).
pub const IMAGE: &str = "bench.example/env:1";
/// The raw source, under `<data root>/raw/`, every permit prepares its one dataset from.
pub const SOURCE: &str = "bench/survey.csv";
/// Its content: a header and a few rows, so preparation takes milliseconds.
pub const SOURCE_CSV: &str = "id,answer\n1,a\n2,b\n3,c\n";

pub fn permit_name(i: usize) -> String {
    format!("bench-p-{i}")
}

pub fn workspace_name(run: &str, i: usize) -> String {
    format!("{run}-{i}")
}

/// The selector of a run's objects.
pub fn run_selector(run: &str) -> String {
    format!("{RUN_LABEL}={run}")
}

/// Permit `bench-p-<i>`: one user, one small dataset, the default workspace limit.
pub fn permit(i: usize, now: DateTime<Utc>) -> serde_json::Result<DataPermit> {
    serde_json::from_value(json!({
        "apiVersion": "haven.io/v1alpha1",
        "kind": "DataPermit",
        "metadata": { "name": permit_name(i), "labels": { RUN_LABEL: PERMITS_RUN } },
        "spec": {
            "permitId": format!("BENCH-{i}"),
            "holder": { "organisation": "Bench", "principalInvestigator": "pi@example.org" },
            "purpose": "Statistics",
            "users": [USER],
            "reviewers": ["checker@example.org"],
            "validFrom": (now - Duration::days(1)).to_rfc3339(),
            "validUntil": (now + Duration::days(365)).to_rfc3339(),
            "datasets": [{
                "name": "survey",
                "source": SOURCE,
                "columns": [{ "name": "id", "rule": "Hmac" }, { "name": "answer", "rule": "Keep" }],
            }],
            "environment": { "allowedImages": ["bench.example/env:*"] },
        },
    }))
}

/// Workspace `<run>-<i>` under permit `bench-p-<i>`, small enough that 500 fit on a fake node.
pub fn workspace(run: &str, i: usize, expires_at: Option<DateTime<Utc>>) -> serde_json::Result<Workspace> {
    let mut spec = json!({
        "permit": permit_name(i),
        "users": [USER],
        "image": IMAGE,
        "resources": { "cpu": "100m", "memory": "256Mi" },
        "homeStorage": "1Gi",
    });
    if let Some(at) = expires_at {
        spec["expiresAt"] = json!(at);
    }
    serde_json::from_value(json!({
        "apiVersion": "haven.io/v1alpha1",
        "kind": "Workspace",
        "metadata": { "name": workspace_name(run, i), "labels": { RUN_LABEL: run } },
        "spec": spec,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_i_works_under_permit_i_and_carries_its_run() {
        let w = workspace("op50r1", 7, None).expect("valid workspace");
        assert_eq!(w.metadata.name.as_deref(), Some("op50r1-7"));
        assert_eq!(w.spec.permit, permit_name(7));
        assert_eq!(
            w.metadata.labels.as_ref().and_then(|l| l.get(RUN_LABEL)).map(String::as_str),
            Some("op50r1")
        );
        let p = permit(7, Utc::now()).expect("valid permit");
        assert!(p.spec.users.contains(&USER.to_owned()));
    }

    #[test]
    fn expiry_is_set_only_when_asked() {
        let at = Utc::now();
        assert_eq!(workspace("t", 0, Some(at)).expect("valid").spec.expires_at, Some(at));
        assert_eq!(workspace("t", 0, None).expect("valid").spec.expires_at, None);
    }
}
