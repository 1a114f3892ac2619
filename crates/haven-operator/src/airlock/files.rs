//! The airlock's file work, run on the blocking pool: snapshot, checks, delivery and the
//! removal of old snapshots. Snapshots are sealed with the permit's quarantine key
//! ([`quarantine_key`]), so each step that reads or writes one is given it. Permanent problems
//! (the request is at fault, or a snapshot no longer matches what was reviewed) come back as
//! `Ok(Err(message))` for the request's status; store problems that may pass come back as
//! errors and are retried.

use std::path::PathBuf;

use haven_api::{
    AirlockRequest, DataPermit,
    airlock::{CheckOutcome, CheckResult, Direction, FileReport},
    permit::ColumnRuleKind,
    quantity::milli_units,
    tier::Controls,
};
use haven_data::{
    DataStore, SealKey,
    airlock::{
        self, AirlockError, AirlockManifest, Delivered, ScanVerdict, Scanner, SnapshotRequest, SnapshotSource,
    },
    disclosure::{self, Check, CheckPolicy, FileChecks, FilePolicy, Outcome, Thresholds},
};

use kube::ResourceExt;

use crate::{
    context::Context,
    error::{Error, Result},
};

/// A permanent refusal, worded for the request's status.
pub type Refused = String;

/// One request's files: which, where they come from, where their snapshot is and where they
/// are delivered. Every path is derived from names, never from the request's text.
#[derive(Clone, Debug)]
pub struct Transfer {
    /// `<namespace>/<request>`, and the request's uid: a request created again under the same
    /// name is a different request.
    pub id: String,
    pub uid: String,
    /// The permit whose key the snapshot is sealed with.
    pub permit: String,
    pub files: Vec<String>,
    pub max_file_size: u64,
    pub source: SnapshotSource,
    pub quarantine: PathBuf,
    pub target: PathBuf,
    /// `quarantine/<ns>/<request>`, relative to the store root, for status.
    pub quarantine_rel: String,
    /// `egress/<permit>/<ns>/<request>` or `workspaces/<ws>/imports/<request>`, likewise.
    pub target_rel: String,
}

impl Transfer {
    pub fn of(
        store: &DataStore,
        request: &AirlockRequest,
        workspace: &str,
        permit: &DataPermit,
    ) -> Result<Self> {
        let (namespace, name) = (request.namespace().unwrap_or_default(), request.name_any());
        let permit_name = permit.name_any();
        let quarantine = store.quarantine(&namespace, &name).map_err(Error::data_store)?;
        let (source, target, target_rel) = match request.spec.direction {
            Direction::Export => (
                SnapshotSource::outbox(store, workspace),
                store.egress(&permit_name, &namespace, &name),
                format!("egress/{permit_name}/{namespace}/{name}"),
            ),
            Direction::Import => (
                SnapshotSource::imports(store, workspace),
                store.workspace_imports(workspace).map(|dir| dir.join(&name)),
                format!("workspaces/{workspace}/imports/{name}"),
            ),
        };
        Ok(Self {
            id: format!("{namespace}/{name}"),
            uid: request.uid().unwrap_or_default(),
            permit: permit_name,
            files: request.spec.files.clone(),
            max_file_size: max_file_size(permit),
            source: source.map_err(Error::data_store)?,
            quarantine,
            target: target.map_err(Error::data_store)?,
            quarantine_rel: format!("quarantine/{namespace}/{name}"),
            target_rel,
        })
    }

    fn request(&self) -> SnapshotRequest<'_> {
        SnapshotRequest {
            request: &self.id,
            uid: &self.uid,
            files: &self.files,
            max_file_size: self.max_file_size,
        }
    }
}

/// The key the permit's quarantine copies are sealed with, derived from the permit's key.
/// Asked for only while the permit is Active (snapshot, checks, a new delivery), so creating
/// the permit's key if it is missing (a permit never prepared) never brings back a shredded one.
pub async fn quarantine_key(ctx: &Context, transfer: &Transfer) -> Result<SealKey> {
    let permit_key = crate::permit::ensure_key(ctx, &transfer.permit).await?;
    SealKey::quarantine(&permit_key.bytes).map_err(Error::data_store)
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
    transfer: &Transfer,
    key: SealKey,
) -> Result<Result<(AirlockManifest, String), Refused>> {
    let transfer = transfer.clone();
    let taken = tokio::task::spawn_blocking(move || {
        airlock::take_snapshot(&transfer.source, &transfer.request(), &transfer.quarantine, &key)
    })
    .await?;
    settle(taken)
}

