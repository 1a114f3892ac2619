//! AirlockRequest: the only way files leave (or enter) a workspace.

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::schema;

/// A request to move files out of (Export) or into (Import) a workspace. The files are
/// snapshotted, checked for disclosure risk and reviewed by output checkers who are never the
/// requester; only the reviewed bytes are delivered.
// Each printcolumn(...) repeats `type_ = ...`, which clippy mistakes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "haven.io",
    version = "v1alpha1",
    kind = "AirlockRequest",
    plural = "airlockrequests",
    shortname = "ar",
    category = "haven",
    namespaced,
    status = "AirlockRequestStatus",
    doc = "A request to export files from, or import files into, a workspace.",
    printcolumn(name = "Direction", type_ = "string", json_path = ".spec.direction"),
    printcolumn(name = "Files", type_ = "integer", json_path = ".status.fileCount"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Checks", type_ = "string", json_path = ".status.checks"),
    printcolumn(name = "Approvals", type_ = "string", json_path = ".status.approvals"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(
    validation = Rule::new("self.reviews.all(r, r.reviewer != self.requestedBy)")
        .message("spec.reviews: the requester cannot review their own request (four-eyes)")
        .field_path(".reviews"),
    validation = Rule::new("oldSelf.reviews.all(r, r in self.reviews)")
        .message("spec.reviews is append-only: an earlier review cannot be changed or removed")
        .field_path(".reviews"),
    validation = Rule::new("!oldSelf.cancelled || self.cancelled")
        .message("spec.cancelled cannot be undone: submit a new request instead")
        .field_path(".cancelled"),
)]
#[serde(rename_all = "camelCase")]
pub struct AirlockRequestSpec {
    /// `Export` (out of the workspace) or `Import` (into it). Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.direction is immutable"))]
    pub direction: Direction,

    /// The user making the request; must be the user who creates it (checked at admission).
    /// Immutable.
    #[schemars(length(min = 1, max = 253), regex(pattern = crate::schema::USER_NAME))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.requestedBy is immutable"))]
    pub requested_by: String,

    /// Files to move, relative to the workspace outbox `/home/outputs` for an export (or the
    /// import drop zone for an import). No absolute paths and no `..`. Immutable.
    #[schemars(length(min = 1, max = 100), inner(length(min = 1, max = 1024)))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    #[x_kube(
        validation = Rule::new("self.all(f, !f.startsWith('/'))")
            .message("spec.files must be relative to the outbox: an absolute path is not allowed"),
        validation = Rule::new("self.all(f, !f.matches('(^|/)[.][.](/|$)'))")
            .message("spec.files must stay inside the outbox: '..' is not allowed"),
        validation = Rule::new("self.all(f, !f.contains('//') && !f.endsWith('/'))")
            .message("spec.files must name files: no empty path segment ('//' or a trailing '/')"),
        validation = Rule::new(r"self.all(f, !f.matches(r'[\\\p{Cc}]'))")
            .message("spec.files must not contain backslashes or control characters"),
        validation = Rule::new("self.all(f, f.matches('(^|/)([^/.]|[.][^/])'))")
            .message("spec.files must name a file, not the outbox itself ('.' or './')"),
        validation = Rule::new("self == oldSelf").message("spec.files is immutable: submit a new request instead"),
    )]
    pub files: Vec<String>,

    /// Why these files should leave (or enter), for the output checkers. Immutable.
    #[schemars(length(min = 1, max = 4000))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.justification is immutable"))]
    pub justification: String,

    /// Withdraws the request before a decision. Cannot be undone.
    #[serde(default)]
    pub cancelled: bool,

    /// Reviews by output checkers, appended one per reviewer; never edited or removed.
    #[serde(default)]
    #[schemars(length(max = 10))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["reviewer"]))]
    pub reviews: Vec<Review>,
}

/// Which way files move through the airlock.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Direction {
    /// Out of the workspace, to `egress/`.
    Export,
    /// Into the workspace, from `imports/`.
    Import,
}

/// One output checker's decision.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.decision != 'Reject' || (has(self.comment) && size(self.comment) > 0)")
    .message("comment is required when decision is Reject, so the requester knows why")
    .field_path(".comment"))]
#[serde(rename_all = "camelCase")]
pub struct Review {
    /// The output checker; must be the user writing the review (checked at admission) and one
    /// of the permit's reviewers.
    #[schemars(length(min = 1, max = 253), regex(pattern = crate::schema::USER_NAME))]
    pub reviewer: String,
    /// `Approve` or `Reject`.
    pub decision: Decision,
    /// The reviewer's reasoning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4000))]
    pub comment: Option<String>,
}

