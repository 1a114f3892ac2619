//! Helpers for Haven's end-to-end tests: a client for the cluster in `KUBECONFIG` (the local
//! control plane that `e2e/run-e2e.sh` starts), the CRDs installed once per test binary,
//! clients that act as another user, unique names, deadlines, and `kubectl`.
#![forbid(unsafe_code)]

pub mod airlock;
pub mod fixtures;
pub mod keys;
pub mod workspace;

use std::{
    future::Future,
    process::Output,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use haven_api::{admission::TIER_CONFIG_MAP, constants::FIELD_MANAGER, tier::TierProfiles};
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    Api, Client, Config,
    api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams},
    runtime::wait::{await_condition, conditions},
};
use tokio::sync::OnceCell;

/// How long a wait for one change (an object's phase, a condition) may take before it fails:
/// seconds on a quiet machine, so two minutes means stuck, not slow. Waits whose work grows
/// with the machine's load (many objects, much data) fail on no progress instead
/// ([`eventually_advancing`], [`eventually_progressing`]).
pub const DEADLINE: Duration = Duration::from_secs(120);

/// The most a wait that is still making progress may take in all ([`eventually_progressing`]).
pub const LONG_DEADLINE: Duration = Duration::from_secs(900);

/// Field manager for objects the tests apply (not the operator's).
pub const TEST_MANAGER: &str = "haven-e2e";

/// An admin client for the cluster in `KUBECONFIG`, with Haven's CRDs installed and established.
pub async fn admin() -> Result<Client> {
    let client = Client::try_from(config().await?)?;
    static CRDS: OnceCell<()> = OnceCell::const_new();
    CRDS.get_or_try_init(|| install_crds(client.clone())).await?;
    Ok(client)
}

/// A client that impersonates `user` in `groups` (like `kubectl --as user --as-group g`), for
/// proving what a user can and cannot do. RBAC applies to the impersonated identity.
pub async fn as_user(user: &str, groups: &[&str]) -> Result<Client> {
    admin().await?; // CRDs first, so permission tests never race their installation
    let mut config = config().await?;
    config.auth_info.impersonate = Some(user.to_owned());
    config.auth_info.impersonate_groups =
        Some(groups.iter().map(|g| (*g).to_owned()).chain(["system:authenticated".to_owned()]).collect());
    Ok(Client::try_from(config)?)
}

async fn config() -> Result<Config> {
    if std::env::var_os("KUBECONFIG").is_none() {
        bail!("KUBECONFIG is not set: run the e2e tests with `make test-e2e` (or `e2e/run-e2e.sh`)");
    }
    Ok(Config::infer().await?)
}

/// Server-side applies the generated CRDs and waits until the API server serves them.
async fn install_crds(client: Client) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for crd in haven_api::crd::all() {
        let name = crd.metadata.name.clone().context("CRD without a name")?;
        crds.patch(&name, &params, &Patch::Apply(&crd))
            .await
            .with_context(|| format!("applying CRD {name}"))?;
        within(DEADLINE, await_condition(crds.clone(), &name, conditions::is_crd_established()))
            .await
            .with_context(|| format!("CRD {name} never became Established"))??;
    }
    install_admission_policy(client.clone()).await
}

/// The namespace test operators run in (their default `--operator-namespace`): the tier
/// ConfigMap and the pseudonymisation keys live there.
pub const OPERATOR_NAMESPACE: &str = "haven-system";

/// The tier ConfigMap the test operators read (`haven run` takes `HAVEN_TIER_CONFIG_MAP` from
/// the environment too): run-e2e.sh names the chart release's, which the chart's RBAC lets the
/// operator read; otherwise Haven's default name.
pub fn tier_config_map() -> String {
    std::env::var("HAVEN_TIER_CONFIG_MAP").unwrap_or_else(|_| TIER_CONFIG_MAP.into())
}

