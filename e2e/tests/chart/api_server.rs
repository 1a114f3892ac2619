//! Every rendering of the chart is accepted by the real API server, strictly validated, and the
//! operator's and the federation's pods meet Pod Security `restricted`.

use anyhow::{Context, Result, ensure};
use haven_e2e::{TestNamespace, admin, kubectl_ok, kubectl_with_input, unique_name, yaml_documents};
use serde_json::{Value, json};

use super::{find, render_values};

/// Every value the chart has, set to something other than its default.
fn everything() -> Value {
    json!({
        "commonLabels": {"example.org/team": "tre"},
        "replicas": 3,
        "leaderElection": {"leaseDuration": "30s"},
        "updateStrategy": {"type": "Recreate"},
        "image": {"digest": format!("sha256:{}", "0123456789abcdef".repeat(4)), "pullPolicy": "Always"},
        "imagePullSecrets": [{"name": "regcred"}],
        "dataStore": {"existingClaim": "haven-data", "mountPath": "/srv/haven"},
        "volumeBackend": {"type": "nfs", "nfs": {"server": "nfs.example.org", "export": "/exports/haven"}},
        "network": {"dnsNamespace": "dns", "gatewayNamespace": "gateway"},
        "workspace": {"idePort": 8443},
        "airlock": {"retention": "48h", "scanner": {"command": "clamscan --no-summary -d /var/lib/clamav", "timeout": "2m"}},
        "logging": {"level": "info,kube=warn", "format": "text"},
        "metrics": {"port": 9090, "service": {"enabled": true, "port": 80, "annotations": {"prometheus.io/scrape": "true"}}},
        "serviceAccount": {"name": "haven-operator", "annotations": {"example.org/identity": "haven"}},
        "resources": {"requests": {"cpu": "200m", "memory": "256Mi"}, "limits": {"cpu": 4, "memory": "2Gi"}},
        "podSecurityContext": {"runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001},
        "tmpSizeLimit": "1Gi",
        "livenessProbe": {"initialDelaySeconds": 10},
        "readinessProbe": {"periodSeconds": 2, "successThreshold": 1},
        "podDisruptionBudget": {"enabled": true, "minAvailable": "50%"},
        "podAnnotations": {"example.org/team": "tre"},
        "podLabels": {"example.org/tier": "control"},
        "priorityClassName": "system-cluster-critical",
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100,
            "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "haven"}}}}]}},
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "haven"}}}],
        "extraArgs": ["--operator-namespace=haven-keys"],
        "extraEnv": [{"name": "RUST_BACKTRACE", "value": "1"}],
        "extraVolumes": [{"name": "clamav", "emptyDir": {"medium": "Memory"}}],
        "extraVolumeMounts": [{"name": "clamav", "mountPath": "/var/lib/clamav", "readOnly": true}],
        "federation": {"site": "leeds", "listen": {"enabled": true, "port": 9444, "tlsSecret": "leeds-server"},
            "service": {"type": "LoadBalancer", "nodePort": 30444}, "pullIntervalMs": 500,
            "resources": {"limits": {"memory": "2Gi"}}},
    })
}

/// The least a chart can be: an existing ServiceAccount, no RBAC, no policy, no operator pod.
fn nothing() -> Value {
    json!({
        "replicas": 0,
        "serviceAccount": {"create": false, "name": "default"},
        "rbac": {"create": false, "userRoles": false},
        "admissionPolicy": {"enabled": false},
    })
}

#[tokio::test]
async fn every_rendering_is_accepted_by_the_api_server_with_strict_validation() -> Result<()> {
    let client = admin().await?;
    let namespace = TestNamespace::create(&client, "chart-dry-run", &[]).await?;
    let release = unique_name("haven-dry-run");
    let monitoring = kubectl_ok(&["api-resources", "--api-group=monitoring.coreos.com", "-o", "name"])?;
    let mut with_monitor = everything();
    with_monitor["metrics"]["serviceMonitor"] = json!({"enabled": true, "labels": {"release": "prometheus"},
        "interval": "15s", "scrapeTimeout": "10s", "relabelings": [{"action": "labeldrop", "regex": "pod"}]});
    for values in [json!({}), everything(), nothing(), with_monitor] {
        let documents = yaml_documents(&render_values(&release, &namespace.name, &values)?)?;
        // Without the Prometheus Operator's CRDs the ServiceMonitor is checked by shape below.
        let (monitors, rest): (Vec<Value>, Vec<Value>) = documents
            .into_iter()
            .partition(|d| d["kind"] == "ServiceMonitor" && !monitoring.contains("servicemonitors"));
        let list = json!({"apiVersion": "v1", "kind": "List", "items": rest});
        let output = kubectl_with_input(
            &["apply", "--dry-run=server", "--validate=strict", "-n", &namespace.name, "-f", "-"],
            &list.to_string(),
        )?;
        ensure!(
            output.status.success(),
            "values {values}: the API server refused the chart: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        for monitor in &monitors {
            let service = find(&rest, "Service", &format!("{release}-metrics"))?;
            let selector = monitor["spec"]["selector"]["matchLabels"].as_object().context("selector")?;
            for (key, value) in selector {
                ensure!(service["metadata"]["labels"][key] == *value, "ServiceMonitor selects {key}={value}");
            }
            ensure!(monitor["apiVersion"] == "monitoring.coreos.com/v1");
            ensure!(monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]);
        }
    }
    namespace.delete().await
}

/// The pod of the chart's Deployment `deployment` (run by ServiceAccount `account`), rendered
/// with `values` on a claim, is admitted by a namespace enforcing Pod Security `restricted`.
async fn restricted_admits_the_pod_of(deployment: &str, account: &str, values: Value) -> Result<()> {
    let client = admin().await?;
    let enforce = [("pod-security.kubernetes.io/enforce", "restricted")];
    let namespace = TestNamespace::create(&client, "chart-restricted", &enforce).await?;
    let mut values = values;
    values["dataStore"] = json!({"existingClaim": "haven-data"});
    values["volumeBackend"] = json!({"hostPath": {"root": "/srv/haven"}});
    let documents = yaml_documents(&render_values("haven", &namespace.name, &values)?)?;
    let template = &find(&documents, "Deployment", deployment)?["spec"]["template"];
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": deployment,
        "namespace": namespace.name, "labels": template["metadata"]["labels"]}, "spec": template["spec"]});
    kubectl_with_input(&["create", "-f", "-"], &find(&documents, "ServiceAccount", account)?.to_string())?;
    let output = kubectl_with_input(&["create", "--dry-run=server", "-f", "-"], &pod.to_string())?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(
        output.status.success() && !stderr.contains("Warning"),
        "restricted refused {deployment}: {stderr}"
    );
    namespace.delete().await
}

#[tokio::test]
async fn the_operator_pod_meets_pod_security_restricted() -> Result<()> {
    restricted_admits_the_pod_of("haven", "haven", json!({})).await
}

#[tokio::test]
async fn the_federation_pod_meets_pod_security_restricted() -> Result<()> {
    let values =
        json!({"federation": {"site": "leeds", "listen": {"enabled": true, "tlsSecret": "leeds-server"}}});
    restricted_admits_the_pod_of("haven-federation", "haven-federation", values).await
}
