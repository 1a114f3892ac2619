//! The airlock's file work, run on the blocking pool: snapshot, checks, delivery and the
//! removal of old snapshots. Permanent problems (the request is at fault, or a snapshot no
//! longer matches what was reviewed) come back as `Ok(Err(message))` for the request's
//! status; store problems that may pass come back as errors and are retried.

use haven_api::{
    AirlockRequest, DataPermit,
    airlock::{CheckOutcome, CheckResult, Direction, FileReport},
    permit::ColumnRuleKind,
    quantity::milli_units,
};
use haven_data::{
    DataStore,
    airlock::{self, AirlockError, Delivered, ScanVerdict, Scanner, SnapshotSource},
    disclosure::{self, Check, CheckPolicy, FileChecks, FilePolicy, Outcome, Thresholds},
};

use crate::error::{Error, Result};

/// A permanent refusal, worded for the request's status.
pub type Refused = String;

/// Where a request's files live in the store.
#[derive(Clone, Debug)]
pub struct Paths {
    pub source: SnapshotSource,
    pub quarantine: std::path::PathBuf,
    pub target: std::path::PathBuf,
    /// `quarantine/<ns>/<request>`, `egress/<permit>/<request>`… for status, relative to the root.
    pub quarantine_rel: String,
    pub target_rel: String,
}

impl Paths {
    pub fn of(
        store: &DataStore,
        direction: Direction,
        namespace: &str,
        request: &str,
        workspace: &str,
        permit: &str,
    ) -> Result<Self> {
        let quarantine = store.quarantine(namespace, request).map_err(Error::data_store)?;
        let (source, target, target_rel) = match direction {
            Direction::Export => (
                SnapshotSource::outbox(store, workspace),
                store.egress(permit, request),
                format!("egress/{permit}/{request}"),
            ),
            Direction::Import => (
                SnapshotSource::imports(store, workspace),
                store.workspace_imports(workspace).map(|dir| dir.join(request)),
                format!("workspaces/{workspace}/imports/{request}"),
            ),
        };
        Ok(Self {
            source: source.map_err(Error::data_store)?,
            quarantine,
            target: target.map_err(Error::data_store)?,
            quarantine_rel: format!("quarantine/{namespace}/{request}"),
            target_rel,
        })
    }
}

/// Splits an airlock error into a refusal for the request or an error to retry.
fn settle<T>(result: Result<T, AirlockError>) -> Result<Result<T, Refused>> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(error) if error.is_permanent() => Ok(Err(error.to_string())),
        Err(error) => Err(Error::data_store(error)),
    }
}

/// Takes (or finds) the snapshot; returns its manifest and manifest SHA-256.
pub async fn snapshot(
    paths: &Paths,
    request: &AirlockRequest,
) -> Result<Result<(airlock::AirlockManifest, String), Refused>> {
    let (paths, files) = (paths.clone(), request.spec.files.clone());
    let id = format!(
        "{}/{}",
        request.metadata.namespace.clone().unwrap_or_default(),
        request.metadata.name.clone().unwrap_or_default()
    );
    let taken = tokio::task::spawn_blocking(move || {
        airlock::take_snapshot(&paths.source, &id, &files, &paths.quarantine)
    })
    .await?;
    settle(taken)
}

/// The checks for a permit's airlock: its file policy and disclosure thresholds, and the
/// shape of its pseudonyms (the HMAC lengths of its datasets) for the row-level check.
pub fn check_policy(permit: &DataPermit) -> CheckPolicy {
    let airlock = &permit.spec.airlock;
    let max_file_size =
        milli_units(&airlock.max_file_size.0).map_or(u64::MAX, |m| u64::try_from(m / 1000).unwrap_or(0));
    let t = &airlock.disclosure;
    let mut pseudonym_hex_lengths: Vec<usize> = permit
        .spec
        .datasets
        .iter()
        .flat_map(|d| &d.columns)
        .filter(|c| c.rule == ColumnRuleKind::Hmac)
        .map(|c| c.hmac.as_ref().map_or(16, |h| usize::from(h.length)))
        .collect();
    pseudonym_hex_lengths.sort_unstable();
    pseudonym_hex_lengths.dedup();
    CheckPolicy {
        files: FilePolicy { allowed_extensions: airlock.allowed_file_types.clone(), max_file_size },
        thresholds: Thresholds::from_percent(
            t.min_cell_count,
            t.dominance_n,
            t.dominance_k_percent,
            t.p_percent,
            t.min_degrees_of_freedom,
        ),
        pseudonym_hex_lengths,
    }
}

