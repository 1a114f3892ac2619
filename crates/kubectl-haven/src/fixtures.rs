//! Small objects for the renderers' tests, written as the API server would return them.

use haven_api::{AirlockRequest, DataPermit, Workspace};

/// The "now" every fixture is read at.
pub const NOW: &str = "2026-06-01T12:00:00Z";

const PERMIT: &str = r#"
apiVersion: haven.io/v1alpha1
kind: DataPermit
metadata: {name: study, creationTimestamp: "2026-05-01T12:00:00Z"}
spec:
  permitId: HDAB-2026-0042
  holder: {organisation: University Hospital, principalInvestigator: ada@uhru.example}
  purpose: ScientificResearch
  users: [alice@example.org, bob@example.org]
  reviewers: [carol@example.org]
  validFrom: "2026-05-01T00:00:00Z"
  validUntil: "2026-06-13T16:30:00Z"
  datasets:
  - name: survey
    source: survey.csv
    columns: [{name: id, rule: Hmac}]
  environment: {allowedImages: ["quay.io/jupyter/minimal-notebook:*"]}
"#;

const WORKSPACE: &str = r#"
apiVersion: haven.io/v1alpha1
kind: Workspace
metadata: {name: analysis, creationTimestamp: "2026-05-02T12:00:00Z"}
spec:
  permit: study
  users: [alice@example.org]
  image: quay.io/jupyter/minimal-notebook:2026-01-05
"#;

const REQUEST: &str = r#"
apiVersion: haven.io/v1alpha1
kind: AirlockRequest
metadata: {name: tables, namespace: ws-analysis, creationTimestamp: "2026-06-01T11:58:00Z", generation: 2}
spec:
  direction: Export
  requestedBy: alice@example.org
  files: [tables/ages.csv, notes.md]
  justification: Tables for the paper.
  reviews:
  - {reviewer: bob@example.org, decision: Approve}
  - {reviewer: carol@example.org, decision: Reject, comment: "cell 30-39 is 4"}
"#;

fn with_status<T: serde::de::DeserializeOwned>(object: &str, status: &str) -> T {
    let mut value: serde_json::Value = serde_saphyr::from_str(object).expect("fixture object");
    if !status.is_empty() {
        value["status"] = serde_saphyr::from_str(status).expect("fixture status");
    }
    serde_json::from_value(value).expect("fixture parses")
}

/// The permit `study` (valid 2026-05-01 to 2026-06-13 16:30) with `status` (YAML).
pub fn permit(status: &str) -> DataPermit {
    with_status(PERMIT, status)
}

/// The workspace `analysis` of permit `study` with `status` (YAML).
pub fn workspace(status: &str) -> Workspace {
    with_status(WORKSPACE, status)
}

/// The export `tables` in `ws-analysis` with two reviews, with `status` (YAML).
pub fn request(status: &str) -> AirlockRequest {
    with_status(REQUEST, status)
}
