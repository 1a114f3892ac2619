//! A workspace validated against its permit: everything the builders need, nothing they must
//! look up.

use std::collections::BTreeMap;

use haven_api::permit::{EgressProfile, PackageMirror};
use haven_api::workspace::WorkspaceResources;
use k8s_openapi::apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::OwnerReference};

/// The desired shape of one workspace, derived from its spec and its permit.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkspacePlan {
    /// The Workspace's name.
    pub name: String,
    /// The namespace it owns (`ws-<name>`).
    pub namespace: String,
    /// Its permit's name.
    pub permit: String,
    /// Controller reference to the Workspace, put on every child so GC and `.owns()` work.
    pub owner: OwnerReference,
    /// Users granted access (⊆ the permit's users).
    pub users: Vec<String>,
    /// The permit's output checkers.
    pub reviewers: Vec<String>,
    pub image: String,
    pub resources: WorkspaceResources,
    pub home_storage: Quantity,
    /// Dataset names to mount read-only (⊆ the permit's datasets).
    pub datasets: Vec<String>,
    pub egress: EgressProfile,
    pub package_mirror: Option<PackageMirror>,
    /// Run no environment (zero replicas); keep everything else.
    pub paused: bool,
    /// Paused because its idle timeout ran out (not by `spec.paused`).
    pub idle: bool,
    /// Schedule only on the nodes set aside for the permit.
    pub dedicated_nodes: bool,
    /// Its permit is part of a multi-site permit: the workspace's tools may reach the gateway's
    /// TES API (to send tasks to the data sites).
    pub multi_site: bool,
    /// What the access gateway reads from the workspace's Service (the tier's rules).
    pub gateway_annotations: BTreeMap<String, String>,
}