/// Which checks apply to files coming in: the file policy and the scanner. Disclosure control
/// is about what leaves.
fn applies(direction: Direction, check: &Check) -> bool {
    direction == Direction::Export
        || [disclosure::FILE_POLICY, disclosure::SCANNER].contains(&check.check.as_str())
}

/// Runs every check on every snapshot file and writes the ACRO-shaped report beside the
/// snapshot. Returns the per-file reports and the report's bytes.
pub async fn check(
    paths: &Paths,
    request: &AirlockRequest,
    policy: CheckPolicy,
    scanner: Option<Scanner>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Result<Vec<FileReport>, Refused>> {
    let (paths, files, direction) = (paths.clone(), request.spec.files.clone(), request.spec.direction);
    let id = format!(
        "{}/{}",
        request.metadata.namespace.clone().unwrap_or_default(),
        request.metadata.name.clone().unwrap_or_default()
    );
    let checked = tokio::task::spawn_blocking(move || -> Result<Result<Vec<FileChecks>, Refused>> {
        // Verifies the snapshot is still what was taken; never re-reads the outbox.
        let manifest = match settle(airlock::take_snapshot(&paths.source, &id, &files, &paths.quarantine))? {
            Ok((manifest, _)) => manifest,
            Err(refused) => return Ok(Err(refused)),
        };
        let mut results = Vec::with_capacity(manifest.files.len());
        for file in manifest.files {
            let path = paths.quarantine.join("files").join(&file.path);
            let mut checks = disclosure::check_file(&path, &file.path, &policy)
                .map_err(|e| Error::data_store(format!("checking {}: {e}", path.display())))?;
            checks.retain(|c| applies(direction, c));
            if let Some(scanner) = &scanner {
                checks.push(scan(scanner, &path)?);
            }
            results.push(FileChecks { path: file.path, size: file.size, sha256: file.sha256, checks });
        }
        let report = disclosure::report(&id, &results, &policy.thresholds, now);
        let bytes = serde_json::to_vec_pretty(&report).map_err(Error::data_store)?;
        airlock::write_report(&paths.quarantine, &bytes).map_err(Error::data_store)?;
        Ok(Ok(results))
    })
    .await??;
    Ok(checked.map(|files| files.into_iter().map(file_report).collect()))
}

fn scan(scanner: &Scanner, path: &std::path::Path) -> Result<Check> {
    let verdict = scanner
        .scan(path)
        .map_err(|e| Error::data_store(format!("cannot run the scanner {}: {e}", scanner.program)))?;
    Ok(match verdict {
        ScanVerdict::Clean => Check::pass(disclosure::SCANNER, ""),
        ScanVerdict::Flagged(detail) => Check::fail(disclosure::SCANNER, detail),
    })
}

fn file_report(file: FileChecks) -> FileReport {
    FileReport {
        path: file.path,
        size: file.size,
        sha256: file.sha256,
        checks: file
            .checks
            .into_iter()
            .map(|c| CheckResult {
                outcome: match c.outcome {
                    Outcome::Pass => CheckOutcome::Pass,
                    Outcome::Review => CheckOutcome::Review,
                    Outcome::Fail => CheckOutcome::Fail,
                },
                check: c.check,
                detail: c.detail,
            })
            .collect(),
    }
}

/// The checks that block a request, as `path: check: detail` lines.
pub fn blocking(files: &[FileReport]) -> Vec<String> {
    files
        .iter()
        .flat_map(|f| f.checks.iter().map(move |c| (f, c)))
        .filter(|(_, c)| {
            c.outcome == CheckOutcome::Fail && disclosure::HARD_CHECKS.contains(&c.check.as_str())
        })
        .map(|(f, c)| format!("{}: {}: {}", f.path, c.check, c.detail))
        .collect()
}

/// Delivers the reviewed snapshot, with its report.
pub async fn deliver(paths: &Paths) -> Result<Result<Delivered, Refused>> {
    let paths = paths.clone();
    let delivered = tokio::task::spawn_blocking(move || {
        let report = airlock::read_report(&paths.quarantine)?;
        airlock::deliver(&paths.quarantine, &paths.target, &report)
    })
    .await?;
    settle(delivered)
}
