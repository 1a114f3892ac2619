//! The permits the workspaces work under: created once per size, before any timing, and
//! Active (their one small dataset prepared by the operator) before a run starts.

use std::{collections::HashSet, path::Path, time::Duration};

use anyhow::{Context, bail};
use chrono::Utc;
use futures::{StreamExt, TryStreamExt, stream};
use haven_api::{DataPermit, permit::PermitPhase};
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, PostParams},
};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::objects::{self, PERMITS_RUN, SOURCE, SOURCE_CSV, run_selector};

/// Creates the permits `bench-p-0..count-1` that do not exist yet and waits until all are
/// Active.
pub async fn ensure(
    client: Client,
    count: usize,
    data_root: &Path,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let source = data_root.join("raw").join(SOURCE);
    if !source.exists() {
        std::fs::create_dir_all(source.parent().context("raw source has a parent")?)?;
        std::fs::write(&source, SOURCE_CSV).with_context(|| format!("writing {}", source.display()))?;
    }
    let api: Api<DataPermit> = Api::all(client);
    let selector = ListParams::default().labels(&run_selector(PERMITS_RUN));
    let existing: HashSet<String> =
        api.list_metadata(&selector).await?.items.iter().map(ResourceExt::name_any).collect();
    let started = Instant::now();
    let now = Utc::now();
    let missing: Vec<usize> = (0..count).filter(|i| !existing.contains(&objects::permit_name(*i))).collect();
    let created = missing.len();
    stream::iter(missing)
        .map(|i| {
            let api = api.clone();
            async move {
                let permit = objects::permit(i, now)?;
                match api.create(&PostParams::default(), &permit).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
                    Err(error) => Err(anyhow::Error::from(error)),
                }
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await?;

    let wanted: HashSet<String> = (0..count).map(objects::permit_name).collect();
    let deadline = started + timeout;
    loop {
        let active = api
            .list(&selector)
            .await?
            .items
            .iter()
            .filter(|p| wanted.contains(&p.name_any()))
            .filter(|p| p.status.as_ref().map(|s| s.phase) == Some(PermitPhase::Active))
            .count();
        if active == count {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {active} of {count} permits Active after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(json!({
        "figure": "permits",
        "count": count,
        "created": created,
        "seconds": started.elapsed().as_secs_f64(),
    }))
}
