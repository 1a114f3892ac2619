//! Multi-site permits as the chart runs them (`haven federation`): only when this site is named,
//! in the release namespace on the operator's image and data store, started with flags
//! `haven federation` takes, restricted, with exactly the RBAC its code uses, and refusing values
//! it cannot use by name. Rendering only (and `haven federation --help`): no cluster.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};

use super::gateway::{notes, rendered, strings};
use super::{chart, find, helm};

const SITE: &str = "leeds";

/// `values` with this site named.
fn with_site(more: Value) -> Value {
    let mut values = more;
    values["federation"]["site"] = json!(SITE);
    values
}

/// With the requesting site's API served from the Secret `leeds-server`.
fn listening(more: Value) -> Value {
    let mut values = with_site(more);
    values["federation"]["listen"]["enabled"] = json!(true);
    values["federation"]["listen"]["tlsSecret"] = json!("leeds-server");
    values
}

fn federation_objects(documents: &[Value]) -> Vec<(String, String, String)> {
    let mut made: Vec<_> = documents
        .iter()
        .filter(|d| d["metadata"]["labels"]["app.kubernetes.io/component"] == "federation")
        .map(|d| {
            let field = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            (field(&d["kind"]), field(&d["metadata"]["namespace"]), field(&d["metadata"]["name"]))
        })
        .collect();
    made.sort();
    made
}

fn pod_spec(documents: &[Value]) -> Result<&Value> {
    Ok(&find(documents, "Deployment", "haven-federation")?["spec"]["template"]["spec"])
}

fn args(documents: &[Value]) -> Result<Vec<String>> {
    let args = pod_spec(documents)?["containers"][0]["args"].as_array().context("args")?;
    Ok(args.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect())
}

/// The `--flag=value` arguments after the subcommand, which must be `federation`.
fn flags(documents: &[Value]) -> Result<BTreeMap<String, String>> {
    let args = args(documents)?;
    ensure!(args.first().map(String::as_str) == Some("federation"), "not `federation`: {args:?}");
    let mut flags = BTreeMap::new();
    for arg in &args[1..] {
        let (flag, value) = arg.strip_prefix("--").and_then(|a| a.split_once('=')).context("--flag=value")?;
        ensure!(flags.insert(flag.to_owned(), value.to_owned()).is_none(), "--{flag} given twice");
    }
    Ok(flags)
}

fn haven(args: &[&str]) -> Result<std::process::Output> {
    let bin = std::env::var("HAVEN_BIN").context("HAVEN_BIN (set by run-e2e.sh)")?;
    Ok(std::process::Command::new(bin).args(args).output()?)
}

#[test]
fn federation_is_deployed_only_when_this_site_is_named() -> Result<()> {
    for values in [json!({}), json!({"federation": {"listen": {"enabled": true, "tlsSecret": "x"}}})] {
        let made = federation_objects(&rendered(&values)?);
        ensure!(made.is_empty(), "values {values} deployed federation objects: {made:?}");
    }
    let expected = |kinds: &[(&str, &str)]| -> Vec<(String, String, String)> {
        kinds.iter().map(|(k, n)| (k.to_string(), n.to_string(), "haven-federation".to_owned())).collect()
    };
    let agent = [
        ("ClusterRole", ""),
        ("ClusterRoleBinding", ""),
        ("Deployment", "haven-system"),
        ("Role", "haven-system"),
        ("RoleBinding", "haven-system"),
        ("ServiceAccount", "haven-system"),
        ("ValidatingAdmissionPolicy", ""),
        ("ValidatingAdmissionPolicyBinding", ""),
    ];
    let made = federation_objects(&rendered(&with_site(json!({})))?);
    ensure!(made == expected(&agent), "the agent alone made {made:#?}");
    let mut hub = agent.to_vec();
    hub.insert(5, ("Service", "haven-system"));
    let made = federation_objects(&rendered(&listening(json!({})))?);
    ensure!(made == expected(&hub), "agent and hub made {made:#?}");
    // No grant at all without rbac.create.
    let made = federation_objects(&rendered(&with_site(json!({"rbac": {"create": false}})))?);
    ensure!(made == expected(&[("Deployment", "haven-system"), ("ServiceAccount", "haven-system")]));
    Ok(())
}

