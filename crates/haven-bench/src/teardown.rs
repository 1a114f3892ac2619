//! Teardown lag: workspaces expire one after another, and for each the time from its
//! `expiresAt` to its access being removed (the last of its RoleBindings and its
//! ClusterRoleBinding deleted) and to its namespace's deletion starting, as watches see them.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use anyhow::Context;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use futures::future::try_join_all;
use haven_api::{Workspace, constants::labels, workspace::WorkspacePhase};
use k8s_openapi::api::{
    core::v1::Namespace,
    rbac::v1::{ClusterRoleBinding, RoleBinding},
};
use kube::{Api, Client, Resource, ResourceExt, api::PostParams, runtime::watcher};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{
    objects::{self, run_selector},
    prom, stats,
    watch::{self, Change},
};

/// What the watches report.
#[derive(Debug)]
enum Observed {
    Ready(String),
    /// A binding of a workspace (kind/namespace/name) exists, or is gone.
    Binding {
        workspace: String,
        key: String,
        gone: bool,
    },
    NamespaceDeleting(String),
}

fn binding<K: Resource<DynamicType = ()>>(change: Change<K>) -> Option<Observed> {
    let (object, deleted) = match change {
        Change::Applied(k) => (k, false),
        Change::Deleted(k) => (k, true),
    };
    let workspace = object.labels().get(labels::WORKSPACE)?.clone();
    let gone = deleted || object.meta().deletion_timestamp.is_some();
    let key = format!("{}/{}/{}", K::kind(&()), object.namespace().unwrap_or_default(), object.name_any());
    Some(Observed::Binding { workspace, key, gone })
}

/// Where one workspace stands.
#[derive(Debug, Default)]
struct Track {
    ready: Option<DateTime<Utc>>,
    bindings: HashSet<String>,
    /// A binding was seen before the expiry, so there was access to remove.
    had_access: bool,
    access_removed: Option<DateTime<Utc>>,
    namespace_deleting: Option<DateTime<Utc>>,
}

