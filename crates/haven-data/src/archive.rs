//! Archiving a workspace before teardown (DESIGN §5: archive before delete, always).
//!
//! An archive is sealed ([`crate::sealed`]) with a key derived from the permit's key, so that
//! neither file contents nor file names can be read without it, and shredding the permit's key
//! at destruction makes any copy that escaped deletion unreadable:
//!
//! ```text
//! archive/<permit>/<ws>/MANIFEST.sealed    the manifest: every path, size and plaintext SHA-256
//! archive/<permit>/<ws>/blobs/<n>.sealed   the manifest's n-th file
//! ```
//!
//! [`open_archive`] restores the plaintext (`MANIFEST.json` and `files/<path>`, the layout
//! archives had before they were sealed) for an auditor or a restore.
//!
//! Crash safety: the archive is built in a hidden sibling `archive/<permit>/.<ws>.partial-…`
//! (names are DNS labels, so a `.` prefix can never collide with a workspace), verified
//! there, and renamed into place in one step. `archive/<permit>/<ws>/` therefore either does
//! not exist or is complete; a restarted operator finds it, verifies it and returns it
//! instead of archiving again, and removes any partial directory a crash left behind.
//!
//! Symlinks are never followed: a researcher could link to another project's data, and the
//! archive must hold only what the workspace itself holds. They are recorded in the manifest
//! as skipped with their target, so the record of what the workspace looked like is complete
//! and teardown is not blocked by a link. Fifos, sockets and devices are skipped likewise.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use thiserror::Error;

use self::open::{BLOBS, SEALED_MANIFEST, blob_name, restore, verify_dir};
use crate::hashing::copy_hashing;
use crate::manifest::{Manifest, ManifestFile, SkippedEntry};
use crate::sealed::{SealError, SealKey, SealWriter};
use crate::store::{DataStore, StoreError};
use crate::tree::{self, EntryKind, WalkError};

#[path = "archive_open.rs"]
mod open;

#[derive(Debug, Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("I/O error at {path}: {source}", path = path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is not a directory", path = path.display())]
    NotADirectory { path: PathBuf },
    #[error("file name {path} is not UTF-8 and cannot be recorded in the manifest; rename it", path = path.display())]
    NonUtf8Name { path: PathBuf },
    #[error("{path} was replaced while it was being archived", path = path.display())]
    ChangedDuringArchive { path: PathBuf },
    #[error("no archive manifest at {path}", path = path.display())]
    Missing { path: PathBuf },
    #[error("archive manifest {path} is invalid: {reason}", path = path.display())]
    BadManifest { path: PathBuf, reason: String },
    #[error("archived file {path} is missing", path = path.display())]
    FileMissing { path: PathBuf },
    #[error("archived file {path} has {actual} bytes; the manifest says {expected}", path = path.display())]
    SizeMismatch { path: PathBuf, expected: u64, actual: u64 },
    #[error("archived file {path} has sha256 {actual}; the manifest says {expected}", path = path.display())]
    HashMismatch { path: PathBuf, expected: String, actual: String },
    #[error("archive holds {path}, which its manifest does not list", path = path.display())]
    UnexpectedFile { path: PathBuf },
    #[error("{path} cannot be opened: {source}", path = path.display())]
    Sealed { path: PathBuf, source: SealError },
}

impl From<WalkError> for ArchiveError {
    fn from(e: WalkError) -> Self {
        Self::Io { path: e.path, source: e.source }
    }
}

/// A verified archive, as the operator records it in status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchiveRecord {
    /// `archive/<permit>/<workspace>`, relative to the store root.
    pub path: String,
    /// Regular files archived.
    pub files: u64,
    /// Their total size.
    pub bytes: u64,
    /// Symlinks and special files recorded but not copied.
    pub skipped: u64,
    /// SHA-256 of the plaintext manifest (`MANIFEST.json` once opened): one value that pins
    /// every archived byte.
    pub manifest_sha256: String,
}

impl ArchiveRecord {
    fn new(permit: &str, workspace: &str, manifest: &Manifest, manifest_sha256: String) -> Self {
        Self {
            path: format!("archive/{permit}/{workspace}"),
            files: manifest.files.len() as u64,
            bytes: manifest.files.iter().map(|f| f.size).sum(),
            skipped: manifest.skipped.len() as u64,
            manifest_sha256,
        }
    }
}

/// Distinguishes partial directories of concurrent calls within one process.
static PARTIAL_SEQ: AtomicU64 = AtomicU64::new(0);

