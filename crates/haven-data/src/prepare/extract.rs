//! Publishing an extract atomically. `extracts/<permit>/<dataset>/` either holds a complete
//! extract (`data.csv` and `report.json`, the report written last) or the previous one or
//! nothing: the new extract is built in a hidden sibling and swapped in by renames, so a
//! crash never leaves a half-written extract that looks complete. Dataset names are DNS
//! labels, so the `.`-prefixed siblings can never collide with an extract.

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use super::engine::prepare_csv;
use super::error::PrepareError;
use super::report::PreparationReport;
use super::spec::PreparationSpec;
use crate::tree;

/// The extract's data file.
pub const DATA_FILE: &str = "data.csv";
/// The extract's report, and its completion marker.
pub const REPORT_FILE: &str = "report.json";

/// Distinguishes the temporary directories of concurrent calls within one process.
static SEQ: AtomicU64 = AtomicU64::new(0);

/// Temporary directories in use by calls of this process, so cleaning up a crashed run's
/// leftovers never removes a sibling call's work (in a container every run may be pid 1).
static IN_FLIGHT: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// Prepares `input` into `extract_dir` (`extracts/<permit>/<dataset>/`) atomically: the
/// extract is written to `.<dataset>.partial-<pid>-<n>` beside it and synced, then the old
/// extract (if any) is renamed aside, the new one renamed in and the old one removed. On
/// error nothing is left behind and an existing extract is untouched.
pub fn prepare_extract(
    spec: &PreparationSpec,
    key: &[u8],
    input: &Path,
    extract_dir: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<PreparationReport, PrepareError> {
    let io_error = |path: &Path| {
        let dataset = spec.name.clone();
        let path = path.to_path_buf();
        move |source| PrepareError::WriteOutput { dataset, path, source }
    };
    let (Some(parent), Some(name)) = (extract_dir.parent(), extract_dir.file_name().and_then(|n| n.to_str()))
    else {
        let reason = io::Error::new(io::ErrorKind::InvalidInput, "not a directory path with a UTF-8 name");
        return Err(io_error(extract_dir)(reason));
    };
    fs::create_dir_all(parent).map_err(io_error(parent))?;
    remove_leftovers(parent, name);

    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    let partial = parent.join(format!(".{name}.partial-{pid}-{seq}"));
    let old = parent.join(format!(".{name}.old-{pid}-{seq}"));
    let _in_flight = InFlight::register([partial.clone(), old.clone()]);

    let built = fs::create_dir(&partial)
        .map_err(io_error(&partial))
        .and_then(|()| build(spec, key, input, &partial, progress));
    let report = match built {
        Ok(report) => report,
        Err(e) => {
            // Best effort: a leftover is removed by the next call anyway.
            let _ = tree::remove_all(&partial);
            return Err(e);
        }
    };
    swap(&partial, extract_dir, &old).map_err(|(path, source)| {
        let _ = tree::remove_all(&partial);
        io_error(&path)(source)
    })?;
    tree::sync_dir(parent).map_err(|e| io_error(&e.path)(e.source))?;
    let _ = tree::remove_all(&old);
    Ok(report)
}

/// The report of a complete extract (`extract_dir/report.json`), if there is one. A symlink
/// in place of the extract or its report does not count: the store never creates one.
pub fn read_extract_report(extract_dir: &Path) -> Option<PreparationReport> {
    if !fs::symlink_metadata(extract_dir).is_ok_and(|meta| meta.is_dir()) {
        return None;
    }
    let path = extract_dir.join(REPORT_FILE);
    if !fs::symlink_metadata(&path).is_ok_and(|meta| meta.is_file()) {
        return None;
    }
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

/// Writes `data.csv`, then `report.json`, into `dir` and syncs them and the directory.
fn build(
    spec: &PreparationSpec,
    key: &[u8],
    input: &Path,
    dir: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<PreparationReport, PrepareError> {
    let report = prepare_csv(spec, key, input, &dir.join(DATA_FILE), progress)?;
    let path = dir.join(REPORT_FILE);
    let write_error =
        |source| PrepareError::WriteOutput { dataset: spec.name.clone(), path: path.clone(), source };
    let mut json = serde_json::to_vec_pretty(&report).map_err(|e| write_error(io::Error::other(e)))?;
    json.push(b'\n');
    let mut file = OpenOptions::new().write(true).create_new(true).open(&path).map_err(write_error)?;
    file.write_all(&json).and_then(|()| file.sync_all()).map_err(write_error)?;
    tree::sync_dir(dir).map_err(|e| write_error(e.source))?;
    Ok(report)
}

/// Moves the old extract aside and the new one in. If the second rename fails the old
/// extract is put back, so an error never leaves the dataset without its previous extract.
fn swap(partial: &Path, target: &Path, old: &Path) -> Result<(), (PathBuf, io::Error)> {
    let had_old = match fs::rename(target, old) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err((target.to_path_buf(), e)),
    };
    if let Err(e) = fs::rename(partial, target) {
        if had_old {
            let _ = fs::rename(old, target);
        }
        return Err((target.to_path_buf(), e));
    }
    Ok(())
}

/// Removes temporary directories a crashed run left beside the extract (best effort: a
/// leftover is hidden and harmless, and the next call tries again).
fn remove_leftovers(parent: &Path, name: &str) {
    let prefixes = [format!(".{name}.partial-"), format!(".{name}.old-")];
    let Ok(entries) = fs::read_dir(parent) else { return };
    let in_flight = IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner);
    for entry in entries.flatten() {
        let is_leftover =
            entry.file_name().to_str().is_some_and(|n| prefixes.iter().any(|prefix| n.starts_with(prefix)));
        if is_leftover && !in_flight.contains(&entry.path()) {
            let _ = tree::remove_all(&entry.path());
        }
    }
}

/// Marks temporary paths as in use for as long as it lives.
struct InFlight {
    paths: Vec<PathBuf>,
}

impl InFlight {
    fn register(paths: impl IntoIterator<Item = PathBuf>) -> Self {
        let paths: Vec<PathBuf> = paths.into_iter().collect();
        IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner).extend(paths.iter().cloned());
        Self { paths }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut in_flight = IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner);
        for path in &self.paths {
            in_flight.remove(path);
        }
    }
}
