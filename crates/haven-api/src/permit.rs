//! DataPermit: what a data access body grants (who, which data, what for, until when).

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::dataset::*;
pub use crate::policy::*;
use crate::schema;
pub use crate::site::MultiSitePermit;

/// A data permit issued by a data access body. It drives the whole lifecycle of the data it
/// grants: request → preparation → use → archive → destroy.
// Each printcolumn(...) repeats `type_ = ...`, which clippy mistakes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "haven.io",
    version = "v1alpha1",
    kind = "DataPermit",
    plural = "datapermits",
    shortname = "dp",
    shortname = "permit",
    category = "haven",
    status = "DataPermitStatus",
    doc = "A data permit: who may use which datasets, for what purpose, from when until when.",
    printcolumn(name = "Permit ID", type_ = "string", json_path = ".spec.permitId"),
    printcolumn(name = "Tier", type_ = "integer", json_path = ".spec.tier"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    // "date" columns print the age, which for a future instant kubectl shows as <invalid>.
    printcolumn(name = "Valid Until", type_ = "string", json_path = ".spec.validUntil"),
    printcolumn(name = "Workspaces", type_ = "integer", json_path = ".status.workspaces"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')")
        .message("metadata.name must be a DNS label (lower-case letters, digits and '-', at most 63 characters): it names data-store paths and labels")
)]
#[x_kube(
    validation = Rule::new("self.validUntil > self.validFrom")
        .message("spec.validUntil must be after spec.validFrom")
        .field_path(".validUntil"),
    validation = Rule::new("self.reviewers.all(r, !(r in self.users))")
        .message("spec.reviewers must not include any of spec.users: an output checker never reviews their own project")
        .field_path(".reviewers"),
    validation = Rule::new("!self.revoked || (has(self.revocationReason) && size(self.revocationReason) > 0)")
        .message("spec.revocationReason is required when spec.revoked is true")
        .field_path(".revocationReason"),
    validation = Rule::new("!oldSelf.revoked || self.revoked")
        .message("spec.revoked cannot be undone: a revoked permit stays revoked; issue a new permit instead")
        .field_path(".revoked"),
    validation = Rule::new("!has(self.airlock) || !has(self.airlock.requiredApprovals) || size(self.reviewers) >= self.airlock.requiredApprovals")
        .message("spec.airlock.requiredApprovals cannot exceed the number of spec.reviewers")
        .field_path(".airlock.requiredApprovals"),
)]
#[serde(rename_all = "camelCase")]
pub struct DataPermitSpec {
    /// The permit's identifier at the data access body (e.g. "HDAB-2026-0042"). Immutable.
    #[schemars(length(min = 1, max = 128))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.permitId is immutable"))]
    pub permit_id: String,

    /// Who holds the permit.
    pub holder: Holder,

    /// Why the data may be used: one of the EHDS secondary-use purposes (Art. 53).
    pub purpose: Purpose,

    /// The data's sensitivity tier, 0 (open) to 4 (most sensitive), as in the Turing Data Safe
    /// Haven. Each tier has a profile of controls (egress, airlock approvals and file types,
    /// import review, workspace lifetimes, what the access gateway allows), set in the Helm
    /// chart's `tiers`; the permit may tighten them, never loosen them. Default 3: personal
    /// health data, pseudonymised.
    #[serde(default = "default_tier")]
    #[schemars(range(max = 4))]
    pub tier: u8,

