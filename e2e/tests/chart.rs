//! The Helm chart (charts/haven): lint-clean, its rendered output and generated copies do not
//! drift, its values schema rejects wrong types, and its RBAC is least-privilege (here); every
//! rendering is accepted by the real API server (`api_server`); it installs, upgrades and
//! uninstalls cleanly (`install`); `haven run` takes its arguments, and the examples applied
//! twice by a GitOps tool change nothing once the operator has reconciled them (`operator`); the
//! access gateway is deployed only when it can work (`gateway`), restricted and least-privilege
//! (`gateway_pod`); so is `haven federation`, when this site is named (`federation`).
//! That the chart's RBAC is enough for the operator (S11) is proven by the whole suite:
//! run-e2e.sh runs every operator with the chart's ServiceAccount token.

#[path = "chart/api_server.rs"]
mod api_server;
#[path = "chart/federation.rs"]
mod federation;
#[path = "chart/gateway.rs"]
mod gateway;
#[path = "chart/gateway_pod.rs"]
mod gateway_pod;
#[path = "chart/install.rs"]
mod install;
#[path = "chart/operator.rs"]
mod operator;

use std::process::Output;

use anyhow::{Context, Result, bail, ensure};
use haven_e2e::{repo_path, unique_name, yaml_documents};
use serde_json::Value;

fn chart() -> String {
    repo_path("charts/haven").display().to_string()
}

/// Runs `helm` (from the control-plane cache, on PATH in `make test`) against `KUBECONFIG`.
fn helm(args: &[&str]) -> Result<Output> {
    std::process::Command::new("helm").args(args).output().context("running helm (is it on PATH?)")
}

fn helm_ok(args: &[&str]) -> Result<String> {
    let output = helm(args)?;
    ensure!(
        output.status.success(),
        "helm {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

/// `helm template` of the chart as `release` in `namespace` with `--set` values.
fn render(release: &str, namespace: &str, sets: &[&str]) -> Result<String> {
    let chart = chart();
    let mut args = vec!["template", release, chart.as_str(), "--namespace", namespace];
    for set in sets {
        args.extend(["--set", set]);
    }
    helm_ok(&args)
}

fn find<'a>(documents: &'a [Value], kind: &str, name: &str) -> Result<&'a Value> {
    documents
        .iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .with_context(|| format!("no {kind} {name} in the rendered chart"))
}

/// `helm template` with `values` (as a values file).
fn render_values(release: &str, namespace: &str, values: &Value) -> Result<String> {
    let file = std::env::temp_dir().join(format!("{}.values.json", unique_name("chart")));
    std::fs::write(&file, values.to_string())?;
    let chart = chart();
    let rendered =
        helm_ok(&["template", release, &chart, "--namespace", namespace, "-f", &file.display().to_string()]);
    std::fs::remove_file(&file)?;
    rendered
}

#[test]
fn the_chart_lints_clean() -> Result<()> {
    let output = helm_ok(&["lint", "--strict", &chart()])?;
    ensure!(!output.contains("[WARNING]") && !output.contains("[ERROR]"), "helm lint: {output}");
    Ok(())
}

/// One version everywhere a platform engineer looks: the chart's appVersion (the image tag it
/// deploys), the crates' version (images/build.sh tags with it) and `haven --version`.
#[test]
fn the_chart_the_image_tag_and_the_binary_agree_on_the_version() -> Result<()> {
    let chart_yaml = std::fs::read_to_string(repo_path("charts/haven/Chart.yaml"))?;
    let app_version = chart_yaml
        .lines()
        .find_map(|l| l.strip_prefix("appVersion:"))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .context("appVersion in Chart.yaml")?;
    let crates = env!("CARGO_PKG_VERSION");
    ensure!(app_version == crates, "Chart.yaml appVersion {app_version} != the crates' version {crates}");
    let rendered = render("haven", "haven-system", &[])?;
    let image = format!("image: \"ghcr.io/haven-spe/haven:{crates}\"");
    ensure!(rendered.contains(&image), "the chart does not deploy {image}");
    let haven = std::env::var("HAVEN_BIN").context("HAVEN_BIN (set by run-e2e.sh)")?;
    let output = std::process::Command::new(haven).arg("--version").output()?;
    let printed = String::from_utf8_lossy(&output.stdout);
    ensure!(printed.trim() == format!("haven {crates}"), "haven --version says {printed:?}");
    Ok(())
}

