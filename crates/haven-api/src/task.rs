//! AnalysisTask: an analysis sent to each data site of a multi-site permit (compute-to-data),
//! shaped like a GA4GH TES v1.1 task. It lives in the researcher's workspace namespace at the
//! requesting site; each data site pulls it, runs it beside its own extracts and releases its
//! outputs only through its own airlock; the approved packages land in the workspace.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::schema;

/// An analysis for the data sites of the workspace's multi-site permit.
// Each printcolumn(...) repeats `type_ = ...`, which clippy mistakes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "haven.io",
    version = "v1alpha1",
    kind = "AnalysisTask",
    plural = "analysistasks",
    shortname = "task",
    category = "haven",
    namespaced,
    status = "AnalysisTaskStatus",
    doc = "An analysis run at each data site of a multi-site permit; only checked results come back.",
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(name = "Sites", type_ = "string", json_path = ".status.summary"),
    printcolumn(name = "Requested By", type_ = "string", json_path = ".spec.requestedBy"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) <= 63")
        .message("metadata.name must be at most 63 characters: it names the task's directory under /home/imports")
)]
#[x_kube(
    validation = Rule::new("self.requestedBy == oldSelf.requestedBy && (has(self.description) ? self.description : '') == (has(oldSelf.description) ? oldSelf.description : '') && self.executors == oldSelf.executors && self.inputs == oldSelf.inputs && self.resources == oldSelf.resources && self.sites == oldSelf.sites")
        .message("spec is immutable but for spec.cancelled: submit a new task instead"),
    validation = Rule::new("!oldSelf.cancelled || self.cancelled")
        .message("spec.cancelled cannot be undone: submit a new task instead")
        .field_path(".cancelled"),
)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisTaskSpec {
    /// The user submitting the task; must be the user who creates it (checked at admission)
    /// and one of the users each data site's permit names.
    #[schemars(length(min = 1, max = 253), regex(pattern = crate::schema::USER_NAME))]
    pub requested_by: String,

    /// A short description for the data sites' output checkers (TES `description`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 4000))]
    pub description: String,

    /// The data sites to run at, a subset of the permit's; all of them when empty.
    #[serde(default)]
    #[schemars(
        length(max = 32),
        inner(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))
    )]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub sites: Vec<String>,

    /// The commands to run, one after the other, each in its own container (TES `executors`).
    /// The data site's permit must allow every image.
    #[schemars(length(min = 1, max = 4))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub executors: Vec<Executor>,

    /// Files the task takes to each site, at `/home/inputs/<path>` (scripts, parameters), as
    /// TES `inputs` with `content`.
    #[serde(default)]
    #[schemars(length(max = 20))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["path"]))]
    pub inputs: Vec<TaskInput>,

    /// CPU and memory of each run (TES `resources`), within each data site's ceiling.
    #[serde(default)]
    pub resources: TaskResources,

    /// Cancels the task at every site (TES `:cancel`). Cannot be undone.
    #[serde(default)]
    pub cancelled: bool,
}

/// One command of a task (a TES executor).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Executor {
    /// The container image; one of each data site's allowed images.
    #[schemars(length(min = 1, max = 512))]
    pub image: String,
    /// The command and its arguments. It reads `/data/<dataset>` and `/home/inputs`, and
    /// writes its results into `/outputs`: only those go to the site's airlock.
    #[schemars(length(min = 1, max = 64), inner(length(max = 4096)))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub command: Vec<String>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

/// A file the task takes with it (TES input `content`). Only inline text: nothing is read
/// from the workspace, so no file leaves the requesting site without being in this record.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskInput {
    /// Where it lands, relative to `/home/inputs` (no `..`: every segment starts with a letter,
    /// digit or `_`).
    #[schemars(
        length(min = 1, max = 255),
        regex(pattern = r"^[A-Za-z0-9_][-A-Za-z0-9_.]*(/[A-Za-z0-9_][-A-Za-z0-9_.]*)*$")
    )]
    pub path: String,
    /// The file's text.
    #[schemars(length(max = 262144))]
    pub content: String,
}

