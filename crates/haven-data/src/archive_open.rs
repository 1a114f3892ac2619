//! Reading a sealed archive: opening its manifest, checking that every blob opens to the bytes
//! the manifest lists and that nothing else is there, and restoring the plaintext.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::ArchiveError;
use crate::hashing::{copy_hashing, sha256_hex};
use crate::manifest::{FILES, MANIFEST, Manifest, ManifestFile, check_contents, listed_paths};
use crate::sealed::{self, OpenReader, SealError, SealKey};

pub(super) const SEALED_MANIFEST: &str = "MANIFEST.sealed";
pub(super) const BLOBS: &str = "blobs";
/// The largest sealed manifest read: a million files' entries fit many times over.
const MAX_SEALED_MANIFEST: u64 = 1 << 30;

/// The name of the blob holding the manifest's `n`-th file.
pub(super) fn blob_name(n: usize) -> String {
    format!("{n}.sealed")
}

/// Opens every blob of the archive at `dir` and checks it against the manifest; returns the
/// manifest and the SHA-256 of its plaintext.
pub(super) fn verify_dir(
    dir: &Path,
    permit: &str,
    workspace: &str,
    key: &SealKey,
) -> Result<(Manifest, String), ArchiveError> {
    let (manifest, bytes) = read_manifest(dir, permit, workspace, key)?;
    let blobs = dir.join(BLOBS);
    for (n, file) in manifest.files.iter().enumerate() {
        open_blob(&blobs.join(blob_name(n)), file, key, io::sink())?;
    }
    check_no_extra_blobs(&blobs, manifest.files.len())?;
    Ok((manifest, sha256_hex(&bytes)))
}

/// Writes the archive's plaintext into the existing, empty `out`: `MANIFEST.json` and
/// `files/<path>`, each file checked as it is written.
pub(super) fn restore(
    dir: &Path,
    permit: &str,
    workspace: &str,
    key: &SealKey,
    out: &Path,
) -> Result<(Manifest, String), ArchiveError> {
    let (manifest, bytes) = read_manifest(dir, permit, workspace, key)?;
    let io_at = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ArchiveError::Io { path, source }
    };
    let manifest_path = out.join(MANIFEST);
    fs::write(&manifest_path, &bytes).map_err(io_at(&manifest_path))?;
    let (blobs, files) = (dir.join(BLOBS), out.join(FILES));
    for (n, file) in manifest.files.iter().enumerate() {
        let to = files.join(&file.path);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(io_at(parent))?;
        }
        let writer = OpenOptions::new().write(true).create_new(true).open(&to).map_err(io_at(&to))?;
        open_blob(&blobs.join(blob_name(n)), file, key, writer)?;
    }
    check_no_extra_blobs(&blobs, manifest.files.len())?;
    Ok((manifest, sha256_hex(&bytes)))
}

/// Opens `dir/MANIFEST.sealed`, checks that it is this archive's (a manifest moved from
/// another workspace's archive is refused) and that its paths are safe; returns it and its
/// plaintext bytes.
fn read_manifest(
    dir: &Path,
    permit: &str,
    workspace: &str,
    key: &SealKey,
) -> Result<(Manifest, Vec<u8>), ArchiveError> {
    let path = dir.join(SEALED_MANIFEST);
    match fs::symlink_metadata(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ArchiveError::Missing { path }),
        Err(source) => return Err(ArchiveError::Io { path, source }),
        // Never follow a link or read a device: the manifest is read into memory, so bounded.
        Ok(meta) if !meta.is_file() || meta.len() > MAX_SEALED_MANIFEST => {
            return Err(ArchiveError::UnexpectedFile { path });
        }
        Ok(_) => {}
    }
    let file = File::open(&path).map_err(|source| ArchiveError::Io { path: path.clone(), source })?;
    let mut bytes = Vec::new();
    sealed::open(file, &mut bytes, key).map_err(sealed_at(&path))?;
    let bad = |reason: String| ArchiveError::BadManifest { path: path.clone(), reason };
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    if manifest.permit != permit || manifest.workspace != workspace {
        return Err(bad(format!(
            "it is the archive of workspace {} of permit {}",
            manifest.workspace, manifest.permit
        )));
    }
    listed_paths(&manifest.files, &path)?;
    Ok((manifest, bytes))
}

/// Opens one blob into `writer`, checking it against its manifest entry.
fn open_blob(
    path: &Path,
    expected: &ManifestFile,
    key: &SealKey,
    mut writer: impl Write,
) -> Result<(), ArchiveError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => return Err(ArchiveError::UnexpectedFile { path: path.to_path_buf() }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(ArchiveError::FileMissing { path: path.to_path_buf() });
        }
        Err(source) => return Err(ArchiveError::Io { path: path.to_path_buf(), source }),
    }
    let file = File::open(path).map_err(|source| ArchiveError::Io { path: path.to_path_buf(), source })?;
    let reader = OpenReader::new(file, key).map_err(sealed_at(path))?;
    let (size, sha256) =
        copy_hashing(reader, &mut writer).map_err(|e| sealed_at(path)(SealError::from(e)))?;
    check_contents(path, expected, size, sha256)
}

/// `blobs/` may hold only `0.sealed` … `<count - 1>.sealed` (each already checked to exist).
fn check_no_extra_blobs(blobs: &Path, count: usize) -> Result<(), ArchiveError> {
    let io_err = |source| ArchiveError::Io { path: blobs.to_path_buf(), source };
    let listing = match fs::read_dir(blobs) {
        Err(e) if e.kind() == io::ErrorKind::NotFound && count == 0 => return Ok(()),
        other => other.map_err(io_err)?,
    };
    for entry in listing {
        let name = entry.map_err(io_err)?.file_name();
        let expected = name
            .to_str()
            .and_then(|name| name.strip_suffix(".sealed"))
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| n < count && name.to_str() == Some(blob_name(n).as_str()));
        if !expected {
            return Err(ArchiveError::UnexpectedFile { path: blobs.join(name) });
        }
    }
    Ok(())
}

/// Maps a [`SealError`] at `path` to an [`ArchiveError`], keeping I/O errors as such.
fn sealed_at(path: &Path) -> impl Fn(SealError) -> ArchiveError + '_ {
    move |error| match error {
        SealError::Io(source) => ArchiveError::Io { path: PathBuf::from(path), source },
        source => ArchiveError::Sealed { path: PathBuf::from(path), source },
    }
}
