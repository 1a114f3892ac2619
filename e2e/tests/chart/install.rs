//! `helm install`, `helm upgrade` and `helm uninstall` against the local control plane, and what
//! the installed ServiceAccount and people's roles may and may not do.

use anyhow::{Result, ensure};
use haven_e2e::{DEADLINE, admin, eventually, kubectl, kubectl_ok, kubectl_with_input, unique_name};

use super::{chart, helm_ok};

/// `kubectl auth can-i` as `user`.
fn can(user: &str, args: &[&str]) -> Result<bool> {
    let mut full = vec!["auth", "can-i", "--as", user];
    full.extend_from_slice(args);
    let output = kubectl(&full)?;
    // `yes` (exit 0) or `no` (exit 1); anything else is kubectl failing, never a refusal.
    match String::from_utf8_lossy(&output.stdout).trim() {
        "yes" if output.status.success() => Ok(true),
        "no" => Ok(false),
        other => anyhow::bail!(
            "kubectl auth can-i {args:?} as {user} said {other:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

/// A dry run of an allow-all NetworkPolicy in `namespace`, as admin or `user`: Ok, or the refusal.
fn network_policy(namespace: &str, user: Option<&str>) -> Result<std::result::Result<(), String>> {
    let policy = serde_json::json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "allow-all", "namespace": namespace},
        "spec": {"podSelector": {}, "ingress": [{}], "egress": [{}], "policyTypes": ["Ingress", "Egress"]},
    });
    let mut args = vec!["create", "--dry-run=server", "-o", "name", "-f", "-"];
    if let Some(user) = user {
        args.extend(["--as", user]);
    }
    let output = kubectl_with_input(&args, &policy.to_string())?;
    Ok(if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    })
}

/// A dry run of the operator creating a hostPath volume at `path`: Ok, or the refusal.
fn operator_volume(operator: &str, path: &str) -> Result<std::result::Result<(), String>> {
    let volume = serde_json::json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": unique_name("volume-policy")},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": path, "type": "DirectoryOrCreate"}},
    });
    let args = ["create", "--dry-run=server", "-o", "name", "-f", "-", "--as", operator];
    let output = kubectl_with_input(&args, &volume.to_string())?;
    Ok(if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    })
}

fn deployment_args(namespace: &str, name: &str) -> Result<String> {
    kubectl_ok(&[
        "get",
        "deployment",
        name,
        "-n",
        namespace,
        "-o",
        "jsonpath={.spec.template.spec.containers[0].args}",
    ])
}