/// Compute for each run, as TES `resources`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskResources {
    /// CPU cores (default 1).
    #[serde(default = "default_cpu_cores")]
    #[schemars(range(min = 1, max = 64))]
    pub cpu_cores: u32,
    /// Memory in GiB (default 1).
    #[serde(default = "default_ram_gb")]
    #[schemars(range(min = 1, max = 512))]
    pub ram_gb: u32,
    /// The longest a run may take, in seconds (default 3600).
    #[serde(default = "default_max_run_seconds")]
    #[schemars(range(min = 10, max = 604800))]
    pub max_run_seconds: u32,
}

fn default_cpu_cores() -> u32 {
    1
}
fn default_ram_gb() -> u32 {
    1
}
fn default_max_run_seconds() -> u32 {
    3600
}

impl Default for TaskResources {
    fn default() -> Self {
        Self {
            cpu_cores: default_cpu_cores(),
            ram_gb: default_ram_gb(),
            max_run_seconds: default_max_run_seconds(),
        }
    }
}

/// The task's state as a whole, as GA4GH TES v1.1 names it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TesState {
    /// No site has taken it yet.
    #[default]
    Queued,
    /// At least one site has pulled it.
    Initializing,
    /// At least one site is running it or checking its outputs.
    Running,
    /// Every site has finished (delivered, refused, rejected or did not take part).
    Complete,
    /// Every site finished and none delivered because the runs failed.
    ExecutorError,
    /// Something outside the analysis failed.
    SystemError,
    /// Cancelled.
    Canceled,
}

/// Where a task stands at one data site.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum SiteTaskState {
    /// Offered; the site has not pulled it yet.
    #[default]
    Waiting,
    /// The site took it and is preparing its run.
    Pulled,
    /// The site refused it (the reason says why: user, image, resources, permit, limit).
    Refused,
    /// The site's permit is not Active: the site takes part in nothing.
    NotParticipating,
    /// Running as a Job beside the site's extracts.
    Running,
    /// The outputs are in the site's airlock, being checked.
    Checking,
    /// Checked; waiting for the site's own output checkers.
    AwaitingReview,
    /// Approved at the site; the package is on its way.
    Approved,
    /// The site's output checkers rejected it.
    Rejected,
    /// The site's automated checks blocked it (e.g. row-level data): it never leaves.
    Blocked,
    /// The run failed (the reason says how); nothing to release.
    Failed,
    /// The approved package is in the workspace.
    Delivered,
    /// Cancelled before it finished.
    Cancelled,
}

impl SiteTaskState {
    /// Whether nothing more happens at that site.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Refused
                | Self::NotParticipating
                | Self::Rejected
                | Self::Blocked
                | Self::Failed
                | Self::Delivered
                | Self::Cancelled
        )
    }
}

/// Observed state of an AnalysisTask.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisTaskStatus {
    /// The task's state as a whole (TES).
    #[serde(default)]
    pub state: TesState,
    /// The multi-site permit the task runs under (its id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_site_permit: Option<String>,
    /// Per site for `kubectl get`, e.g. `1 delivered, 1 rejected, 1 not participating`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Where the task stands at each data site.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["site"]))]
    pub sites: Vec<SiteProgress>,
    /// Standard conditions: Accepted (a multi-site permit of this workspace allows it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::conditions")]
    pub conditions: Vec<Condition>,
}

/// A task's progress at one data site, as that site reported it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteProgress {
    /// The data site.
    pub site: String,
    /// Where the task stands there.
    pub state: SiteTaskState,
    /// Why, in a word (e.g. `ImageNotAllowed`, `Suspended`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// What the site said.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Each state the site reached, with when (as the site's clock told it).
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub history: Vec<StateChange>,
    /// SHA-256 of the release manifest the site's checkers approved (the same at both ends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_sha256: Option<String>,
    /// Where the package landed: the workspace's `/home/imports/<task>/<site>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_to: Option<String>,
}

/// One state a site reached, and when.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StateChange {
    pub state: SiteTaskState,
    pub at: DateTime<Utc>,
}