/// Applies the admission policies, with the default tier profiles as the tier policy's
/// parameters, and waits until the API server has type-checked them.
async fn install_admission_policy(client: Client) -> Result<()> {
    ensure_namespace(&client, OPERATOR_NAMESPACE).await?;
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let name = tier_config_map();
    let tiers = ConfigMap {
        metadata: ObjectMeta { name: Some(name.clone()), ..ObjectMeta::default() },
        data: Some(TierProfiles::default().to_config_map()),
        ..ConfigMap::default()
    };
    Api::<ConfigMap>::namespaced(client.clone(), OPERATOR_NAMESPACE)
        .patch(&name, &params, &Patch::Apply(&tiers))
        .await
        .context("applying the tier ConfigMap")?;
    let policies: Api<ValidatingAdmissionPolicy> = Api::all(client.clone());
    for (policy, mut binding) in haven_api::admission::all_policies(OPERATOR_NAMESPACE) {
        if let Some(param_ref) = binding.spec.as_mut().and_then(|s| s.param_ref.as_mut()) {
            param_ref.name = Some(name.clone());
        }
        let name = policy.metadata.name.clone().context("policy without a name")?;
        policies
            .patch(&name, &params, &Patch::Apply(&policy))
            .await
            .context("applying an admission policy")?;
        Api::<ValidatingAdmissionPolicyBinding>::all(client.clone())
            .patch(&name, &params, &Patch::Apply(&binding))
            .await
            .context("applying an admission policy binding")?;
        eventually(DEADLINE, "the admission policy is type-checked", || async {
            let policy = policies.get(&name).await?;
            let status = policy.status.unwrap_or_default();
            let warnings = status.type_checking.and_then(|t| t.expression_warnings).unwrap_or_default();
            anyhow::ensure!(warnings.is_empty(), "admission policy {name} does not type-check: {warnings:?}");
            Ok((status.observed_generation == policy.metadata.generation).then_some(()))
        })
        .await?;
    }
    Ok(())
}

/// A name no other test (or earlier run) uses: `<prefix>-<pid>-<n>`.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Runs `future`, failing with a clear error if it takes longer than `limit`.
pub async fn within<T>(limit: Duration, future: impl Future<Output = T>) -> Result<T> {
    tokio::time::timeout(limit, future).await.with_context(|| format!("timed out after {limit:?}"))
}

/// Polls `check` every 200 ms until it returns `Some`, or fails after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{what}: not true after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls `check` every 200 ms until it returns `Some`. Fails only when `progress` has not
/// changed for `stall` (a busy machine is slow, not stuck) or after `ceiling` in all; use it
/// where the work is long and its speed depends on the machine (copying, hashing).
pub async fn eventually_progressing<T, P, F, Fut>(
    stall: Duration,
    ceiling: Duration,
    what: &str,
    mut progress: impl FnMut() -> P,
    mut check: F,
) -> Result<T>
where
    P: PartialEq + std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let mut watch = Stall::new(stall, ceiling, progress());
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        watch.observe(what, progress())?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls `check` every 200 ms until its first half is `Some`; its second half is what it saw
/// (e.g. each workspace's phase). Fails only when that has not changed for [`DEADLINE`] or
/// after [`LONG_DEADLINE`]: for waits on many objects, whose time grows with the machine's load.
pub async fn eventually_advancing<T, P, F, Fut>(what: &str, mut check: F) -> Result<T>
where
    P: PartialEq + std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(Option<T>, P)>>,
{
    let (done, seen) = check().await?;
    if let Some(value) = done {
        return Ok(value);
    }
    let mut watch = Stall::new(DEADLINE, LONG_DEADLINE, seen);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (done, seen) = check().await?;
        if let Some(value) = done {
            return Ok(value);
        }
        watch.observe(what, seen)?;
    }
}

/// When a wait last saw progress.
struct Stall<P> {
    stall: Duration,
    ceiling: Duration,
    start: tokio::time::Instant,
    moved: tokio::time::Instant,
    last: P,
}

impl<P: PartialEq + std::fmt::Debug> Stall<P> {
    fn new(stall: Duration, ceiling: Duration, first: P) -> Self {
        let now = tokio::time::Instant::now();
        Self { stall, ceiling, start: now, moved: now, last: first }
    }