/// An output checker's decision.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Decision {
    Approve,
    Reject,
}

/// Where a request is in its lifecycle.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum AirlockPhase {
    /// Created; the snapshot is not taken yet.
    #[default]
    Submitted,
    /// Snapshot taken; automated checks are running.
    Checking,
    /// Checks done; waiting for output checkers.
    AwaitingReview,
    /// Enough approvals; delivery is next.
    Approved,
    /// An output checker rejected it.
    Rejected,
    /// An automated check failed hard; it cannot be approved.
    Blocked,
    /// The reviewed bytes were delivered to `egress/`.
    Exported,
    /// The reviewed bytes were copied into the workspace.
    Imported,
    /// Withdrawn by the requester.
    Cancelled,
    /// Something went wrong; see the conditions.
    Failed,
}

/// The ConfigMap, in the request's namespace, that holds its check report with every detail
/// for the output checkers: their Role may read ConfigMaps there, a researcher's may not. The
/// request's own status, which its requester reads, says only which check gave which outcome.
pub fn check_report_name(request_uid: &str) -> String {
    format!("airlock-report-{request_uid}")
}

/// The key of the report in that ConfigMap: the files' [`FileReport`]s as JSON.
pub const CHECK_REPORT_KEY: &str = "report.json";

impl AirlockPhase {
    /// Whether the request has ended: nothing more happens to it but the deletion of its
    /// snapshot after the retention.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Exported | Self::Imported | Self::Rejected | Self::Blocked | Self::Cancelled | Self::Failed
        )
    }
}

/// Observed state of an AirlockRequest.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AirlockRequestStatus {
    /// Where the request is in its lifecycle.
    #[serde(default)]
    pub phase: AirlockPhase,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions: Checked, Reviewed, Delivered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::conditions")]
    pub conditions: Vec<Condition>,
    /// Number of files in the snapshot.
    #[serde(default)]
    pub file_count: u32,
    /// Each file of the snapshot with its checks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["path"]))]
    pub files: Vec<FileReport>,
    /// Summary of the checks for `kubectl get`, e.g. `4 pass, 1 review`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<String>,
    /// Approvals so far out of those required, e.g. `1/2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<String>,
    /// Each review as the operator judged it: counted, or ignored with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["reviewer"]))]
    pub reviews: Vec<ReviewRecord>,
    /// The snapshot the checks and reviews saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotRecord>,
    /// Where and when the reviewed files were delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
    /// When the request reached its final phase; the snapshot's retention counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
}

/// How the operator counted one review.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewRecord {
    /// The reviewer, as in `spec.reviews`.
    pub reviewer: String,
    /// Their decision.
    pub decision: Decision,
    /// Whether it counts towards the decision.
    pub counted: bool,
    /// Why it does not count (e.g. the reviewer is not one of the permit's reviewers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The immutable copy of the requested files in quarantine.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotRecord {
    /// Data-store path: `quarantine/<namespace>/<request>`.
    pub path: String,
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
    /// SHA-256 of its manifest (every file's path, size and SHA-256); the delivery has the same.
    pub manifest_sha256: String,
    /// When it was deleted after the request finished and its retention ran out. The request
    /// and its per-file checks stay as the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_at: Option<DateTime<Utc>>,
}

/// One file of the snapshot.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileReport {
    /// Path relative to the outbox.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the snapshot; the delivered bytes have the same.
    pub sha256: String,
    /// Outcome of each automated check.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub checks: Vec<CheckResult>,
}

/// The outcome of one automated check on one file.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    /// The check's name (e.g. `file-policy`, `min-cell-count`).
    pub check: String,
    /// `pass`; `review` (a human must look); or `fail`: a broken file-policy, row-level or
    /// scanner check blocks the request, while a failed disclosure-control rule (threshold,
    /// dominance, p-ratio, degrees of freedom) is for the reviewers, who may approve an
    /// exception as with ACRO.
    pub outcome: CheckOutcome,
    /// What the check found.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// The outcome of an automated check, as ACRO reports it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckOutcome {
    Pass,
    Review,
    Fail,
}

/// Where the reviewed files went.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Data-store path of the delivered files: `egress/<permit>/<namespace>/<request>` for an export,
    /// `workspaces/<workspace>/imports/<request>` (the workspace's `/home/imports/<request>`)
    /// for an import.
    pub path: String,
    /// When they were delivered.
    pub delivered_at: DateTime<Utc>,
    /// SHA-256 of the delivery manifest (every file's path, size and SHA-256).
    pub manifest_sha256: String,
}
