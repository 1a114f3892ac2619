//! Taking the snapshot. The researcher controls the outbox, including links in it, so every
//! requested file is opened with `openat2(RESOLVE_BENEATH)`: the kernel refuses any path
//! that would resolve outside the outbox, however the links are arranged and even if they
//! change while the snapshot is taken. Links that stay inside (relative ones) are followed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags, openat2};
use rustix::io::Errno;

use super::{
    AirlockError, AirlockManifest, Refusal, SnapshotRequest, fresh_partial, manifest_bytes, plaintext,
    publish, read_manifest, verify_sealed, write_synced,
};
use crate::archive::ArchiveError;
use crate::hashing::{copy_hashing, sha256_hex};
use crate::manifest::{FILES, MANIFEST, ManifestFile};
use crate::names::check_relative_path;
use crate::sealed::{SealKey, SealWriter};
use crate::store::{DataStore, StoreError};
use crate::tree;

/// Where a request's files come from: a directory the operator trusts (it created it) and,
/// inside it, a subdirectory the researcher could have replaced by a link, which therefore
/// must be a real directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotSource {
    trusted: PathBuf,
    subdir: Option<&'static str>,
    /// How errors name it: `outbox`, `import drop zone`.
    area: &'static str,
}

impl SnapshotSource {
    /// The workspace outbox `workspaces/<workspace>/home/outputs/`, for an export.
    pub fn outbox(store: &DataStore, workspace: &str) -> Result<Self, StoreError> {
        Ok(Self { trusted: store.workspace_home(workspace)?, subdir: Some("outputs"), area: "outbox" })
    }

    /// The drop zone `imports/<workspace>/`, for an import (written by data custodians).
    pub fn imports(store: &DataStore, workspace: &str) -> Result<Self, StoreError> {
        Ok(Self { trusted: store.imports(workspace)?, subdir: None, area: "import drop zone" })
    }

    /// Opens the source directory itself; `None` if it is missing or not a real directory.
    fn open(&self) -> Result<Option<File>, AirlockError> {
        let trusted = match File::open(&self.trusted) {
            Ok(dir) => dir,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(AirlockError::Io { path: self.trusted.clone(), source }),
        };
        let Some(subdir) = self.subdir else { return Ok(Some(trusted)) };
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match openat2(&trusted, subdir, flags, Mode::empty(), ResolveFlags::BENEATH) {
            Ok(fd) => Ok(Some(File::from(fd))),
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP | Errno::XDEV) => Ok(None),
            Err(e) => Err(AirlockError::Io { path: self.trusted.join(subdir), source: e.into() }),
        }
    }
}

/// Copies the request's files from `source` into `quarantine`
/// (`quarantine/<namespace>/<request>/`): `files/<path>` for each, sealed with `key` (the
/// permit's quarantine key), and `MANIFEST.json` with the plaintext's sizes and SHA-256s,
/// hashed in the same pass as the copy. Every file is checked before
/// anything is published: one refused file refuses the request, naming the file and the
/// reason. If this request's snapshot already exists it is verified and returned, and the
/// source is not read again; one left by an earlier request of the same name is replaced.
pub fn take_snapshot(
    source: &SnapshotSource,
    request: &SnapshotRequest<'_>,
    quarantine: &Path,
    key: &SealKey,
) -> Result<(AirlockManifest, String), AirlockError> {
    if quarantine.try_exists().map_err(|e| io_at(quarantine, e))? {
        match read_manifest(quarantine) {
            Ok((manifest, _)) if request.owns(&manifest) => return verify_sealed(quarantine, key),
            _ => tree::remove_all(quarantine)?,
        }
    }
    let files = request.files;
    let refuse = |index: usize, reason| AirlockError::Refused { index, path: files[index].clone(), reason };
    let rels = files
        .iter()
        .enumerate()
        .map(|(index, file)| check_relative_path(file).map_err(|e| refuse(index, Refusal::UnsafePath(e))))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(index) = (1..rels.len()).find(|&i| rels[..i].contains(&rels[i])) {
        return Err(refuse(index, Refusal::Duplicate));
    }
    let Some(dir) = source.open()? else {
        return Err(refuse(0, Refusal::NoArea { area: source.area }));
    };
    let opened = rels
        .iter()
        .enumerate()
        .map(|(index, rel)| {
            open_beneath(&dir, Path::new(rel), source.area, request.max_file_size)
                .map_err(|e| e.at(index, files))
        })
        .collect::<Result<Vec<_>, _>>()?;

    let (parent, name) = split(quarantine)?;
    let partial = fresh_partial(parent, name)?;
    let built = match copy_all(&partial, request, &rels, opened, key) {
        Ok(built) => built,
        Err(e) => {
            let _ = tree::remove_all(&partial);
            return Err(e);
        }
    };
    // The copy was hashed as it was written and synced; only a concurrent call's snapshot,
    // published first, needs reading back.
    if publish(&partial, quarantine)? { Ok(built) } else { verify_snapshot(quarantine, request, key) }
}

/// Re-checks the request's snapshot against its manifest, opening every file with `key`,
/// without touching the source.
pub fn verify_snapshot(
    quarantine: &Path,
    request: &SnapshotRequest<'_>,
    key: &SealKey,
) -> Result<(AirlockManifest, String), AirlockError> {
    let (manifest, sha256) = verify_sealed(quarantine, key)?;
    check_owner(quarantine, request, &manifest)?;
    Ok((manifest, sha256))
}

