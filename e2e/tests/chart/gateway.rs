//! The access gateway as the chart deploys it (`haven gateway`): only when it can work and
//! saying so, in the gateway namespace with the operator's image, reached through its Service or
//! an Ingress, and refusing values it cannot use by name. How its pod runs and what it may do:
//! `gateway_pod`. Rendering only: no cluster.

use std::collections::BTreeMap;

use anyhow::{Context, Result, ensure};
use haven_e2e::{unique_name, yaml_documents};
use serde_json::{Value, json};

use super::{chart, find, helm, helm_ok, render_values};

pub(super) const PUBLIC_URL: &str = "https://haven.example.org";
pub(super) const ISSUER: &str = "https://id.example.org/realms/haven";
pub(super) const GATEWAY_NAMESPACE: &str = "haven-gateway";

/// The least that deploys the gateway, with `more` merged in.
pub(super) fn with_gateway(more: Value) -> Value {
    fn merge(into: &mut Value, from: Value) {
        match (into, from) {
            (Value::Object(into), Value::Object(from)) => {
                for (key, value) in from {
                    merge(into.entry(key).or_insert(Value::Null), value);
                }
            }
            (into, from) => *into = from,
        }
    }
    let mut values = json!({"gateway": {"publicUrl": PUBLIC_URL, "oidc": {"issuerUrl": ISSUER}}});
    merge(&mut values, more);
    values
}

/// The chart as release `haven` in `haven-system`.
pub(super) fn rendered(values: &Value) -> Result<Vec<Value>> {
    yaml_documents(&render_values("haven", "haven-system", values)?)
}

fn gateway_objects(documents: &[Value]) -> Vec<&Value> {
    documents.iter().filter(|d| d["metadata"]["labels"]["app.kubernetes.io/component"] == "gateway").collect()
}

pub(super) fn pod_spec(documents: &[Value]) -> Result<&Value> {
    Ok(&find(documents, "Deployment", "haven-gateway")?["spec"]["template"]["spec"])
}

/// The container's `--flag=value` arguments, after the subcommand, which must be `gateway`.
pub(super) fn flags(documents: &[Value]) -> Result<BTreeMap<String, String>> {
    let args = pod_spec(documents)?["containers"][0]["args"].as_array().context("args")?;
    ensure!(args.first() == Some(&json!("gateway")), "the subcommand is not `gateway`: {args:?}");
    let mut flags = BTreeMap::new();
    for arg in &args[1..] {
        let (flag, value) =
            arg.as_str().and_then(|a| a.strip_prefix("--")?.split_once('=')).context("--flag=value")?;
        ensure!(flags.insert(flag.to_owned(), value.to_owned()).is_none(), "--{flag} given twice");
    }
    Ok(flags)
}

pub(super) fn strings(value: &Value) -> Vec<&str> {
    value.as_array().into_iter().flatten().filter_map(Value::as_str).collect()
}

#[test]
fn the_gateway_is_deployed_only_when_it_has_an_address_and_an_issuer() -> Result<()> {
    for values in [
        json!({}),
        json!({"gateway": {"publicUrl": PUBLIC_URL}}),
        json!({"gateway": {"oidc": {"issuerUrl": ISSUER}}}),
        with_gateway(json!({"gateway": {"enabled": false}})),
    ] {
        let documents = rendered(&values)?;
        let objects = gateway_objects(&documents);
        ensure!(objects.is_empty(), "values {values} deployed gateway objects: {objects:?}");
    }
    ensure!(!gateway_objects(&rendered(&with_gateway(json!({})))?).is_empty());
    Ok(())
}

/// NOTES.txt as `helm install` prints it after installing with `values`. `helm template` leaves
/// it out, so a copy of the chart renders it into a ConfigMap.
pub(super) fn notes(values: &Value) -> Result<String> {
    let copy = std::env::temp_dir().join(unique_name("chart-notes"));
    std::fs::create_dir_all(&copy)?;
    let copied = std::process::Command::new("cp").arg("-r").arg(chart()).arg(&copy).status()?;
    ensure!(copied.success(), "copying the chart");
    let templates = copy.join("haven/templates");
    let text = std::fs::read_to_string(templates.join("NOTES.txt"))?;
    std::fs::write(
        templates.join("_notes.tpl"),
        format!("{{{{- define \"notes\" -}}}}{text}{{{{- end -}}}}"),
    )?;
    let config_map = "{kind: ConfigMap, apiVersion: v1, metadata: {name: notes}, data: {text: {{ include \"notes\" . | quote }}}}";
    std::fs::write(templates.join("notes.yaml"), config_map)?;
    let values_file = copy.join("values.json");
    std::fs::write(&values_file, values.to_string())?;
    let (chart_copy, values_file) =
        (copy.join("haven").display().to_string(), values_file.display().to_string());
    let rendered = helm_ok(&[
        "template",
        "haven",
        &chart_copy,
        "-n",
        "haven-system",
        "-f",
        &values_file,
        "--show-only",
        "templates/notes.yaml",
    ]);
    std::fs::remove_dir_all(&copy)?;
    let documents = yaml_documents(&rendered?)?;
    Ok(documents.first().and_then(|d| d["data"]["text"].as_str()).context("the notes")?.to_owned())
}