/// Seals every regular file under `workspaces/<workspace>/` into
/// `archive/<permit>/<workspace>/blobs/`, writes the sealed manifest, re-reads and verifies
/// every blob, then moves the archive into place. Idempotent: an existing archive is verified
/// (with `key`) and returned, never rebuilt or overwritten (an archive that fails verification
/// is an error for a human, since the workspace may already be gone). A missing workspace
/// directory archives as an empty archive: a workspace that never wrote anything must still be
/// archivable.
///
/// Callers should archive one workspace at a time; a concurrent call may fail, but can never
/// put an unverified archive in place.
pub fn archive_workspace(
    store: &DataStore,
    permit: &str,
    workspace: &str,
    key: &SealKey,
) -> Result<ArchiveRecord, ArchiveError> {
    let source = store.workspace(workspace)?;
    let target = store.archive(permit, workspace)?;
    let parent = store.permit_archive(permit)?;
    if exists(&target)? {
        return verify_archive(store, permit, workspace, key);
    }
    fs::create_dir_all(&parent).map_err(|source| ArchiveError::Io { path: parent.clone(), source })?;
    remove_partials(&parent, workspace)?;

    let seq = PARTIAL_SEQ.fetch_add(1, Ordering::Relaxed);
    let partial = parent.join(format!(".{workspace}.partial-{}-{seq}", std::process::id()));
    let built = build(&source, &partial, permit, workspace, key)
        .and_then(|()| verify_dir(&partial, permit, workspace, key));
    let (manifest, manifest_sha256) = match built {
        Ok(verified) => verified,
        Err(e) => {
            // Best effort: the next call removes it anyway.
            let _ = tree::remove_all(&partial);
            return Err(e);
        }
    };
    if let Err(source) = fs::rename(&partial, &target) {
        let _ = tree::remove_all(&partial);
        // Another caller won the race and its archive is in place: check and return that.
        if exists(&target)? {
            return verify_archive(store, permit, workspace, key);
        }
        return Err(ArchiveError::Io { path: target, source });
    }
    tree::sync_dir(&parent)?;
    Ok(ArchiveRecord::new(permit, workspace, &manifest, manifest_sha256))
}

/// Re-checks an existing archive: its manifest opens with `key` and belongs to this permit and
/// workspace, every listed file opens with its recorded size and SHA-256, and nothing unlisted
/// is there. The error names the offending blob.
pub fn verify_archive(
    store: &DataStore,
    permit: &str,
    workspace: &str,
    key: &SealKey,
) -> Result<ArchiveRecord, ArchiveError> {
    let dir = store.archive(permit, workspace)?;
    let (manifest, manifest_sha256) = verify_dir(&dir, permit, workspace, key)?;
    Ok(ArchiveRecord::new(permit, workspace, &manifest, manifest_sha256))
}

/// Restores an archive's plaintext into `out_dir`, which must not exist yet: `MANIFEST.json`
/// and `files/<path>`, every file checked against the manifest as it is written. On any
/// failure `out_dir` is removed again, so a restore is complete and verified or absent.
pub fn open_archive(
    store: &DataStore,
    permit: &str,
    workspace: &str,
    key: &SealKey,
    out_dir: &Path,
) -> Result<ArchiveRecord, ArchiveError> {
    let dir = store.archive(permit, workspace)?;
    let io_at = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ArchiveError::Io { path, source }
    };
    if out_dir.symlink_metadata().is_ok() {
        let exists = io::Error::new(io::ErrorKind::AlreadyExists, "must not exist yet; it is left as it is");
        return Err(io_at(out_dir)(exists));
    }
    // Restored beside `out_dir` and renamed into place only once every byte checked out: a
    // directory at `out_dir` is always a whole restore, and an interrupted run leaves only a
    // `.partial-` sibling, never something that looks like the archive.
    let partial = tree::partial_sibling(out_dir);
    fs::create_dir(&partial).map_err(io_at(&partial))?;
    let restored = restore(&dir, permit, workspace, key, &partial).and_then(|restored| {
        rename_noreplace(&partial, out_dir).map_err(io_at(out_dir))?;
        Ok(restored)
    });
    match restored {
        Ok((manifest, manifest_sha256)) => {
            Ok(ArchiveRecord::new(permit, workspace, &manifest, manifest_sha256))
        }
        Err(e) => {
            let _ = tree::remove_all(&partial);
            Err(e)
        }
    }
}

/// Renames `from` to `to` unless `to` exists (then fails, leaving both as they are).
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE).map_err(io::Error::from)
}

/// How many regular files `workspaces/<workspace>/` holds (0 when it does not exist).
pub fn workspace_files(store: &DataStore, workspace: &str) -> Result<u64, ArchiveError> {
    Ok(tree::count(&store.workspace(workspace)?)?.0)
}

/// Deletes `workspaces/<workspace>/` (symlinks inside are removed, not followed). Call only
/// after [`archive_workspace`] or [`verify_archive`] succeeded. Idempotent.
pub fn remove_workspace_files(store: &DataStore, workspace: &str) -> Result<(), ArchiveError> {
    Ok(tree::remove_all(&store.workspace(workspace)?)?)
}

fn exists(path: &Path) -> Result<bool, ArchiveError> {
    path.try_exists().map_err(|source| ArchiveError::Io { path: path.to_path_buf(), source })
}

