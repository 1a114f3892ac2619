//! The command line, kubectl style, and where each command goes.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::{access, airlock, audit, connect::Connect, datasets, format::OutputFormat, permit, status};

/// Haven for people: permits, workspaces and the airlock at a glance; the register of data
/// held; review airlock requests; verify the audit log; who was inside a workspace, and when.
#[derive(Debug, Parser)]
#[command(name = "kubectl-haven", bin_name = "kubectl haven", version)]
pub struct Cli {
    #[command(flatten)]
    pub connect: Connect,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Permits and workspaces at a glance: phase, time left, and what happens next.
    Status(OutputArgs),
    /// Airlock requests: list, show the check report, review, cancel.
    Airlock {
        #[command(subcommand)]
        command: AirlockCommand,
    },
    /// The register of data held: each raw source, its custodian, the permits that use it,
    /// when it was prepared and until when it is needed.
    Datasets(OutputArgs),
    /// Data permits.
    Permit {
        #[command(subcommand)]
        command: PermitCommand,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Who was inside a workspace, when and for how long: the gateway's access log, read only
    /// once its hash chain verifies.
    Access(AccessArgs),
}

#[derive(Debug, Args)]
pub struct AccessArgs {
    /// The workspace; without it, every workspace's visits, with a WORKSPACE column.
    pub workspace: Option<String>,
    /// A data store root (its `audit/access.log` is read), or the access log itself.
    #[arg(long, value_name = "PATH")]
    pub log: PathBuf,
    /// Only this user's visits (and refusals).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Only visits still going at or after this time (and open ones): RFC 3339, or a duration
    /// back from now like 24h, 90m, 7d.
    #[arg(long, value_name = "TIME|DURATION")]
    pub since: Option<access::Since>,
    /// Also list what the gateway refused: the workspace's refused requests; without a
    /// workspace, every refused request and refused login.
    #[arg(long)]
    pub refusals: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Subcommand)]
