//! The manifest of an archive or an airlock snapshot (`MANIFEST.json`), and the check that a
//! directory of files (plaintext, or sealed and opened as they are read) still holds exactly
//! the bytes it lists.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::archive::ArchiveError;
use crate::hashing::hash_reader;
use crate::tree::{self, EntryKind};

pub(crate) const MANIFEST: &str = "MANIFEST.json";
pub(crate) const FILES: &str = "files";

/// What an archive holds. Deterministic (no timestamps, sorted) so that archiving the same
/// workspace twice gives the same manifest and the same `manifest_sha256`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub permit: String,
    pub workspace: String,
    /// Every archived regular file, sorted by path.
    pub files: Vec<ManifestFile>,
    /// Entries deliberately not copied (symlinks, fifos, sockets, devices), sorted by path.
    pub skipped: Vec<SkippedEntry>,
}

/// One archived file; `path` is relative to the workspace directory and to `files/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    pub path: String,
    pub size: u64,
    /// Lowercase hex SHA-256 of the file's bytes.
    pub sha256: String,
}

/// An entry that was recorded but not copied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkippedEntry {
    pub path: String,
    /// `symlink`, `fifo`, `socket` or `device`.
    pub kind: String,
    /// Where a symlink pointed, for the record (lossily decoded if not UTF-8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// A manifest path must stay inside its directory even if the manifest was edited: relative,
/// no `.`/`..`/empty segments, no NUL. (Looser than a request path: researchers' own file
/// names may contain backslashes or spaces, and those are still archived.)
fn stays_inside(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.contains('\0')
        && rel.split('/').all(|segment| !matches!(segment, "" | "." | ".."))
}

/// Every listed path, after checking that each is safe (see [`stays_inside`]) and listed once.
pub(crate) fn listed_paths(
    files: &[ManifestFile],
    manifest_path: &Path,
) -> Result<BTreeSet<PathBuf>, ArchiveError> {
    let mut listed = BTreeSet::new();
    for file in files {
        if !stays_inside(&file.path) || !listed.insert(PathBuf::from(&file.path)) {
            let reason = format!("path {:?} is unsafe or listed twice", file.path);
            return Err(ArchiveError::BadManifest { path: manifest_path.to_path_buf(), reason });
        }
    }
    Ok(listed)
}

/// Checks that `files_dir` holds exactly `files`: each present with its size and SHA-256,
/// every path safe and listed once, and nothing unlisted. `manifest_path` names the list in
/// errors.
pub(crate) fn verify_files(
    files_dir: &Path,
    files: &[ManifestFile],
    manifest_path: &Path,
) -> Result<(), ArchiveError> {
    verify_files_with(files_dir, files, manifest_path, |path, _| {
        File::open(path)
            .and_then(hash_reader)
            .map_err(|source| ArchiveError::Io { path: path.to_path_buf(), source })
    })
}

/// [`verify_files`] with the reading of each file left to `read`, which returns the length and
/// SHA-256 of the file's plaintext (a sealed file is opened, and may be copied on the way).
pub(crate) fn verify_files_with(
    files_dir: &Path,
    files: &[ManifestFile],
    manifest_path: &Path,
    mut read: impl FnMut(&Path, &ManifestFile) -> Result<(u64, String), ArchiveError>,
) -> Result<(), ArchiveError> {
    let listed = listed_paths(files, manifest_path)?;
    for file in files {
        let path = files_dir.join(&file.path);
        check_is_file(&path)?;
        let (size, sha256) = read(&path, file)?;
        check_contents(&path, file, size, sha256)?;
    }
    let present = tree::walk(files_dir).map_err(ArchiveError::from)?;
    if let Some(extra) = present
        .iter()
        .find(|entry| !(matches!(entry.kind, EntryKind::File { .. }) && listed.contains(&entry.rel)))
    {
        return Err(ArchiveError::UnexpectedFile { path: files_dir.join(&extra.rel) });
    }
    Ok(())
}

/// A listed path must be a regular file, never a link or a directory.
fn check_is_file(path: &Path) -> Result<(), ArchiveError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(_) => Err(ArchiveError::UnexpectedFile { path: path.to_path_buf() }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(ArchiveError::FileMissing { path: path.to_path_buf() })
        }
        Err(source) => Err(ArchiveError::Io { path: path.to_path_buf(), source }),
    }
}

/// A file's size and SHA-256 are the ones its manifest entry records.
pub(crate) fn check_contents(
    path: &Path,
    expected: &ManifestFile,
    size: u64,
    sha256: String,
) -> Result<(), ArchiveError> {
    if size != expected.size {
        return Err(ArchiveError::SizeMismatch {
            path: path.to_path_buf(),
            expected: expected.size,
            actual: size,
        });
    }
    if sha256 != expected.sha256 {
        return Err(ArchiveError::HashMismatch {
            path: path.to_path_buf(),
            expected: expected.sha256.clone(),
            actual: sha256,
        });
    }
    Ok(())
}
