//! The access gateway's pod as the chart runs it: started with its command-line contract, each
//! file it is given mounted from what the values name, as Pod Security `restricted` allows, with
//! exactly the RBAC it needs, one writer per access log, and a cookie key made once and kept.
//! Rendering only: no cluster.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, ensure};
use haven_e2e::repo_path;
use serde_json::{Value, json};

use super::find;
use super::gateway::{
    GATEWAY_NAMESPACE, ISSUER, PUBLIC_URL, flags, pod_spec, rendered, strings, with_gateway,
};

/// Every flag of `haven gateway` (its contract); the chart passes no other.
const CONTRACT: &[&str] = &[
    "listen",
    "public-url",
    "tls-cert-file",
    "tls-key-file",
    "oidc-issuer-url",
    "oidc-client-id",
    "oidc-client-secret-file",
    "oidc-ca-file",
    "oidc-username-claim",
    "oidc-username-prefix",
    "oidc-scopes",
    "mfa-amr",
    "mfa-acr",
    "cookie-key-file",
    "access-log",
    "ide-port",
    "recheck-interval",
    "session-idle",
    "session-lifetime",
    "metrics-address",
    "tes-listen",
    "tes-url",
    "tes-token-lifetime",
    "log-level",
    "log-format",
];

#[test]
fn the_gateway_is_started_with_its_command_line_contract() -> Result<()> {
    let documents = rendered(&with_gateway(json!({})))?;
    let expected: BTreeMap<String, String> = [
        ("listen", "0.0.0.0:8443"),
        ("public-url", PUBLIC_URL),
        ("oidc-issuer-url", ISSUER),
        ("oidc-client-id", "haven-gateway"),
        ("oidc-client-secret-file", "/oidc/client-secret"),
        ("oidc-username-claim", "email"),
        ("oidc-scopes", "openid email profile"),
        ("mfa-amr", "otp,mfa,hwk,swk,totp"),
        ("cookie-key-file", "/cookie-key/key"),
        ("access-log", "/audit/access.log"),
        ("ide-port", "8888"),
        ("recheck-interval", "2s"),
        ("session-idle", "1h"),
        ("session-lifetime", "12h"),
        ("metrics-address", "0.0.0.0:9090"),
        ("log-level", "info"),
        ("log-format", "json"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let plain = flags(&documents)?;
    ensure!(plain == expected, "haven gateway is given {plain:#?}");

    let values = with_gateway(json!({
        "gateway": {"tls": {"secretName": "haven-tls"}, "oidc": {"caConfigMap": {"name": "corporate-ca", "key": "bundle.pem"},
            "clientSecret": {"name": "idp", "key": "secret"}, "usernameClaim": "sub", "usernamePrefix": "oidc:"},
            "mfa": {"acr": ["phr", "phrh"]}, "logging": {"level": "debug"}},
        "network": {"gatewayNamespace": "door"}, "workspace": {"idePort": 8080},
    }));
    let documents = rendered(&values)?;
    let full = flags(&documents)?;
    for (flag, value) in [
        ("tls-cert-file", "/tls/tls.crt"),
        ("tls-key-file", "/tls/tls.key"),
        ("oidc-ca-file", "/oidc-ca/ca.crt"),
        ("oidc-username-claim", "sub"),
        ("oidc-username-prefix", "oidc:"),
        ("mfa-acr", "phr,phrh"),
        ("ide-port", "8080"),
        ("tes-listen", "0.0.0.0:8444"),
        ("tes-url", "https://haven-gateway-tes.door.svc:8444"),
        ("tes-token-lifetime", "8h"),
        ("log-level", "debug"),
        ("log-format", "json"),
    ] {
        ensure!(full.get(flag).map(String::as_str) == Some(value), "--{flag} is {:?}", full.get(flag));
    }
    let unknown: Vec<_> = full.keys().filter(|f| !CONTRACT.contains(&f.as_str())).collect();
    ensure!(unknown.is_empty(), "flags outside the contract: {unknown:?}");

    // Every file a flag names is in a volume of what the values name.
    let pod = pod_spec(&documents)?;
    let container = &pod["containers"][0];
    for (flag, source) in [
        ("tls-cert-file", ("secret", "haven-tls", "tls.crt")),
        ("tls-key-file", ("secret", "haven-tls", "tls.key")),
        ("oidc-client-secret-file", ("secret", "idp", "secret")),
        ("oidc-ca-file", ("configMap", "corporate-ca", "bundle.pem")),
        ("cookie-key-file", ("secret", "haven-gateway-cookie-key", "key")),
        ("access-log", ("persistentVolumeClaim", "haven-gateway-access-log", "")),
    ] {
        let file = std::path::Path::new(&full[flag]);
        let (directory, name) = (file.parent().context("dir")?, file.file_name().context("name")?);
        let mount = container["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["mountPath"] == directory.display().to_string())
            .with_context(|| format!("--{flag}: nothing is mounted at {}", directory.display()))?;
        let volume = pod["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == mount["name"])
            .context("volume")?;
        let (kind, object, key) = source;
        let named = &volume[kind][if kind == "configMap" {
            "name"
        } else if kind == "secret" {
            "secretName"
        } else {
            "claimName"
        }];
        ensure!(named == object, "--{flag}: {volume}");
        if !key.is_empty() {
            let item =
                volume[kind]["items"].as_array().and_then(|items| items.iter().find(|i| i["key"] == key));
            ensure!(item.is_some_and(|i| i["path"] == name.to_string_lossy().as_ref()), "--{flag}: {volume}");
        }
    }
    Ok(())
}

#[test]
fn the_gateway_pod_meets_pod_security_restricted_by_its_fields() -> Result<()> {
    let documents = rendered(&with_gateway(json!({"gateway": {"tls": {"secretName": "haven-tls"},
        "oidc": {"caConfigMap": {"name": "corporate-ca"}}}})))?;
    let pod = pod_spec(&documents)?;
    ensure!(pod["automountServiceAccountToken"] == true, "the gateway needs the API");
    for host in ["hostNetwork", "hostPID", "hostIPC"] {
        ensure!(pod[host].is_null() || pod[host] == false, "{host}");
    }
    let context = &pod["securityContext"];
    ensure!(context["runAsNonRoot"] == true && context["runAsUser"] == 65532, "{context}");
    ensure!(context["seccompProfile"]["type"] == "RuntimeDefault", "{context}");
    // Restricted allows these volume types only (no hostPath: the access log is a claim).
    let allowed = [
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    ];
    for volume in pod["volumes"].as_array().context("volumes")? {
        let kinds: Vec<&String> =
            volume.as_object().context("volume")?.keys().filter(|k| *k != "name").collect();
        ensure!(kinds.len() == 1 && allowed.contains(&kinds[0].as_str()), "volume {volume}");
    }
    let containers = pod["containers"].as_array().context("containers")?;
    ensure!(containers.len() == 1 && pod["initContainers"].is_null());
    let container = &containers[0];
    let context = &container["securityContext"];
    ensure!(context["allowPrivilegeEscalation"] == false, "{context}");
    ensure!(context["privileged"].is_null() || context["privileged"] == false, "{context}");
    ensure!(context["readOnlyRootFilesystem"] == true, "{context}");
    ensure!(
        strings(&context["capabilities"]["drop"]) == ["ALL"] && context["capabilities"]["add"].is_null(),
        "{context}"
    );
    ensure!(
        context["runAsUser"].is_null() && context["runAsNonRoot"].is_null(),
        "the pod's user is overridden"
    );
    for port in container["ports"].as_array().context("ports")? {
        ensure!(port["hostPort"].is_null(), "{port}");
    }
    // Probes on the metrics port.
    ensure!(container["livenessProbe"]["httpGet"] == json!({"path": "/healthz", "port": "metrics"}));
    ensure!(container["readinessProbe"]["httpGet"] == json!({"path": "/readyz", "port": "metrics"}));
    ensure!(container["resources"]["limits"]["memory"] == "256Mi", "{}", container["resources"]);
    Ok(())
}

/// Grants as `group/resource:verb`, as in the operator's allow-list test.
fn grants(rules: &[Value]) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for rule in rules {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                found.extend(strings(&rule["verbs"]).iter().map(|verb| format!("{group}/{resource}:{verb}")));
            }
        }
    }
    found
}

#[test]
fn the_gateways_rbac_is_exactly_its_allow_list() -> Result<()> {
    let documents = rendered(&with_gateway(json!({"gateway": {"tls": {"secretName": "haven-tls"}}})))?;
    let rules =
        find(&documents, "ClusterRole", "haven-gateway")?["rules"].as_array().cloned().unwrap_or_default();
    ensure!(rules.iter().all(|r| r["resourceNames"].is_null()), "a rule limited to names: update this test");
    // An allow-list: each grant with why the gateway holds it. A new one fails here until someone
    // writes why (gateway-rbac.yaml says the same next to each rule).
    let allowed: BTreeSet<String> = [
        (
            "authorization.k8s.io/subjectaccessreviews",
            "create",
            "asks the API server whether a person may connect",
        ),
        ("haven.io/workspaces", "get,list,watch,patch", "routes to them; patches only haven.io/last-active"),
        ("haven.io/datapermits", "get,list,watch", "the controls in force, e.g. a second factor"),
        ("/services", "list,watch", "each workspace's IDE Service and the tier's rules on it"),
        ("discovery.k8s.io/endpointslices", "list,watch", "whether an IDE is ready"),
        ("events.k8s.io/events", "create,patch", "kube-runtime's Recorder (events.k8s.io/v1)"),
    ]
    .iter()
    .flat_map(|(what, verbs, _why)| verbs.split(',').map(move |verb| format!("{what}:{verb}")))
    .collect();
    ensure!(grants(&rules) == allowed, "the gateway's ClusterRole grants {:#?}", grants(&rules));
    // It has no Role anywhere, and with rbac.create false no grant at all.
    ensure!(!documents.iter().any(|d| d["kind"] == "Role" && d["metadata"]["name"] == "haven-gateway"));
    let without = rendered(&with_gateway(json!({"rbac": {"create": false}})))?;
    ensure!(find(&without, "ClusterRole", "haven-gateway").is_err());
    ensure!(find(&without, "ServiceAccount", "haven-gateway").is_ok());
    Ok(())
}

#[test]
fn the_access_log_has_one_writer_and_lives_where_researchers_cannot_reach() -> Result<()> {
    let documents = rendered(&with_gateway(json!({})))?;
    ensure!(find(&documents, "Deployment", "haven-gateway")?["spec"]["strategy"]["type"] == "Recreate");
    let volume = find(&documents, "PersistentVolume", "haven-gateway-access-log")?;
    let claim = find(&documents, "PersistentVolumeClaim", "haven-gateway-access-log")?;
    // The data store's audit/, where `kubectl haven access` reads it; never under workspaces/
    // or extracts/, which researchers' volumes come from.
    ensure!(volume["spec"]["hostPath"]["path"] == "/var/lib/haven/audit", "{volume}");
    ensure!(volume["spec"]["persistentVolumeReclaimPolicy"] == "Retain");
    ensure!(
        volume["spec"]["claimRef"]
            == json!({"namespace": GATEWAY_NAMESPACE, "name": "haven-gateway-access-log"}),
        "{volume}"
    );
    ensure!(
        claim["spec"]["volumeName"] == "haven-gateway-access-log" && claim["spec"]["storageClassName"] == ""
    );
    ensure!(
        volume["spec"]["storageClassName"] == ""
            && volume["spec"]["capacity"] == claim["spec"]["resources"]["requests"]
    );

    let values = json!({"gateway": {"replicas": 2, "accessLog": {"existingClaim": "gateway-audit"}}});
    let documents = rendered(&with_gateway(values))?;
    ensure!(find(&documents, "PersistentVolume", "haven-gateway-access-log").is_err());
    ensure!(find(&documents, "PersistentVolumeClaim", "haven-gateway-access-log").is_err());
    let pod = pod_spec(&documents)?;
    let log = pod["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == "access-log")
        .context("access-log")?;
    ensure!(log["persistentVolumeClaim"]["claimName"] == "gateway-audit", "{log}");
    // Two pods: one log each, named by the pod.
    ensure!(flags(&documents)?["access-log"] == "/audit/access-$(POD_NAME).log");
    let env = &pod["containers"][0]["env"];
    ensure!(
        env[0]["name"] == "POD_NAME" && env[0]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name",
        "{env}"
    );
    ensure!(find(&documents, "Deployment", "haven-gateway")?["spec"]["strategy"]["type"] == "RollingUpdate");
    Ok(())
}

#[test]
fn the_cookie_key_is_made_once_and_kept() -> Result<()> {
    // Reused from the installed Secret on upgrade: `lookup` finds it (without a cluster, as here,
    // it finds nothing, so this reads the template).
    let template = std::fs::read_to_string(repo_path("charts/haven/templates/gateway-cookie-key.yaml"))?;
    ensure!(template.contains(r#"dig "data" "key" "" (lookup "v1" "Secret" $namespace $name)"#), "no lookup");
    ensure!(
        template.contains(r#"$key | default (randBytes 64)"#),
        "the key is not made only when none exists"
    );
    let key = |documents: &[Value]| -> Result<String> {
        let secret = find(documents, "Secret", "haven-gateway-cookie-key")?;
        ensure!(secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep", "{secret}");
        Ok(secret["data"]["key"].as_str().context("data.key")?.to_owned())
    };
    let (first, second) =
        (key(&rendered(&with_gateway(json!({})))?)?, key(&rendered(&with_gateway(json!({})))?)?);
    // 64 bytes in base64: 88 characters, two of them padding.
    ensure!(first.len() == 88 && first.ends_with("==") && !first[..86].contains('='), "{first}");
    ensure!(first != second, "the key is not random");

    let values =
        json!({"gateway": {"cookieKey": {"existingSecret": "gateway-cookies", "existingSecretKey": "hmac"}}});
    let documents = rendered(&with_gateway(values))?;
    ensure!(!documents.iter().any(|d| d["kind"] == "Secret"), "a Secret was made beside the existing one");
    let pod = pod_spec(&documents)?;
    let volume = pod["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == "cookie-key")
        .context("cookie-key")?;
    ensure!(
        volume["secret"]["secretName"] == "gateway-cookies"
            && volume["secret"]["items"] == json!([{"key": "hmac", "path": "key"}]),
        "{volume}"
    );
    Ok(())
}