fn max_file_size(permit: &DataPermit) -> u64 {
    milli_units(&permit.spec.airlock.max_file_size.0).map_or(0, |m| u64::try_from(m / 1000).unwrap_or(0))
}

/// The checks for a permit's airlock: its file policy (the file types its tier's controls allow) and disclosure thresholds, and the
/// shape of its pseudonyms (the HMAC lengths of its datasets) for the row-level check.
pub fn check_policy(permit: &DataPermit, controls: &Controls) -> CheckPolicy {
    let airlock = &permit.spec.airlock;
    let max_file_size = max_file_size(permit);
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
        files: FilePolicy { allowed_extensions: controls.allowed_file_types.clone(), max_file_size },
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
/// snapshot. Returns the per-file reports. The checks read the plaintext, opened (and verified
/// against the manifest) into a scratch directory that is removed afterwards.
pub async fn check(
    transfer: &Transfer,
    key: SealKey,
    direction: Direction,
    policy: CheckPolicy,
    scanner: Option<Scanner>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Result<Vec<FileReport>, Refused>> {
    let transfer = transfer.clone();
    let checked = tokio::task::spawn_blocking(move || -> Result<Result<Vec<FileChecks>, Refused>> {
        // The snapshot must still be what was taken; the outbox is never read again.
        let opened = airlock::with_plaintext_snapshot(
            &transfer.quarantine,
            &transfer.request(),
            &key,
            |manifest, plaintext| check_files(manifest, plaintext, direction, &policy, scanner.as_ref()),
        );
        let results = match settle(opened)? {
            Ok(checked) => checked?,
            Err(refused) => return Ok(Err(refused)),
        };
        let report = disclosure::report(&transfer.id, &results, &policy.thresholds, now);
        let bytes = serde_json::to_vec_pretty(&report).map_err(Error::data_store)?;
        airlock::write_report(&transfer.quarantine, &bytes).map_err(Error::data_store)?;
        Ok(Ok(results))
    })
    .await??;
    Ok(checked.map(|files| files.into_iter().map(file_report).collect()))
}

/// The checks of every file of `manifest`, read from the plaintext copies under `plaintext`.
fn check_files(
    manifest: &AirlockManifest,
    plaintext: &std::path::Path,
    direction: Direction,
    policy: &CheckPolicy,
    scanner: Option<&Scanner>,
) -> Result<Vec<FileChecks>> {
    let mut results = Vec::with_capacity(manifest.files.len());
    for file in &manifest.files {
        let path = plaintext.join(&file.path);
        let mut checks = disclosure::check_file(&path, &file.path, policy)
            .map_err(|e| Error::data_store(format!("checking {}: {e}", file.path)))?;
        checks.retain(|c| applies(direction, c));
        if let Some(scanner) = scanner {
            checks.push(scan(scanner, &path)?);
        }
        let (path, size, sha256) = (file.path.clone(), file.size, file.sha256.clone());
        results.push(FileChecks { path, size, sha256, checks });
    }
    Ok(results)
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

/// Delivers the reviewed snapshot, with its report, opening it with `key`. A delivery already
/// in place is plaintext: it is verified and returned without a key.
pub async fn deliver(transfer: &Transfer, key: Option<SealKey>) -> Result<Result<Delivered, Refused>> {
    let transfer = transfer.clone();
    tokio::task::spawn_blocking(move || -> Result<Result<Delivered, Refused>> {
        if let Some(done) =
            settle(airlock::verify_delivery(&transfer.target, &transfer.request()))?.transpose()
        {
            return Ok(done);
        }
        let key = key.ok_or_else(|| Error::data_store("opening the snapshot needs the permit's key"))?;
        settle(airlock::read_report(&transfer.quarantine).and_then(|report| {
            airlock::deliver(&transfer.quarantine, &transfer.target, &report, &transfer.request(), &key)
        }))
    })
    .await?
}

/// Whether this request's files were already delivered (a crash can come between the
/// delivery and the status saying so).
pub fn delivered(transfer: &Transfer) -> bool {
    transfer.target.exists()
}
