//! Airlock file work (DESIGN §5 "Airlock export"): a request's files are copied once into
//! `quarantine/<namespace>/<request>/` and hashed; checks and reviews see only that snapshot;
//! delivery copies exactly those bytes (same SHA-256) to `egress/<permit>/<namespace>/<request>/` for an
//! export, or into the workspace's read-only `imports/<request>/` for an import.
//!
//! Both steps are crash-safe and idempotent, like archives: the result is built in a hidden
//! sibling (`.<request>.partial-…`; request names are DNS names, so a `.` prefix never
//! collides) and renamed into place, so a directory under its final name is always complete.
//! A repeated call returns what is in place, verified, and never re-reads the source: the
//! first snapshot is the one that was checked.
//!
//! Quarantine copies are sealed ([`crate::sealed`]) with the permit's quarantine key, like
//! archives, so a copy that escapes deletion (a backup, a volume snapshot) is unreadable once
//! the permit's key is shredded. `MANIFEST.json` (sizes and SHA-256s of the plaintext; the
//! names are in the request's spec anyway) and `results.json` stay plaintext. Checks see the
//! plaintext only in a transient scratch directory ([`with_plaintext_snapshot`]); delivery
//! opens the files as it copies them, so what arrives is the plaintext that was reviewed.

mod base64_bytes;
mod deliver;
mod package;
mod plaintext;
mod scan;
mod snapshot;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use deliver::{Delivered, REPORT, deliver, verify_delivery};
pub use package::{Package, PackageFile, read_package, receive_package};
pub use plaintext::{remove_scratch, with_plaintext_snapshot};

pub use scan::{ScanVerdict, Scanner};
pub use snapshot::{SnapshotSource, remove_snapshot, take_snapshot, verify_snapshot};

use crate::archive::ArchiveError;
use crate::hashing::{copy_hashing, sha256_hex};
use crate::manifest::{FILES, MANIFEST, ManifestFile, verify_files, verify_files_with};
use crate::names::PathError;
use crate::sealed::{OpenReader, SealError, SealKey};
use crate::store::StoreError;
use crate::tree::{self, WalkError};

/// What a snapshot (and its delivery) holds: every file with its size and SHA-256, in the
/// order requested (paths normalised: `./a.csv` is `a.csv`). The same bytes are written beside the snapshot and the delivery, so both
/// have the same manifest SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AirlockManifest {
    /// `<namespace>/<request>`.
    pub request: String,
    /// The request object's uid: a request deleted and created again under the same name is
    /// another request, and never gets this one's snapshot or delivery.
    pub uid: String,
    pub files: Vec<ManifestFile>,
}

/// What to snapshot: the request's identity, its files as listed in `spec.files`, and the
/// largest file the permit lets through (bigger files are refused before a byte is copied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRequest<'a> {
    /// `<namespace>/<request>`.
    pub request: &'a str,
    pub uid: &'a str,
    pub files: &'a [String],
    pub max_file_size: u64,
}

impl SnapshotRequest<'_> {
    fn owns(&self, manifest: &AirlockManifest) -> bool {
        manifest.request == self.request && manifest.uid == self.uid
    }
}

#[derive(Debug, Error)]
pub enum AirlockError {
    /// The request itself is at fault; retrying cannot help.
    #[error("spec.files[{index}] {path:?}: {reason}")]
    Refused { index: usize, path: String, reason: Refusal },
    /// The snapshot or a delivery no longer matches its manifest.
    #[error("{0}")]
    Corrupt(ArchiveError),
    /// An earlier request with the same name already delivered there.
    #[error("{path} already holds the delivery of an earlier request named {request}; submit under another name", path = path.display())]
    Occupied { path: PathBuf, request: String },
    /// A delivery too big to travel in one package between sites.
    #[error("{path} holds {bytes} bytes of files; a package may carry at most {max}", path = path.display())]
    TooLargeToPackage { path: PathBuf, bytes: u64, max: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("I/O error at {path}: {source}", path = path.display())]
    Io { path: PathBuf, source: io::Error },
}

