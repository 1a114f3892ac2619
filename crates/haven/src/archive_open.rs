//! `haven archive open`: restores a sealed workspace archive, checking every byte, for an
//! auditor or a restore. It needs the permit's key, so after destruction nobody can.

use std::path::PathBuf;

use haven_data::{DataStore, SealKey, open_archive};

/// Where the archive is, the permit's key, and where to restore it (`MANIFEST.json`, `files/`).
#[derive(Debug, clap::Args)]
pub struct OpenArgs {
    /// The data store root holding `archive/<permit>/<workspace>/`.
    #[arg(long, env = "HAVEN_DATA_ROOT")]
    data_root: PathBuf,
    /// The DataPermit the workspace belonged to.
    #[arg(long)]
    permit: String,
    /// The archived Workspace.
    #[arg(long)]
    workspace: String,
    /// The permit's key, raw: `kubectl get secret -n haven-system haven-key-<permit>
    /// -o jsonpath='{.data.key}' | base64 -d > key`.
    #[arg(long)]
    key_file: PathBuf,
    /// Directory to restore into; must not exist yet. The restore is written beside it and
    /// renamed into place once every byte checked out.
    #[arg(long)]
    out: PathBuf,
}

/// A permit key is 32 bytes; anything much larger is the wrong file.
const MAX_KEY_FILE: u64 = 4096;

pub fn run(args: OpenArgs) -> anyhow::Result<()> {
    let permit_key = crate::small_file::read(&args.key_file, MAX_KEY_FILE)?;
    let key = SealKey::archive(&permit_key)?;
    let store = DataStore::new(&args.data_root);
    let record = open_archive(&store, &args.permit, &args.workspace, &key, &args.out)?;
    println!(
        "{}: {} files, {} bytes restored into {} (manifest sha256 {})",
        record.path,
        record.files,
        record.bytes,
        args.out.display(),
        record.manifest_sha256
    );
    Ok(())
}
