//! Helpers for the federation tier: three Haven sites side by side, each its own control plane
//! with its own CA and data store, joined by Site objects (`e2e/run-federation.sh` brings them
//! up and writes `.fed-hub/federation.env`). A [`Site`] gives a client and `kubectl` for its
//! cluster and starts its processes, `haven run` and `haven federation` ([`Process`]).
#![forbid(unsafe_code)]

mod process;
pub mod scenario;

pub use haven_e2e::{DEADLINE, TEST_MANAGER, eventually, unique_name, within};
pub use process::{Kind, Process};

use std::{
    path::{Path, PathBuf},
    process::Output,
};

use anyhow::{Context, Result, bail};
use kube::{
    Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
};
use serde_json::Value;

/// One Haven site of the tier, as run-federation.sh describes it in `HAVEN_FED_<SITE>_*`.
#[derive(Debug, Clone)]
pub struct Site {
    /// The site's name: its Site object's name at its peers, its certificates' common name.
    pub name: String,
    /// The admin kubeconfig of the site's cluster.
    pub kubeconfig: PathBuf,
    /// The site's data store (`raw/survey/2025.csv` holds its own survey).
    pub data_root: PathBuf,
    /// The site's cluster CA, which issued its federation certificates.
    pub ca: PathBuf,
    /// The client certificate and key this site presents to the hub (Secret `federation-hub`).
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// The requesting-site API this site serves (the hub's), if it serves one.
    pub listener: Option<Listener>,
}

/// Where a requesting site's federation API listens, and its server certificate.
#[derive(Debug, Clone)]
pub struct Listener {
    pub port: u16,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Listener {
    /// `127.0.0.1:<port>`, as `haven federation --listen` takes it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `https://127.0.0.1:<port>`, the `spec.endpoint` of the Site `hub` at every site.
    pub fn endpoint(&self) -> String {
        format!("https://{}", self.address())
    }
}

impl Site {
    /// The requesting site, which holds data too.
    pub fn hub() -> Result<Self> {
        Self::named("hub")
    }

    /// A data site with a real node.
    pub fn north() -> Result<Self> {
        Self::named("north")
    }

    /// A data site with kwok's fake node only (pods are scheduled and "run", nothing executes).
    pub fn south() -> Result<Self> {
        Self::named("south")
    }

    /// Every site of the tier (`HAVEN_FED_SITES`), the hub first.
    pub fn all() -> Result<Vec<Self>> {
        env("HAVEN_FED_SITES")?.split_whitespace().map(Self::named).collect()
    }

    /// The site `name` from `HAVEN_FED_<NAME>_*`.
    pub fn named(name: &str) -> Result<Self> {
        let var = |what: &str| env(&format!("HAVEN_FED_{}_{what}", name.to_uppercase()));
        let path = |what: &str| var(what).map(PathBuf::from);
        let listener = match std::env::var(format!("HAVEN_FED_{}_PORT", name.to_uppercase())) {
            Ok(port) => Some(Listener {
                port: port.parse().with_context(|| format!("the {name} listener's port {port:?}"))?,
                cert: path("CERT")?,
                key: path("KEY")?,
            }),
            Err(_) => None,
        };
        Ok(Self {
            name: name.to_owned(),
            kubeconfig: path("KUBECONFIG")?,
            data_root: path("DATA")?,
            ca: path("CA")?,
            client_cert: path("CLIENT_CERT")?,
            client_key: path("CLIENT_KEY")?,
            listener,
        })
    }

    /// The site's state directory (`.fed-<name>`): its cluster's, and its processes' logs.
    pub fn state_dir(&self) -> &Path {
        self.data_root.parent().unwrap_or(&self.data_root)
    }

    /// The site's raw survey (`respondent_id,region,answer`), which never leaves it.
    pub fn raw_survey(&self) -> PathBuf {
        self.data_root.join("raw/survey/2025.csv")
    }

