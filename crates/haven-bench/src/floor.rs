//! The raw floor: a plain client server-side-applying exactly the objects the operator
//! would, built by the operator's own pure builders and applied by its own
//! `provision::apply_children` (same order, same field manager). What it
//! leaves out is what the operator adds: fetching the permit and the sibling workspaces,
//! the home directory on the data store, pruning, reading the pod, and status.

use anyhow::anyhow;
use haven_api::{DataPermit, Workspace};
use haven_operator::{
    applied::Applied,
    config::OperatorConfig,
    workspace::{build::build_children, provision::apply_children, validate::plan_workspace},
};
use kube::{Client, ResourceExt};

/// Plans `workspace` (as created, so it has its uid for the owner reference) against
/// `permit` and applies every child.
pub async fn provision(
    client: &Client,
    workspace: &Workspace,
    permit: &DataPermit,
    config: &OperatorConfig,
) -> anyhow::Result<()> {
    let controls = config.tiers.controls(&permit.spec);
    let plan =
        plan_workspace(workspace, permit, &controls, config.tiers.mirror_rules(), &[], chrono::Utc::now())
            .map_err(|violations| {
                let reasons: Vec<String> =
                    violations.iter().map(|v| format!("{}: {}", v.reason, v.message)).collect();
                anyhow!("workspace {} refused: {}", workspace.name_any(), reasons.join("; "))
            })?;
    // A fresh ledger: each child is applied exactly once, as the operator's first reconcile does.
    apply_children(client, &Applied::default(), &build_children(&plan, config)).await?;
    Ok(())
}
