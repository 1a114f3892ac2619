//! `kubectl haven`: the kubectl plugin for people using Haven (researchers, output checkers,
//! auditors). Exit codes follow kubectl: 0 ok, 1 error, 2 usage.
#![forbid(unsafe_code)]

mod access;
mod airlock;
mod audit;
mod cli;
mod connect;
mod datasets;
mod error;
#[cfg(test)]
mod fixtures;
mod format;
mod next;
mod permit;
mod status;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(cli::run(cli)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => error::report(&failure),
    }
}
