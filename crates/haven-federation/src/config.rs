//! `haven federation`'s command line.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

/// Runs this site's part in multi-site permits: the data-site agent always (it pulls from every
/// `Site` with an endpoint), and with `--listen` the requesting site's API too.
#[derive(Debug, Clone, clap::Args)]
pub struct FederationArgs {
    /// This site's name, as every multi-site permit and peer knows it (the common name of its
    /// client certificate).
    #[arg(long, env = "HAVEN_SITE")]
    pub site: String,

    /// The data store root (as the operator's `--data-root`).
    #[arg(long, env = "HAVEN_DATA_ROOT")]
    pub data_root: PathBuf,

    /// The namespace holding the credential Secrets named by `Site`s.
    #[arg(long, env = "HAVEN_NAMESPACE", default_value = "haven-system")]
    pub namespace: String,

    /// Serve the requesting site's API here (mutual TLS; data sites dial it).
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    pub listen: Option<SocketAddr>,

    /// This site's server certificate (PEM chain) for `--listen`.
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,

    /// Its private key (PEM).
    #[arg(long)]
    pub tls_key: Option<PathBuf>,

    /// How often the agent pulls from each requesting site, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub pull_interval_ms: u64,

    /// The largest package a data site sends back, in bytes (default 64 MiB).
    #[arg(long, default_value_t = 64 << 20)]
    pub max_package_bytes: u64,
}

impl FederationArgs {
    pub fn pull_interval(&self) -> Duration {
        Duration::from_millis(self.pull_interval_ms.max(100))
    }
}
