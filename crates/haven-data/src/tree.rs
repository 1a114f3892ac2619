//! Walking a directory tree without following symlinks. A researcher controls what is in a
//! workspace, including links to other projects' data, so the walk reports links as links
//! and never descends through them.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// One non-directory entry found under the walked root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Path relative to the walked root.
    pub rel: PathBuf,
    pub kind: EntryKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryKind {
    /// A regular file; `dev`/`ino` let a reader check it opened the same file it listed.
    File {
        size: u64,
        dev: u64,
        ino: u64,
    },
    Symlink,
    /// A fifo, socket or device: holds no data worth keeping.
    Special(&'static str),
}

/// An I/O failure and the path it happened at.
#[derive(Debug)]
pub(crate) struct WalkError {
    pub path: PathBuf,
    pub source: io::Error,
}

fn at(path: &Path) -> impl FnOnce(io::Error) -> WalkError + '_ {
    move |source| WalkError { path: path.to_path_buf(), source }
}

/// Every non-directory entry under `root`, depth first, siblings in name order. Directories
/// are descended into only when they are real directories, never through a symlink. A
/// missing `root` is an empty tree.
pub(crate) fn walk(root: &Path) -> Result<Vec<Entry>, WalkError> {
    let mut entries = Vec::new();
    // An explicit stack rather than recursion: a hostile tree may be very deep.
    let mut pending = vec![PathBuf::new()];
    while let Some(rel_dir) = pending.pop() {
        let dir = root.join(&rel_dir);
        let listing = match fs::read_dir(&dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && rel_dir.as_os_str().is_empty() => {
                return Ok(entries);
            }
            other => other.map_err(at(&dir))?,
        };
        let mut names =
            listing.map(|e| e.map(|e| e.file_name())).collect::<Result<Vec<_>, _>>().map_err(at(&dir))?;
        names.sort();
        let mut subdirs = Vec::new();
        for name in names {
            let rel = rel_dir.join(&name);
            let path = root.join(&rel);
            let meta = fs::symlink_metadata(&path).map_err(at(&path))?;
            let file_type = meta.file_type();
            let kind = if file_type.is_dir() {
                subdirs.push(rel);
                continue;
            } else if file_type.is_file() {
                EntryKind::File { size: meta.len(), dev: meta.dev(), ino: meta.ino() }
            } else if file_type.is_symlink() {
                EntryKind::Symlink
            } else if file_type.is_fifo() {
                EntryKind::Special("fifo")
            } else if file_type.is_socket() {
                EntryKind::Special("socket")
            } else {
                EntryKind::Special("device")
            };
            entries.push(Entry { rel, kind });
        }
        // Reversed so the stack pops them in name order.
        pending.extend(subdirs.into_iter().rev());
    }
    Ok(entries)
}

/// Regular files and their total bytes under `root`; symlinks and special files are not
/// counted (they hold no data of their own). A missing `root` counts as zero.
pub(crate) fn count(root: &Path) -> Result<(u64, u64), WalkError> {
    Ok(walk(root)?.iter().fold((0, 0), |(files, bytes), entry| match entry.kind {
        EntryKind::File { size, .. } => (files + 1, bytes + size),
        _ => (files, bytes),
    }))
}

/// Removes `path` and everything under it without following symlinks; a missing path is
/// already removed.
pub(crate) fn remove_all(path: &Path) -> Result<(), WalkError> {
    let result = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
    };
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other.map_err(|source| WalkError { path: path.to_path_buf(), source }),
    }
}

/// Flushes a directory's entries to disk, so a rename or creation inside it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), WalkError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| WalkError { path: dir.to_path_buf(), source })
}

/// A new name of the caller's own beside `path` (`.<name>.partial-<pid>-<n>`), to write into
/// and rename over `path` once whole, so `path` never holds half of something.
pub(crate) fn partial_sibling(path: &Path) -> PathBuf {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = path.file_name().map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    path.with_file_name(format!(".{name}.partial-{}-{seq}", std::process::id()))
}
