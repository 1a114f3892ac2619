//! `haven`: the Haven operator and its tools.
#![forbid(unsafe_code)]

use std::{io::Write, path::PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};

/// Haven: a Secure Processing Environment operator for Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "haven", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions as YAML.
    Crd {
        /// Write one file per CRD (`<name>.yaml`) into this directory instead (what `make crds` does).
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Crd { out_dir: None } => {
            let yaml = haven_api::crd::to_yaml(&haven_api::crd::all())?;
            std::io::stdout().lock().write_all(yaml.as_bytes())?;
        }
        Command::Crd { out_dir: Some(dir) } => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for crd in haven_api::crd::all() {
                let name = crd.metadata.name.clone().context("generated CRD has no name")?;
                let path = dir.join(format!("{name}.yaml"));
                std::fs::write(&path, haven_api::crd::to_yaml(&[crd])?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
    }
    Ok(())
}