/// Removes what a crashed or failed earlier call left in `archive/<permit>/`.
fn remove_partials(parent: &Path, workspace: &str) -> Result<(), ArchiveError> {
    let prefix = format!(".{workspace}.partial-");
    let io_err = |source| ArchiveError::Io { path: parent.to_path_buf(), source };
    for entry in fs::read_dir(parent).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        if entry.file_name().to_str().is_some_and(|name| name.starts_with(&prefix)) {
            tree::remove_all(&entry.path())?;
        }
    }
    Ok(())
}

/// Seals the workspace's files into `partial/blobs/` and the manifest into
/// `partial/MANIFEST.sealed`, syncing every file and directory so the later rename publishes
/// only durable data.
fn build(
    source: &Path,
    partial: &Path,
    permit: &str,
    workspace: &str,
    key: &SealKey,
) -> Result<(), ArchiveError> {
    match fs::symlink_metadata(source) {
        Ok(meta) if !meta.is_dir() => return Err(ArchiveError::NotADirectory { path: source.to_path_buf() }),
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(ArchiveError::Io { path: source.to_path_buf(), source: e });
        }
        _ => {}
    }
    let blobs = partial.join(BLOBS);
    fs::create_dir_all(&blobs).map_err(|e| ArchiveError::Io { path: blobs.clone(), source: e })?;
    let mut manifest = Manifest {
        permit: permit.to_owned(),
        workspace: workspace.to_owned(),
        files: vec![],
        skipped: vec![],
    };

    // Files are sealed in manifest order, so blob `n` is the manifest's n-th file.
    let mut files = vec![];
    for entry in tree::walk(source)? {
        let from = source.join(&entry.rel);
        let rel = entry.rel.to_str().ok_or_else(|| ArchiveError::NonUtf8Name { path: from.clone() })?;
        match entry.kind {
            EntryKind::File { dev, ino, .. } => files.push((rel.to_owned(), from, dev, ino)),
            EntryKind::Symlink => {
                let target =
                    fs::read_link(&from).map_err(|e| ArchiveError::Io { path: from.clone(), source: e })?;
                let target = Some(target.to_string_lossy().into_owned());
                manifest.skipped.push(SkippedEntry { path: rel.to_owned(), kind: "symlink".into(), target });
            }
            EntryKind::Special(kind) => {
                manifest.skipped.push(SkippedEntry { path: rel.to_owned(), kind: kind.into(), target: None });
            }
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    manifest.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    for (n, (path, from, dev, ino)) in files.into_iter().enumerate() {
        let (size, sha256) = seal_file(&from, &blobs.join(blob_name(n)), dev, ino, key)?;
        manifest.files.push(ManifestFile { path, size, sha256 });
    }

    let manifest_path = partial.join(SEALED_MANIFEST);
    let mut bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| ArchiveError::BadManifest { path: manifest_path.clone(), reason: e.to_string() })?;
    bytes.push(b'\n');
    seal_synced(&manifest_path, &bytes, key)
        .map_err(|source| ArchiveError::Io { path: manifest_path.clone(), source })?;
    tree::sync_dir(&blobs)?;
    tree::sync_dir(partial)?;
    Ok(())
}

/// Seals one file, hashing the plaintext as it goes. Refuses if the path no longer names the
/// file the walk saw (`dev`/`ino`), so a file swapped for a link after listing is not followed.
fn seal_file(
    from: &Path,
    to: &Path,
    dev: u64,
    ino: u64,
    key: &SealKey,
) -> Result<(u64, String), ArchiveError> {
    let reader = File::open(from).map_err(|e| ArchiveError::Io { path: from.to_path_buf(), source: e })?;
    let meta = reader.metadata().map_err(|e| ArchiveError::Io { path: from.to_path_buf(), source: e })?;
    if meta.dev() != dev || meta.ino() != ino {
        return Err(ArchiveError::ChangedDuringArchive { path: from.to_path_buf() });
    }
    let io_err = |source| ArchiveError::Io { path: to.to_path_buf(), source };
    let writer = OpenOptions::new().write(true).create_new(true).open(to).map_err(io_err)?;
    let mut sealer = SealWriter::new(writer, key).map_err(io_err)?;
    let copied = copy_hashing(reader, &mut sealer)
        .map_err(|e| ArchiveError::Io { path: from.to_path_buf(), source: e })?;
    sealer.finish().and_then(|file| file.sync_all()).map_err(io_err)?;
    Ok(copied)
}

fn seal_synced(path: &Path, bytes: &[u8], key: &SealKey) -> io::Result<()> {
    use std::io::Write;
    let file = OpenOptions::new().write(true).create_new(true).open(path)?;
    let mut sealer = SealWriter::new(file, key)?;
    sealer.write_all(bytes)?;
    sealer.finish()?.sync_all()
}

#[cfg(test)]
#[path = "archive_tests.rs"]
mod tests;
