//! `haven-bench`: the measuring half of `make bench` (bench/scale.sh starts the cluster and
//! the operator). Each command prints one JSON line; `summarize` turns a run's lines into the
//! tables of BENCHMARKS.md.
#![forbid(unsafe_code)]

mod floor;
mod idle;
mod objects;
mod permits;
mod process;
mod prom;
mod provision;
mod seal;
mod stats;
mod summary;
mod teardown;
mod watch;

use std::{path::PathBuf, time::Duration};

use clap::{Parser, Subcommand, ValueEnum};
use kube::Client;

#[derive(Debug, Parser)]
#[command(name = "haven-bench", about = "Scale benchmarks of the Haven operator (make bench)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Archives a workspace of MIB MiB in FILES files sealed (as teardown does) and plain (as it
    /// did before archives were encrypted), REPS times each, under DIR (put it on the data
    /// store's disk); no cluster needed.
    Seal {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 512)]
        mib: u64,
        #[arg(long, default_value_t = 64)]
        files: u64,
        #[arg(long, default_value_t = 5)]
        reps: u32,
    },
    /// Creates permits bench-p-0..COUNT-1 (those missing) and waits until all are Active
    /// (the operator must run); writes the raw source they prepare from under DATA_ROOT.
    Permits {
        #[arg(long)]
        count: usize,
        #[arg(long)]
        data_root: PathBuf,
        #[arg(long, default_value = "600s", value_parser = seconds)]
        timeout: Duration,
    },
    /// Creates COUNT workspaces at once (workspace i under permit bench-p-i) and times each
    /// until Ready (operator) or until its environment pod Runs (floor: this process applies
    /// the operator's own builders' objects in the operator's order, no operator running).
    Provision {
        #[arg(long, value_enum)]
        mode: Mode,
        #[arg(long)]
        count: usize,
        /// Names the workspaces `<run>-<i>` and labels them, for `clean`.
        #[arg(long)]
        run: String,
        #[arg(long, default_value_t = 1)]
        rep: u32,
        /// The operator's data root (the floor builds the same hostPath volumes).
        #[arg(long)]
        data_root: PathBuf,
        /// The operator's pid: its peak RSS and CPU time are read from /proc.
        #[arg(long)]
        operator_pid: Option<u32>,
        /// The operator's metrics address (host:port), for its reconcile counts.
        #[arg(long)]
        metrics: Option<String>,
        #[arg(long, default_value = "900s", value_parser = seconds)]
        timeout: Duration,
    },
    /// Waits until the operator serves metrics, has reconciled at least PERMITS permits and
    /// has run no reconcile for QUIET.
    Settle {
        #[arg(long)]
        metrics: String,
        #[arg(long, default_value_t = 0)]
        permits: u64,
        #[arg(long, default_value = "2s", value_parser = seconds)]
        quiet: Duration,
        #[arg(long, default_value = "300s", value_parser = seconds)]
        timeout: Duration,
    },
    /// Counts write requests to the API server over a window with nothing changing, from
    /// kube-apiserver's `apiserver_request_total`, and the operator's reconciles.
    Idle {
        #[arg(long)]
        metrics: String,
        /// Workspaces present (reported, not created).
        #[arg(long)]
        count: usize,
        #[arg(long, default_value = "60s", value_parser = seconds)]
        window: Duration,
    },
    /// COUNT workspaces expiring one after another over SPREAD, the first LEAD after creation;
    /// times from each expiry to access removed and to namespace deletion started.
    Teardown {
        #[arg(long)]
        count: usize,
        #[arg(long)]
        run: String,
        #[arg(long, default_value = "60s", value_parser = seconds)]
        spread: Duration,
        #[arg(long, default_value = "45s", value_parser = seconds)]
        lead: Duration,
        #[arg(long)]
        metrics: Option<String>,
    },
    /// Prints the tables for BENCHMARKS.md from a run's JSON lines (medians over repetitions).
    Summarize { results: PathBuf },
}

/// Who provisions the workspaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// The operator, running beside this process.
    Operator,
    /// This process, applying the same children with no operator: the raw floor.
    Floor,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Operator => "operator",
            Mode::Floor => "floor",
        }
    }
}

/// `90s`, `2m`, `1.5s` or a bare number of seconds.
fn seconds(text: &str) -> Result<Duration, String> {
    let (number, scale) = match text.strip_suffix("ms") {
        Some(n) => (n, 0.001),
        None => match text.strip_suffix('m') {
            Some(n) => (n, 60.0),
            None => (text.strip_suffix('s').unwrap_or(text), 1.0),
        },
    };
    number
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .map(|n| Duration::from_secs_f64(n * scale))
        .ok_or_else(|| format!("{text:?} is not a duration like 90s, 2m or 500ms"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let record = match Cli::parse().command {
        Command::Seal { dir, mib, files, reps } => seal::run(&dir, mib, files, reps)?,
        Command::Summarize { results } => {
            print!("{}", summary::render(&std::fs::read_to_string(&results)?)?);
            return Ok(());
        }
        Command::Settle { metrics, permits, quiet, timeout } => {
            prom::settle(&metrics, permits, quiet, timeout).await?
        }
        Command::Permits { count, data_root, timeout } => {
            permits::ensure(Client::try_default().await?, count, &data_root, timeout).await?
        }
        Command::Provision { mode, count, run, rep, data_root, operator_pid, metrics, timeout } => {
            let target = provision::Target { mode, count, run, rep, data_root };
            let client = Client::try_default().await?;
            provision::run(client, target, operator_pid, metrics.as_deref(), timeout).await?
        }
        Command::Idle { metrics, count, window } => {
            idle::run(Client::try_default().await?, &metrics, count, window).await?
        }
        Command::Teardown { count, run, spread, lead, metrics } => {
            let client = Client::try_default().await?;
            teardown::run(client, count, &run, spread, lead, metrics.as_deref()).await?
        }
    };
    println!("{record}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_the_script_writes_them() {
        assert_eq!(seconds("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(seconds("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(seconds("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(seconds("7"), Ok(Duration::from_secs(7)));
        assert!(seconds("soon").is_err());
    }
}