#[test]
fn the_notes_say_how_to_turn_federation_on() -> Result<()> {
    let off = notes(&json!({}))?;
    ensure!(off.contains("Multi-site permits are off: set federation.site"), "{off}");
    let on = notes(&listening(json!({})))?;
    for says in [
        "`haven federation` runs as site leeds",
        "kubectl -n haven-system create secret tls <name>",
        "the Service haven-system/haven-federation\n(ClusterIP, port 8444) over mutual TLS",
        "the Secret leeds-server (kubernetes.io/tls)",
        "kubectl -n haven-system rollout status deployment/haven-federation",
    ] {
        ensure!(on.contains(says), "the notes do not say {says:?}: {on}");
    }
    ensure!(!on.contains("are off"), "{on}");
    Ok(())
}

#[test]
fn the_federation_runs_with_the_operators_image_and_data_store() -> Result<()> {
    let on_a_claim = json!({"dataStore": {"existingClaim": "haven-data", "mountPath": "/srv/haven"},
        "volumeBackend": {"hostPath": {"root": "/srv/haven"}}});
    for values in [json!({}), on_a_claim] {
        let documents = rendered(&with_site(values.clone()))?;
        let operator = &find(&documents, "Deployment", "haven")?["spec"]["template"]["spec"];
        let pod = pod_spec(&documents)?;
        let (theirs, ours) = (&operator["containers"][0], &pod["containers"][0]);
        ensure!(ours["image"] == theirs["image"] && ours["imagePullPolicy"] == theirs["imagePullPolicy"]);
        let volume = |pod: &Value| {
            pod["volumes"].as_array().into_iter().flatten().find(|v| v["name"] == "data-store").cloned()
        };
        ensure!(volume(pod).is_some() && volume(pod) == volume(operator), "values {values}: {pod}");
        let mount = |c: &Value| {
            c["volumeMounts"].as_array().into_iter().flatten().find(|m| m["name"] == "data-store").cloned()
        };
        ensure!(mount(ours).is_some() && mount(ours) == mount(theirs), "values {values}: {ours}");
        ensure!(Some(json!(flags(&documents)?["data-root"])) == mount(ours).map(|m| m["mountPath"].clone()));
        // As the operator's user, which owns the data store.
        ensure!(pod["securityContext"] == operator["securityContext"]);
    }
    let documents = rendered(&with_site(json!({})))?;
    let deployment = find(&documents, "Deployment", "haven-federation")?;
    // One agent, and the old one gone before the new starts: audit/federation.log has one writer.
    ensure!(deployment["spec"]["replicas"] == 1 && deployment["spec"]["strategy"]["type"] == "Recreate");
    ensure!(pod_spec(&documents)?["serviceAccountName"] == "haven-federation");
    // Its pods are not the operator's: the operator's (immutable) selector must not match them.
    let operator_selector = find(&documents, "Deployment", "haven")?["spec"]["selector"]["matchLabels"]
        .as_object()
        .context("selector")?;
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    ensure!(operator_selector.iter().any(|(k, v)| labels[k] != *v), "the operator selects {labels}");
    Ok(())
}

