//! What `prepare_csv` checks before it reads or writes anything, so a custodian's raw data is
//! never what gets overwritten or removed: the input must be a regular file (a pipe would
//! block the second pass, a link to a device would never end), the output must not be the
//! input (same device and inode, hard links included) nor anything but a regular file, and
//! the extract is written to a file of the tool's own beside the output, renamed into place
//! only when whole. Nothing else is ever unlinked.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::error::PrepareError;

/// The longest line a source may have. A CSV record is held in memory whole (several times
/// its size while it is transformed), so one endless line would exhaust memory.
pub const MAX_LINE_BYTES: u64 = 32 << 20;

fn refuse(kind: io::ErrorKind, message: &str) -> io::Error {
    io::Error::new(kind, message.to_owned())
}

/// Refuses an input that is not a regular file, and an output that is the input or exists as
/// anything but a regular file.
pub(crate) fn check_paths(dataset: &str, input: &Path, output: &Path) -> Result<(), PrepareError> {
    let read_error =
        |source| PrepareError::ReadInput { dataset: dataset.to_owned(), path: input.to_path_buf(), source };
    let write_error = |source| PrepareError::WriteOutput {
        dataset: dataset.to_owned(),
        path: output.to_path_buf(),
        source,
    };
    let source = fs::metadata(input).map_err(read_error)?;
    if !source.is_file() {
        return Err(read_error(refuse(
            io::ErrorKind::InvalidInput,
            "not a regular file (a directory, device, pipe or socket); give the source as a file",
        )));
    }
    match fs::symlink_metadata(output) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(write_error(e)),
        Ok(existing) if !existing.is_file() => Err(write_error(refuse(
            io::ErrorKind::InvalidInput,
            "exists and is not a regular file (a link, device, pipe or directory); it is left as it is",
        ))),
        Ok(existing) if (existing.dev(), existing.ino()) == (source.dev(), source.ino()) => {
            Err(write_error(refuse(
                io::ErrorKind::InvalidInput,
                "is the source itself (the same file, perhaps by another name): writing it would destroy the source",
            )))
        }
        Ok(_) => Ok(()),
    }
}
