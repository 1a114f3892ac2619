//! The plaintext of a sealed snapshot, for the checks. The disclosure checks read files by
//! path and the scanner is an external program given a path, so the snapshot is opened into
//! a scratch directory for as long as the checks run, then removed whatever happens.
//!
//! The scratch directory is `quarantine/<namespace>/.check-<request>/` (mode 0700): beside the
//! snapshot, in the same protected area of the data store, which is sized for snapshots and
//! is destroyed with the permit's quarantine (`destroy_permit_data`), rather than the
//! operator's small, node-local `/tmp`. Request names are DNS names, so a `.` prefix never
//! collides with one. A leftover from a crash is removed before the next attempt and with
//! the snapshot.

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::snapshot::check_owner;
use super::{AirlockError, AirlockManifest, SnapshotRequest, copy_opened, read_manifest};
use crate::archive::ArchiveError;
use crate::manifest::{FILES, MANIFEST, verify_files_with};
use crate::sealed::SealKey;
use crate::tree;

/// Only the operator reads the plaintext.
const PRIVATE_DIR: u32 = 0o700;
const PRIVATE_FILE: u32 = 0o600;

/// `quarantine/<namespace>/.check-<request>` for the snapshot at `quarantine`.
pub(super) fn scratch_dir(quarantine: &Path) -> Result<PathBuf, AirlockError> {
    match (quarantine.parent(), quarantine.file_name().and_then(|n| n.to_str())) {
        (Some(parent), Some(name)) => Ok(parent.join(format!(".check-{name}"))),
        _ => Err(AirlockError::Io {
            path: quarantine.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a directory path"),
        }),
    }
}

/// Removes the request's decrypted scratch copy if a crash during its checks left one behind
/// (a finished request needs none). Idempotent.
pub fn remove_scratch(quarantine: &Path) -> Result<(), AirlockError> {
    Ok(tree::remove_all(&scratch_dir(quarantine)?)?)
}

/// Opens the request's snapshot with `key` into a private scratch directory, checking every
/// file against the manifest on the way (as [`super::verify_snapshot`] does), and runs `check`
/// with the manifest and the directory holding the plaintext files (`<dir>/<path>` for each
/// manifest path). The scratch directory is removed afterwards, also when opening or `check`
/// fails or panics.
pub fn with_plaintext_snapshot<T>(
    quarantine: &Path,
    request: &SnapshotRequest<'_>,
    key: &SealKey,
    check: impl FnOnce(&AirlockManifest, &Path) -> T,
) -> Result<T, AirlockError> {
    let (manifest, _) = read_manifest(quarantine)?;
    check_owner(quarantine, request, &manifest)?;
    let dir = scratch_dir(quarantine)?;
    let files = dir.join(FILES);
    let scratch = Scratch::create(dir)?;
    private_dir(&files)?;
    let manifest_path = quarantine.join(MANIFEST);
    verify_files_with(&quarantine.join(FILES), &manifest.files, &manifest_path, |from, file| {
        let to = files.join(&file.path);
        if let Some(dir) = to.parent().filter(|dir| *dir != files) {
            DirBuilder::new()
                .recursive(true)
                .mode(PRIVATE_DIR)
                .create(dir)
                .map_err(|source| ArchiveError::Io { path: dir.to_path_buf(), source })?;
        }
        let writer = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(PRIVATE_FILE)
            .open(&to)
            .map_err(|source| ArchiveError::Io { path: to.clone(), source })?;
        copy_opened(from, key, writer)
    })?;
    let checked = check(&manifest, &files);
    scratch.remove()?;
    Ok(checked)
}

/// The scratch directory, removed when dropped (on an error or a panic) unless removed first.
struct Scratch(Option<PathBuf>);

impl Scratch {
    /// Creates `dir` afresh, after removing what a crashed earlier attempt left there.
    fn create(dir: PathBuf) -> Result<Self, AirlockError> {
        tree::remove_all(&dir)?;
        private_dir(&dir)?;
        Ok(Self(Some(dir)))
    }

    /// Removes it now, reporting a failure (plaintext left behind is retried, not ignored).
    fn remove(mut self) -> Result<(), AirlockError> {
        match self.0.take() {
            Some(dir) => Ok(tree::remove_all(&dir)?),
            None => Ok(()),
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = tree::remove_all(&dir);
        }
    }
}

/// Creates `dir` (its parent must exist) readable by the operator only; fails if it exists.
fn private_dir(dir: &Path) -> Result<(), AirlockError> {
    DirBuilder::new()
        .mode(PRIVATE_DIR)
        .create(dir)
        .map_err(|source| AirlockError::Io { path: dir.to_path_buf(), source })
}
