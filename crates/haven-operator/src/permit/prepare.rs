//! Dataset preparation, driven by the permit: one background job per dataset whose extract is
//! missing or was made under other rules or another key, a bounded number at a time, off the
//! async runtime. The extract's report on disk is the record; jobs in memory only carry
//! progress and recent failures, so a restarted operator simply looks at the disk again.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use haven_api::{
    DataPermit,
    permit::{DatasetGrant, DatasetReport},
};
use haven_data::prepare::{
    PreparationReport, PreparationSpec, prepare_extract, read_extract_report, rules_sha256,
};
use kube::ResourceExt;
use tokio::sync::Semaphore;

use super::key::PermitKey;
use crate::{context::Context, error::Error};

/// A failed job is retried after this long even if nothing visible changed; a changed rule or
/// a changed source file (size or modification time) retries at once.
const RETRY_FAILED_AFTER: Duration = Duration::from_secs(60);

/// Which extract a job makes: permit, dataset, the hash of its rules, and the source file's
/// size and modification time.
type JobKey = (String, String, String, String);

#[derive(Debug)]
enum Job {
    Running { rows: Arc<AtomicU64> },
    Failed { message: String, at: Instant },
}

/// The preparation jobs of the operator process.
#[derive(Debug)]
pub struct Preparations {
    jobs: Mutex<HashMap<JobKey, Job>>,
    slots: Arc<Semaphore>,
}

impl Preparations {
    /// At most `concurrency` datasets are prepared at once, so preparation never starves
    /// reconciliation of CPU or the data store of bandwidth.
    pub fn new(concurrency: usize) -> Self {
        Self { jobs: Mutex::default(), slots: Arc::new(Semaphore::new(concurrency.max(1))) }
    }
}

/// Where a permit's datasets stand.
#[derive(Debug, PartialEq)]
pub enum Readiness {
    /// Every dataset has an extract made with the current rules and key.
    Ready,
    /// Jobs are running; the message says how far each has got.
    Preparing(String),
    /// A dataset failed; the message names it (and the column and row).
    Failed(String),
    /// The API server refused something preparation needs (the key Secret); the message says
    /// what and why.
    Refused(String),
}

/// The CRD's dataset and the engine's spec share one JSON shape.
fn spec_of(dataset: &DatasetGrant) -> Result<PreparationSpec, Error> {
    serde_json::to_value(dataset).and_then(serde_json::from_value).map_err(Error::data_store)
}

/// The reports of the permit's current extracts: one per dataset, `None` where the extract is
/// missing, stale (other rules) or made with another key than `key`.
pub fn current_reports(
    ctx: &Context,
    permit: &DataPermit,
    key: Option<&PermitKey>,
) -> Result<Vec<Option<PreparationReport>>, Error> {
    let name = permit.name_any();
    permit
        .spec
        .datasets
        .iter()
        .map(|dataset| {
            let expected = rules_sha256(&spec_of(dataset)?);
            let dir = ctx.store.extract(&name, &dataset.name).map_err(Error::data_store)?;
            Ok(read_extract_report(&dir).filter(|report| {
                report.rules_sha256 == expected
                    && key.is_some_and(|k| k.fingerprint == report.key_fingerprint)
            }))
        })
        .collect()
}

