//! Moving an approved export delivery from one Haven site to another as bytes, for federated
//! analysis. The sending site reads its delivery into a [`Package`] (JSON, bytes as base64);
//! the receiving site, told the manifest's SHA-256 separately, checks every byte against that
//! manifest before writing anything, then builds the same delivery under its own target the
//! way [`super::deliver`] does: in a hidden sibling, verified, renamed into place.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::deliver::READ_ONLY;
use super::snapshot::split;
use super::{
    AirlockError, AirlockManifest, Delivered, REPORT, base64_bytes, fresh_partial, parse_manifest, publish,
    read_report, verify, verify_keeping_manifest, write_synced,
};
use crate::archive::ArchiveError;
use crate::hashing::sha256_hex;
use crate::manifest::{FILES, MANIFEST, ManifestFile, check_contents, listed_paths};
use crate::tree;

/// An export delivery as it travels between sites: `MANIFEST.json` and `results.json` byte
/// for byte, and every file the manifest lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    /// Its SHA-256 names the release; the receiver checks it against the one it was told.
    #[serde(with = "base64_bytes")]
    pub manifest: Vec<u8>,
    /// The disclosure-check report, as delivered.
    #[serde(with = "base64_bytes")]
    pub report: Vec<u8>,
    pub files: Vec<PackageFile>,
}

/// One delivered file; `path` is relative to `files/`, exactly as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageFile {
    pub path: String,
    #[serde(with = "base64_bytes")]
    pub bytes: Vec<u8>,
}

/// Reads the verified export delivery at `delivery` into a [`Package`]; returns it with the
/// manifest's SHA-256. A delivery whose files total more than `max_bytes` is refused before
/// any file is read into memory.
pub fn read_package(delivery: &Path, max_bytes: u64) -> Result<(Package, String), AirlockError> {
    let (manifest, manifest_bytes) = verify_keeping_manifest(delivery)?;
    let bytes = manifest.files.iter().fold(0u64, |total, file| total.saturating_add(file.size));
    if bytes > max_bytes {
        return Err(AirlockError::TooLargeToPackage { path: delivery.to_path_buf(), bytes, max: max_bytes });
    }
    let files_dir = delivery.join(FILES);
    let files = manifest
        .files
        .iter()
        .map(|file| {
            let path = files_dir.join(&file.path);
            let bytes = read_at_most(&path, file.size)?;
            // What travels is what was checked, even if the file changed since `verify`.
            check_contents(&path, file, bytes.len() as u64, sha256_hex(&bytes))?;
            Ok(PackageFile { path: file.path.clone(), bytes })
        })
        .collect::<Result<Vec<_>, AirlockError>>()?;
    let report = read_report(delivery)?;
    let manifest_sha256 = sha256_hex(&manifest_bytes);
    Ok((Package { manifest: manifest_bytes, report, files }, manifest_sha256))
}

/// Builds `package` as a delivery at `target` (files read-only, `MANIFEST.json` and
/// `results.json` byte for byte), after checking that its manifest has the SHA-256
/// `expected_manifest_sha256` and that it carries exactly the listed files, each once, with
/// the listed sizes and SHA-256s. Idempotent: a delivery with that manifest already at
/// `target` is verified and returned; any other delivery there is never touched.
pub fn receive_package(
    target: &Path,
    package: &Package,
    expected_manifest_sha256: &str,
) -> Result<Delivered, AirlockError> {
    // A bad package is refused whatever is at the target, so the sender always hears of it.
    let manifest = check_package(target, package, expected_manifest_sha256)?;
    if target.try_exists().map_err(|source| AirlockError::Io { path: target.to_path_buf(), source })? {
        return verify_received(target, expected_manifest_sha256);
    }
    let (parent, name) = split(target)?;
    let partial = fresh_partial(parent, name)?;
    if let Err(e) = write_package(&partial, package).and_then(|()| verify(&partial)) {
        let _ = tree::remove_all(&partial);
        return Err(e);
    }
    if publish(&partial, target)? {
        return Ok(Delivered::of(&manifest, expected_manifest_sha256.to_string()));
    }
    // A concurrent call published first.
    verify_received(target, expected_manifest_sha256)
}