#[tokio::test]
async fn the_chart_installs_upgrades_and_uninstalls_leaving_only_the_crds() -> Result<()> {
    admin().await?; // CRDs first: Helm skips the chart's copies of CRDs that already exist
    let release = unique_name("haven-chart");
    let chart = chart();
    let ns = release.as_str();
    let install = ["install", ns, &chart, "-n", ns, "--create-namespace", "--wait", "--timeout", "2m"];
    let toggles = ["--set", "metrics.service.enabled=true", "--set", "podDisruptionBudget.enabled=true"];
    helm_ok(&[&install[..], &toggles[..]].concat())?;
    ensure!(deployment_args(ns, ns)?.contains("--log-level=info"));

    // The operator's ServiceAccount: what it needs, and nothing that reads or moves data.
    let operator = format!("system:serviceaccount:{ns}:{ns}");
    let allowed = [
        vec!["create", "namespaces"],
        vec!["patch", "workspaces.haven.io", "--subresource=status"],
        vec!["create", "roles", "-n", "ws-any"],
        vec!["get", "secrets", "-n", ns],
        vec!["patch", "leases/haven-operator", "-n", ns],
    ];
    for args in &allowed {
        ensure!(can(&operator, args)?, "the operator cannot {args:?}");
    }
    let refused = [
        vec!["get", "secrets", "-n", "default"],
        vec!["list", "secrets", "-n", ns],
        vec!["create", "pods/exec", "-n", "ws-any"],
        vec!["create", "pods", "-n", "ws-any"],
        vec!["update", "datapermits.haven.io"],
        vec!["delete", "workspaces.haven.io"],
        vec!["escalate", "clusterroles"],
        vec!["bind", "clusterroles"],
        vec!["impersonate", "users"],
        vec!["patch", "leases/someone-else", "-n", ns],
        vec!["get", "nodes"],
    ];
    for args in &refused {
        ensure!(!can(&operator, args)?, "the operator can {args:?}");
    }

    // In a workspace namespace only the operator makes NetworkPolicies: an allow-all one from
    // anyone else, an administrator included, is refused (elsewhere it is not: the canary).
    let workspace_ns = unique_name("ws-netpol");
    kubectl_ok(&["create", "namespace", &workspace_ns])?;
    kubectl_ok(&["label", "namespace", &workspace_ns, "haven.io/workspace=netpol"])?;
    eventually(DEADLINE, "the workspace network policy is in force", || async {
        Ok(network_policy(&workspace_ns, None)?.is_err().then_some(()))
    })
    .await?;
    let refused = network_policy(&workspace_ns, None)?.err().unwrap_or_default();
    ensure!(refused.contains("made by the Haven operator alone"), "{refused}");
    network_policy(&workspace_ns, Some(&operator))?
        .map_err(|e| anyhow::anyhow!("the operator's own policy is refused: {e}"))?;
    network_policy(ns, None)?.map_err(|e| anyhow::anyhow!("outside workspaces, refused: {e}"))?;
    kubectl_ok(&["delete", "namespace", &workspace_ns, "--wait=false"])?;

    // It may create volumes, but only under the data store's workspaces/ and extracts/.
    eventually(DEADLINE, "the operator's volume policy is in force", || async {
        Ok(operator_volume(&operator, "/var/lib/haven/raw/registry")?.is_err().then_some(()))
    })
    .await?;
    operator_volume(&operator, "/var/lib/haven/workspaces/w/home")?
        .map_err(|e| anyhow::anyhow!("a workspace volume is refused: {e}"))?;
    operator_volume(&operator, "/var/lib/haven/extracts/p/survey")?
        .map_err(|e| anyhow::anyhow!("an extract volume is refused: {e}"))?;
    for outside in
        ["/etc", "/var/lib/haven/raw/registry", "/var/lib/haven/workspaces", "/var/lib/havenx/workspaces/a"]
    {
        let refused = operator_volume(&operator, outside)?.err().unwrap_or_default();
        ensure!(
            refused.contains("the operator may only create hostPath volumes under"),
            "{outside}: {refused:?}"
        );
    }

    // The people's roles aggregate their rules, and a researcher bound in a namespace can ask
    // for an export but cannot exec or read Secrets.
    eventually(DEADLINE, "the aggregated roles have rules", || async {
        let rules =
            kubectl_ok(&["get", "clusterrole", &format!("{ns}-researcher"), "-o", "jsonpath={.rules}"])?;
        Ok(rules.contains("airlockrequests").then_some(()))
    })
    .await?;
    let researcher = format!("{ns}-researcher@example.org");
    kubectl_ok(&[
        "create",
        "rolebinding",
        "researcher",
        "-n",
        ns,
        &format!("--clusterrole={ns}-researcher"),
        &format!("--user={researcher}"),
    ])?;
    ensure!(can(&researcher, &["create", "airlockrequests.haven.io", "-n", ns])?);
    ensure!(
        !can(&researcher, &["create", "pods/exec", "-n", ns])?
            && !can(&researcher, &["get", "secrets", "-n", ns])?
    );
    let admin_rules = kubectl_ok(&["get", "clusterrole", &format!("{ns}-admin"), "-o", "jsonpath={.rules}"])?;
    let checker_rules =
        kubectl_ok(&["get", "clusterrole", &format!("{ns}-output-checker"), "-o", "jsonpath={.rules}"])?;
    ensure!(
        admin_rules.contains("datapermits") && !checker_rules.contains("create"),
        "{admin_rules} {checker_rules}"
    );
    kubectl_ok(&["get", "validatingadmissionpolicy", &format!("{ns}-airlock-requests")])?;

    // An upgrade with a changed value rolls the Deployment.
    helm_ok(&["upgrade", ns, &chart, "-n", ns, "--reuse-values", "--set", "logging.level=debug", "--wait"])?;
    let args = deployment_args(ns, ns)?;
    ensure!(args.contains("--log-level=debug") && !args.contains("--log-level=info"), "{args}");

    // Uninstall removes every object of the release, cluster-scoped ones too; CRDs stay.
    helm_ok(&["uninstall", ns, "-n", ns, "--wait"])?;
    let selector = format!("app.kubernetes.io/instance={ns}");
    eventually(DEADLINE, "nothing of the release is left", || async {
        let namespaced = "deployments,replicasets,pods,serviceaccounts,services,roles,rolebindings,poddisruptionbudgets";
        let left = kubectl_ok(&["get", namespaced, "-n", ns, "-l", &selector, "-o", "name"])?
            + &kubectl_ok(&["get", "clusterroles,clusterrolebindings,validatingadmissionpolicies,validatingadmissionpolicybindings", "-l", &selector, "-o", "name"])?
            + &kubectl_ok(&["get", "secrets", "-n", ns, "-l", "owner=helm", "-o", "name"])?;
        Ok(left.trim().is_empty().then_some(()))
    })
    .await?;
    kubectl_ok(&["get", "crd", "datapermits.haven.io", "workspaces.haven.io", "airlockrequests.haven.io"])?;
    kubectl_ok(&["delete", "namespace", ns, "--wait=false"])?;
    Ok(())
}