#[test]
fn the_rendered_chart_matches_its_snapshot() -> Result<()> {
    let rendered = render("haven", "haven-system", &[])?;
    let snapshot = std::fs::read_to_string(repo_path("charts/haven/tests/snapshot.yaml"))?;
    if rendered != snapshot {
        let line = rendered.lines().zip(snapshot.lines()).position(|(a, b)| a != b).unwrap_or(0);
        bail!(
            "charts/haven/tests/snapshot.yaml is stale from line {}: run `make chart-snapshot` and review the diff\n\
             rendered: {:?}\nsnapshot: {:?}",
            line + 1,
            rendered.lines().nth(line),
            snapshot.lines().nth(line)
        );
    }
    Ok(())
}

#[test]
fn the_charts_crds_and_admission_policy_are_the_generated_ones() -> Result<()> {
    let names = |dir: &str| -> Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(repo_path(dir))? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.ends_with(".haven.io.yaml") {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    };
    let generated = names("crds")?;
    ensure!(generated.len() == 5, "crds/ holds {generated:?}");
    ensure!(
        names("charts/haven/crds")? == generated,
        "charts/haven/crds/ differs from crds/: run `make crds`"
    );
    for (generated, copy) in generated
        .iter()
        .map(|name| (format!("crds/{name}"), format!("charts/haven/crds/{name}")))
        .chain([("crds/admission-policy.yaml".into(), "charts/haven/files/admission-policy.yaml".into())])
    {
        ensure!(
            std::fs::read_to_string(repo_path(&generated))? == std::fs::read_to_string(repo_path(&copy))?,
            "{copy} differs from {generated}: run `make crds`"
        );
    }
    Ok(())
}