/// Starts a job for every dataset without a current extract (unless one runs or failed
/// recently) and says where they stand.
pub fn advance(
    ctx: &Arc<Context>,
    permit: &DataPermit,
    key: &PermitKey,
    reports: &[Option<PreparationReport>],
) -> Result<Readiness, Error> {
    let name = permit.name_any();
    let mut progress = Vec::new();
    let mut failures = Vec::new();
    let mut jobs =
        ctx.preparations.jobs.lock().map_err(|_| Error::DataStore("preparation registry poisoned".into()))?;
    for (dataset, report) in permit.spec.datasets.iter().zip(reports) {
        if report.is_some() {
            continue;
        }
        let spec = spec_of(dataset)?;
        let source = ctx.store.raw(&dataset.source).map_err(Error::data_store)?;
        let job_key = (name.clone(), dataset.name.clone(), rules_sha256(&spec), file_version(&source));
        match jobs.get(&job_key) {
            Some(Job::Running { rows }) => {
                progress.push(format!("{}: {} rows read", dataset.name, rows.load(Ordering::Relaxed)));
                continue;
            }
            Some(Job::Failed { message, at }) if at.elapsed() < RETRY_FAILED_AFTER => {
                failures.push(message.clone());
                continue;
            }
            _ => {}
        }
        let rows = Arc::new(AtomicU64::new(0));
        jobs.insert(job_key.clone(), Job::Running { rows: rows.clone() });
        progress.push(format!("{}: started", dataset.name));
        spawn_job(ctx.clone(), job_key, spec, key.bytes.clone(), &dataset.source, rows)?;
    }
    Ok(match (failures.is_empty(), progress.is_empty()) {
        (false, _) => Readiness::Failed(failures.join("; ")),
        (true, false) => Readiness::Preparing(progress.join("; ")),
        (true, true) => Readiness::Ready,
    })
}

fn spawn_job(
    ctx: Arc<Context>,
    job_key: JobKey,
    spec: PreparationSpec,
    key: Vec<u8>,
    source: &str,
    rows: Arc<AtomicU64>,
) -> Result<(), Error> {
    let (permit, dataset, ..) = &job_key;
    let input = ctx.store.raw(source).map_err(Error::data_store)?;
    let extract_dir = ctx.store.extract(permit, dataset).map_err(Error::data_store)?;
    let slots = ctx.preparations.slots.clone();
    tokio::spawn(async move {
        let Ok(_slot) = slots.acquire_owned().await else { return };
        tracing::info!(permit = %job_key.0, dataset = %job_key.1, "preparing dataset");
        let progress = rows.clone();
        let started = Instant::now();
        let outcome = tokio::task::spawn_blocking(move || {
            prepare_extract(&spec, &key, &input, &extract_dir, &|n| progress.store(n, Ordering::Relaxed))
        })
        .await;
        let failure = match outcome {
            Ok(Ok(report)) => {
                tracing::info!(permit = %job_key.0, dataset = %job_key.1, rows = report.rows_out, "dataset prepared");
                ctx.metrics.prepared(started.elapsed());
                None
            }
            Ok(Err(error)) => Some(error.to_string()),
            Err(panicked) => Some(format!("dataset {}: preparation stopped: {panicked}", job_key.1)),
        };
        if let Ok(mut jobs) = ctx.preparations.jobs.lock() {
            match failure {
                None => jobs.remove(&job_key),
                Some(message) => jobs.insert(job_key, Job::Failed { message, at: Instant::now() }),
            };
        }
    });
    Ok(())
}

/// Size and modification time of a source file ("missing" if it is not there yet).
fn file_version(path: &std::path::Path) -> String {
    std::fs::metadata(path)
        .map_or_else(|_| "missing".to_owned(), |meta| format!("{}:{:?}", meta.len(), meta.modified().ok()))
}

/// The status summary of each prepared dataset.
pub fn dataset_reports(
    ctx: &Context,
    permit: &DataPermit,
    reports: &[Option<PreparationReport>],
) -> Vec<DatasetReport> {
    let name = permit.name_any();
    reports
        .iter()
        .flatten()
        .map(|report| DatasetReport {
            name: report.dataset.clone(),
            rows_in: report.rows_in,
            rows_out: report.rows_out,
            suppressed_rows: report.suppressed_rows,
            minimum_k: report.k_anonymity.as_ref().and_then(|k| k.minimum_k),
            key_fingerprint: report.key_fingerprint.clone(),
            output_sha256: report.output_sha256.clone(),
            prepared_at: prepared_at(ctx, &name, &report.dataset),
        })
        .collect()
}

/// When the extract was completed: its report's modification time, stable across reconciles.
fn prepared_at(ctx: &Context, permit: &str, dataset: &str) -> chrono::DateTime<chrono::Utc> {
    ctx.store
        .extract(permit, dataset)
        .ok()
        .and_then(|dir| std::fs::metadata(dir.join("report.json")).ok())
        .and_then(|meta| meta.modified().ok())
        .map_or_else(|| chrono::DateTime::UNIX_EPOCH, chrono::DateTime::from)
}