impl AirlockError {
    /// Whether the request can never succeed as submitted (as opposed to a store problem that
    /// may go away).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::Refused { .. } | Self::Corrupt(_) | Self::Occupied { .. } | Self::TooLargeToPackage { .. }
        )
    }
}

impl From<WalkError> for AirlockError {
    fn from(e: WalkError) -> Self {
        Self::Io { path: e.path, source: e.source }
    }
}

impl From<ArchiveError> for AirlockError {
    fn from(e: ArchiveError) -> Self {
        match e {
            ArchiveError::Io { path, source } => Self::Io { path, source },
            ArchiveError::Store(e) => Self::Store(e),
            other => Self::Corrupt(other),
        }
    }
}

/// Why a requested file was not taken into the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refusal {
    #[error("{0}")]
    UnsafePath(PathError),
    #[error("no such file in the {area}")]
    Missing { area: &'static str },
    #[error("leads outside the {area} (through a symlink or an absolute link); copy the file itself there")]
    Escapes { area: &'static str },
    #[error("is a {kind}, not a regular file")]
    NotAFile { kind: &'static str },
    #[error("has {size} bytes; the permit allows at most {max} per file (spec.airlock.maxFileSize)")]
    TooLarge { size: u64, max: u64 },
    #[error("cannot be read by the operator (permission denied); make it readable")]
    Unreadable,
    #[error("names the same file as an earlier entry")]
    Duplicate,
    #[error("the {area} itself is missing or is not a real directory")]
    NoArea { area: &'static str },
}

/// Writes the check report beside a snapshot (`results.json`), replacing any earlier one in
/// one rename, so a reader never sees half a report.
pub fn write_report(quarantine: &Path, report: &[u8]) -> Result<(), AirlockError> {
    let (temporary, path) = (quarantine.join(format!(".{REPORT}.partial")), quarantine.join(REPORT));
    let _ = fs::remove_file(&temporary);
    write_synced(&temporary, report)?;
    fs::rename(&temporary, &path).map_err(|source| AirlockError::Io { path: path.clone(), source })?;
    Ok(tree::sync_dir(quarantine)?)
}

/// The check report written beside a snapshot.
pub fn read_report(quarantine: &Path) -> Result<Vec<u8>, AirlockError> {
    let path = quarantine.join(REPORT);
    fs::read(&path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => AirlockError::Corrupt(ArchiveError::Missing { path: path.clone() }),
        _ => AirlockError::Io { path: path.clone(), source },
    })
}

/// Distinguishes the partial directories of concurrent calls within one process.
static PARTIAL_SEQ: AtomicU64 = AtomicU64::new(0);

/// `parent/.<name>.partial-<pid>-<n>`, after removing what a crashed earlier call left.
fn fresh_partial(parent: &Path, name: &str) -> Result<PathBuf, AirlockError> {
    let io_err = |source| AirlockError::Io { path: parent.to_path_buf(), source };
    fs::create_dir_all(parent).map_err(io_err)?;
    let prefix = format!(".{name}.partial-");
    for entry in fs::read_dir(parent).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        if entry.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)) {
            tree::remove_all(&entry.path())?;
        }
    }
    let seq = PARTIAL_SEQ.fetch_add(1, Ordering::Relaxed);
    Ok(parent.join(format!(".{name}.partial-{}-{seq}", std::process::id())))
}

/// Moves a finished partial directory into place and syncs the parent. If another call got
/// there first, the partial is dropped and `Ok(false)` says so.
fn publish(partial: &Path, target: &Path) -> Result<bool, AirlockError> {
    match fs::rename(partial, target) {
        Ok(()) => {}
        Err(source) => {
            let _ = tree::remove_all(partial);
            return match target.try_exists() {
                Ok(true) => Ok(false),
                _ => Err(AirlockError::Io { path: target.to_path_buf(), source }),
            };
        }
    }
    if let Some(parent) = target.parent() {
        tree::sync_dir(parent)?;
    }
    Ok(true)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), AirlockError> {
    let io_err = |source| AirlockError::Io { path: path.to_path_buf(), source };
    let mut file = OpenOptions::new().write(true).create_new(true).open(path).map_err(io_err)?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(io_err)
}