/// The chart's default `tiers` are Haven's default profiles, and the tier policy's binding
/// reads this release's ConfigMap, which the operator is told to read too.
#[test]
fn the_charts_default_tiers_are_havens_and_the_policy_reads_them() -> Result<()> {
    let documents = yaml_documents(&render("haven", "haven-system", &[])?)?;
    let config_map = find(&documents, "ConfigMap", "haven-tiers")?;
    let rendered: std::collections::BTreeMap<String, String> =
        serde_json::from_value(config_map["data"].clone())?;
    ensure!(
        rendered == haven_api::tier::TierProfiles::default().to_config_map(),
        "values.yaml tiers differ from TierProfiles::default(): {rendered:#?}"
    );
    ensure!(haven_api::tier::TierProfiles::from_config_map(&rendered).is_ok());
    let binding = find(&documents, "ValidatingAdmissionPolicyBinding", "haven-permit-tiers")?;
    ensure!(binding["spec"]["policyName"] == "haven-permit-tiers", "{binding}");
    ensure!(binding["spec"]["paramRef"]["name"] == "haven-tiers", "{binding}");
    ensure!(binding["spec"]["paramRef"]["namespace"] == "haven-system", "{binding}");
    ensure!(binding["spec"]["paramRef"]["parameterNotFoundAction"] == "Allow", "{binding}");
    let deployment = find(&documents, "Deployment", "haven")?;
    let args = deployment["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    ensure!(args.contains("--tier-config-map=haven-tiers"), "{args}");
    // Another release reads its own.
    let other = yaml_documents(&render("lab", "lab-system", &[])?)?;
    let binding = find(&other, "ValidatingAdmissionPolicyBinding", "lab-haven-permit-tiers")?;
    ensure!(binding["spec"]["paramRef"]["name"] == "lab-haven-tiers", "{binding}");
    ensure!(binding["spec"]["paramRef"]["namespace"] == "lab-system", "{binding}");
    Ok(())
}

#[test]
fn values_of_the_wrong_type_or_impossible_combinations_are_refused_by_name() -> Result<()> {
    let cases: &[(&[&str], &str)] = &[
        (&["replicas=abc"], "/replicas"),
        (&["replicas=-1"], "/replicas"),
        (&["leaderElection.enabled=yes"], "/leaderElection/enabled"),
        (&["logging.format=yaml"], "/logging/format"),
        (&["metrics.port=http"], "/metrics/port"),
        (&["airlock.retention=30d"], "/airlock/retention"),
        (&["volumeBackend.type=ceph"], "/volumeBackend/type"),
        (&["resources.limits.memory=lots"], "/resources/limits/memory"),
        (&["network.gatewayNamespace=Not_A_Namespace"], "/network/gatewayNamespace"),
        (&["replicsa=2"], "replicsa"),
        // Combinations the schema cannot express, refused by the templates.
        (&["replicas=2", "leaderElection.enabled=false"], "leaderElection.enabled"),
        (&["volumeBackend.type=nfs"], "volumeBackend.nfs.server"),
        (&["dataStore.existingClaim=haven-data"], "volumeBackend.hostPath.root"),
        (&["dataStore.hostPath="], "dataStore"),
        (&["metrics.serviceMonitor.enabled=true"], "metrics.service.enabled"),
    ];
    for (sets, field) in cases {
        let chart = chart();
        let mut args = vec!["template", "haven", chart.as_str()];
        for set in *sets {
            args.extend(["--set", set]);
        }
        let output = helm(&args)?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        ensure!(!output.status.success(), "--set {sets:?} was accepted");
        ensure!(stderr.contains(field), "--set {sets:?} was refused without naming {field}: {stderr}");
    }
    // The same keys with good values render.
    let documents =
        yaml_documents(&render("haven", "haven-system", &["replicas=3", "airlock.retention=1h30m"])?)?;
    ensure!(find(&documents, "Deployment", "haven")?["spec"]["replicas"] == 3);
    Ok(())
}

#[test]
fn the_operators_rbac_is_least_privilege() -> Result<()> {
    let documents = yaml_documents(&render("haven", "haven-system", &[])?)?;
    let cluster_rules = find(&documents, "ClusterRole", "haven-operator")?["rules"].as_array().cloned();
    let namespace_rules = find(&documents, "Role", "haven-operator")?["rules"].as_array().cloned();
    let (cluster_rules, namespace_rules) =
        (cluster_rules.unwrap_or_default(), namespace_rules.unwrap_or_default());
    let strings = |rule: &Value, key: &str| -> Vec<String> {
        rule[key].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect()
    };
    for rule in cluster_rules.iter().chain(&namespace_rules) {
        for key in ["apiGroups", "resources", "verbs", "resourceNames"] {
            ensure!(!strings(rule, key).iter().any(|s| s.contains('*')), "a wildcard in {rule}");
        }
        for verb in strings(rule, "verbs") {
            ensure!(
                !["escalate", "bind", "impersonate", "deletecollection"].contains(&verb.as_str()),
                "{rule}"
            );
        }
        for resource in strings(rule, "resources") {
            let moves_data =
                ["pods/exec", "pods/attach", "pods/portforward", "serviceaccounts/token", "nodes"];
            ensure!(!moves_data.contains(&resource.as_str()), "{rule}");
        }
    }
    // An allow-list, not a blocklist: each grant with why the operator holds it. A new verb
    // fails here until someone writes why (rbac.yaml says the same next to each rule).
    let grants = |rules: &[Value]| -> std::collections::BTreeSet<String> {
        let mut found = std::collections::BTreeSet::new();
        for rule in rules {
            let names = strings(rule, "resourceNames").join(",");
            for (group, resource) in strings(rule, "apiGroups")
                .iter()
                .flat_map(|g| strings(rule, "resources").into_iter().map(move |r| (g.clone(), r)))
            {
                let named = if names.is_empty() { String::new() } else { format!("[{names}]") };
                found.extend(strings(rule, "verbs").iter().map(|v| format!("{group}/{resource}{named}:{v}")));
            }
        }
        found
    };
    let expand = |allowed: &[(&str, &str, &str)]| -> std::collections::BTreeSet<String> {
        allowed
            .iter()
            .flat_map(|(what, verbs, _why)| verbs.split(',').map(move |v| format!("{what}:{v}")))
            .collect()
    };
    let cluster_allowed = expand(&[
        ("haven.io/datapermits", "get,list,watch,patch", "reconciles permits; patches only its finalizer"),
        ("haven.io/workspaces", "get,list,watch,patch", "reconciles workspaces; patches only its finalizer"),
        ("haven.io/workspaces", "connect", "held to grant it: the gateway's question, per workspace"),
        (
            "haven.io/airlockrequests",
            "get,list,watch,create,patch,update",
            "reconciles requests; held to grant them",
        ),
        (
            "haven.io/analysistasks",
            "get,list,watch,create,patch,update",
            "held to grant them: researchers submit, follow and cancel tasks",
        ),
        ("haven.io/datapermits/status", "patch", "its status"),
        ("haven.io/workspaces/status", "patch", "its status"),
        ("haven.io/airlockrequests/status", "patch", "its status"),
        ("/namespaces", "get,list,watch,create,patch,delete", "one per workspace, deleted after archiving"),
        (
            "/persistentvolumes",
            "list,watch,create,patch,delete",
            "data-store volumes, held to them by admission",
        ),
        ("/persistentvolumeclaims", "get,list,watch,create,patch,delete", "the workspace's claims"),
        ("/services", "get,list,watch,create,patch", "the environment's IDE Service"),
        (
            "/pods",
            "get,list,watch,delete",
            "whether the environment runs; deleted before archiving; no logs or exec",
        ),
        ("/resourcequotas", "list,watch,create,patch", "the workspace's quota"),
        ("/limitranges", "list,watch,create,patch", "the workspace's defaults"),
        ("apps/statefulsets", "get,list,watch,create,patch,delete", "the analysis environment"),
        ("networking.k8s.io/networkpolicies", "list,watch,create,patch,delete", "isolation, drift repaired"),
        ("rbac.authorization.k8s.io/roles", "list,watch,create,patch", "the people's roles in a workspace"),
        ("rbac.authorization.k8s.io/rolebindings", "list,watch,create,patch,delete", "their bindings"),
        ("rbac.authorization.k8s.io/clusterroles", "create,patch,delete", "reading one's own Workspace"),
        ("rbac.authorization.k8s.io/clusterrolebindings", "list,watch,create,patch,delete", "its binding"),
        ("/configmaps", "get,create,patch", "check reports for reviewers; the audit anchor; never list"),
        ("events.k8s.io/events", "create,patch", "an Event per state change"),
    ]);
    ensure!(
        grants(&cluster_rules) == cluster_allowed,
        "the ClusterRole grants {:#?}",
        grants(&cluster_rules)
    );
    let namespace_allowed = expand(&[
        ("/secrets", "get,create,delete", "the permits' keys, in its own namespace, never listed"),
        ("/configmaps[haven-tiers]", "get", "the tier profiles, by name"),
        ("coordination.k8s.io/leases", "create", "the leader Lease, once (create cannot name it)"),
        ("coordination.k8s.io/leases[haven-operator]", "get,patch", "holding the lease"),
    ]);
    ensure!(grants(&namespace_rules) == namespace_allowed, "the Role grants {:#?}", grants(&namespace_rules));
    // Keys are Secrets in the operator's namespace only, and are never listed.
    ensure!(!cluster_rules.iter().any(|r| strings(r, "resources").contains(&"secrets".to_owned())));
    let secrets =
        namespace_rules.iter().find(|r| strings(r, "resources") == ["secrets"]).context("secrets")?;
    ensure!(strings(secrets, "verbs") == ["get", "create", "delete"], "{secrets}");
    Ok(())
}
