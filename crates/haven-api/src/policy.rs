//! What a permit allows its workspaces: images, network, resources, and the airlock.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::schema::{self, quantity_of};

/// What a permit's workspaces may run and reach.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.egress != 'PackageMirror' || has(self.packageMirror)")
    .message("packageMirror is required when egress is PackageMirror").field_path(".packageMirror"))]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentPolicy {
    /// Container images a workspace may run. An entry is an exact image reference, or the start
    /// of one followed by `*`: `quay.io/jupyter/scipy-notebook:*` (any tag of a repository),
    /// `rocker/rstudio:4.5.*` (tags starting so), `quay.io/jupyter/*` (any repository under it).
    #[schemars(length(min = 1, max = 50), inner(length(min = 1, max = 512)))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    #[x_kube(validation = Rule::new(format!("self.all(i, i.matches('{}'))", schema::image_pattern_regex()))
        .message("spec.environment.allowedImages entries must be image references such as quay.io/jupyter/scipy-notebook:2026-01-05, or the start of one followed by * (e.g. rocker/rstudio:4.5.* or quay.io/jupyter/*)"))]
    pub allowed_images: Vec<String>,

    /// Network egress of workspace pods: `None` (DNS only, the default), `PackageMirror`
    /// (DNS and the mirror in `packageMirror`) or `Internet` (public addresses; never the
    /// cluster's or private ranges). Never more open than the permit's tier allows.
    #[serde(default)]
    pub egress: EgressProfile,

    /// The package mirror workspaces may reach when `egress` is `PackageMirror`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_mirror: Option<PackageMirror>,

    /// How many workspaces may use the permit at once (default 3).
    #[serde(default = "default_max_workspaces")]
    #[schemars(range(min = 1, max = 100))]
    pub max_workspaces: u32,

    /// The most one workspace of this permit may request.
    #[serde(default)]
    pub resource_ceiling: ResourceCeiling,

    /// The longest a workspace of this permit may live from its creation (a duration such as
    /// `720h`); absent means the tier's limit. Never longer than the tier's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 32), regex(pattern = r"^([0-9]+(\.[0-9]+)?(h|m|s|ms))+$"))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1m') && duration(self) <= duration('876000h')")
        .message("maxWorkspaceLifetime must be between 1m and 876000h (100 years)"))]
    pub max_workspace_lifetime: Option<String>,

    /// How long an analysis environment may sit idle (no activity reported by the access
    /// gateway) before it is stopped, keeping its files; absent means the tier's. Never longer
    /// than the tier's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 32), regex(pattern = r"^([0-9]+(\.[0-9]+)?(h|m|s|ms))+$"))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1m') && duration(self) <= duration('876000h')")
        .message("idleTimeout must be between 1m and 876000h (100 years)"))]
    pub idle_timeout: Option<String>,

    /// Whether the access gateway requires a second factor (MFA: the ID token's `amr`/`acr`)
    /// to enter this permit's workspaces; absent means the tier's. A permit can require it
    /// where its tier does not, never the reverse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_mfa: Option<bool>,

    /// Run the permit's workspaces only on nodes set aside for it: nodes labelled
    /// `node-restriction.kubernetes.io/haven-permit=<permit>` and tainted with the same key and
    /// value (`NoSchedule`), so no other permit's pods share them. A kubelet cannot give itself
    /// that label (NodeRestriction).
    #[serde(default)]
    pub dedicated_nodes: bool,
}

fn default_max_workspaces() -> u32 {
    3
}

/// Network egress allowed from workspace pods, from the most closed to the most open (the
/// order is what a tier's limit compares).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
pub enum EgressProfile {
    /// Cluster DNS only.
    #[default]
    None,
    /// Cluster DNS and the permit's package mirror.
    PackageMirror,
    /// Cluster DNS and public internet addresses (never private, link-local or metadata ones).
    Internet,
}

/// A package mirror (PyPI, CRAN, conda proxy) reachable from workspaces.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PackageMirror {
    /// The mirror's address range, e.g. `10.20.30.40/32`: never link-local, where cloud
    /// metadata services answer (169.254.0.0/16 with 169.254.169.254, fe80::/10, and
    /// fd00:ec2::254); and, by the platform's rules (the chart's `network`), a host or a few (no
    /// wider than /24 or /64 by default) outside the cluster's pod and Service ranges.
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(
        validation = Rule::new("isCIDR(self)").message("packageMirror.cidr must be a CIDR such as 10.20.30.40/32"),
        validation = Rule::new("!isCIDR(self) || !(cidr(self).containsIP(ip('169.254.169.254')) || cidr(self).containsIP(ip('fd00:ec2::254')) || cidr('169.254.0.0/16').containsCIDR(cidr(self)) || cidr('fe80::/10').containsCIDR(cidr(self)))")
            .message("packageMirror.cidr must not include a cloud metadata or link-local address (169.254.0.0/16, fe80::/10, fd00:ec2::254)"),
    )]
    pub cidr: String,
    /// TCP ports of the mirror (default 443).
    #[serde(default = "default_mirror_ports")]
    #[schemars(length(min = 1, max = 8), inner(range(min = 1, max = 65535)))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub ports: Vec<u16>,
}

