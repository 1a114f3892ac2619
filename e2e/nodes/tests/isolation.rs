//! The walls, proven by packets on a real node (SATRE 2.2.09, 2.2.10, 2.2.11, 3.1.12, 2.1.08).
//!
//! Two workspaces (A: DNS only; B: a permit with a package mirror), a pod in the gateway
//! namespace and a bystander pod elsewhere. Every probe that Haven's policies must block is
//! run twice: first as Haven configured the cluster (blocked), then with the policies
//! relaxed by an allow-all NetworkPolicy in the namespaces involved (the same probe, from the
//! same pod to the same address, now connects). An enforcer that fails open, or a target
//! that was never listening, fails the test either way. Allowed paths (DNS, the mirror on its
//! port, the gateway to the IDE) are asserted as they are. At the end the node's guard must
//! have dropped nothing: no probe sent a packet off the node.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use haven_e2e::kubectl_ok;
use haven_e2e_nodes::{
    Probe, apply, apply_as, guard_drops, node, permit_and_workspace, pod_ip, probe, service_ip, testenv_pod,
};
use serde_json::json;

const GATEWAY: &str = "haven-gateway";
const BYSTANDER: &str = "nodes-bystander";
/// The chart's operator identity (release `haven` in `haven-system`, as e2e/run-nodes.sh installs it).
const OPERATOR: &str = "system:serviceaccount:haven-system:haven";

/// One probe: from a pod, a `haven-testenv` command (connect, get or resolve).
struct Case {
    what: String,
    namespace: String,
    pod: &'static str,
    args: Vec<String>,
}

