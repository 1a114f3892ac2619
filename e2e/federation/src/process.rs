//! A site's processes, `haven run` and `haven federation`, as root processes on the host with
//! the site's admin kubeconfig. Each logs to `<state>/<site>-<kind>.log` (appended, a line per
//! start, so a crash test's log shows each life) and records its pid in `<state>/<site>-<kind>.pid`
//! for run-federation.sh to stop if the test binary dies first. Killed when dropped.

use std::{
    ffi::OsString,
    path::PathBuf,
    process::{Child, Command},
    sync::OnceLock,
};

use anyhow::{Context, Result, bail};

use crate::Site;

/// Which of a site's processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `haven run`: the site's operator (permits, workspaces, airlock).
    Operator,
    /// `haven federation`: the data-site agent, and the requesting-site API with a listener.
    Federation,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Federation => "federation",
        }
    }

    /// Its `haven` subcommand.
    fn subcommand(self) -> &'static str {
        match self {
            Self::Operator => "run",
            Self::Federation => "federation",
        }
    }
}

/// A running `haven run` or `haven federation` of one site.
#[derive(Debug)]
pub struct Process {
    site: String,
    kind: Kind,
    command: Vec<OsString>,
    kubeconfig: PathBuf,
    log: PathBuf,
    pid_file: PathBuf,
    child: Option<Child>,
}

impl Process {
    pub(crate) fn start(site: &Site, kind: Kind, flags: &[&str]) -> Result<Self> {
        if kind == Kind::Federation {
            federation_available()?;
        }
        let mut command: Vec<OsString> = vec![haven_bin()?.into(), kind.subcommand().into()];
        command.extend(["--data-root".into(), site.data_root.clone().into_os_string()]);
        command.extend(flags.iter().map(OsString::from));
        command.extend(default_flags(site, kind, flags).into_iter().map(OsString::from));
        let base = site.state_dir().join(format!("{}-{}", site.name, kind.as_str()));
        let mut process = Self {
            site: site.name.clone(),
            kind,
            command,
            kubeconfig: site.kubeconfig.clone(),
            log: base.with_extension("log"),
            pid_file: base.with_extension("pid"),
            child: None,
        };
        process.spawn()?;
        Ok(process)
    }

    /// The process's log file.
    pub fn log(&self) -> &std::path::Path {
        &self.log
    }

    /// The last `lines` lines of its log (for a failing test's message).
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether it is still running (it has not exited on its own, nor been killed).
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// SIGKILL, as a crash would; waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(&self.pid_file);
        }
    }

    /// Kills it (SIGKILL) and starts it again with the same command line.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.spawn()
    }

    fn spawn(&mut self) -> Result<()> {
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let (program, args) = self.command.split_first().context("an empty command")?;
        let child = Command::new(program)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env(
                "RUST_LOG",
                std::env::var("HAVEN_E2E_OPERATOR_LOG").unwrap_or_else(|_| "info,kube=warn".into()),
            )
            // The command line says everything: nothing of the test's environment leaks in.
            .env_remove("HAVEN_DATA_ROOT")
            .env_remove("HAVEN_NAMESPACE")
            .env_remove("HAVEN_SITE")
            .env_remove("HAVEN_TIER_CONFIG_MAP")
            .stdout(log.try_clone()?)
            .stderr(log.try_clone()?)
            .spawn()
            .with_context(|| format!("starting {} {} ({:?})", self.site, self.kind.as_str(), self.command))?;
        let started = format!(
            "---- {} {} started, pid {}, {} ----\n",
            self.site,
            self.kind.as_str(),
            child.id(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        );
        std::io::Write::write_all(&mut log, started.as_bytes())?;
        std::fs::write(&self.pid_file, child.id().to_string())?;
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `$HAVEN_BIN`, built by run-federation.sh.
fn haven_bin() -> Result<String> {
    std::env::var("HAVEN_BIN").context("HAVEN_BIN is not set: run the tier with e2e/run-federation.sh")
}

/// The flags each process gets unless the test gave them: one operator per site without a
/// lease, each on a port of its own; the hub's listener for `haven federation` at a site that
/// has one.
fn default_flags(site: &Site, kind: Kind, flags: &[&str]) -> Vec<String> {
    let given = |name: &str| flags.iter().any(|flag| flag.split('=').next() == Some(name));
    let mut defaults = vec![];
    match kind {
        Kind::Operator => {
            if !given("--tier-config-map") {
                defaults.push(format!("--tier-config-map={TIER_CONFIG_MAP}"));
            }
            if !given("--leader-election") {
                defaults.push("--leader-election=false".into());
            }
            if !given("--metrics-address") {
                defaults.push("--metrics-address=127.0.0.1:0".into());
            }
        }
        Kind::Federation => {
            if !given("--site") {
                defaults.extend(["--site".into(), site.name.clone()]);
            }
            if let Some(listener) = site.listener.as_ref().filter(|_| !given("--listen")) {
                defaults.extend(["--listen".into(), listener.address()]);
                defaults.extend(["--tls-cert".into(), listener.cert.display().to_string()]);
                defaults.extend(["--tls-key".into(), listener.key.display().to_string()]);
            }
        }
    }
    defaults
}

/// The tier ConfigMap each site has (federation-site.sh: the chart's, as release `haven`).
const TIER_CONFIG_MAP: &str = "haven-tiers";

/// `haven federation` may not be in every build yet: only a test that starts it needs it.
fn federation_available() -> Result<()> {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let checked = CHECKED.get_or_init(|| {
        let binary = haven_bin().map_err(|error| error.to_string())?;
        match Command::new(&binary).args(["federation", "--help"]).output() {
            Ok(output) if output.status.success() => Ok(()),
            Ok(output) => Err(format!(
                "{binary} has no `federation` subcommand: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )),
            Err(error) => Err(format!("running {binary}: {error}")),
        }
    });
    match checked {
        Ok(()) => Ok(()),
        Err(error) => bail!("{error}"),
    }
}