#[test]
fn the_notes_say_whether_the_gateway_is_deployed_and_why_not() -> Result<()> {
    for (values, why) in [
        (json!({}), "gateway.publicUrl and gateway.oidc.issuerUrl are not set"),
        (json!({"gateway": {"publicUrl": PUBLIC_URL}}), "gateway.oidc.issuerUrl is not set"),
        (with_gateway(json!({"gateway": {"enabled": false}})), "gateway.enabled is false"),
    ] {
        let notes = notes(&values)?;
        ensure!(
            notes.contains(&format!("The access gateway is not deployed: {why}")),
            "values {values}: {notes}"
        );
    }
    let notes = notes(&with_gateway(json!({"gateway": {"tls": {"secretName": "haven-tls"}}})))?;
    for says in [
        "The access gateway serves https://haven.example.org and each workspace at\nhttps://<workspace>.haven.example.org",
        "kubectl -n haven-gateway create secret generic haven-gateway-oidc --from-file=client-secret=<file>",
        "the TLS Secret haven-tls",
    ] {
        ensure!(notes.contains(says), "the notes do not say {says:?}: {notes}");
    }
    ensure!(!notes.contains("not deployed"), "{notes}");
    Ok(())
}

#[test]
fn the_gateway_runs_in_its_namespace_with_the_operators_image() -> Result<()> {
    let documents = rendered(&with_gateway(json!({})))?;
    let mut made: Vec<(String, String, String)> = gateway_objects(&documents)
        .iter()
        .map(|d| {
            let field = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            (field(&d["kind"]), field(&d["metadata"]["namespace"]), field(&d["metadata"]["name"]))
        })
        .collect();
    made.sort();
    let expected = [
        ("ClusterRole", "", "haven-gateway"),
        ("ClusterRoleBinding", "", "haven-gateway"),
        ("Deployment", GATEWAY_NAMESPACE, "haven-gateway"),
        ("Namespace", "", GATEWAY_NAMESPACE),
        ("PersistentVolume", "", "haven-gateway-access-log"),
        ("PersistentVolumeClaim", GATEWAY_NAMESPACE, "haven-gateway-access-log"),
        ("Secret", GATEWAY_NAMESPACE, "haven-gateway-cookie-key"),
        ("Service", GATEWAY_NAMESPACE, "haven-gateway"),
        ("ServiceAccount", GATEWAY_NAMESPACE, "haven-gateway"),
    ]
    .map(|(k, n, m)| (k.to_owned(), n.to_owned(), m.to_owned()));
    ensure!(made == expected, "the gateway objects are {made:#?}");

    let operator = &find(&documents, "Deployment", "haven")?["spec"]["template"]["spec"]["containers"][0];
    let gateway = &pod_spec(&documents)?["containers"][0];
    ensure!(gateway["image"] == operator["image"], "the gateway runs {}", gateway["image"]);
    ensure!(gateway["imagePullPolicy"] == operator["imagePullPolicy"]);
    let deployment = find(&documents, "Deployment", "haven-gateway")?;
    ensure!(deployment["spec"]["replicas"] == 1, "{}", deployment["spec"]);
    // Its pods are not the operator's: the operator's (immutable) selector must not match them.
    let operator_selector = find(&documents, "Deployment", "haven")?["spec"]["selector"]["matchLabels"]
        .as_object()
        .context("selector")?;
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    ensure!(operator_selector.iter().any(|(k, v)| labels[k] != *v), "the operator selects {labels}");
    let selector = deployment["spec"]["selector"]["matchLabels"].as_object().context("selector")?;
    let service = find(&documents, "Service", "haven-gateway")?;
    ensure!(service["spec"]["selector"].as_object() == Some(selector), "{}", service["spec"]);

    let namespace = find(&documents, "Namespace", GATEWAY_NAMESPACE)?;
    ensure!(namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted");
    ensure!(namespace["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep");
    let binding = find(&documents, "ClusterRoleBinding", "haven-gateway")?;
    ensure!(binding["roleRef"]["name"] == "haven-gateway");
    ensure!(
        binding["subjects"]
            == json!([{"kind": "ServiceAccount", "name": "haven-gateway", "namespace": GATEWAY_NAMESPACE}]),
        "{}",
        binding["subjects"]
    );
    ensure!(pod_spec(&documents)?["serviceAccountName"] == "haven-gateway");
    // A namespace made elsewhere, another release.
    let other = yaml_documents(&render_values(
        "lab",
        "lab-system",
        &with_gateway(
            json!({"gateway": {"createNamespace": false}, "network": {"gatewayNamespace": "lab-door"}}),
        ),
    )?)?;
    ensure!(!other.iter().any(|d| d["kind"] == "Namespace"), "a namespace was made");
    ensure!(find(&other, "Deployment", "lab-haven-gateway")?["metadata"]["namespace"] == "lab-door");
    ensure!(
        find(&other, "PersistentVolume", "lab-haven-gateway-access-log").is_ok(),
        "one volume per release"
    );
    Ok(())
}

#[test]
fn gateway_values_of_the_wrong_type_or_impossible_combinations_are_refused_by_name() -> Result<()> {
    let gateway = [format!("gateway.publicUrl={PUBLIC_URL}"), format!("gateway.oidc.issuerUrl={ISSUER}")];
    let cases: &[(&[&str], &str)] = &[
        (&["gateway.service.type=Foo"], "/gateway/service/type"),
        (&["gateway.replicas=two"], "/gateway/replicas"),
        (&["gateway.replicas=0"], "/gateway/replicas"),
        (&["gateway.enabled=yes"], "/gateway/enabled"),
        (&["gateway.publicUrl=haven.example.org"], "/gateway/publicUrl"),
        (&["gateway.publicUrl=https://haven.example.org/door"], "/gateway/publicUrl"),
        (&["gateway.oidc.issuerUrl=id.example.org"], "/gateway/oidc/issuerUrl"),
        (&["gateway.oidc.scopes={email,profile}"], "/gateway/oidc/scopes"),
        (&["gateway.mfa.amr=otp"], "/gateway/mfa/amr"),
        (&["gateway.session.idle=1d"], "/gateway/session/idle"),
        (&["gateway.service.nodePort=http"], "/gateway/service/nodePort"),
        (&["gateway.accessLog.hostPath=audit"], "/gateway/accessLog/hostPath"),
        (&["gateway.logging.format=yaml"], "/gateway/logging/format"),
        (&["gateway.tls=yes"], "/gateway/tls"),
        (&["gateway.publicURL=x"], "publicURL"),
        // Combinations the schema cannot express, refused by the templates.
        (&["network.gatewayNamespace=haven-system"], "network.gatewayNamespace"),
        (&["gateway.service.nodePort=30443"], "gateway.service.nodePort"),
        (&["gateway.metrics.port=8443"], "gateway.metrics.port"),
        (&["gateway.tes.port=9090", "gateway.tls.secretName=t"], "gateway.tes.port"),
        (&["gateway.tes.tokenLifetime=1d"], "/gateway/tes/tokenLifetime"),
        (&["dataStore.existingClaim=haven-data", "volumeBackend.hostPath.root=/srv"], "gateway.accessLog"),
    ];
    for (sets, field) in cases {
        let chart = chart();
        let mut args = vec!["template", "haven", chart.as_str(), "--namespace", "haven-system"];
        for set in gateway.iter().map(String::as_str).chain(sets.iter().copied()) {
            args.extend(["--set", set]);
        }
        let output = helm(&args)?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        ensure!(!output.status.success(), "--set {sets:?} was accepted");
        ensure!(stderr.contains(field), "--set {sets:?} was refused without naming {field}: {stderr}");
    }
    Ok(())
}

#[test]
fn the_gateway_service_keeps_client_addresses_and_the_ingress_serves_every_workspace_host() -> Result<()> {
    let documents = rendered(&with_gateway(json!({})))?;
    let service = &find(&documents, "Service", "haven-gateway")?["spec"];
    ensure!(service["type"] == "ClusterIP" && service["externalTrafficPolicy"].is_null(), "{service}");
    ensure!(
        service["ports"]
            == json!([{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP", "appProtocol": "http"}])
    );
    ensure!(find(&documents, "Ingress", "haven-gateway").is_err());

    let values = json!({"gateway": {"tls": {"secretName": "haven-tls"}, "service": {"type": "NodePort", "nodePort": 30443}}});
    let documents = rendered(&with_gateway(values))?;
    let service = &find(&documents, "Service", "haven-gateway")?["spec"];
    ensure!(service["type"] == "NodePort" && service["externalTrafficPolicy"] == "Local", "{service}");
    ensure!(
        service["ports"]
            == json!([{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP", "appProtocol": "https", "nodePort": 30443}]),
        "{service}"
    );
    let ports = &pod_spec(&documents)?["containers"][0]["ports"];
    ensure!(ports[0] == json!({"name": "https", "containerPort": 8443, "protocol": "TCP"}), "{ports}");
    // The TES API (with TLS only): in the cluster only, on its own port, which the operator
    // opens to the workspaces of multi-site permits; without it, neither the Service nor the rule.
    let tes = &find(&documents, "Service", "haven-gateway-tes")?["spec"];
    ensure!(
        tes["type"] == "ClusterIP"
            && tes["ports"]
                == json!([{"name": "tes", "port": 8444, "targetPort": "tes", "protocol": "TCP", "appProtocol": "https"}]),
        "{tes}"
    );
    ensure!(ports[2] == json!({"name": "tes", "containerPort": 8444, "protocol": "TCP"}), "{ports}");
    let operator_args = |documents: &[Value]| -> Result<Vec<String>> {
        let container = &find(documents, "Deployment", "haven")?["spec"]["template"]["spec"]["containers"][0];
        Ok(strings(&container["args"]).into_iter().map(str::to_owned).collect())
    };
    let args = operator_args(&documents)?;
    for flag in [
        "--gateway-tes-port=8444",
        "--gateway-tes-role=haven-gateway-tes",
        "--gateway-service-account=haven-gateway",
    ] {
        ensure!(args.contains(&flag.to_owned()), "the operator is not given {flag}: {args:?}");
    }
    // The gateway writes tasks only where the operator binds its TES role (multi-site workspace
    // namespaces): the role is bound by no one here, and the operator may bind that one only.
    let tes_role = find(&documents, "ClusterRole", "haven-gateway-tes")?;
    ensure!(
        tes_role["rules"]
            == json!([{"apiGroups": ["haven.io"], "resources": ["analysistasks"], "verbs": ["get", "list", "create", "patch", "submit-for"]}]),
        "{tes_role}"
    );
    ensure!(
        !documents.iter().any(|d| d["roleRef"]["name"] == "haven-gateway-tes"),
        "the chart binds the TES role"
    );
    let operator_rules = find(&documents, "ClusterRole", "haven-operator")?["rules"].clone();
    let binds: Vec<&Value> = operator_rules
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| strings(&r["verbs"]).contains(&"bind"))
        .collect();
    ensure!(
        binds
            == [
                &json!({"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "resourceNames": ["haven-gateway-tes"], "verbs": ["bind"]})
            ],
        "{binds:?}"
    );
    let off = json!({"gateway": {"tls": {"secretName": "haven-tls"}, "tes": {"enabled": false}}});
    for without in [rendered(&with_gateway(off))?, rendered(&with_gateway(json!({})))?] {
        ensure!(find(&without, "Service", "haven-gateway-tes").is_err());
        ensure!(!operator_args(&without)?.iter().any(|a| a.starts_with("--gateway-tes-port")));
        ensure!(!flags(&without)?.contains_key("tes-listen"));
        ensure!(find(&without, "ClusterRole", "haven-gateway-tes").is_err(), "no TES, no role for tasks");
        let operator_rules = find(&without, "ClusterRole", "haven-operator")?["rules"].to_string();
        ensure!(!operator_rules.contains("\"bind\""), "no TES, nothing to bind: {operator_rules}");
    }
    ensure!(
        !operator_args(&rendered(&json!({}))?)?.iter().any(|a| a.starts_with("--gateway-tes-port")),
        "no gateway, no rule"
    );

    let values = json!({"gateway": {"ingress": {"enabled": true, "className": "nginx",
        "tls": [{"secretName": "haven-tls", "hosts": ["haven.example.org", "*.haven.example.org"]}]}}});
    let documents = rendered(&with_gateway(values))?;
    let ingress = find(&documents, "Ingress", "haven-gateway")?;
    ensure!(ingress["metadata"]["namespace"] == GATEWAY_NAMESPACE);
    ensure!(ingress["spec"]["ingressClassName"] == "nginx");
    let rules = ingress["spec"]["rules"].as_array().context("rules")?;
    let hosts: Vec<&str> = rules.iter().filter_map(|r| r["host"].as_str()).collect();
    ensure!(hosts == ["haven.example.org", "*.haven.example.org"], "{hosts:?}");
    for rule in rules {
        let backend = &rule["http"]["paths"][0]["backend"]["service"];
        ensure!(*backend == json!({"name": "haven-gateway", "port": {"name": "http"}}), "{backend}");
    }
    ensure!(ingress["spec"]["tls"][0]["secretName"] == "haven-tls");
    Ok(())
}
