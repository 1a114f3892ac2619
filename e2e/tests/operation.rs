//! Running Haven in production: several replicas with leader election (only the lease holder
//! reconciles; a standby takes over when the leader dies), `/metrics`, `/healthz`, `/readyz`,
//! and a graceful stop on SIGTERM that hands the lease over at once.

use std::{
    io::{Read, Write},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use haven_api::{DataPermit, Workspace};
use haven_e2e::{
    DEADLINE, Operator, admin, data_root, ensure_namespace, eventually, fixtures, operator_turn, unique_name,
};
use k8s_openapi::api::coordination::v1::Lease;
use kube::{
    Api, Client,
    api::{DeleteParams, PostParams},
};
use serde_json::json;

/// Short, so the takeover is quick to watch.
const LEASE_SECONDS: u64 = 4;

fn as_str(flags: &[String]) -> Vec<&str> {
    flags.iter().map(String::as_str).collect()
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `GET path` on the operator's endpoint: the status code and body.
fn http_get(port: u16, path: &str) -> Result<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.split_whitespace().nth(1).context("status line")?.parse()?;
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// The value of one sample line of `/metrics`, 0 if absent.
fn sample(port: u16, series: &str) -> Result<f64> {
    let (_, body) = http_get(port, "/metrics")?;
    Ok(body
        .lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or(0.0))
}

async fn holder(leases: &Api<Lease>) -> Result<Option<String>> {
    Ok(leases.get_opt("haven-operator").await?.and_then(|l| l.spec).and_then(|s| s.holder_identity))
}

async fn ready_workspace(client: &Client, permit: &str, user: &str) -> Result<String> {
    let name = unique_name("leader-ws");
    let workspaces: Api<Workspace> = Api::all(client.clone());
    workspaces.create(&PostParams::default(), &fixtures::workspace(&name, permit, user, json!({}))?).await?;
    haven_e2e::workspace::ready(&workspaces, &name).await?;
    Ok(name)
}

#[tokio::test]
async fn only_the_lease_holder_reconciles_and_a_standby_takes_over_when_it_dies() -> Result<()> {
    let client = admin().await?;
    ensure_namespace(&client, "haven-system").await?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "haven-system");
    let root = data_root("leader")?;
    fixtures::write_raw_source(&root)?;
    let (port_a, port_b) = (free_port()?, free_port()?);
    let lease = format!("--lease-duration={LEASE_SECONDS}s");
    let flags = |port: u16| {
        vec![
            "--leader-election=true".to_owned(),
            lease.clone(),
            format!("--metrics-address=127.0.0.1:{port}"),
        ]
    };
    let (flags_a, flags_b) = (flags(port_a), flags(port_b));

    let turn = operator_turn().await;
    let a = Operator::start_in_turn_with(&root, turn, &as_str(&flags_a))?;
    let a_identity = eventually(DEADLINE, "the first replica holds the lease", || async {
        Ok(holder(&leases).await?.filter(|h| h.ends_with(&format!("-{}", a.pid()))))
    })
    .await?;
    let mut b = Operator::start_beside(&root, &as_str(&flags_b))?;
    // Both are alive and ready (a standby is ready: it is healthy, merely waiting).
    for port in [port_a, port_b] {
        eventually(DEADLINE, "healthz and readyz answer 200", || async {
            let ok = matches!(http_get(port, "/healthz"), Ok((200, _)))
                && matches!(http_get(port, "/readyz"), Ok((200, _)));
            Ok(ok.then_some(()))
        })
        .await?;
    }

    let permits: Api<DataPermit> = Api::all(client.clone());
    let (permit, user) = (unique_name("leader-p"), "leader@example.org");
    permits.create(&PostParams::default(), &fixtures::permit(&permit, user, -5, 600)?).await?;
    let first = ready_workspace(&client, &permit, user).await?;
    let reconciles = "haven_reconciles_total{controller=\"workspace\"}";
    assert!(sample(port_a, reconciles)? > 0.0, "the leader reconciles");
    assert_eq!(sample(port_b, reconciles)?, 0.0, "the standby does not");
    assert!(sample(port_a, "haven_objects{kind=\"Workspace\",phase=\"Ready\"}")? >= 1.0);
    assert_eq!(holder(&leases).await?.as_deref(), Some(a_identity.as_str()));

    // The leader dies: the standby takes the lease once it expires, and reconciles.
    let killed = Instant::now();
    let turn = a.crash();
    let b_identity = eventually(DEADLINE, "the standby takes the lease", || async {
        Ok(holder(&leases).await?.filter(|h| h.ends_with(&format!("-{}", b.pid()))))
    })
    .await?;
    let takeover = killed.elapsed();
    eprintln!("takeover {takeover:?} after SIGKILL of the leader (lease {LEASE_SECONDS}s)");
    assert!(takeover <= Duration::from_secs(LEASE_SECONDS + 2), "takeover took {takeover:?}");
    let second = ready_workspace(&client, &permit, user).await?;
    assert!(sample(port_b, reconciles)? > 0.0, "the new leader reconciles");

    // Leave nothing for later tests' operators: the new leader tears it all down.
    let workspaces: Api<Workspace> = Api::all(client.clone());
    for name in [first, second] {
        workspaces.delete(&name, &DeleteParams::default()).await?;
    }
    permits.delete(&permit, &DeleteParams::default()).await?;
    eventually(DEADLINE, "workspaces and permit torn down", || async {
        let left = permits.get_opt(&permit).await?.is_some();
        Ok((!left).then_some(()))
    })
    .await?;

    // SIGTERM: a clean exit that gives the lease up at once.
    let status = b.terminate(Duration::from_secs(20))?;
    assert!(status.success(), "exit status {status}");
    let released = holder(&leases).await?;
    assert!(released.as_deref() != Some(b_identity.as_str()), "lease still held by {released:?}");
    drop(turn);
    Ok(())
}
