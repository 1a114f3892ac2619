//! Destroying a permit's data once its retention has passed, so that a stop at any point
//! still yields the true record. Two durable steps: the survey (what each area of the data
//! store holds, the key's fingerprint) goes to the audit log and to `status.pendingDestruction`
//! before anything is deleted; then the areas and the key go, and the record is that survey
//! with what deleting found (whether the key is gone). A restarted operator resumes from the
//! survey, never from a count taken after a partial deletion.

use std::collections::BTreeSet;

use haven_api::{
    DataPermit, DataPermitStatus,
    permit::{DestroyedArea, DestructionRecord},
};
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
};

use super::key;
use crate::{
    context::Context,
    error::{Error, Result},
};

/// What deleting the key Secret does not reach, said in every record.
pub const SHREDDING_LIMIT: &str = "the key Secret was deleted through the Kubernetes API; copies of it in etcd's history and in etcd backups remain until compacted, rotated or encrypted at rest with a key that is destroyed too: that is the cluster operator's duty";

/// Said as the fingerprint when the permit never had a key.
const NO_KEY: &str = "none (no key was ever created)";

/// Destroys the permit's data and key; returns the record to keep in `status.destruction`.
pub async fn destroy(
    ctx: &Context,
    permit: &DataPermit,
    old: &DataPermitStatus,
) -> Result<DestructionRecord> {
    let name = permit.name_any();
    let pending = match &old.pending_destruction {
        Some(pending) => pending.clone(),
        None => survey(ctx, permit).await?,
    };
    // The workspaces as surveyed: the archive that listed some may already be gone.
    let workspaces: Vec<String> =
        pending.deleted.iter().filter_map(|a| a.path.strip_prefix("imports/")).map(str::to_owned).collect();
    let (store, permit_name) = (ctx.store.clone(), name.clone());
    tokio::task::spawn_blocking(move || haven_data::destroy_permit_data(&store, &permit_name, &workspaces))
        .await?
        .map_err(Error::data_store)?;
    key::shred_key(ctx, &name).await?;
    let had_key = pending.key_fingerprint != NO_KEY;
    let key_gone = key::existing_key(ctx, &name).await?.is_none();
    Ok(DestructionRecord {
        destroyed_at: ctx.clock.now(),
        key_shredded: had_key && key_gone,
        shredding_limit: SHREDDING_LIMIT.into(),
        ..pending
    })
}

/// Counts every area of the permit and records the count, durably, before anything is deleted.
async fn survey(ctx: &Context, permit: &DataPermit) -> Result<DestructionRecord> {
    let name = permit.name_any();
    let workspaces = permit_workspaces(ctx, &name)?;
    let (store, permit_name) = (ctx.store.clone(), name.clone());
    let report = tokio::task::spawn_blocking(move || {
        haven_data::survey_permit_data(&store, &permit_name, &workspaces)
    })
    .await?
    .map_err(Error::data_store)?;
    let fingerprint = key::existing_key(ctx, &name).await?.map(|k| k.fingerprint);
    let pending = DestructionRecord {
        destroyed_at: ctx.clock.now(),
        deleted: report
            .areas
            .into_iter()
            .map(|a| DestroyedArea { path: a.path, files: a.files, bytes: a.bytes })
            .collect(),
        key_fingerprint: fingerprint.unwrap_or_else(|| NO_KEY.into()),
        key_shredded: false,
        archives_sealed: report.archives_sealed,
        shredding_limit: SHREDDING_LIMIT.into(),
    };
    ctx.append_audit(&permit.object_ref(&()), "DestructionBegun", record_detail(&pending)?).await?;
    let patch = serde_json::json!({"status": {"pendingDestruction": pending}});
    Api::<DataPermit>::all(ctx.client.clone())
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(pending)
}

/// The audit detail of a destruction record: the whole record.
pub fn record_detail(record: &DestructionRecord) -> Result<serde_json::Map<String, serde_json::Value>> {
    match serde_json::to_value(record).map_err(Error::data_store)? {
        serde_json::Value::Object(map) => Ok(map),
        other => Err(Error::data_store(format!("a destruction record serialised as {other}"))),
    }
}

/// Every workspace the permit had: those with an archive under `archive/<permit>/` (torn down,
/// perhaps deleted long ago) and those still cached, but never a name a live workspace of
/// another permit now holds (names can be reused once a workspace is gone).
fn permit_workspaces(ctx: &Context, permit: &str) -> Result<Vec<String>> {
    let cached = ctx.workspaces.state();
    let others: BTreeSet<String> =
        cached.iter().filter(|w| w.spec.permit != permit).map(|w| w.name_any()).collect();
    let mut names: BTreeSet<String> =
        cached.iter().filter(|w| w.spec.permit == permit).map(|w| w.name_any()).collect();
    let archived = haven_data::archived_workspaces(&ctx.store, permit).map_err(Error::data_store)?;
    names.extend(archived.into_iter().filter(|n| !others.contains(n)));
    Ok(names.into_iter().collect())
}