    /// Notes what was seen now; an error once nothing has moved for `stall` or `ceiling` is up.
    fn observe(&mut self, what: &str, seen: P) -> Result<()> {
        if seen != self.last {
            (self.last, self.moved) = (seen, tokio::time::Instant::now());
        }
        let (stall, ceiling, last) = (self.stall, self.ceiling, &self.last);
        if self.moved.elapsed() >= stall {
            bail!("{what}: no progress for {stall:?} (last seen: {last:?})");
        }
        if self.start.elapsed() >= ceiling {
            bail!("{what}: not true after {ceiling:?}, though still progressing ({last:?})");
        }
        Ok(())
    }
}

/// Files and bytes under `dir`, recursively (hidden partial files included): progress of
/// data-store work such as a snapshot or a delivery.
pub fn bytes_under(dir: &std::path::Path) -> (u64, u64) {
    let Ok(entries) = std::fs::read_dir(dir) else { return (0, 0) };
    entries.flatten().fold((0, 0), |(files, bytes), entry| match entry.metadata() {
        Ok(m) if m.is_dir() => {
            let (f, b) = bytes_under(&entry.path());
            (files + f, bytes + b)
        }
        Ok(m) => (files + 1, bytes + m.len()),
        Err(_) => (files, bytes),
    })
}

/// A namespace for one test. Drop cannot be async, so call [`TestNamespace::delete`] at the
/// end of the test; the local control plane is thrown away after a run in any case.
#[allow(missing_debug_implementations)] // kube::Client has no Debug
pub struct TestNamespace {
    pub name: String,
    client: Client,
}

impl TestNamespace {
    pub async fn create(client: &Client, prefix: &str, labels: &[(&str, &str)]) -> Result<Self> {
        let name = unique_name(prefix);
        let namespace: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": name,
                "labels": labels.iter().copied().collect::<std::collections::BTreeMap<_, _>>(),
            }
        }))?;
        Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &namespace).await?;
        Ok(Self { name, client: client.clone() })
    }

    pub async fn delete(self) -> Result<()> {
        Api::<Namespace>::all(self.client).delete(&self.name, &DeleteParams::default()).await?;
        Ok(())
    }
}

/// Runs the `kubectl haven` plugin, `$KUBECTL_HAVEN_BIN` (built by run-e2e.sh), with `args`
/// against `KUBECONFIG`.
pub fn kubectl_haven(args: &[&str]) -> Result<Output> {
    let binary =
        std::env::var("KUBECTL_HAVEN_BIN").context("KUBECTL_HAVEN_BIN is not set: run via e2e/run-e2e.sh")?;
    std::process::Command::new(&binary).args(args).output().with_context(|| format!("running {binary}"))
}

/// Runs `kubectl` (from the control-plane cache, on PATH in `make test`) against `KUBECONFIG`.
pub fn kubectl(args: &[&str]) -> Result<Output> {
    std::process::Command::new("kubectl").args(args).output().context("running kubectl (is it on PATH?)")
}