pub enum AirlockCommand {
    /// List airlock requests with direction, files, phase, checks, approvals and age.
    List {
        /// List requests in every namespace.
        #[arg(short = 'A', long, conflicts_with = "namespace")]
        all_namespaces: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Show a request: the check report per file, the reviews as counted, conditions, delivery.
    Show {
        /// The request's name.
        name: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Approve a request, as the current user (an output checker of its permit).
    Approve(ReviewArgs),
    /// Reject a request, as the current user; --comment is required so the requester knows why.
    Reject(ReviewArgs),
    /// Withdraw a request before a decision (only its requester can).
    Cancel {
        /// The request's name.
        name: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
}

#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// The request's name.
    pub name: String,
    /// Your reasoning, for the requester and the record.
    #[arg(long, short = 'm')]
    pub comment: Option<String>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Clone, Args)]
pub struct WaitArgs {
    /// Wait until the operator has acted on the change: the request reaches a final phase, or
    /// (for a review) it is counted and more reviews are needed.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits, e.g. 60s, 5m.
    #[arg(long, default_value = "60s", value_parser = parse_timeout)]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Subcommand)]
pub enum PermitCommand {
    /// A permit, its datasets' preparation reports, its workspaces and its destruction record.
    Describe {
        /// The DataPermit's name.
        name: String,
        #[command(flatten)]
        output: OutputArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of the audit log; report the first broken link.
    Verify {
        /// A data store root (its `audit/audit.log` is checked), or the log file itself.
        path: PathBuf,
        /// The line the log must still hold, `<seq>:<hash>`, as the operator anchored it
        /// (`kubectl get configmap haven-audit-anchor -n haven-system`).
        #[arg(long, value_name = "SEQ:HASH", conflicts_with = "cluster")]
        anchor: Option<haven_data::audit::Anchor>,
        /// Read the anchor from the cluster: the ConfigMap `haven-audit-anchor` in
        /// `--operator-namespace`.
        #[arg(long)]
        cluster: bool,
        /// The operator's namespace, for `--cluster`.
        #[arg(long, default_value = "haven-system")]
        operator_namespace: String,
    },
}

#[derive(Debug, Clone, Copy, Args)]
pub struct OutputArgs {
    /// Output format: json, yaml, or wide (more columns). Human-readable when absent.
    #[arg(short = 'o', long = "output", value_enum)]
    pub format: Option<OutputFormat>,
}

/// A duration as kubectl and the CRDs write them (`60s`, `5m`, `1h30m`).
fn parse_timeout(text: &str) -> Result<std::time::Duration, String> {
    haven_api::validation::parse_duration(text)
        .and_then(|d| d.to_std().ok())
        .ok_or_else(|| format!("{text:?} is not a duration like 60s, 5m or 1h30m"))
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let Cli { connect, command } = cli;
    match command {
        Command::Status(output) => status::run(&connect, output.format).await,
        Command::Airlock { command } => airlock::run(&connect, command).await,
        Command::Datasets(output) => datasets::run(&connect, output.format).await,
        Command::Permit { command: PermitCommand::Describe { name, output } } => {
            permit::describe(&connect, &name, output.format).await
        }
        Command::Audit { command: AuditCommand::Verify { path, anchor, cluster, operator_namespace } } => {
            let anchor = match (anchor, cluster) {
                (Some(anchor), _) => Some(anchor),
                (None, true) => Some(audit::cluster_anchor(&connect, &operator_namespace).await?),
                (None, false) => None,
            };
            audit::verify(&path, anchor.as_ref())
        }
        Command::Access(args) => access::run(&args),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn namespace_and_all_namespaces_exclude_each_other() {
        let parsed = Cli::try_parse_from(["kubectl-haven", "airlock", "list", "-A", "-n", "ws-a"]);
        assert!(parsed.is_err());
    }

    #[test]
    fn kubectl_flags_are_accepted_after_the_subcommand() -> anyhow::Result<()> {
        let cli = Cli::try_parse_from([
            "kubectl-haven",
            "airlock",
            "approve",
            "req",
            "-n",
            "ws-a",
            "--as",
            "carol",
            "--as-group",
            "g1",
            "--as-group",
            "g2",
            "--context",
            "lab",
            "--kubeconfig",
            "/tmp/k",
            "--wait",
            "--timeout",
            "2m",
        ])?;
        assert_eq!(cli.connect.namespace.as_deref(), Some("ws-a"));
        assert_eq!(cli.connect.impersonate.as_deref(), Some("carol"));
        assert_eq!(cli.connect.impersonate_groups, ["g1", "g2"]);
        assert_eq!(cli.connect.context.as_deref(), Some("lab"));
        let Command::Airlock { command: AirlockCommand::Approve(review) } = cli.command else {
            panic!("parsed as approve");
        };
        assert!(review.wait.wait);
        assert_eq!(review.wait.timeout, std::time::Duration::from_secs(120));
        Ok(())
    }

    #[test]
    fn access_takes_a_workspace_or_none_and_a_since_as_time_or_duration() -> anyhow::Result<()> {
        let cli = Cli::try_parse_from(["kubectl-haven", "access", "--log", "/srv/haven", "--since", "7d"])?;
        let Command::Access(args) = cli.command else { panic!("parsed as access") };
        assert_eq!(args.workspace, None);
        assert_eq!(args.since, Some(access::Since::Ago(chrono::TimeDelta::days(7))));
        let cli = Cli::try_parse_from([
            "kubectl-haven",
            "access",
            "analysis",
            "--log",
            "/srv/haven/audit/access.log",
            "--since",
            "2026-06-01T09:00:00+02:00",
            "--user",
            "alice",
            "--refusals",
            "-o",
            "json",
        ])?;
        let Command::Access(args) = cli.command else { panic!("parsed as access") };
        assert_eq!(args.workspace.as_deref(), Some("analysis"));
        assert_eq!(args.since, Some(access::Since::At("2026-06-01T07:00:00Z".parse()?)));
        assert!(args.refusals && args.output.format == Some(OutputFormat::Json));
        let no_log = Cli::try_parse_from(["kubectl-haven", "access", "analysis"]);
        assert!(no_log.is_err_and(|e| e.exit_code() == 2));
        let bad_since =
            Cli::try_parse_from(["kubectl-haven", "access", "--log", "x", "--since", "yesterday"]);
        assert!(bad_since.is_err_and(|e| e.exit_code() == 2));
        Ok(())
    }

    #[test]
    fn an_unknown_output_format_is_a_usage_error() {
        let parsed = Cli::try_parse_from(["kubectl-haven", "status", "-o", "xml"]);
        assert!(parsed.is_err_and(|e| e.exit_code() == 2));
    }
}
