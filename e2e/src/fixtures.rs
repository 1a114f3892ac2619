//! Objects the operator tests create: a permit valid around now, a workspace under it, and
//! the stand-in extract that lets a permit activate until preparation exists.

use anyhow::Result;
use chrono::{Duration, Utc};
use haven_api::{DataPermit, Workspace};
use serde_json::{Value, json};

/// A permit for `user`, valid from `from` to `until` seconds relative to now, with a short
/// retention so tests can reach destruction.
pub fn permit(name: &str, user: &str, from: i64, until: i64) -> Result<DataPermit> {
    let now = Utc::now();
    Ok(serde_json::from_value(json!({
        "apiVersion": "haven.io/v1alpha1", "kind": "DataPermit",
        "metadata": {"name": name},
        "spec": {
            "permitId": format!("E2E-{name}"),
            "holder": {"organisation": "E2E", "principalInvestigator": "pi@example.org"},
            "purpose": "ScientificResearch",
            "users": [user], "reviewers": ["carol@example.org"],
            "validFrom": (now + Duration::seconds(from)).to_rfc3339(),
            "validUntil": (now + Duration::seconds(until)).to_rfc3339(),
            "retention": "3s",
            "datasets": [{"name": "survey", "source": "survey.csv", "columns": [{"name": "id", "rule": "Hmac"}]}],
            "environment": {"allowedImages": ["quay.io/jupyter/minimal-notebook:*"]},
        }
    }))?)
}

/// A workspace of `permit` for `user`; `changes` is merged into its spec.
pub fn workspace(name: &str, permit: &str, user: &str, changes: Value) -> Result<Workspace> {
    let mut spec =
        json!({"permit": permit, "users": [user], "image": "quay.io/jupyter/minimal-notebook:2026-01-05"});
    if let (Some(spec), Some(changes)) = (spec.as_object_mut(), changes.as_object()) {
        spec.extend(changes.clone());
    }
    Ok(serde_json::from_value(json!({
        "apiVersion": "haven.io/v1alpha1", "kind": "Workspace",
        "metadata": {"name": name},
        "spec": spec,
    }))?)
}

/// Writes the extract of the fixture permit's one dataset, as preparation would.
pub fn prepare_extract(data_root: &std::path::Path, permit: &str) -> Result<()> {
    let extract = data_root.join("extracts").join(permit).join("survey");
    std::fs::create_dir_all(&extract)?;
    std::fs::write(extract.join("survey.csv"), "id\nab12\n")?;
    Ok(())
}
