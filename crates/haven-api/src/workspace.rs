//! Workspace: one isolated namespace per project, for the users of a permit.

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::Condition};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::schema::{self, quantity_of};

/// A workspace: an isolated namespace `ws-<name>` with the permit's pseudonymised datasets
/// mounted read-only and an analysis environment, for some or all of the permit's users.
// Each printcolumn(...) repeats `type_ = ...`, which clippy mistakes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "haven.io",
    version = "v1alpha1",
    kind = "Workspace",
    plural = "workspaces",
    shortname = "ws",
    category = "haven",
    status = "WorkspaceStatus",
    doc = "An isolated analysis workspace for the users of a data permit.",
    printcolumn(name = "Permit", type_ = "string", json_path = ".spec.permit"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Namespace", type_ = "string", json_path = ".status.namespace"),
    printcolumn(name = "Users", type_ = "string", json_path = ".spec.users"),
    // "date" columns print the age, which for a future instant kubectl shows as <invalid>.
    printcolumn(name = "Expires", type_ = "string", json_path = ".status.expiresAt"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) <= 60 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')")
        .message("metadata.name must be a DNS label of at most 60 characters, so that its namespace ws-<name> is valid")
)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceSpec {
    /// The DataPermit this workspace works under (its name, a DNS label).
    /// Immutable.
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.permit is immutable: create a new workspace for another permit"))]
    pub permit: String,

    /// Who may use the workspace: Kubernetes user names, each one of the permit's users.
    #[schemars(length(min = 1, max = 50), inner(length(min = 1, max = 253), regex(pattern = crate::schema::USER_NAME)))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub users: Vec<String>,

    /// The analysis environment's container image; one of the permit's allowed images. An
    /// image reference: `[registry[:port]/]name[:tag][@digest]`.
    #[schemars(length(min = 1, max = 512))]
    #[x_kube(validation = Rule::new(format!("self.matches('{}')", schema::image_reference_regex()))
        .message("spec.image must be an image reference such as quay.io/jupyter/scipy-notebook:2026-01-05 ([registry[:port]/]name[:tag][@digest]: a lower-case name, no spaces)"))]
    pub image: String,

    /// CPU, memory and GPUs for the analysis environment, within the permit's ceiling.
    #[serde(default)]
    pub resources: WorkspaceResources,

    /// Size of the home volume, which also holds the airlock outbox `/home/outputs`
    /// (default 10Gi).
    #[serde(default = "default_home_storage")]
    #[schemars(schema_with = "schema::quantity")]
    pub home_storage: Quantity,

    /// Datasets of the permit to mount read-only under `/data/<name>`; all of them when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 32),
        inner(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))
    )]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub datasets: Option<Vec<String>>,

    /// When to archive and tear the workspace down (RFC 3339). Never later than the permit's
    /// `validUntil`, which applies when this is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,

    /// Stops the analysis environment (zero replicas) while keeping its files.
    #[serde(default)]
    pub paused: bool,
}

fn default_home_storage() -> Quantity {
    quantity_of("10Gi")
}

/// Compute for the analysis environment.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceResources {
    /// CPU (default 2).
    #[serde(default = "default_cpu")]
    #[schemars(schema_with = "schema::quantity")]
    pub cpu: Quantity,
    /// Memory (default 8Gi).
    #[serde(default = "default_memory")]
    #[schemars(schema_with = "schema::quantity")]
    pub memory: Quantity,
    /// GPUs (default 0).
    #[serde(default)]
    #[schemars(range(max = 16))]
    pub gpu: u32,
}

fn default_cpu() -> Quantity {
    quantity_of("2")
}
fn default_memory() -> Quantity {
    quantity_of("8Gi")
}

impl Default for WorkspaceResources {
    fn default() -> Self {
        Self { cpu: default_cpu(), memory: default_memory(), gpu: 0 }
    }
}

/// Where a workspace is in its lifecycle.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum WorkspacePhase {
    /// Waiting for its permit to allow it.
    #[default]
    Pending,
    /// Its namespace and children are being created.
    Provisioning,
    /// The analysis environment is running.
    Ready,
    /// `spec.paused`: no environment runs; files are kept.
    Paused,
    /// Expired or revoked: access is cut and files are being archived.
    Expiring,
    /// Files archived and verified; the namespace is deleted.
    Archived,
    /// Provisioning failed; see the conditions.
    Failed,
}

/// Observed state of a Workspace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceStatus {
    /// Where the workspace is in its lifecycle.
    #[serde(default)]
    pub phase: WorkspacePhase,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The namespace the workspace owns (`ws-<name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// When the workspace will be torn down: the earlier of `spec.expiresAt` and the permit's
    /// `validUntil`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Standard conditions: PermitValid, Isolated, DataMounted, AccessGranted, Ready, Archived.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::conditions")]
    pub conditions: Vec<Condition>,
    /// What was archived at teardown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchiveManifest>,
    /// Who holds access now and to which datasets; absent while nobody does. Every change of
    /// it is an audit record, written before this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<GrantedAccess>,
}

/// The access a workspace's RoleBindings grant.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantedAccess {
    /// The users, sorted.
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub users: Vec<String>,
    /// The datasets mounted, sorted.
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub datasets: Vec<String>,
}

/// The archive of a workspace's files, written and verified before its namespace is deleted.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveManifest {
    /// Data-store path of the archive (`archive/<permit>/<workspace>`).
    pub path: String,
    /// Files archived.
    pub files: u64,
    /// Bytes archived.
    pub bytes: u64,
    /// SHA-256 of the manifest listing every file's path, size and SHA-256.
    pub manifest_sha256: String,
    /// When the archive was verified.
    pub archived_at: DateTime<Utc>,
}
