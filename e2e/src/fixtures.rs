//! Objects the operator tests create: a permit valid around now, a workspace under it, and the
//! raw source its one dataset is prepared from.

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
            "datasets": [{"name": "survey", "source": "survey.csv", "custodian": "E2E Registry",
                "columns": [{"name": "id", "rule": "Hmac"}]}],
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

/// The raw values of the fixture dataset's `id` column, which must never reach an extract.
pub const RAW_IDS: [&str; 3] = ["9434765919", "9434765870", "9434765862"];

/// Writes the raw source of the fixture permits' one dataset (`raw/survey.csv`).
pub fn write_raw_source(data_root: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(data_root.join("raw"))?;
    std::fs::write(data_root.join("raw/survey.csv"), format!("id\n{}\n", RAW_IDS.join("\n")))?;
    Ok(())
}

/// What each researcher leaves in their workspace's home under `data_root`: a result
/// (`outputs/result.csv`, naming the workspace's index) and `scratch` files (`scratch/<n>.txt`,
/// naming the workspace), so an archive has something to carry and a test can check it all.
pub fn fill_homes(data_root: &std::path::Path, workspaces: &[String], scratch: usize) -> Result<()> {
    for (i, name) in workspaces.iter().enumerate() {
        let home = data_root.join("workspaces").join(name).join("home");
        std::fs::write(home.join("outputs/result.csv"), format!("workspace,{i}\n"))?;
        std::fs::create_dir_all(home.join("scratch"))?;
        for n in 0..scratch {
            std::fs::write(home.join(format!("scratch/{n}.txt")), format!("{name} {n}\n"))?;
        }
    }
    Ok(())
}

/// The verified archive of workspace `name` (filled by [`fill_homes`]) under `data_root`, and
/// the result it holds, read back through `key`, as a restore would.
pub fn archived_result(
    data_root: &std::path::Path,
    permit: &str,
    name: &str,
    key: &haven_data::SealKey,
) -> Result<(haven_data::ArchiveRecord, String)> {
    let store = haven_data::DataStore::new(data_root);
    let archive = haven_data::verify_archive(&store, permit, name, key)?;
    let opened = data_root.with_extension(format!("opened-{name}"));
    haven_data::open_archive(&store, permit, name, key, &opened)?;
    Ok((archive, std::fs::read_to_string(opened.join("files/home/outputs/result.csv"))?))
}
