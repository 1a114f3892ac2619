//! Delivering a reviewed snapshot: every file is opened (the snapshot is sealed) and its
//! plaintext re-hashed on its way out and compared with the manifest the reviewers saw, so a
//! snapshot changed after review is never delivered, and what arrives is the plaintext.

use std::fs::{self, OpenOptions, Permissions};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde::Serialize;

use super::{
    AirlockError, AirlockManifest, SnapshotRequest, copy_opened, fresh_partial, publish, read_manifest,
    verify, write_synced,
};
use crate::archive::ArchiveError;
use crate::manifest::{FILES, MANIFEST};
use crate::sealed::SealKey;
use crate::tree;

/// The disclosure-check report delivered beside the files (ACRO's `results.json`).
pub const REPORT: &str = "results.json";

/// Mode of delivered files: nobody writes them, so what arrives is what was reviewed.
pub(super) const READ_ONLY: u32 = 0o444;

/// A completed delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivered {
    pub files: u64,
    pub bytes: u64,
    /// SHA-256 of `MANIFEST.json`, the same as the snapshot's.
    pub manifest_sha256: String,
}

impl Delivered {
    pub(super) fn of(manifest: &AirlockManifest, manifest_sha256: String) -> Self {
        Self {
            files: manifest.files.len() as u64,
            bytes: manifest.files.iter().map(|f| f.size).sum(),
            manifest_sha256,
        }
    }
}

/// Copies the request's snapshot at `quarantine` to `target` (`egress/<permit>/<namespace>/<request>/`
/// or the workspace's `imports/<request>/`): `files/…` opened with `key` (the permit's
/// quarantine key), the snapshot's `MANIFEST.json` byte for byte, and `report` as
/// `results.json`. Files are made read-only. Idempotent: this request's
/// delivery already in place is verified and returned; an earlier request's is never touched.
pub fn deliver(
    quarantine: &Path,
    target: &Path,
    report: &[u8],
    request: &SnapshotRequest<'_>,
    key: &SealKey,
) -> Result<Delivered, AirlockError> {
    if let Some(delivered) = verify_delivery(target, request)? {
        return Ok(delivered);
    }
    let (manifest, manifest_sha256) = read_manifest(quarantine)?;
    if !request.owns(&manifest) {
        let reason = format!("it is the snapshot of {} (uid {})", manifest.request, manifest.uid);
        return Err(AirlockError::Corrupt(ArchiveError::BadManifest {
            path: quarantine.join(MANIFEST),
            reason,
        }));
    }
    let (Some(parent), Some(name)) = (target.parent(), target.file_name().and_then(|n| n.to_str())) else {
        let source = std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a directory path");
        return Err(AirlockError::Io { path: target.to_path_buf(), source });
    };
    let partial = fresh_partial(parent, name)?;
    if let Err(e) = copy_verified(quarantine, &partial, &manifest, report, key) {
        let _ = tree::remove_all(&partial);
        return Err(e);
    }
    // Every byte was compared with the manifest on its way; only a concurrent call's delivery,
    // published first, needs reading back.
    if publish(&partial, target)? {
        return Ok(Delivered::of(&manifest, manifest_sha256));
    }
    let (delivered, sha256) = verify(target)?;
    if !request.owns(&delivered) || sha256 != manifest_sha256 {
        return Err(AirlockError::Occupied { path: target.to_path_buf(), request: delivered.request });
    }
    Ok(Delivered::of(&delivered, sha256))
}

/// This request's delivery at `target`, verified (it is plaintext: no key is needed), or `None`
/// if nothing is delivered there yet. An earlier request's delivery there is an error.
pub fn verify_delivery(
    target: &Path,
    request: &SnapshotRequest<'_>,
) -> Result<Option<Delivered>, AirlockError> {
    if !target.try_exists().map_err(|source| AirlockError::Io { path: target.to_path_buf(), source })? {
        return Ok(None);
    }
    let (manifest, sha256) = verify(target)?;
    if !request.owns(&manifest) {
        return Err(AirlockError::Occupied { path: target.to_path_buf(), request: manifest.request });
    }
    Ok(Some(Delivered::of(&manifest, sha256)))
}

fn copy_verified(
    quarantine: &Path,
    partial: &Path,
    manifest: &AirlockManifest,
    report: &[u8],
    key: &SealKey,
) -> Result<(), AirlockError> {
    let (from_dir, to_dir) = (quarantine.join(FILES), partial.join(FILES));
    let io_at = |path: &Path| {
        let path = path.to_path_buf();
        move |source| AirlockError::Io { path, source }
    };
    fs::create_dir_all(&to_dir).map_err(io_at(&to_dir))?;
    let mut dirs = vec![partial.to_path_buf(), to_dir.clone()];
    for file in &manifest.files {
        let (from, to) = (from_dir.join(&file.path), to_dir.join(&file.path));
        if let Some(dir) = to.parent().filter(|dir| *dir != to_dir) {
            fs::create_dir_all(dir).map_err(io_at(dir))?;
            dirs.push(dir.to_path_buf());
        }
        let mut writer = OpenOptions::new().write(true).create_new(true).open(&to).map_err(io_at(&to))?;
        let (size, sha256) = copy_opened(&from, key, &mut writer)?;
        if sha256 != file.sha256 || size != file.size {
            let (expected, actual) = (file.sha256.clone(), sha256);
            return Err(AirlockError::Corrupt(ArchiveError::HashMismatch { path: from, expected, actual }));
        }
        writer.set_permissions(Permissions::from_mode(READ_ONLY)).map_err(io_at(&to))?;
        writer.sync_all().map_err(io_at(&to))?;
    }
    // The snapshot's manifest byte for byte, so both have the same SHA-256.
    let snapshot_manifest = quarantine.join(MANIFEST);
    let bytes = fs::read(&snapshot_manifest).map_err(io_at(&snapshot_manifest))?;
    write_synced(&partial.join(MANIFEST), &bytes)?;
    write_synced(&partial.join(REPORT), report)?;
    dirs.sort();
    dirs.dedup();
    for dir in dirs.iter().rev() {
        tree::sync_dir(dir)?;
    }
    Ok(())
}
