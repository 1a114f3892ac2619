//! What sealing costs at teardown: a workspace archived as Haven does now (copied and
//! encrypted, then every blob decrypted and hashed against the manifest) against a plain
//! archive of the same files (copied and hashed, synced, then re-read and hashed: what
//! archiving did before archives were sealed), side by side on the same files in one run.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use haven_data::{DataStore, SealKey, archive_workspace};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Archives a workspace of `files` files totalling `mib` MiB `reps` times each way, in a fresh
/// directory under `dir`; one JSON record with the medians and their ratio.
pub fn run(dir: &Path, mib: u64, files: u64, reps: u32) -> anyhow::Result<Value> {
    let root = tempfile::tempdir_in(dir).context("scratch directory")?;
    let store = DataStore::new(root.path());
    let home = store.workspace_home("bench").context("workspace path")?;
    fs::create_dir_all(&home)?;
    let size = (mib << 20) / files.max(1);
    let mut block = vec![0u8; size as usize];
    for i in 0..files {
        // Incompressible and distinct per file, as research outputs are to a cipher.
        for (j, byte) in block.iter_mut().enumerate() {
            *byte = (j as u64).wrapping_mul(2_654_435_761).wrapping_add(i).to_le_bytes()[0] ^ (j >> 8) as u8;
        }
        fs::write(home.join(format!("out-{i}.bin")), &block)?;
    }
    let key = SealKey::archive(&[7u8; 32])?;
    let (mut plain, mut sealed) = (Vec::new(), Vec::new());
    for rep in 0..reps {
        let target = root.path().join(format!("plain-{rep}"));
        let started = Instant::now();
        plain_archive(&home, &target)?;
        plain.push(started.elapsed());

        let permit = format!("p{rep}");
        let started = Instant::now();
        archive_workspace(&store, &permit, "bench", &key)?;
        sealed.push(started.elapsed());
        fs::remove_dir_all(&target)?;
        fs::remove_dir_all(store.permit_archive(&permit)?)?;
    }
    let (plain, sealed) = (median(plain), median(sealed));
    Ok(json!({
        "bench": "seal", "mib": mib, "files": files, "reps": reps,
        "plain_s": plain.as_secs_f64(), "sealed_s": sealed.as_secs_f64(),
        "plain_mib_s": mib as f64 / plain.as_secs_f64(), "sealed_mib_s": mib as f64 / sealed.as_secs_f64(),
        "ratio": sealed.as_secs_f64() / plain.as_secs_f64(),
    }))
}

/// Copy and hash each file, sync it, then read the copy back and compare hashes.
fn plain_archive(source: &Path, target: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(target)?;
    for entry in fs::read_dir(source)? {
        let entry = entry?;
        let copy = target.join(entry.file_name());
        let mut out = File::create(&copy)?;
        let written = hash_through(File::open(entry.path())?, Some(&mut out))?;
        out.sync_all()?;
        anyhow::ensure!(hash_through(File::open(&copy)?, None)? == written, "{} changed", copy.display());
    }
    File::open(target)?.sync_all()?;
    Ok(())
}

fn hash_through(mut from: impl Read, mut to: Option<&mut File>) -> io::Result<Vec<u8>> {
    let (mut hasher, mut buffer) = (Sha256::new(), vec![0u8; 64 << 10]);
    loop {
        let n = from.read(&mut buffer)?;
        if n == 0 {
            return Ok(hasher.finalize().to_vec());
        }
        hasher.update(&buffer[..n]);
        if let Some(to) = to.as_mut() {
            to.write_all(&buffer[..n])?;
        }
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}
