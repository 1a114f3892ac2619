//! `haven pseudonymise`: the preparation engine on its own, for custodians and for benchmarks.

use std::{
    io::IsTerminal,
    path::PathBuf,
    sync::atomic::{AtomicU64, Ordering},
};

use anyhow::Context;
use haven_data::prepare::{PreparationSpec, prepare_csv};

use crate::small_file;

/// Minimise and pseudonymise one CSV file as a permit's dataset rules say.
#[derive(Debug, clap::Args)]
pub struct PseudonymiseArgs {
    /// The dataset's rules: YAML shaped like one entry of a DataPermit's `spec.datasets`.
    #[arg(long)]
    spec: PathBuf,
    /// The pseudonymisation key: a file whose bytes are the key (e.g. 32 random bytes).
    #[arg(long)]
    key_file: PathBuf,
    /// Write the JSON report here instead of standard output.
    #[arg(long)]
    report: Option<PathBuf>,
    /// The raw CSV (with a header row).
    input: PathBuf,
    /// Where to write the prepared CSV.
    output: PathBuf,
}

/// A dataset's rules fit in far less; a key is a few dozen bytes.
const MAX_SPEC_BYTES: u64 = 1 << 20;
const MAX_KEY_BYTES: u64 = 4096;

pub fn run(args: PseudonymiseArgs) -> anyhow::Result<()> {
    let spec_text = String::from_utf8(small_file::read(&args.spec, MAX_SPEC_BYTES)?)
        .with_context(|| format!("{} is not UTF-8 text", args.spec.display()))?;
    let spec: PreparationSpec = serde_saphyr::from_str(&spec_text)
        .with_context(|| format!("{} is not a dataset spec", args.spec.display()))?;
    let key = small_file::read(&args.key_file, MAX_KEY_BYTES)?;
    anyhow::ensure!(key.len() >= 16, "{}: a key of at least 16 bytes is required", args.key_file.display());

    // A live row count on a terminal; nothing in pipelines and logs.
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} rows ({per_sec}, {elapsed})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar
    });
    let last = AtomicU64::new(0);
    let progress = |rows: u64| {
        if let Some(bar) = &bar {
            bar.inc(rows.saturating_sub(last.swap(rows, Ordering::Relaxed)));
            bar.set_message(rows.to_string());
        }
    };
    let report = prepare_csv(&spec, &key, &args.input, &args.output, &progress)?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let json = serde_json::to_string_pretty(&report)?;
    match args.report {
        Some(path) => std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?,
        None => crate::output::print(&json)?,
    }
    Ok(())
}