    /// The people named in the permit, as Kubernetes user names (as your authenticator
    /// reports them). Only they get access to the permit's workspaces.
    #[schemars(length(min = 1, max = 200), inner(length(min = 1, max = 253), regex(pattern = crate::schema::USER_NAME)))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    #[x_kube(validation = Rule::new("self.all(u, !u.startsWith('system:'))")
        .message("spec.users must name people, not system: identities"))]
    pub users: Vec<String>,

    /// Output checkers who review what leaves through the airlock. Never one of `users`, and
    /// people too: a `system:` identity (a controller, a service account) never reviews.
    #[schemars(length(min = 1, max = 50), inner(length(min = 1, max = 253), regex(pattern = crate::schema::USER_NAME)))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    #[x_kube(validation = Rule::new("self.all(u, !u.startsWith('system:'))")
        .message("spec.reviewers must name people, not system: identities"))]
    pub reviewers: Vec<String>,

    /// When use of the data may begin (RFC 3339). The permit is Pending until then.
    pub valid_from: DateTime<Utc>,

    /// When use of the data ends (RFC 3339). Workspaces are archived and torn down at this time.
    pub valid_until: DateTime<Utc>,

    /// How long the permit's extracts and archives are kept after it is archived, before they
    /// are destroyed: a duration such as `4392h` (183 days, about six months: the default) or
    /// `1h30m`; units h, m, s, ms, as in cert-manager's durations.
    #[serde(default = "default_retention")]
    #[schemars(length(min = 2, max = 32), regex(pattern = r"^([0-9]+(\.[0-9]+)?(h|m|s|ms))+$"))]
    #[x_kube(validation = Rule::new("duration(self) <= duration('876000h')")
        .message("spec.retention must be at most 876000h (100 years)"))]
    pub retention: String,

    /// Temporarily stops access to every workspace of the permit (reversible).
    #[serde(default)]
    pub suspended: bool,

    /// Revokes the permit: access is removed at once, then its workspaces are archived and
    /// torn down. Cannot be undone.
    #[serde(default)]
    pub revoked: bool,

    /// Why the permit was revoked; required when `revoked` is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub revocation_reason: Option<String>,

    /// The datasets granted, each with the columns permitted and how they are pseudonymised.
    #[schemars(length(min = 1, max = 32))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub datasets: Vec<DatasetGrant>,

    /// What workspaces of this permit may run and reach.
    pub environment: EnvironmentPolicy,

    /// How outputs leave (and inputs enter) the permit's workspaces.
    #[serde(default)]
    pub airlock: AirlockPolicy,

    /// This permit's part in a multi-site permit (compute-to-data across sites): the shared
    /// id, the requesting site and the data sites. Absent: a single-site permit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_site: Option<MultiSitePermit>,
}

fn default_tier() -> u8 {
    3
}

fn default_retention() -> String {
    "4392h".into()
}

/// The organisation and person responsible for the permit.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Holder {
    /// The organisation that holds the permit.
    #[schemars(length(min = 1, max = 256))]
    pub organisation: String,
    /// The principal investigator, accountable for the project.
    #[schemars(length(min = 1, max = 256))]
    pub principal_investigator: String,
}

/// The purposes for which EHDS allows secondary use of health data (Art. 53).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Purpose {
    /// Public interest in public and occupational health.
    PublicHealth,
    /// Policy-making and regulatory activities.
    PolicyMaking,
    /// Official statistics.
    Statistics,
    /// Education or teaching in health or care.
    Education,
    /// Scientific research related to health or care.
    ScientificResearch,
    /// Development and innovation of products or services.
    Innovation,
    /// Training, testing and evaluating algorithms, including in medical devices and AI.
    AlgorithmTraining,
    /// Improving the delivery of care and treatment.
    CareImprovement,
}

/// Where a permit is in its lifecycle.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum PermitPhase {
    /// Before `validFrom`.
    #[default]
    Pending,
    /// Datasets are being pseudonymised and minimised.
    Preparing,
    /// Workspaces may run.
    Active,
    /// Access is paused by `spec.suspended`.
    Suspended,
    /// `validUntil` has passed; workspaces are being archived.
    Expired,
    /// `spec.revoked` is set; workspaces are being archived.
    Revoked,
    /// Every workspace is archived; data is kept until the retention ends.
    Archived,
    /// Retention ended and the permit's data and key were destroyed.
    Destroyed,
}