pub async fn run(
    client: Client,
    count: usize,
    run: &str,
    spread: Duration,
    lead: Duration,
    metrics: Option<&str>,
) -> anyhow::Result<Value> {
    let (sink, mut seen) = mpsc::unbounded_channel();
    let managed =
        watcher::Config::default().labels(&format!("{}={}", labels::MANAGED_BY, labels::MANAGED_BY_VALUE));
    let synced = [
        watch::spawn(
            Api::<Workspace>::all(client.clone()),
            watcher::Config::default().labels(&run_selector(run)),
            |change| match change {
                Change::Applied(w) if w.status.as_ref().map(|s| s.phase) == Some(WorkspacePhase::Ready) => {
                    Some(Observed::Ready(w.name_any()))
                }
                _ => None,
            },
            sink.clone(),
        ),
        watch::spawn(Api::<RoleBinding>::all(client.clone()), managed.clone(), binding, sink.clone()),
        watch::spawn(Api::<ClusterRoleBinding>::all(client.clone()), managed.clone(), binding, sink.clone()),
        watch::spawn(
            Api::<Namespace>::all(client.clone()),
            managed,
            |change| {
                let (ns, deleted) = match change {
                    Change::Applied(ns) => (ns, false),
                    Change::Deleted(ns) => (ns, true),
                };
                let workspace = ns.labels().get(labels::WORKSPACE)?.clone();
                (deleted || ns.metadata.deletion_timestamp.is_some())
                    .then_some(Observed::NamespaceDeleting(workspace))
            },
            sink,
        ),
    ];
    for watch in synced {
        watch.await.context("a watch ended before its first list")?;
    }
    let histogram_before = match metrics {
        Some(address) => Some(lag_histogram(address).await?),
        None => None,
    };

    let start = Utc::now().duration_trunc(TimeDelta::milliseconds(1))?;
    let step = if count > 1 { spread / (count as u32 - 1) } else { Duration::ZERO };
    let expiries: HashMap<String, DateTime<Utc>> = (0..count)
        .map(|i| {
            (
                objects::workspace_name(run, i),
                start + TimeDelta::from_std(lead + step * i as u32).unwrap_or_default(),
            )
        })
        .collect();
    let api: Api<Workspace> = Api::all(client.clone());
    try_join_all((0..count).map(|i| {
        let api = api.clone();
        let at = expiries[&objects::workspace_name(run, i)];
        async move {
            let workspace = objects::workspace(run, i, Some(at))?;
            api.create(&PostParams::default(), &workspace).await?;
            anyhow::Ok(())
        }
    }))
    .await?;

    let mut tracks: HashMap<String, Track> = expiries.keys().map(|n| (n.clone(), Track::default())).collect();
    let last_expiry = expiries.values().max().copied().unwrap_or(start);
    let give_up = tokio::time::Instant::now()
        + (last_expiry - Utc::now()).to_std().unwrap_or_default()
        + Duration::from_secs(120);
    let done = |tracks: &HashMap<String, Track>| {
        tracks
            .values()
            .all(|t| t.namespace_deleting.is_some() && (t.access_removed.is_some() || !t.had_access))
    };
    while !done(&tracks) {
        let Ok(Some(s)) = tokio::time::timeout_at(give_up, seen.recv()).await else { break };
        match s.what {
            Observed::Ready(name) => {
                if let Some(t) = tracks.get_mut(&name) {
                    t.ready.get_or_insert(s.wall);
                }
            }
            Observed::Binding { workspace, key, gone } => {
                let Some(t) = tracks.get_mut(&workspace) else { continue };
                if gone {
                    t.bindings.remove(&key);
                    if t.bindings.is_empty() && t.had_access && t.access_removed.is_none() {
                        t.access_removed = Some(s.wall);
                    }
                } else {
                    t.bindings.insert(key);
                    t.had_access |= s.wall < expiries[&workspace];
                }
            }
            Observed::NamespaceDeleting(workspace) => {
                if let Some(t) = tracks.get_mut(&workspace) {
                    t.namespace_deleting.get_or_insert(s.wall);
                }
            }
        }
    }

    let lag = |at: DateTime<Utc>, name: &str| (at - expiries[name]).as_seconds_f64();
    let access: Vec<f64> = tracks.iter().filter_map(|(n, t)| t.access_removed.map(|at| lag(at, n))).collect();
    let namespace: Vec<f64> =
        tracks.iter().filter_map(|(n, t)| t.namespace_deleting.map(|at| lag(at, n))).collect();
    let not_ready = tracks.iter().filter(|(n, t)| t.ready.is_none_or(|at| at >= expiries[*n])).count();
    let mut record = json!({
        "figure": "teardown",
        "n": count,
        "spread_s": spread.as_secs_f64(),
        "lead_s": lead.as_secs_f64(),
        "not_ready_before_expiry": not_ready,
        "without_access_before_expiry": tracks.values().filter(|t| !t.had_access).count(),
        "access_removed": access.len(),
        "namespace_deleting": namespace.len(),
        "access_lag": stats::summary(&access),
        "namespace_lag": stats::summary(&namespace),
    });
    if let (Some(address), Some((sum_before, count_before))) = (metrics, histogram_before) {
        let (sum, n) = lag_histogram(address).await?;
        if n > count_before {
            record["operator_histogram_mean_s"] = json!((sum - sum_before) / (n - count_before));
        }
    }
    Ok(record)
}

/// The operator's own `haven_teardown_lag_seconds`: sum and count.
async fn lag_histogram(address: &str) -> anyhow::Result<(f64, f64)> {
    let samples = prom::parse(&prom::scrape_operator(address).await?);
    Ok((
        prom::sum(&samples, "haven_teardown_lag_seconds_sum", &[]),
        prom::sum(&samples, "haven_teardown_lag_seconds_count", &[]),
    ))
}
