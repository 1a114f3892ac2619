//! Who reads which part of a request's check report. Check details quote the files (category
//! values, column names, cell values), and the requester can read the request's status from
//! their own machine before any review, then cancel: so the status says only which check gave
//! which outcome, and the details go to a ConfigMap only the output checkers' Role can read.

use std::collections::BTreeMap;

use haven_api::{
    AirlockRequest,
    airlock::{CHECK_REPORT_KEY, CheckOutcome, CheckResult, FileReport, check_report_name},
};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Resource, ResourceExt, api::ObjectMeta};

/// What the requester may read of a check: its name and outcome, never a word of the file.
pub fn for_requester(files: &[FileReport]) -> Vec<FileReport> {
    let redact = |check: &CheckResult| {
        CheckResult {
        detail: match check.outcome {
            CheckOutcome::Pass => "passed".into(),
            CheckOutcome::Review => "for the output checkers to judge; the details are in their report".into(),
            CheckOutcome::Fail => "failed; the details are in the output checkers' report (`haven airlock check` shows them inside the workspace)".into(),
        },
        ..check.clone()
    }
    };
    files
        .iter()
        .map(|file| FileReport { checks: file.checks.iter().map(redact).collect(), ..file.clone() })
        .collect()
}

/// ConfigMaps hold at most 1 MiB; details are cut to fit, and say so.
const MAX_REPORT_BYTES: usize = 900 * 1024;
const CUT_NOTE: &str = " [cut: the full report is results.json beside the snapshot]";

/// The output checkers' report: every detail, owned by the request so it goes with it.
pub fn build_report(request: &AirlockRequest, files: &[FileReport]) -> ConfigMap {
    let mut files = files.to_vec();
    let mut json = serde_json::to_string(&files).unwrap_or_default();
    for limit in [2_000, 200, 0] {
        if json.len() <= MAX_REPORT_BYTES {
            break;
        }
        for check in files.iter_mut().flat_map(|f| f.checks.iter_mut()) {
            if check.detail.len() > limit {
                let cut: String = check.detail.chars().take(limit).collect();
                check.detail = format!("{cut}{CUT_NOTE}");
            }
        }
        json = serde_json::to_string(&files).unwrap_or_default();
    }
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(check_report_name(&request.uid().unwrap_or_default())),
            namespace: request.namespace(),
            owner_references: request.controller_owner_ref(&()).map(|owner| vec![owner]),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(CHECK_REPORT_KEY.to_owned(), json)])),
        ..ConfigMap::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(detail: &str) -> FileReport {
        FileReport {
            path: "t.csv".into(),
            size: 1,
            sha256: "0".into(),
            checks: vec![CheckResult {
                check: "threshold".into(),
                outcome: CheckOutcome::Fail,
                detail: detail.into(),
            }],
        }
    }

    #[test]
    fn the_requester_reads_outcomes_never_a_word_of_the_file() {
        let redacted = for_requester(&[file("1 cell with a count below 10: row 3 (SECRET-VALUE, count=4)")]);
        let text = serde_json::to_string(&redacted).expect("json");
        assert!(!text.contains("SECRET"), "{text}");
        assert_eq!(redacted[0].checks[0].check, "threshold");
        assert_eq!(redacted[0].checks[0].outcome, CheckOutcome::Fail);
    }

    #[test]
    fn the_checkers_report_keeps_details_and_fits_a_config_map() {
        let request: AirlockRequest = serde_json::from_value(serde_json::json!({
            "apiVersion": "haven.io/v1alpha1", "kind": "AirlockRequest",
            "metadata": {"name": "r", "namespace": "ws-a", "uid": "u-1"},
            "spec": {"direction": "Export", "requestedBy": "a", "files": ["t.csv"], "justification": "j"},
        }))
        .expect("a request");
        let small = build_report(&request, &[file("row 3 (SECRET-VALUE)")]);
        assert!(small.data.as_ref().expect("data")[CHECK_REPORT_KEY].contains("SECRET-VALUE"));
        assert_eq!(small.metadata.name.as_deref(), Some("airlock-report-u-1"));
        let huge: Vec<FileReport> = (0..100).map(|_| file(&"x".repeat(20_000))).collect();
        let cut = build_report(&request, &huge);
        let json = &cut.data.as_ref().expect("data")[CHECK_REPORT_KEY];
        assert!(json.len() <= MAX_REPORT_BYTES && json.contains("[cut:"), "{} bytes", json.len());
    }
}
