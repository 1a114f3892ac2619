//! `haven`: the Haven operator and its tools.
#![forbid(unsafe_code)]

use std::{io::Write, path::PathBuf, sync::Arc};

use anyhow::Context;

mod airlock_check;
mod archive_open;
mod output;
mod pseudonymise;
mod small_file;
use clap::{Parser, Subcommand, ValueEnum};
use haven_operator::{
    clock::SystemClock,
    config::{OperatorConfig, VolumeBackend},
};

/// Where `haven crd --out-dir` writes the admission policy, beside the CRDs.
const ADMISSION_POLICY_FILE: &str = "admission-policy.yaml";

/// Haven: a Secure Processing Environment operator for Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "haven", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the operator against the cluster in KUBECONFIG (or in-cluster).
    Run(RunArgs),
    /// Run the access gateway: OIDC login, a check per visit, the proxy to each workspace's IDE.
    Gateway(Box<GatewayCommand>),
    /// Run this site's part in multi-site permits: the data-site agent (pulls tasks, runs them
    /// beside the extracts, releases only what this site's airlock approved) and, with
    /// `--listen`, the requesting site's API.
    Federation(FederationCommand),
    /// Print the CustomResourceDefinitions and the admission policy as YAML.
    Crd {
        /// Write one file per CRD (`<name>.yaml`) into this directory instead (what `make crds` does).
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// Minimise and pseudonymise a CSV file with a dataset's rules, as the operator does.
    Pseudonymise(pseudonymise::PseudonymiseArgs),
    /// Tools for the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Tools for the airlock.
    Airlock {
        #[command(subcommand)]
        command: AirlockCommand,
    },
    /// Tools for workspace archives.
    Archive {
        #[command(subcommand)]
        command: ArchiveCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ArchiveCommand {
    /// Decrypt and restore a workspace archive with the permit's key, checking every file.
    Open(archive_open::OpenArgs),
}

#[derive(Debug, Subcommand)]
enum AirlockCommand {
    /// Run the automated disclosure checks on files, as the airlock does on an export request.
    Check(airlock_check::CheckArgs),
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the hash chain of a data store's audit log; report the first broken link.
    Verify {
        /// The data store root (its `audit/audit.log` is checked), or the log file itself.
        path: PathBuf,
        /// The line the log must still hold, `<seq>:<hash>`, from the ConfigMap
        /// `haven-audit-anchor` the operator keeps: finds a log cut short or rewritten.
        #[arg(long, value_name = "SEQ:HASH")]
        anchor: Option<haven_data::audit::Anchor>,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The data store directory, as the operator sees it.
    #[arg(long, env = "HAVEN_DATA_ROOT")]
    data_root: PathBuf,
    /// How workspace pods mount the data store.
    #[arg(long, value_enum, default_value_t = Backend::HostPath)]
    volume_backend: Backend,
    /// The data store's path on every node (hostPath backend); defaults to --data-root.
    #[arg(long)]
    host_path_root: Option<PathBuf>,
    /// NFS server exporting the data store (nfs backend).
    #[arg(long, required_if_eq("volume_backend", "nfs"))]
    nfs_server: Option<String>,
    /// The export path of the data store on the NFS server (nfs backend).
    #[arg(long, required_if_eq("volume_backend", "nfs"))]
    nfs_export: Option<PathBuf>,
    /// Namespace of the cluster DNS: the only egress every workspace has.
    #[arg(long, default_value = "kube-system")]
    dns_namespace: String,
    /// Namespace of the access gateway: the only ingress to a workspace's IDE.
    #[arg(long, default_value = "haven-gateway")]
    gateway_namespace: String,
    /// The access gateway's TES API port (its `--tes-listen`): the workspaces of multi-site
    /// permits may reach it in the gateway namespace, and nothing else more. Unset: no such rule.
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=65535))]
    gateway_tes_port: Option<i32>,
    /// The ClusterRole (analysistasks with `submit-for`) bound to the gateway's ServiceAccount
    /// in each multi-site workspace's namespace, so it writes tasks there and nowhere else.
    #[arg(long, requires = "gateway_tes_port")]
    gateway_tes_role: Option<String>,
    /// The access gateway's ServiceAccount, in --gateway-namespace.
    #[arg(long, default_value = "haven-gateway")]
    gateway_service_account: String,
    /// Namespace the operator runs in; pseudonymisation keys are kept here.
    #[arg(long, env = "HAVEN_NAMESPACE", default_value = "haven-system")]
    operator_namespace: String,
    /// The ConfigMap, in the operator's namespace, holding the tier profiles (read at start-up;
    /// it must exist). Without this flag the default profiles apply.
    #[arg(long, env = "HAVEN_TIER_CONFIG_MAP")]
    tier_config_map: Option<String>,
    /// The analysis environment's IDE port.
    #[arg(long, default_value_t = 8888)]
    ide_port: i32,
    /// How long a finished airlock request's quarantine snapshot is kept (e.g. `720h`).
    #[arg(long, default_value = "720h", value_parser = parse_std_duration)]
    airlock_retention: std::time::Duration,
    /// A command every airlock file is scanned with, the file's path appended, e.g.
    /// `clamscan --no-summary -d /var/lib/clamav`; a non-zero exit blocks the request.
    #[arg(long)]
    airlock_scanner: Option<String>,
    /// How long the scanner may take per file.
    #[arg(long, default_value = "60s", value_parser = parse_std_duration)]
    airlock_scanner_timeout: std::time::Duration,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_address: std::net::SocketAddr,
    /// Reconcile only while holding the Lease `haven-operator` in the operator namespace, so
    /// several replicas can run; `--leader-election=false` for a single process.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,
    /// How long a leader that stopped renewing keeps the lease before a standby takes over.
    #[arg(long, default_value = "15s", value_parser = parse_std_duration)]
    lease_duration: std::time::Duration,
    /// `json`, `text`, or `auto`: JSON unless standard error is a terminal.
    #[arg(long, value_enum, default_value_t = LogFormat::Auto)]
    log_format: LogFormat,
    /// `error`, `warn`, `info`, `debug` or `trace` (or a filter like `info,haven_operator=debug`).
    #[arg(long, default_value = "info")]
    log_level: String,
}