    /// Rows of the raw survey (without its header).
    pub fn survey_rows(&self) -> Result<u64> {
        let text = std::fs::read_to_string(self.raw_survey())?;
        Ok(text.lines().skip(1).filter(|line| !line.is_empty()).count().try_into()?)
    }

    /// An admin client for the site's cluster.
    pub async fn client(&self) -> Result<Client> {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig)
            .with_context(|| format!("reading {}", self.kubeconfig.display()))?;
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        Ok(Client::try_from(config)?)
    }

    /// `kubectl ARGS` against the site's cluster.
    pub fn kubectl(&self, args: &[&str]) -> Result<Output> {
        self.kubectl_command(args).output().context("running kubectl (is it on PATH?)")
    }

    /// `kubectl ARGS` that must succeed; returns its standard output.
    pub fn kubectl_ok(&self, args: &[&str]) -> Result<String> {
        succeeded(self, args, self.kubectl(args)?)
    }

    /// `kubectl ARGS` with `input` on its standard input (`apply -f -`); must succeed.
    pub fn kubectl_with_input(&self, args: &[&str], input: &str) -> Result<String> {
        use std::io::Write;
        let mut child = self
            .kubectl_command(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .context("running kubectl (is it on PATH?)")?;
        child.stdin.take().context("kubectl's standard input")?.write_all(input.as_bytes())?;
        succeeded(self, args, child.wait_with_output()?)
    }

    /// Applies `document` as the site's admin.
    pub fn apply(&self, document: &Value) -> Result<()> {
        self.kubectl_with_input(&["apply", "-f", "-"], &document.to_string()).map(drop)
    }

    /// Applies `document` as `user` (RBAC out of the way with `system:masters`, but the
    /// admission policies see `user`: an AnalysisTask's `requestedBy` must be its creator).
    pub fn apply_as(&self, user: &str, document: &Value) -> Result<()> {
        let as_user = format!("--as={user}");
        let args = ["apply", "-f", "-", &as_user, "--as-group=system:masters"];
        self.kubectl_with_input(&args, &document.to_string()).map(drop)
    }

    /// Whether the site has a real node (`haven-node`), so its pods really run.
    pub fn has_real_node(&self) -> Result<bool> {
        let nodes = self.kubectl_ok(&["get", "nodes", "-l", "haven.io/real-node=true", "-o", "name"])?;
        Ok(!nodes.trim().is_empty())
    }

    /// Starts the site's operator, `haven run`, over its data store.
    pub fn operator(&self) -> Result<Process> {
        Process::start(self, Kind::Operator, &[])
    }

    /// [`Site::operator`] with more `haven run` flags (a flag given here replaces its default).
    pub fn operator_with(&self, flags: &[&str]) -> Result<Process> {
        Process::start(self, Kind::Operator, flags)
    }

    /// Starts the site's `haven federation`: the data-site agent, and on a site with a
    /// [`Listener`] (the hub) the requesting-site API too.
    pub fn federation(&self) -> Result<Process> {
        Process::start(self, Kind::Federation, &[])
    }

    /// [`Site::federation`] with more flags (e.g. `--pull-interval-ms=200`).
    pub fn federation_with(&self, flags: &[&str]) -> Result<Process> {
        Process::start(self, Kind::Federation, flags)
    }

    fn kubectl_command(&self, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new("kubectl");
        command.args(args).env("KUBECONFIG", &self.kubeconfig);
        command
    }
}

/// The test environment image (`haven-testenv`, with the `count` and `copy` tasks), as the
/// real nodes imported it.
pub fn testenv_image() -> String {
    std::env::var("HAVEN_TESTENV_IMAGE")
        .unwrap_or_else(|_| format!("haven.local/testenv:{}", env!("CARGO_PKG_VERSION")))
}

fn env(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set: run the tier with e2e/run-federation.sh"))
}

fn succeeded(site: &Site, args: &[&str], output: Output) -> Result<String> {
    if !output.status.success() {
        bail!("kubectl {} at {}: {}", args.join(" "), site.name, String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8(output.stdout)?)
}
