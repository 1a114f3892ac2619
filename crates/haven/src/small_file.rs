//! Reading a small file a command is given (a spec, a key): a regular file only, and never
//! more than a limit, so a pipe or a link to `/dev/zero` is refused instead of read forever.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, ensure};

/// The bytes of `path`, a regular file of at most `limit` bytes.
pub fn read(path: &Path, limit: u64) -> anyhow::Result<Vec<u8>> {
    let metadata = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    ensure!(
        metadata.is_file(),
        "{}: not a regular file (a directory, device, pipe or socket)",
        path.display()
    );
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(limit + 1).read_to_end(&mut bytes))
        .with_context(|| format!("reading {}", path.display()))?;
    ensure!(bytes.len() as u64 <= limit, "{}: larger than {limit} bytes", path.display());
    Ok(bytes)
}
