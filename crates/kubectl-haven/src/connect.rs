//! Connecting as kubectl does: `--kubeconfig`, `--context`, `-n`, `--as`, `--as-group`.

use std::path::PathBuf;

use anyhow::Context;
use kube::{
    Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
};

/// The kubectl flags every command accepts.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Connect {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// The namespace (default: the context's namespace).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// User to impersonate for the operation.
    #[arg(long = "as", global = true, value_name = "USER")]
    pub impersonate: Option<String>,
    /// Group to impersonate for the operation; repeat for several groups.
    #[arg(long = "as-group", global = true, value_name = "GROUP")]
    pub impersonate_groups: Vec<String>,
}

/// A client for the chosen cluster and identity, and the namespace commands default to.
#[allow(missing_debug_implementations)] // kube::Client has no Debug
pub struct Session {
    pub client: Client,
    pub namespace: String,
}

impl Connect {
    pub async fn session(&self) -> anyhow::Result<Session> {
        let mut config = self.config().await?;
        if let Some(user) = &self.impersonate {
            config.auth_info.impersonate = Some(user.clone());
        }
        if !self.impersonate_groups.is_empty() {
            if self.impersonate.is_none() {
                let message = "--as-group needs --as: a group is impersonated together with a user";
                return Err(crate::error::UsageError(message.into()).into());
            }
            config.auth_info.impersonate_groups = Some(self.impersonate_groups.clone());
        }
        let namespace = self.namespace.clone().unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config).context("building a client for the cluster")?;
        Ok(Session { client, namespace })
    }

    async fn config(&self) -> anyhow::Result<Config> {
        let options = KubeConfigOptions { context: self.context.clone(), ..KubeConfigOptions::default() };
        match (&self.kubeconfig, &self.context) {
            (Some(path), _) => {
                let kubeconfig = Kubeconfig::read_from(path)
                    .with_context(|| format!("reading kubeconfig {}", path.display()))?;
                Ok(Config::from_custom_kubeconfig(kubeconfig, &options).await?)
            }
            (None, Some(context)) => Config::from_kubeconfig(&options)
                .await
                .with_context(|| format!("loading context {context:?} from the kubeconfig")),
            (None, None) => Config::infer()
                .await
                .context("no cluster configured: set KUBECONFIG, pass --kubeconfig, or run in a cluster"),
        }
    }
}