/// Refuses a snapshot taken for another request (of the same name, or moved here).
pub(super) fn check_owner(
    quarantine: &Path,
    request: &SnapshotRequest<'_>,
    manifest: &AirlockManifest,
) -> Result<(), AirlockError> {
    if request.owns(manifest) {
        return Ok(());
    }
    let reason =
        format!("it is the snapshot of {} (uid {}), not of this request", manifest.request, manifest.uid);
    Err(AirlockError::Corrupt(ArchiveError::BadManifest { path: quarantine.join(MANIFEST), reason }))
}

/// Deletes a finished request's snapshot (its retention ran out), and any scratch copy of its
/// plaintext a crash left. Idempotent.
pub fn remove_snapshot(quarantine: &Path) -> Result<(), AirlockError> {
    tree::remove_all(&plaintext::scratch_dir(quarantine)?)?;
    Ok(tree::remove_all(quarantine)?)
}

fn copy_all(
    partial: &Path,
    request: &SnapshotRequest<'_>,
    rels: &[String],
    opened: Vec<File>,
    key: &SealKey,
) -> Result<(AirlockManifest, String), AirlockError> {
    let files_dir = partial.join(FILES);
    fs::create_dir_all(&files_dir).map_err(|e| io_at(&files_dir, e))?;
    let mut manifest = AirlockManifest {
        request: request.request.to_owned(),
        uid: request.uid.to_owned(),
        files: Vec::with_capacity(rels.len()),
    };
    let mut dirs = vec![partial.to_path_buf(), files_dir.clone()];
    for (index, (rel, reader)) in rels.iter().zip(opened).enumerate() {
        let to = files_dir.join(rel);
        if let Some(dir) = to.parent().filter(|dir| *dir != files_dir) {
            fs::create_dir_all(dir).map_err(|e| io_at(dir, e))?;
            dirs.push(dir.to_path_buf());
        }
        let io_err = |e| io_at(&to, e);
        let file = OpenOptions::new().write(true).create_new(true).open(&to).map_err(io_err)?;
        let mut sealer = SealWriter::new(file, key).map_err(io_err)?;
        // One byte past the limit is enough to know a file grew beyond it since it was opened.
        let limited = reader.take(request.max_file_size.saturating_add(1));
        // Hashed as read: the manifest describes the plaintext, which is what checks and
        // reviewers see and what is delivered.
        let (size, sha256) = copy_hashing(limited, &mut sealer).map_err(io_err)?;
        if size > request.max_file_size {
            let reason = Refusal::TooLarge { size, max: request.max_file_size };
            return Err(AirlockError::Refused { index, path: request.files[index].clone(), reason });
        }
        sealer.finish().and_then(|file| file.sync_all()).map_err(io_err)?;
        manifest.files.push(ManifestFile { path: rel.clone(), size, sha256 });
    }
    let manifest_path = partial.join(MANIFEST);
    let bytes = manifest_bytes(&manifest, &manifest_path)?;
    write_synced(&manifest_path, &bytes)?;
    dirs.sort();
    dirs.dedup();
    for dir in dirs.iter().rev() {
        tree::sync_dir(dir)?;
    }
    Ok((manifest, sha256_hex(&bytes)))
}

/// A refusal or an I/O error for one file, before the index is known.
enum OpenError {
    Refused(Refusal),
    Io(io::Error),
}

impl OpenError {
    fn at(self, index: usize, files: &[String]) -> AirlockError {
        match self {
            Self::Refused(reason) => AirlockError::Refused { index, path: files[index].clone(), reason },
            Self::Io(source) => AirlockError::Io { path: PathBuf::from(&files[index]), source },
        }
    }
}

/// Opens `rel` under `dir` without ever resolving outside it, refusing a file larger than
/// `max_size` before a byte is copied (a sparse 10 TB file must not fill the store). `NONBLOCK` so a fifo planted in
/// the outbox cannot hang the open; the type is checked on the opened file, not the path.
fn open_beneath(dir: &File, rel: &Path, area: &'static str, max_size: u64) -> Result<File, OpenError> {
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    let file = match openat2(dir, rel, flags, Mode::empty(), resolve) {
        Ok(fd) => File::from(fd),
        Err(Errno::NOENT | Errno::NOTDIR) => return Err(OpenError::Refused(Refusal::Missing { area })),
        Err(Errno::XDEV | Errno::LOOP) => return Err(OpenError::Refused(Refusal::Escapes { area })),
        Err(Errno::NXIO) => return Err(OpenError::Refused(Refusal::NotAFile { kind: "socket" })),
        Err(Errno::ACCESS | Errno::PERM) => return Err(OpenError::Refused(Refusal::Unreadable)),
        Err(e) => return Err(OpenError::Io(e.into())),
    };
    let meta = file.metadata().map_err(OpenError::Io)?;
    let file_type = meta.file_type();
    if file_type.is_file() && meta.len() > max_size {
        return Err(OpenError::Refused(Refusal::TooLarge { size: meta.len(), max: max_size }));
    }
    if file_type.is_file() {
        return Ok(file);
    }
    let kind = if file_type.is_dir() {
        "directory"
    } else if file_type.is_fifo() {
        "fifo"
    } else if file_type.is_socket() {
        "socket"
    } else {
        "device"
    };
    Err(OpenError::Refused(Refusal::NotAFile { kind }))
}

/// A target directory as its parent and its (UTF-8) name, for [`fresh_partial`].
pub(super) fn split(dir: &Path) -> Result<(&Path, &str), AirlockError> {
    match (dir.parent(), dir.file_name().and_then(|n| n.to_str())) {
        (Some(parent), Some(name)) => Ok((parent, name)),
        _ => Err(io_at(dir, io::Error::new(io::ErrorKind::InvalidInput, "not a directory path"))),
    }
}

fn io_at(path: &Path, source: io::Error) -> AirlockError {
    AirlockError::Io { path: path.to_path_buf(), source }
}