#[derive(Debug, clap::Args)]
struct GatewayCommand {
    #[command(flatten)]
    gateway: haven_gateway::GatewayArgs,
    /// `json`, `text`, or `auto`: JSON unless standard error is a terminal.
    #[arg(long, value_enum, default_value_t = LogFormat::Auto)]
    log_format: LogFormat,
    /// `error`, `warn`, `info`, `debug` or `trace` (or a filter).
    #[arg(long, default_value = "info")]
    log_level: String,
}

#[derive(Debug, clap::Args)]
struct FederationCommand {
    #[command(flatten)]
    federation: haven_federation::FederationArgs,
    /// `json`, `text`, or `auto`: JSON unless standard error is a terminal.
    #[arg(long, value_enum, default_value_t = LogFormat::Auto)]
    log_format: LogFormat,
    /// `error`, `warn`, `info`, `debug` or `trace` (or a filter).
    #[arg(long, default_value = "info")]
    log_level: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Auto,
    Json,
    Text,
}

/// Name of the Lease the replicas compete for.
const LEASE_NAME: &str = "haven-operator";

/// A duration as the CRDs write them (`720h`, `1h30m`, `5s`).
fn parse_std_duration(text: &str) -> Result<std::time::Duration, String> {
    haven_api::validation::parse_duration(text)
        .and_then(|d| d.to_std().ok())
        .ok_or_else(|| format!("{text:?} is not a duration like 720h, 1h30m or 5s"))
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Backend {
    HostPath,
    Nfs,
}

impl RunArgs {
    fn run_options(&self) -> haven_operator::run::RunOptions {
        let leader_election = self.leader_election.then(|| haven_operator::leader::LeaseSettings {
            name: LEASE_NAME.into(),
            namespace: self.operator_namespace.clone(),
            identity: format!(
                "{}-{}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "haven".into()),
                std::process::id()
            ),
            duration: self.lease_duration,
        });
        haven_operator::run::RunOptions { metrics_address: self.metrics_address, leader_election }
    }

    fn into_config(self) -> OperatorConfig {
        let volume_backend = match self.volume_backend {
            Backend::HostPath => VolumeBackend::HostPath {
                root: self.host_path_root.unwrap_or_else(|| self.data_root.clone()),
            },
            Backend::Nfs => VolumeBackend::Nfs {
                server: self.nfs_server.unwrap_or_default(),
                export: self.nfs_export.unwrap_or_default(),
            },
        };
        OperatorConfig {
            data_root: self.data_root,
            volume_backend,
            dns_namespace: self.dns_namespace,
            gateway_namespace: self.gateway_namespace,
            gateway_tes_port: self.gateway_tes_port,
            gateway_tes_role: self.gateway_tes_role,
            gateway_service_account: self.gateway_service_account,
            operator_namespace: self.operator_namespace,
            ide_port: self.ide_port,
            airlock_retention: self.airlock_retention,
            airlock_scanner: self.airlock_scanner.as_deref().and_then(|command| {
                haven_data::airlock::Scanner::from_command_line(command, self.airlock_scanner_timeout)
            }),
            tier_config_map: self.tier_config_map,
            tiers: haven_api::tier::TierProfiles::default(),
            data_store_group: None,
        }
    }
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(args) => run(args),
        Command::Gateway(args) => gateway(*args),
        Command::Federation(args) => federation(args),
        Command::Pseudonymise(args) => pseudonymise::run(args),
        Command::Crd { out_dir: None } => {
            let yaml = haven_api::crd::to_yaml(&haven_api::crd::all())?;
            let policies = haven_api::admission::to_yaml()?;
            std::io::stdout().lock().write_all(format!("{yaml}{policies}").as_bytes())?;
            Ok(())
        }
        Command::Crd { out_dir: Some(dir) } => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for crd in haven_api::crd::all() {
                let name = crd.metadata.name.clone().context("generated CRD has no name")?;
                let path = dir.join(format!("{name}.yaml"));
                std::fs::write(&path, haven_api::crd::to_yaml(&[crd])?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            let path = dir.join(ADMISSION_POLICY_FILE);
            std::fs::write(&path, haven_api::admission::to_yaml()?)
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(())
        }
        Command::Audit { command: AuditCommand::Verify { path, anchor } } => {
            let log = if path.is_dir() { haven_data::DataStore::new(path).audit_log() } else { path };
            let (report, against) = match &anchor {
                Some(anchor) => (
                    haven_data::audit::verify_against(&log, anchor)?,
                    format!(", holds anchored line {}", anchor.seq),
                ),
                None => (haven_data::audit::verify(&log)?, ", not checked against an anchor".to_owned()),
            };
            output::print(&format!(
                "{}: {} records, chain intact (head {}){against}",
                log.display(),
                report.records,
                report.head
            ))
        }
        Command::Airlock { command: AirlockCommand::Check(args) } => {
            if airlock_check::run(args)? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Archive { command: ArchiveCommand::Open(args) } => archive_open::run(args),
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    init_logging(args.log_format, &args.log_level)?;
    let options = args.run_options();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let client = kube::Client::try_default().await.context("connecting to the cluster")?;
        haven_operator::run::run(client, args.into_config(), Arc::new(SystemClock), options).await?;
        Ok(())
    })
}

fn gateway(args: GatewayCommand) -> anyhow::Result<()> {
    init_logging(args.log_format, &args.log_level)?;
    tokio::runtime::Runtime::new()?.block_on(haven_gateway::run(args.gateway))
}

fn federation(args: FederationCommand) -> anyhow::Result<()> {
    init_logging(args.log_format, &args.log_level)?;
    tokio::runtime::Runtime::new()?.block_on(haven_federation::run(args.federation))
}

/// JSON lines where logs are collected (in a pod, into a file); plain text on a terminal.
/// `RUST_LOG`, when set, overrides `--log-level`.
fn init_logging(format: LogFormat, level: &str) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(format!("{level},kube=warn")))
        .with_context(|| format!("--log-level {level:?} is not a level or filter"))?;
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().flatten_event(true).with_current_span(false).init();
    } else {
        builder.init();
    }
    Ok(())
}