fn manifest_bytes(manifest: &AirlockManifest, path: &Path) -> Result<Vec<u8>, AirlockError> {
    let mut bytes = serde_json::to_vec_pretty(manifest)
        .map_err(|e| AirlockError::Io { path: path.to_path_buf(), source: io::Error::other(e) })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Reads and parses `dir/MANIFEST.json`; returns it with the SHA-256 of its bytes.
fn read_manifest(dir: &Path) -> Result<(AirlockManifest, String), AirlockError> {
    let (manifest, bytes) = read_manifest_bytes(dir)?;
    Ok((manifest, sha256_hex(&bytes)))
}

/// Reads and parses `dir/MANIFEST.json`; returns it with its bytes.
fn read_manifest_bytes(dir: &Path) -> Result<(AirlockManifest, Vec<u8>), AirlockError> {
    let path = dir.join(MANIFEST);
    let bytes = fs::read(&path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => AirlockError::Corrupt(ArchiveError::Missing { path: path.clone() }),
        _ => AirlockError::Io { path: path.clone(), source },
    })?;
    Ok((parse_manifest(&bytes, &path)?, bytes))
}

/// Parses manifest bytes; `path` names them in errors.
fn parse_manifest(bytes: &[u8], path: &Path) -> Result<AirlockManifest, AirlockError> {
    serde_json::from_slice(bytes).map_err(|e| {
        AirlockError::Corrupt(ArchiveError::BadManifest { path: path.to_path_buf(), reason: e.to_string() })
    })
}

/// Checks that the delivery at `dir` holds exactly the (plaintext) files its manifest lists,
/// with their sizes and SHA-256s; returns the manifest and its SHA-256.
fn verify(dir: &Path) -> Result<(AirlockManifest, String), AirlockError> {
    let (manifest, bytes) = verify_keeping_manifest(dir)?;
    Ok((manifest, sha256_hex(&bytes)))
}

/// [`verify`], returning the manifest's bytes rather than their SHA-256, so a caller that
/// passes them on passes the very bytes that were checked.
fn verify_keeping_manifest(dir: &Path) -> Result<(AirlockManifest, Vec<u8>), AirlockError> {
    let (manifest, bytes) = read_manifest_bytes(dir)?;
    verify_files(&dir.join(FILES), &manifest.files, &dir.join(MANIFEST))?;
    Ok((manifest, bytes))
}

/// [`verify`] for a snapshot, whose files are sealed: every file is opened with `key` and its
/// plaintext checked against the manifest.
fn verify_sealed(dir: &Path, key: &SealKey) -> Result<(AirlockManifest, String), AirlockError> {
    let (manifest, sha256) = read_manifest(dir)?;
    verify_files_with(&dir.join(FILES), &manifest.files, &dir.join(MANIFEST), |path, _| {
        copy_opened(path, key, io::sink())
    })?;
    Ok((manifest, sha256))
}

/// Opens the sealed file at `path` into `writer`; returns the length and SHA-256 of the
/// plaintext. A wrong key, a changed byte or a file cut short is corruption, not an I/O error.
fn copy_opened(path: &Path, key: &SealKey, writer: impl Write) -> Result<(u64, String), ArchiveError> {
    let file = File::open(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => ArchiveError::FileMissing { path: path.to_path_buf() },
        _ => ArchiveError::Io { path: path.to_path_buf(), source },
    })?;
    let reader = OpenReader::new(file, key).map_err(|e| sealed_at(path, e))?;
    copy_hashing(reader, writer).map_err(|e| sealed_at(path, SealError::from(e)))
}

fn sealed_at(path: &Path, error: SealError) -> ArchiveError {
    match error {
        SealError::Io(source) => ArchiveError::Io { path: path.to_path_buf(), source },
        source => ArchiveError::Sealed { path: path.to_path_buf(), source },
    }
}

#[cfg(test)]
#[path = "airlock_tests.rs"]
mod tests;