fn default_mirror_ports() -> Vec<u16> {
    vec![443]
}

/// The most one workspace may request.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceCeiling {
    /// CPU (default 8).
    #[serde(default = "default_ceiling_cpu")]
    #[schemars(schema_with = "schema::quantity")]
    pub cpu: Quantity,
    /// Memory (default 32Gi).
    #[serde(default = "default_ceiling_memory")]
    #[schemars(schema_with = "schema::quantity")]
    pub memory: Quantity,
    /// Home storage (default 100Gi).
    #[serde(default = "default_ceiling_storage")]
    #[schemars(schema_with = "schema::quantity")]
    pub storage: Quantity,
    /// GPUs (default 0).
    #[serde(default)]
    #[schemars(range(max = 16))]
    pub gpu: u32,
}

fn default_ceiling_cpu() -> Quantity {
    quantity_of("8")
}
fn default_ceiling_memory() -> Quantity {
    quantity_of("32Gi")
}
fn default_ceiling_storage() -> Quantity {
    quantity_of("100Gi")
}

impl Default for ResourceCeiling {
    fn default() -> Self {
        Self {
            cpu: default_ceiling_cpu(),
            memory: default_ceiling_memory(),
            storage: default_ceiling_storage(),
            gpu: 0,
        }
    }
}

/// The airlock rules of a permit.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AirlockPolicy {
    /// Independent approvals an export needs (1-5; never more than the reviewers). Absent means
    /// the tier's; never fewer than the tier's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 5))]
    pub required_approvals: Option<u32>,
    /// Whether an import needs a reviewer's approval after its automated checks; absent means
    /// the tier's. A permit can require review where its tier does not, never the reverse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_review: Option<bool>,
    /// Statistical disclosure control thresholds for the automated checks.
    #[serde(default)]
    pub disclosure: DisclosureThresholds,
    /// File extensions that may leave, lower case without the dot. Absent means the tier's
    /// (by default csv, txt, md, pdf, png, json; like ACRO, not svg, which can carry scripts and
    /// the plotted data); only types the tier allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 50), inner(length(min = 1, max = 16), regex(pattern = r"^[a-z0-9]+$")))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub allowed_file_types: Option<Vec<String>>,
    /// Largest file that may leave (default 10Mi).
    #[serde(default = "default_max_file_size")]
    #[schemars(schema_with = "schema::quantity")]
    pub max_file_size: Quantity,
    /// Most files in one request (default 50).
    #[serde(default = "default_max_files")]
    #[schemars(range(min = 1, max = 100))]
    pub max_files: u32,
}

fn default_max_file_size() -> Quantity {
    quantity_of("10Mi")
}
fn default_max_files() -> u32 {
    50
}

impl Default for AirlockPolicy {
    fn default() -> Self {
        Self {
            required_approvals: None,
            import_review: None,
            disclosure: DisclosureThresholds::default(),
            allowed_file_types: None,
            max_file_size: default_max_file_size(),
            max_files: default_max_files(),
        }
    }
}

/// Statistical disclosure control thresholds, with the defaults of ACRO (`acro/default.yaml`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisclosureThresholds {
    /// Smallest count a table cell may show (default 10).
    #[serde(default = "default_min_cell_count")]
    #[schemars(range(min = 1, max = 1000))]
    pub min_cell_count: u32,
    /// N of the N-K dominance rule: the N largest contributors to a cell (default 2)...
    #[serde(default = "default_dominance_n")]
    #[schemars(range(min = 1, max = 10))]
    pub dominance_n: u32,
    /// ...may together make up at most K percent of its total (default 90).
    #[serde(default = "default_dominance_k_percent")]
    #[schemars(range(min = 1, max = 100))]
    pub dominance_k_percent: u32,
    /// p% rule: the total less the two largest contributors must be at least p percent of the
    /// largest (default 10).
    #[serde(default = "default_p_percent")]
    #[schemars(range(min = 1, max = 100))]
    pub p_percent: u32,
    /// Fewest residual degrees of freedom a model output may have (default 10).
    #[serde(default = "default_min_degrees_of_freedom")]
    #[schemars(range(min = 1, max = 1000))]
    pub min_degrees_of_freedom: u32,
}

fn default_min_cell_count() -> u32 {
    10
}
fn default_dominance_n() -> u32 {
    2
}
fn default_dominance_k_percent() -> u32 {
    90
}
fn default_p_percent() -> u32 {
    10
}
fn default_min_degrees_of_freedom() -> u32 {
    10
}

impl Default for DisclosureThresholds {
    fn default() -> Self {
        Self {
            min_cell_count: default_min_cell_count(),
            dominance_n: default_dominance_n(),
            dominance_k_percent: default_dominance_k_percent(),
            p_percent: default_p_percent(),
            min_degrees_of_freedom: default_min_degrees_of_freedom(),
        }
    }
}
