//! Benchmark (BENCHMARKS.md, `make bench-federation`): the time from a task's submission to
//! each site's package delivered at the hub, reviews automated (each site's checker approves
//! as soon as the checks are done), for 1, 2 and 3 sites; and the same count run as a plain
//! Job at one data site, applied directly (the floor: what the federation path adds to running
//! the analysis where the data is). Every site must have a real node (HAVEN_FED_KWOK_SITES="").
//! RUNS (default 3) tasks per size.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use haven_api::{airlock::AirlockPhase, task::SiteTaskState};
use haven_e2e_federation::{
    eventually,
    scenario::{ADA, Federation, checker},
    testenv_image,
};
use k8s_openapi::api::batch::v1::Job;
use kube::{Api, api::PostParams};
use serde_json::json;

const COMMAND: [&str; 8] = [
    "/haven-testenv",
    "count",
    "--input",
    "/data/survey/data.csv",
    "--by",
    "answer",
    "--output",
    "/outputs/answers.csv",
];

#[tokio::main]
async fn main() -> Result<()> {
    let runs: usize = std::env::var("RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    let fed = Federation::start(&[]).await?;
    let names: Vec<String> = fed.sites.iter().map(|s| s.name.clone()).collect();
    println!("sites: {}; {runs} run(s) per size", names.join(", "));
    for size in 1..=names.len() {
        let targets = &names[names.len() - size..];
        let mut samples = Vec::new();
        for run in 0..runs {
            let task = format!("bench-{size}-{run}");
            samples.push(one_task(&fed, &task, targets).await?);
        }
        report(&format!("{size} site(s) ({})", targets.join(", ")), &samples);
    }
    let data_site = names.last().context("a site")?;
    let mut floor = Vec::new();
    for run in 0..runs {
        floor.push(plain_job(&fed, data_site, run).await?);
    }
    report(&format!("plain Job at {data_site} (no federation, no airlock)"), &floor);
    Ok(())
}

/// Submits `task` for `targets`, approves each site's outputs when checked; the time until
/// the last site's package is delivered.
async fn one_task(fed: &Federation, task: &str, targets: &[String]) -> Result<Duration> {
    let started = Instant::now();
    let spec = json!({
        "apiVersion": "haven.io/v1alpha1", "kind": "AnalysisTask",
        "metadata": {"name": task, "namespace": fed.namespace},
        "spec": {"requestedBy": ADA, "sites": targets,
                 "executors": [{"image": testenv_image(), "command": COMMAND}],
                 "resources": {"cpuCores": 1, "ramGb": 1, "maxRunSeconds": 600}},
    });
    fed.hub().apply_as(ADA, &spec)?;
    let approvals = targets.iter().map(|site| async move {
        let request = fed.outputs_request(site, task, AirlockPhase::AwaitingReview).await?;
        fed.review(site, &request, &checker(site), "Approve", "benchmark")?;
        fed.site_reaches(task, site, SiteTaskState::Delivered).await?;
        anyhow::Ok(started.elapsed())
    });
    let each = futures::future::try_join_all(approvals).await?;
    let per_site: Vec<String> =
        targets.iter().zip(&each).map(|(s, d)| format!("{s} {:.1}s", d.as_secs_f64())).collect();
    println!("  {task}: {}", per_site.join(", "));
    Ok(each.into_iter().max().unwrap_or_default())
}

/// The same count as a plain Job in the site's task-less namespace, created directly.
async fn plain_job(fed: &Federation, site: &str, run: usize) -> Result<Duration> {
    let site = fed.site(site);
    let client = site.client().await?;
    let namespace = format!("bench-floor-{run}-{}", std::process::id());
    site.kubectl_ok(&["create", "namespace", &namespace])?;
    let extract = format!("{}/extracts/{}/survey", site.data_root.display(), fed.workspace);
    let job: Job = serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "count"},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never", "automountServiceAccountToken": false,
            "securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "runAsGroup": 100, "supplementalGroups": [65532]},
            "containers": [{"name": "count", "image": testenv_image(), "command": COMMAND,
                "volumeMounts": [{"name": "data", "mountPath": "/data/survey", "readOnly": true}, {"name": "out", "mountPath": "/outputs"}]}],
            "volumes": [{"name": "data", "hostPath": {"path": extract}}, {"name": "out", "emptyDir": {}}],
        }}}
    }))?;
    let jobs: Api<Job> = Api::namespaced(client, &namespace);
    let started = Instant::now();
    jobs.create(&PostParams::default(), &job).await?;
    eventually(Duration::from_secs(300), "the plain Job to succeed", || async {
        let status = jobs.get("count").await?.status.unwrap_or_default();
        anyhow::ensure!(status.failed.unwrap_or(0) == 0, "the plain Job failed");
        Ok((status.succeeded.unwrap_or(0) > 0).then_some(()))
    })
    .await?;
    let took = started.elapsed();
    println!("  floor run {run}: {:.1}s", took.as_secs_f64());
    site.kubectl_ok(&["delete", "namespace", &namespace, "--wait=false"])?;
    Ok(took)
}

fn report(what: &str, samples: &[Duration]) {
    let mut seconds: Vec<f64> = samples.iter().map(Duration::as_secs_f64).collect();
    seconds.sort_by(f64::total_cmp);
    let median = seconds[seconds.len() / 2];
    println!(
        "{what}: median {median:.1}s, min {:.1}s, max {:.1}s over {}",
        seconds[0],
        seconds[seconds.len() - 1],
        seconds.len()
    );
}