impl Case {
    fn new(what: impl Into<String>, namespace: &str, pod: &'static str, args: &[&str]) -> Self {
        Self {
            what: what.into(),
            namespace: namespace.to_owned(),
            pod,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    fn run(&self) -> Result<Probe> {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        probe(&self.namespace, self.pod, &args)
    }
}

/// An allow-all NetworkPolicy: policies are additive, so it opens whatever Haven's closed.
fn relax(namespace: &str) -> serde_json::Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": "nodes-test-relax", "namespace": namespace},
           "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [{}], "egress": [{}]}})
}

#[test]
fn isolation_matrix_by_packets_with_an_allowed_twin_for_every_blocked_probe() -> Result<()> {
    let node = node()?;
    let started = Instant::now();
    let drops_before = guard_drops()?;
    permit_and_workspace("iso-a", "erin@example.org", json!({}))?;
    permit_and_workspace(
        "iso-b",
        "fay@example.org",
        json!({"egress": "PackageMirror", "packageMirror": {"cidr": format!("{}/32", node.mirror), "ports": [3128]}}),
    )?;
    testenv_pod(GATEWAY)?;
    testenv_pod(BYSTANDER)?;
    let (a, b) = ("ws-iso-a", "ws-iso-b");
    let a_ide = format!("{}:8888", pod_ip(a, "workspace-0")?);
    let a_service = format!("{}:8888", service_ip(a, "workspace")?);
    let b_ide = format!("{}:8888", pod_ip(b, "workspace-0")?);
    let b_service = format!("{}:8888", service_ip(b, "workspace")?);
    let operator = kubectl_ok(&[
        "-n",
        "haven-system",
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/name=haven",
        "-o",
        "jsonpath={.items[0].status.podIP}",
    ])?;
    let operator_metrics = format!("{}:8080", operator.trim());
    let bystander = format!("{}:8888", pod_ip(BYSTANDER, "testenv")?);
    let internet_http = format!("{}:80", node.internet);
    let internet_https = format!("{}:443", node.internet);
    let metadata = format!("{}:80", node.metadata);
    let mirror = format!("{}:3128", node.mirror);
    let mirror_other_port = format!("{}:80", node.mirror);
    println!("setup (two permits, two workspaces, two pods): {:.1?}", started.elapsed());

    let allowed = [
        Case::new(
            "A resolves a cluster name through CoreDNS",
            a,
            "workspace-0",
            &["resolve", "kubernetes.default.svc.cluster.local"],
        ),
        Case::new("B reaches its package mirror on its port", b, "workspace-0", &["get", &mirror]),
        Case::new("the gateway namespace reaches A's IDE", GATEWAY, "testenv", &["get", &a_ide]),
        Case::new("the gateway namespace reaches A's IDE Service", GATEWAY, "testenv", &["get", &a_service]),
    ];
    let blocked = [
        Case::new("A to B's IDE", a, "workspace-0", &["get", &b_ide]),
        Case::new("A to B's IDE Service", a, "workspace-0", &["get", &b_service]),
        Case::new("A to the operator's metrics port", a, "workspace-0", &["connect", &operator_metrics]),
        Case::new("A to the API server's Service", a, "workspace-0", &["connect", "10.96.0.1:443"]),
        Case::new("A to a pod in an unrelated namespace", a, "workspace-0", &["get", &bystander]),
        Case::new("A to the internet (80)", a, "workspace-0", &["get", &internet_http]),
        Case::new("A to the internet (443)", a, "workspace-0", &["connect", &internet_https]),
        Case::new("A to the cloud metadata address", a, "workspace-0", &["get", &metadata]),
        Case::new("A to B's package mirror", a, "workspace-0", &["get", &mirror]),
        Case::new("B to its mirror's host on another port", b, "workspace-0", &["get", &mirror_other_port]),
        Case::new("B to the internet", b, "workspace-0", &["get", &internet_http]),
        Case::new("an unrelated namespace to A's IDE", BYSTANDER, "testenv", &["get", &a_ide]),
        Case::new("an unrelated namespace to A's IDE Service", BYSTANDER, "testenv", &["get", &a_service]),
    ];

    let matrix = Instant::now();
    let mut failures = Vec::new();
    for case in &allowed {
        let seen = case.run()?;
        println!("allowed  {:<48} {}", case.what, seen.line);
        if !seen.ok {
            failures.push(format!("{} was blocked: {}", case.what, seen.line));
        }
    }
    for case in &blocked {
        let seen = case.run()?;
        println!("blocked  {:<48} {}", case.what, seen.line);
        if seen.ok {
            failures.push(format!("{} got through: {}", case.what, seen.line));
        }
    }

    // The twins: the same probes with Haven's policies relaxed must connect. The chart's
    // admission policy admits NetworkPolicies in a workspace namespace from the operator
    // alone, so the relaxation is written as the operator's ServiceAccount.
    for namespace in [a, b] {
        apply_as(OPERATOR, &relax(namespace))?;
    }
    apply(&relax(BYSTANDER))?;
    for case in &blocked {
        // A policy takes a moment to be enforced; the twin may wait for it, the blocked probe not.
        let mut seen = case.run()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !seen.ok && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(500));
            seen = case.run()?;
        }
        println!("relaxed  {:<48} {}", case.what, seen.line);
        if !seen.ok {
            failures.push(format!(
                "{} fails even with the policies relaxed (broken target?): {}",
                case.what, seen.line
            ));
        }
    }
    for namespace in [a, b] {
        kubectl_ok(&["--as", OPERATOR, "-n", namespace, "delete", "networkpolicy", "nodes-test-relax"])?;
    }
    kubectl_ok(&["-n", BYSTANDER, "delete", "networkpolicy", "nodes-test-relax"])?;
    println!(
        "matrix: {} allowed, {} blocked with twins, {:.1?}",
        allowed.len(),
        blocked.len(),
        matrix.elapsed()
    );

    let drops = guard_drops()? - drops_before;
    ensure!(drops == 0, "the node's guard dropped {drops} packet(s) bound off the node");
    ensure!(failures.is_empty(), "isolation failures:\n{}", failures.join("\n"));
    Ok(())
}