#[test]
fn the_federation_is_started_with_flags_haven_federation_takes() -> Result<()> {
    let help = haven(&["federation", "--help"])?;
    ensure!(help.status.success(), "haven federation --help: {}", String::from_utf8_lossy(&help.stderr));
    let help = String::from_utf8(help.stdout)?;
    let taken: BTreeSet<&str> = help
        .split(|c: char| c.is_whitespace() || c == ',' || c == '[')
        .filter_map(|word| word.strip_prefix("--"))
        .filter(|flag| !flag.is_empty() && flag.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        .collect();
    ensure!(taken.contains("site") && taken.contains("tls-key"), "read no flags from {help}");

    let agent = flags(&rendered(&with_site(json!({"federation": {"pullIntervalMs": 500}})))?)?;
    let expected: BTreeMap<String, String> = [
        ("site", SITE),
        ("data-root", "/data"),
        ("namespace", "haven-system"),
        ("pull-interval-ms", "500"),
        ("log-format", "json"),
        ("log-level", "info"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    ensure!(agent == expected, "haven federation is given {agent:#?}");

    let documents = rendered(&listening(json!({"federation": {"listen": {"port": 9444}}})))?;
    let hub = flags(&documents)?;
    for (flag, value) in
        [("listen", "0.0.0.0:9444"), ("tls-cert", "/tls/tls.crt"), ("tls-key", "/tls/tls.key")]
    {
        ensure!(hub.get(flag).map(String::as_str) == Some(value), "--{flag} is {:?}", hub.get(flag));
    }
    let unknown: Vec<_> = hub.keys().filter(|f| !taken.contains(f.as_str())).collect();
    ensure!(unknown.is_empty(), "flags `haven federation --help` does not list: {unknown:?}");
    // The binary parses each (its type too): clap stops at --help only once all before it parsed.
    let args = args(&documents)?;
    let mut with_help: Vec<&str> = args.iter().map(String::as_str).collect();
    with_help.push("--help");
    let parsed = haven(&with_help)?;
    ensure!(parsed.status.success(), "haven refuses {args:?}: {}", String::from_utf8_lossy(&parsed.stderr));

    // The key pair is mounted from the Secret the values name, where the flags point.
    let pod = pod_spec(&documents)?;
    let mount = pod["containers"][0]["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["mountPath"] == "/tls")
        .context("nothing is mounted at /tls")?;
    ensure!(mount["readOnly"] == true, "{mount}");
    let volume = pod["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == mount["name"])
        .context("volume")?;
    ensure!(
        volume["secret"]["secretName"] == "leeds-server"
            && volume["secret"]["items"]
                == json!([{"key": "tls.crt", "path": "tls.crt"}, {"key": "tls.key", "path": "tls.key"}]),
        "{volume}"
    );
    let port = &pod["containers"][0]["ports"];
    ensure!(*port == json!([{"name": "https", "containerPort": 9444, "protocol": "TCP"}]), "{port}");
    let service = &find(&documents, "Service", "haven-federation")?["spec"];
    ensure!(
        service["ports"]
            == json!([{"name": "https", "port": 9444, "targetPort": "https", "protocol": "TCP", "appProtocol": "https"}]),
        "{service}"
    );
    let selector = &find(&documents, "Deployment", "haven-federation")?["spec"]["selector"]["matchLabels"];
    ensure!(service["selector"] == *selector, "{service}");
    let documents = rendered(&listening(
        json!({"federation": {"service": {"type": "LoadBalancer", "nodePort": 30444}}}),
    ))?;
    let service = &find(&documents, "Service", "haven-federation")?["spec"];
    ensure!(service["type"] == "LoadBalancer" && service["ports"][0]["nodePort"] == 30444, "{service}");
    Ok(())
}

#[test]
fn the_federation_pod_is_restricted() -> Result<()> {
    let documents = rendered(&listening(json!({})))?;
    let pod = pod_spec(&documents)?;
    ensure!(pod["automountServiceAccountToken"] == true, "the federation needs the API");
    for host in ["hostNetwork", "hostPID", "hostIPC"] {
        ensure!(pod[host].is_null() || pod[host] == false, "{host}");
    }
    let context = &pod["securityContext"];
    ensure!(context["runAsNonRoot"] == true && context["runAsUser"] == 65532, "{context}");
    ensure!(context["seccompProfile"]["type"] == "RuntimeDefault", "{context}");
    let containers = pod["containers"].as_array().context("containers")?;
    ensure!(containers.len() == 1 && pod["initContainers"].is_null());
    let context = &containers[0]["securityContext"];
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
    for port in containers[0]["ports"].as_array().context("ports")? {
        ensure!(port["hostPort"].is_null(), "{port}");
    }
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

fn allow(list: &[(&str, &str, &str)]) -> BTreeSet<String> {
    list.iter().flat_map(|(what, verbs, _why)| verbs.split(',').map(move |v| format!("{what}:{v}"))).collect()
}

#[test]
fn the_federations_rbac_is_exactly_what_its_code_uses() -> Result<()> {
    let documents = rendered(&listening(json!({})))?;
    let rules = |kind: &str| -> Result<Vec<Value>> {
        Ok(find(&documents, kind, "haven-federation")?["rules"].as_array().cloned().unwrap_or_default())
    };
    let (cluster, namespace) = (rules("ClusterRole")?, rules("Role")?);
    ensure!(cluster.iter().all(|r| r["resourceNames"].is_null()), "update this test");
    // Only the credential Secrets by name: the permits' pseudonymisation keys live beside them.
    ensure!(
        namespace.iter().all(|r| r["resourceNames"] == json!(["federation-hub"])),
        "the Role reads Secrets beyond the credentials: {namespace:#?}"
    );
    // An allow-list: each grant with why the federation holds it. A new one fails here until
    // someone writes why (federation-rbac.yaml says the same next to each rule).
    let cluster_allowed = allow(&[
        ("haven.io/sites", "list,watch", "the peers, watched"),
        ("haven.io/sites/status", "patch", "the agent's Connected condition"),
        ("events.k8s.io/events", "create,patch", "Events on tasks: each site's state, a delivery"),
        ("haven.io/analysistasks", "get,list,watch", "the hub offers them; read afresh before a write"),
        ("haven.io/analysistasks/status", "update", "what data sites report (replace_status)"),
        (
            "haven.io/workspaces",
            "get,list,watch,create,patch,delete",
            "the hub reads them; the agent applies, finds and deletes task workspaces",
        ),
        ("haven.io/datapermits", "list,watch", "each task judged against its permit"),
        ("batch/jobs", "get,create", "the task, in its task workspace"),
        ("apps/statefulsets", "get", "the environment's pod template the Job is made from"),
        ("haven.io/airlockrequests", "get,create", "the outputs' export, one per task"),
        ("authentication.k8s.io/selfsubjectreviews", "create", "who it is: the exports' requester"),
    ]);
    ensure!(grants(&cluster) == cluster_allowed, "the ClusterRole grants {:#?}", grants(&cluster));
    let namespace_allowed = allow(&[("/secrets", "get", "this site's client certificate for each peer")]);
    ensure!(grants(&namespace) == namespace_allowed, "the Role grants {:#?}", grants(&namespace));
    ensure!(find(&documents, "Role", "haven-federation")?["metadata"]["namespace"] == "haven-system");
    let subjects =
        json!([{"kind": "ServiceAccount", "name": "haven-federation", "namespace": "haven-system"}]);
    for kind in ["ClusterRoleBinding", "RoleBinding"] {
        let binding = find(&documents, kind, "haven-federation")?;
        ensure!(
            binding["roleRef"]["name"] == "haven-federation" && binding["subjects"] == subjects,
            "{binding}"
        );
    }
    Ok(())
}

#[test]
fn federation_values_it_cannot_use_are_refused_by_name() -> Result<()> {
    let site = format!("federation.site={SITE}");
    let cases: &[(&[&str], &str)] = &[
        (&["federation.site=Leeds"], "/federation/site"),
        (&["federation.site=leeds.ac.uk"], "/federation/site"),
        (&["federation.site=-leeds"], "/federation/site"),
        (&["federation.listen.port=0"], "/federation/listen/port"),
        (&["federation.listen.enabled=yes"], "/federation/listen/enabled"),
        (&["federation.service.type=Ingress"], "/federation/service/type"),
        (&["federation.pullIntervalMs=fast"], "/federation/pullIntervalMs"),
        (&["federation.pullIntervalMs=10"], "/federation/pullIntervalMs"),
        (&["federation.resources.limits.memory=lots"], "/federation/resources/limits/memory"),
        (&["federation.sites=leeds"], "sites"),
        // Combinations the schema cannot express, refused by the templates.
        (&["federation.listen.enabled=true"], "federation.listen.tlsSecret"),
        (
            &[
                "federation.listen.enabled=true",
                "federation.listen.tlsSecret=s",
                "federation.service.nodePort=30444",
            ],
            "federation.service.nodePort",
        ),
    ];
    for (sets, field) in cases {
        let chart = chart();
        let mut args =
            vec!["template", "haven", chart.as_str(), "--namespace", "haven-system", "--set", &site];
        for set in *sets {
            args.extend(["--set", set]);
        }
        let output = helm(&args)?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        ensure!(!output.status.success(), "--set {sets:?} was accepted");
        ensure!(stderr.contains(field), "--set {sets:?} was refused without naming {field}: {stderr}");
    }
    let long = format!("federation.site={}", "a".repeat(64));
    let output = helm(&["template", "haven", &chart(), "--set", &long])?;
    ensure!(!output.status.success(), "a 64-character site name was accepted");
    Ok(())
}

/// RBAC grants jobs, export requests and workspaces cluster-wide (task namespaces are made at
/// run time); the federation's own admission policy holds its ServiceAccount to task
/// workspaces and to Jobs that can mount no Secret.
#[test]
fn the_federations_service_account_is_held_to_task_workspaces_at_admission() -> Result<()> {
    let documents = rendered(&with_site(json!({})))?;
    let policy = find(&documents, "ValidatingAdmissionPolicy", "haven-federation")?;
    let condition = policy["spec"]["matchConditions"][0]["expression"].as_str().unwrap_or_default();
    ensure!(
        condition == "request.userInfo.username == 'system:serviceaccount:haven-system:haven-federation'",
        "{condition}"
    );
    let rules = policy["spec"]["validations"].to_string();
    for says in ["ws-task-", "persistentVolumeClaim", "emptyDir", "serviceAccountName", "startsWith('task-')"]
    {
        ensure!(rules.contains(says), "the policy does not check {says}: {rules}");
    }
    let binding = find(&documents, "ValidatingAdmissionPolicyBinding", "haven-federation")?;
    ensure!(binding["spec"]["validationActions"] == json!(["Deny"]), "{binding}");
    Ok(())
}
