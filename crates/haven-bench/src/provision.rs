//! Provisioning throughput: COUNT workspaces created at once, each timed from just before
//! its create request to Ready (operator) or to its environment pod Running (floor); the
//! total from the first request to the last one ready. Also timed: until the workspace's
//! ClusterRoleBinding, the last child applied, exists: the provisioning work itself, without
//! the scheduler and kwok starting the pod, which both sides wait for alike.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, anyhow, bail};
use haven_api::{DataPermit, Workspace, constants::labels, workspace::WorkspacePhase};
use haven_operator::config::OperatorConfig;
use k8s_openapi::api::{core::v1::Pod, rbac::v1::ClusterRoleBinding};
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, PostParams},
    runtime::watcher,
};
use serde_json::{Value, json};
use tokio::{sync::mpsc, time::Instant};

use crate::{
    Mode, floor,
    objects::{self, PERMITS_RUN, run_selector},
    process, prom, stats,
    watch::{self, Change},
};

/// What one provisioning run creates.
#[derive(Debug)]
pub struct Target {
    pub mode: Mode,
    pub count: usize,
    pub run: String,
    pub rep: u32,
    pub data_root: PathBuf,
}

/// A workspace reached a point on its way up.
#[derive(Debug)]
enum Milestone {
    /// Its last child (the ClusterRoleBinding) exists.
    Applied(String),
    /// Ready (operator) or its environment pod Running (floor).
    Ready(String),
}

pub async fn run(
    client: Client,
    target: Target,
    operator_pid: Option<u32>,
    metrics: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let Target { mode, count, run, rep, data_root } = target;
    let (sink, mut seen) = mpsc::unbounded_channel();
    let ready_watch = match mode {
        Mode::Operator => watch::spawn(
            Api::<Workspace>::all(client.clone()),
            watcher::Config::default().labels(&run_selector(&run)),
            |change| match change {
                Change::Applied(w) if w.status.as_ref().map(|s| s.phase) == Some(WorkspacePhase::Ready) => {
                    Some(Milestone::Ready(w.name_any()))
                }
                _ => None,
            },
            sink.clone(),
        ),
        Mode::Floor => watch::spawn(
            Api::<Pod>::all(client.clone()),
            watcher::Config::default().labels(labels::WORKSPACE),
            |change| match change {
                Change::Applied(p)
                    if p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") =>
                {
                    p.labels().get(labels::WORKSPACE).cloned().map(Milestone::Ready)
                }
                _ => None,
            },
            sink.clone(),
        ),
    };
    let applied_watch = watch::spawn(
        Api::<ClusterRoleBinding>::all(client.clone()),
        watcher::Config::default().labels(labels::WORKSPACE),
        |change| match change {
            Change::Applied(b) => b.labels().get(labels::WORKSPACE).cloned().map(Milestone::Applied),
            Change::Deleted(_) => None,
        },
        sink,
    );
    ready_watch.await.context("watch ended before its first list")?;
    applied_watch.await.context("watch ended before its first list")?;
    let permits = Arc::new(match mode {
        Mode::Floor => permits_by_name(&client).await?,
        Mode::Operator => HashMap::new(),
    });
    let config = Arc::new(OperatorConfig::for_local_data_root(data_root));
    let process_before = operator_pid.map(process::read).transpose()?;
    let reconciles_before = match metrics {
        Some(address) => Some(prom::reconciles(&prom::parse(&prom::scrape_operator(address).await?))),
        None => None,
    };

    let t0 = Instant::now();
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let (client, permits, config, run) =
                (client.clone(), permits.clone(), config.clone(), run.clone());
            tokio::spawn(async move {
                let workspace = objects::workspace(&run, i, None)?;
                let started = Instant::now();
                let created =
                    Api::<Workspace>::all(client.clone()).create(&PostParams::default(), &workspace).await?;
                if mode == Mode::Floor {
                    let permit = permits
                        .get(&created.spec.permit)
                        .ok_or_else(|| anyhow!("permit {} not found", created.spec.permit))?;
                    floor::provision(&client, &created, permit, &config).await?;
                }
                anyhow::Ok((created.name_any(), started))
            })
        })
        .collect();
    let mut started = HashMap::new();
    for task in tasks {
        let (name, at) = task.await??;
        started.insert(name, at);
    }
    let requests_done = t0.elapsed();

    let wanted: HashSet<String> = started.keys().cloned().collect();
    let (mut ready, mut applied) = (HashMap::new(), HashMap::new());
    let deadline = t0 + timeout;
    while ready.len() < count || applied.len() < count {
        match tokio::time::timeout_at(deadline, seen.recv()).await {
            Ok(Some(s)) => {
                let (times, name) = match s.what {
                    Milestone::Ready(name) => (&mut ready, name),
                    Milestone::Applied(name) => (&mut applied, name),
                };
                if wanted.contains(&name) {
                    times.entry(name).or_insert(s.at);
                }
            }
            Ok(None) => bail!("the watch ended"),
            Err(_) => {
                let mut waiting: Vec<&String> = wanted.iter().filter(|n| !ready.contains_key(*n)).collect();
                waiting.sort();
                waiting.truncate(5);
                bail!("{} of {count} ready after {timeout:?}; waiting for {waiting:?}...", ready.len());
            }
        }
    }
    let total =
        |times: &HashMap<String, Instant>| times.values().max().map_or(0.0, |at| (*at - t0).as_secs_f64());
    let latencies = |times: &HashMap<String, Instant>| -> Vec<f64> {
        times.iter().map(|(name, at)| (*at - started[name]).as_secs_f64()).collect()
    };

    let mut record = json!({
        "figure": "provision",
        "mode": mode.as_str(),
        "n": count,
        "rep": rep,
        "run": run,
        "total_s": total(&ready),
        "latency": stats::summary(&latencies(&ready)),
        "applied_total_s": total(&applied),
        "applied_latency": stats::summary(&latencies(&applied)),
        "requests_done_s": requests_done.as_secs_f64(),
    });
    if let (Some(pid), Some(before)) = (operator_pid, process_before) {
        let after = process::read(pid)?;
        record["operator"] = json!({
            "cpu_s": after.cpu_seconds - before.cpu_seconds,
            "peak_rss_mib": after.peak_rss_kib as f64 / 1024.0,
            "rss_mib": after.rss_kib as f64 / 1024.0,
        });
    }
    if let (Some(address), Some(before)) = (metrics, reconciles_before) {
        let after = prom::reconciles(&prom::parse(&prom::scrape_operator(address).await?));
        let diff: BTreeMap<&String, f64> = after
            .iter()
            .map(|(controller, n)| (controller, n - before.get(controller).unwrap_or(&0.0)))
            .collect();
        record["reconciles"] = json!(diff);
    }
    Ok(record)
}

async fn permits_by_name(client: &Client) -> anyhow::Result<HashMap<String, DataPermit>> {
    let list = Api::<DataPermit>::all(client.clone())
        .list(&ListParams::default().labels(&run_selector(PERMITS_RUN)))
        .await?;
    Ok(list.items.into_iter().map(|p| (p.name_any(), p)).collect())
}