/// The package's manifest, once the package is known to be exactly what it lists. Nothing is
/// written; `target` only names things in errors.
fn check_package(target: &Path, package: &Package, expected: &str) -> Result<AirlockManifest, AirlockError> {
    let manifest_path = target.join(MANIFEST);
    let actual = sha256_hex(&package.manifest);
    if actual != expected {
        let reason = format!("the package's manifest has sha256 {actual}, not the expected {expected}");
        return Err(bad_manifest(&manifest_path, reason));
    }
    let manifest = parse_manifest(&package.manifest, &manifest_path)?;
    // Every listed path stays inside `files/` and is listed once, so a carried file, matched
    // to one by exact string, can only be written inside the target.
    listed_paths(&manifest.files, &manifest_path)?;
    let listed: BTreeMap<&str, &ManifestFile> = manifest.files.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut carried = BTreeSet::new();
    for file in &package.files {
        let path = in_files(target, &file.path);
        let Some(entry) = listed.get(file.path.as_str()) else {
            return Err(AirlockError::Corrupt(ArchiveError::UnexpectedFile { path }));
        };
        check_contents(&path, entry, file.bytes.len() as u64, sha256_hex(&file.bytes))?;
        if !carried.insert(file.path.as_str()) {
            return Err(bad_manifest(&manifest_path, format!("the package carries {:?} twice", file.path)));
        }
    }
    if let Some(missing) = manifest.files.iter().find(|f| !carried.contains(f.path.as_str())) {
        return Err(AirlockError::Corrupt(ArchiveError::FileMissing {
            path: in_files(target, &missing.path),
        }));
    }
    Ok(manifest)
}

/// The delivery already at `target`, verified, if it has the expected manifest.
fn verify_received(target: &Path, expected: &str) -> Result<Delivered, AirlockError> {
    let (manifest, sha256) = verify(target)?;
    if sha256 != expected {
        return Err(AirlockError::Occupied { path: target.to_path_buf(), request: manifest.request });
    }
    Ok(Delivered::of(&manifest, sha256))
}

/// Writes a checked package into the fresh directory `partial`, syncing every file and
/// directory before it is published.
fn write_package(partial: &Path, package: &Package) -> Result<(), AirlockError> {
    let files_dir = partial.join(FILES);
    fs::create_dir_all(&files_dir).map_err(|source| AirlockError::Io { path: files_dir.clone(), source })?;
    let mut dirs = vec![partial.to_path_buf(), files_dir.clone()];
    for file in &package.files {
        let path = files_dir.join(&file.path);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|source| AirlockError::Io { path: dir.to_path_buf(), source })?;
            dirs.extend(dir.ancestors().take_while(|d| *d != files_dir).map(Path::to_path_buf));
        }
        write_read_only(&path, &file.bytes)?;
    }
    write_synced(&partial.join(MANIFEST), &package.manifest)?;
    write_synced(&partial.join(REPORT), &package.report)?;
    dirs.sort();
    dirs.dedup();
    // Children sort after their parents: sync deepest first.
    for dir in dirs.iter().rev() {
        tree::sync_dir(dir)?;
    }
    Ok(())
}

/// Like a delivered file: nobody writes it after it arrives.
fn write_read_only(path: &Path, bytes: &[u8]) -> Result<(), AirlockError> {
    let io_err = |source| AirlockError::Io { path: path.to_path_buf(), source };
    let mut file = OpenOptions::new().write(true).create_new(true).open(path).map_err(io_err)?;
    file.write_all(bytes).map_err(io_err)?;
    file.set_permissions(Permissions::from_mode(READ_ONLY)).map_err(io_err)?;
    file.sync_all().map_err(io_err)
}

/// The file's bytes, reading one past `size` at most: a file grown since it was verified
/// shows as a size mismatch rather than filling memory.
fn read_at_most(path: &Path, size: u64) -> Result<Vec<u8>, AirlockError> {
    let file = File::open(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => {
            AirlockError::Corrupt(ArchiveError::FileMissing { path: path.to_path_buf() })
        }
        _ => AirlockError::Io { path: path.to_path_buf(), source },
    })?;
    let mut bytes = Vec::new();
    file.take(size.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| AirlockError::Io { path: path.to_path_buf(), source })?;
    Ok(bytes)
}

/// Where a carried file would land, for errors: `files/` and the path as carried, even an
/// unsafe one (which is never written).
fn in_files(target: &Path, rel: &str) -> PathBuf {
    target.join(format!("{FILES}/{rel}"))
}

fn bad_manifest(path: &Path, reason: String) -> AirlockError {
    AirlockError::Corrupt(ArchiveError::BadManifest { path: path.to_path_buf(), reason })
}
