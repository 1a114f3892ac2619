use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;

use super::{cluster_meta, workspace_labels};
use crate::workspace::plan::WorkspacePlan;

/// The workspace's namespace, with Pod Security `restricted` enforced (and warned and audited,
/// so a violation is visible before it is refused).
pub fn build_namespace(plan: &WorkspacePlan) -> Namespace {
    let mut labels: BTreeMap<String, String> = workspace_labels(plan, "namespace");
    for mode in ["enforce", "warn", "audit"] {
        labels.insert(format!("pod-security.kubernetes.io/{mode}"), "restricted".into());
        labels.insert(format!("pod-security.kubernetes.io/{mode}-version"), "latest".into());
    }
    let mut metadata = cluster_meta(plan, &plan.namespace, "namespace");
    metadata.labels = Some(labels);
    Namespace { metadata, ..Namespace::default() }
}