/// Observed state of a DataPermit.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataPermitStatus {
    /// Where the permit is in its lifecycle.
    #[serde(default)]
    pub phase: PermitPhase,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions: Active, DatasetsPrepared, Destroyed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::conditions")]
    pub conditions: Vec<Condition>,
    /// The preparation report of each dataset.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub datasets: Vec<DatasetReport>,
    /// The controls in force: the tier's profile tightened by this permit (condition
    /// `WithinTier` says whether the permit asked for more than its tier allows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controls: Option<ControlsInForce>,
    /// How many workspaces use the permit now.
    #[serde(default)]
    pub workspaces: u32,
    /// When every workspace of the permit had been archived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_at: Option<DateTime<Utc>>,
    /// When the permit's data will be destroyed (archivedAt + retention).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destroy_after: Option<DateTime<Utc>>,
    /// Proof of destruction, kept after the data is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destruction: Option<DestructionRecord>,
    /// A destruction under way: what each area held and the key's fingerprint, recorded before
    /// anything is deleted, so that an operator stopped part-way resumes and records these
    /// counts rather than what was left. Becomes `destruction` once everything is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_destruction: Option<DestructionRecord>,
}

/// The controls in force for a permit, as recorded in its status.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ControlsInForce {
    /// The permit's tier.
    pub tier: u8,
    /// Network egress of its workspaces.
    pub egress: EgressProfile,
    /// Approvals an export needs.
    pub required_approvals: u32,
    /// File types that may leave.
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub allowed_file_types: Vec<String>,
    /// Whether imports need a reviewer.
    pub import_review: bool,
    /// The longest a workspace lives from its creation (absent: until the permit ends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_workspace_lifetime: Option<String>,
    /// Idle time after which an environment is stopped (absent: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<String>,
    /// Whether the access gateway requires a second factor (MFA) to enter its workspaces
    /// (absent in statuses written before the control existed: read as false until rewritten).
    #[serde(default)]
    pub require_mfa: bool,
    /// Whether its workspaces run only on nodes set aside for it.
    pub dedicated_nodes: bool,
}

/// What preparing one dataset produced.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatasetReport {
    /// The dataset's name in `spec.datasets`.
    pub name: String,
    /// Rows read from the raw source.
    pub rows_in: u64,
    /// Rows written to the extract.
    pub rows_out: u64,
    /// Rows suppressed to reach the k-anonymity requirement.
    #[serde(default)]
    pub suppressed_rows: u64,
    /// The smallest equivalence class over the quasi-identifiers (absent without any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_k: Option<u64>,
    /// Fingerprint of the pseudonymisation key (never the key itself).
    pub key_fingerprint: String,
    /// SHA-256 of the extract written.
    pub output_sha256: String,
    /// When the extract was written.
    pub prepared_at: DateTime<Utc>,
}

/// Proof that a permit's data was destroyed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DestructionRecord {
    /// When destruction completed (in `pendingDestruction`: when the areas were counted).
    pub destroyed_at: DateTime<Utc>,
    /// What was deleted, per area of the data store, as counted before anything was deleted.
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub deleted: Vec<DestroyedArea>,
    /// Fingerprint of the pseudonymisation key that was shredded, or a sentence saying there
    /// never was one.
    pub key_fingerprint: String,
    /// Whether the key Secret is gone, checked after deleting it (false: there never was one).
    /// Deleting a Secret removes it from the API, not from etcd's history or its backups:
    /// the key is unrecoverable only once those are compacted, rotated or encrypted at rest
    /// with a key that is gone too (see `shreddingLimit`).
    pub key_shredded: bool,
    /// Whether every file of the permit's workspace archives was sealed (encrypted with a key
    /// derived from the shredded key), checked file by file before deletion: then a copy made
    /// before destruction (a backup, a volume snapshot) cannot be decrypted once the key is gone.
    #[serde(default)]
    pub archives_sealed: bool,
    /// What shredding the key cannot do by itself, stated in the record an auditor reads.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub shredding_limit: String,
}

/// One area of the data store that was deleted.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DestroyedArea {
    /// The data-store path that was deleted (e.g. `extracts/<permit>`).
    pub path: String,
    /// Files deleted.
    pub files: u64,
    /// Bytes deleted.
    pub bytes: u64,
}