/// `kubectl` that must succeed; returns its stdout.
pub fn kubectl_ok(args: &[&str]) -> Result<String> {
    let output = kubectl(args)?;
    if !output.status.success() {
        bail!("kubectl {} failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// SIGKILLs the local control plane's kube-apiserver and starts it again (`e2e/cluster.sh
/// restart-apiserver`); returns once it answers `/readyz`.
pub fn restart_api_server() -> Result<()> {
    let output = std::process::Command::new(repo_path("e2e/cluster.sh")).arg("restart-apiserver").output()?;
    anyhow::ensure!(
        output.status.success(),
        "cluster.sh restart-apiserver failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// The repository root, for reading examples/ and e2e/ fixtures.
pub fn repo_path(relative: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

/// `kubectl` with `input` on its standard input (for `apply -f -`).
pub fn kubectl_with_input(args: &[&str], input: &str) -> Result<Output> {
    use std::io::Write;
    let mut child = std::process::Command::new("kubectl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("running kubectl (is it on PATH?)")?;
    child.stdin.take().context("kubectl stdin")?.write_all(input.as_bytes())?;
    Ok(child.wait_with_output()?)
}

/// Applies `document` with `kubectl` as `user`, with RBAC out of the way (`system:masters`) but
/// `request.userInfo.username` set, so the admission policy sees that user.
pub fn apply_as(user: &str, document: &serde_json::Value) -> Result<Output> {
    let (as_user, as_group) = (format!("--as={user}"), "--as-group=system:masters");
    kubectl_with_input(&["apply", "-f", "-", &as_user, as_group], &serde_json::to_string(document)?)
}

/// Applies `document` as the admission policy allows: an AirlockRequest is created by its
/// requester, marked AwaitingReview (as the operator would after its checks), and each review
/// is added by its reviewer, one at a time; anything else as admin.
pub fn apply_as_its_users(document: &serde_json::Value) -> Result<Output> {
    if document["kind"] != "AirlockRequest" {
        return kubectl_with_input(&["apply", "-f", "-"], &serde_json::to_string(document)?);
    }
    let requester = document["spec"]["requestedBy"].as_str().context("spec.requestedBy")?;
    let reviews = document["spec"]["reviews"].as_array().cloned().unwrap_or_default();
    let mut step = document.clone();
    step["spec"]["reviews"] = serde_json::Value::Array(vec![]);
    let mut output = apply_as(requester, &step)?;
    if !reviews.is_empty() && output.status.success() {
        // Reviews are accepted only once the checks are done; no operator runs here, so say so.
        let (name, namespace) = (step["metadata"]["name"].as_str(), step["metadata"]["namespace"].as_str());
        let (name, namespace) = (name.context("metadata.name")?, namespace.context("metadata.namespace")?);
        let phase = r#"{"status":{"phase":"AwaitingReview"}}"#;
        let patch = [
            "patch",
            "airlockrequest",
            name,
            "-n",
            namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            phase,
        ];
        output = kubectl(&patch)?;
    }
    for (count, review) in reviews.iter().enumerate() {
        if !output.status.success() {
            break;
        }
        step["spec"]["reviews"] = serde_json::Value::Array(reviews[..=count].to_vec());
        output = apply_as(review["reviewer"].as_str().context("reviewer")?, &step)?;
    }
    Ok(output)
}

/// The documents of a YAML file (comments dropped), as JSON values.
pub fn yaml_documents(text: &str) -> Result<Vec<serde_json::Value>> {
    Ok(serde_saphyr::from_multiple::<serde_json::Value>(text)?.into_iter().filter(|d| !d.is_null()).collect())
}

/// The operator (`haven run`) as a child process against `KUBECONFIG`, killed when dropped.
/// Only one may run against a cluster at a time, so it holds a process-wide lock: operator
/// tests in one binary take turns (cargo runs test binaries one after another).
#[allow(missing_debug_implementations)]
pub struct Operator {
    child: std::process::Child,
    pub data_root: std::path::PathBuf,
    turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

static OPERATOR_TURN: std::sync::LazyLock<std::sync::Arc<tokio::sync::Mutex<()>>> =
    std::sync::LazyLock::new(Default::default);

/// Waits until no other test in this binary runs an operator.
pub async fn operator_turn() -> tokio::sync::OwnedMutexGuard<()> {
    OPERATOR_TURN.clone().lock_owned().await
}

impl Operator {
    /// Starts `$HAVEN_BIN run` with a data store at `data_root` (run-e2e.sh builds the binary),
    /// once it is this test's turn.
    pub async fn start(data_root: &std::path::Path) -> Result<Self> {
        Self::start_with(data_root, &[]).await
    }

    /// [`Operator::start`] with more `haven run` flags.
    pub async fn start_with(data_root: &std::path::Path, flags: &[&str]) -> Result<Self> {
        let turn = operator_turn().await;
        Self::start_in_turn_with(data_root, turn, flags)
    }

    /// Starts another operator process in a turn already held (after [`Operator::crash`]).
    pub fn start_in_turn(
        data_root: &std::path::Path,
        turn: tokio::sync::OwnedMutexGuard<()>,
    ) -> Result<Self> {
        Self::start_in_turn_with(data_root, turn, &[])
    }

    /// [`Operator::start_in_turn`] with more `haven run` flags.
    pub fn start_in_turn_with(
        data_root: &std::path::Path,
        turn: tokio::sync::OwnedMutexGuard<()>,
        flags: &[&str],
    ) -> Result<Self> {
        let binary = std::env::var("HAVEN_BIN").context("HAVEN_BIN is not set: run via e2e/run-e2e.sh")?;
        // Appended, so a crash test's log shows what each process did before it was killed.
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_root.with_extension("operator.log"))?;
        std::io::Write::write_all(&mut log, b"---- operator started ----\n")?;
        let child = std::process::Command::new(binary)
            .args(["run", "--data-root"])
            .arg(data_root)
            .args(flags)
            .args(default_flags(flags))
            .env(
                "RUST_LOG",
                std::env::var("HAVEN_E2E_OPERATOR_LOG").unwrap_or_else(|_| "info,kube=warn".into()),
            )
            // run-e2e.sh points this at a kubeconfig with the Helm chart's ServiceAccount token,
            // so every operator test also proves the chart's RBAC is enough (S11).
            .env("KUBECONFIG", operator_kubeconfig()?)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting haven run")?;
        Ok(Self { child, data_root: data_root.to_owned(), turn: Some(turn) })
    }

    /// A second operator beside one already running in this test's turn (a standby replica).
    pub fn start_beside(data_root: &std::path::Path, flags: &[&str]) -> Result<Self> {
        let turn = std::sync::Arc::new(tokio::sync::Mutex::new(())).try_lock_owned()?;
        let mut operator = Self::start_in_turn_with(data_root, turn, flags)?;
        operator.turn = None;
        Ok(operator)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still alive (it has not exited on its own).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, as Kubernetes stops a pod; waits up to `limit` for the process to exit.
    pub fn terminate(&mut self, limit: Duration) -> Result<std::process::ExitStatus> {
        let sent =
            std::process::Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status()?;
        anyhow::ensure!(sent.success(), "kill -TERM failed");
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if std::time::Instant::now() >= deadline {
                bail!("the operator did not exit within {limit:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, as a crash would; returns the turn so the test can start the next process.
    pub fn crash(mut self) -> tokio::sync::OwnedMutexGuard<()> {
        self.kill();
        self.turn.take().expect("an operator holds its turn until dropped")
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A fresh, empty data-store directory for one test, under `$HAVEN_E2E_DATA` (which
/// run-e2e.sh removes afterwards) or the system temp dir.
pub fn data_root(prefix: &str) -> Result<std::path::PathBuf> {
    let base = std::env::var_os("HAVEN_E2E_DATA").map_or_else(std::env::temp_dir, Into::into);
    let dir = base.join(unique_name(prefix));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// One operator at a time reconciles in these tests, and a crash test's restart must not
/// wait for a dead process's lease; each process gets its own port. A test that sets either
/// flag itself keeps its own.
fn default_flags(flags: &[&str]) -> Vec<&'static str> {
    let given = |name: &str| flags.iter().any(|f| f.starts_with(name));
    let mut defaults = vec![];
    if !given("--leader-election") {
        defaults.push("--leader-election=false");
    }
    if !given("--metrics-address") {
        defaults.push("--metrics-address=127.0.0.1:0");
    }
    defaults
}

/// The kubeconfig the operator runs with: `HAVEN_OPERATOR_KUBECONFIG` if set, else the tests' own.
fn operator_kubeconfig() -> Result<std::ffi::OsString> {
    std::env::var_os("HAVEN_OPERATOR_KUBECONFIG")
        .or_else(|| std::env::var_os("KUBECONFIG"))
        .context("KUBECONFIG is not set: run via e2e/run-e2e.sh")
}

/// Makes sure a namespace exists (the operator's own, for instance).
pub async fn ensure_namespace(client: &Client, name: &str) -> Result<()> {
    let namespace: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))?;
    match Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &namespace).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(error) => Err(error.into()),
    }
}
