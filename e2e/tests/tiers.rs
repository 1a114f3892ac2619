//! Sensitivity tiers against the real control plane: each tier's profile (the default
//! profiles, as the chart ships them) produces its NetworkPolicies, gateway rules, airlock
//! approvals and lifetimes; a permit asking for more than its tier allows is refused at
//! admission, naming the field; and changing a permit's tier re-reconciles its workspaces.

use anyhow::{Context, Result};
use chrono::{DateTime, Duration, Utc};
use haven_api::{
    DataPermit, Workspace,
    airlock::AirlockPhase,
    permit::{ControlsInForce, EgressProfile},
};
use haven_e2e::{
    DEADLINE, Operator, admin,
    airlock::{CHECKER, Project, RESEARCHER, SECOND_CHECKER},
    data_root, eventually, fixtures, unique_name, workspace,
};
use k8s_openapi::api::{core::v1::Service, networking::v1::NetworkPolicy};
use kube::{
    Api, Client,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

const USER: &str = "tiers@example.org";

/// A permit of `tier` asking for exactly what the tier allows at most: the open tiers the
/// internet, the middle ones a package mirror, tier 4 nothing; two reviewers for tier 4.
fn permit_at(name: &str, tier: u8) -> Result<DataPermit> {
    let mut permit = fixtures::permit(name, USER, -5, 400 * 24 * 3600)?;
    permit.spec.tier = tier;
    permit.spec.reviewers = vec![CHECKER.into(), SECOND_CHECKER.into()];
    permit.spec.environment = serde_json::from_value(match tier {
        0 | 1 => json!({"allowedImages": ["quay.io/jupyter/minimal-notebook:*"], "egress": "Internet"}),
        2 | 3 => json!({"allowedImages": ["quay.io/jupyter/minimal-notebook:*"], "egress": "PackageMirror",
                        "packageMirror": {"cidr": "10.20.30.40/32"}}),
        _ => json!({"allowedImages": ["quay.io/jupyter/minimal-notebook:*"]}),
    })?;
    Ok(permit)
}

async fn controls_of(permits: &Api<DataPermit>, name: &str) -> Result<ControlsInForce> {
    eventually(DEADLINE, &format!("{name} records its controls"), || async {
        Ok(permits.get(name).await?.status.and_then(|s| s.controls))
    })
    .await
}

async fn policy_names(client: &Client, namespace: &str) -> Result<Vec<String>> {
    let policies =
        Api::<NetworkPolicy>::namespaced(client.clone(), namespace).list(&ListParams::default()).await?;
    let mut names: Vec<String> = policies.items.into_iter().filter_map(|p| p.metadata.name).collect();
    names.sort();
    Ok(names)
}

async fn clipboard_out(client: &Client, namespace: &str) -> Result<Option<String>> {
    let service = Api::<Service>::namespaced(client.clone(), namespace).get("workspace").await?;
    Ok(service.metadata.annotations.unwrap_or_default().get("haven.io/clipboard-out").cloned())
}

fn created(workspace: &Workspace) -> Result<DateTime<Utc>> {
    let at = workspace.metadata.creation_timestamp.as_ref().context("created")?;
    DateTime::from_timestamp_millis(at.0.as_millisecond()).context("in range")
}

#[tokio::test]
async fn each_tier_produces_its_network_policies_approvals_and_lifetimes() -> Result<()> {
    let client = admin().await?;
    let root = data_root("tiers")?;
    fixtures::write_raw_source(&root)?;
    let _operator = Operator::start(&root).await?;
    let permits: Api<DataPermit> = Api::all(client.clone());
    let workspaces: Api<Workspace> = Api::all(client.clone());

    let mut made = Vec::new();
    for tier in 0..=4u8 {
        let (permit, workspace) =
            (unique_name(&format!("tier{tier}-p")), unique_name(&format!("tier{tier}-w")));
        permits.create(&PostParams::default(), &permit_at(&permit, tier)?).await?;
        workspaces
            .create(&PostParams::default(), &fixtures::workspace(&workspace, &permit, USER, json!({}))?)
            .await?;
        made.push((tier, permit, workspace));
    }

    // (internet, mirror, clipboard out, approvals, import review, lifetime in hours, idle)
    let expected = [
        (true, false, "enabled", 1, false, None, None),
        (true, false, "enabled", 1, false, None, None),
        (false, true, "disabled", 1, true, None, None),
        (false, true, "disabled", 1, true, None, None),
        (false, false, "disabled", 2, true, Some(720), Some("8h")),
    ];
    for ((tier, permit, name), (internet, mirror, clipboard, approvals, import_review, lifetime, idle)) in
        made.iter().zip(expected)
    {
        let workspace = workspace::ready(&workspaces, name).await?;
        let namespace = format!("ws-{name}");
        let policies = policy_names(&client, &namespace).await?;
        assert!(policies.contains(&"default-deny".to_owned()), "tier {tier}: {policies:?}");
        assert_eq!(policies.contains(&"allow-internet".to_owned()), internet, "tier {tier}: {policies:?}");
        assert_eq!(
            policies.contains(&"allow-package-mirror".to_owned()),
            mirror,
            "tier {tier}: {policies:?}"
        );
        assert_eq!(clipboard_out(&client, &namespace).await?.as_deref(), Some(clipboard), "tier {tier}");

        let controls = controls_of(&permits, permit).await?;
        assert_eq!(controls.tier, *tier);
        assert_eq!(controls.required_approvals, approvals, "tier {tier}");
        assert_eq!(controls.import_review, import_review, "tier {tier}");
        assert_eq!(controls.max_workspace_lifetime, lifetime.map(|h| format!("{h}h")), "tier {tier}");
        assert_eq!(controls.idle_timeout.as_deref(), idle, "tier {tier}");

        // The workspace is torn down at its creation plus the tier's lifetime, if shorter than
        // the permit (which runs 400 days).
        let valid_until = permits.get(permit).await?.spec.valid_until;
        let expires = workspace.status.as_ref().and_then(|s| s.expires_at).context("expiresAt")?;
        let want =
            lifetime.map_or(valid_until, |h| created(&workspace).unwrap_or_default() + Duration::hours(h));
        assert!((expires - want).num_seconds().abs() <= 1, "tier {tier}: expires {expires}, want {want}");
    }
    Ok(())
}

#[tokio::test]
async fn a_tier_4_export_needs_two_approvals_and_a_tier_1_import_needs_none() -> Result<()> {
    let strict = Project::start_at_tier("tier4", 4, json!({})).await?;
    strict.output("t.csv", b"region,count\nNorth,120\nSouth,95\n")?;
    strict.submit("two", &["t.csv"]).await?;
    let waiting = strict.phase_reaches("two", AirlockPhase::AwaitingReview).await?;
    assert_eq!(waiting.status.and_then(|s| s.approvals).as_deref(), Some("0/2"), "tier 4 asks two checkers");
    let first = json!([{"reviewer": CHECKER, "decision": "Approve"}]);
    strict.review(CHECKER, "two", first).await.map_err(anyhow::Error::msg)?;
    eventually(DEADLINE, "1/2 approvals", || async {
        let status = strict.get("two").await?.status.unwrap_or_default();
        Ok((status.approvals.as_deref() == Some("1/2")).then_some(status.phase))
    })
    .await
    .map(|phase| assert_eq!(phase, AirlockPhase::AwaitingReview, "one approval is not enough"))?;
    let both = json!([{"reviewer": CHECKER, "decision": "Approve"}, {"reviewer": SECOND_CHECKER, "decision": "Approve"}]);
    strict.review(SECOND_CHECKER, "two", both).await.map_err(anyhow::Error::msg)?;
    strict.phase_reaches("two", AirlockPhase::Exported).await?;
    drop(strict);

    let open = Project::start_at_tier("tier1", 1, json!({})).await?;
    let drop_zone = open.root.join("imports").join(&open.workspace);
    std::fs::create_dir_all(&drop_zone)?;
    std::fs::write(drop_zone.join("lookup.csv"), b"code,label\nC50,Breast\n")?;
    let request = open.request("codes", "Import", RESEARCHER, &["lookup.csv"])?;
    open.requests_as(RESEARCHER).await?.create(&PostParams::default(), &request).await?;
    let imported = open.phase_reaches("codes", AirlockPhase::Imported).await?;
    let status = imported.status.context("status")?;
    assert!(status.reviews.is_empty(), "nobody reviewed it");
    let reviewed = status.conditions.iter().find(|c| c.type_ == "Reviewed").context("Reviewed")?;
    assert_eq!(reviewed.reason, "ReviewNotRequired", "{reviewed:?}");
    Ok(())
}

/// Creates `permit`, expecting a refusal; returns the API server's message.
async fn refused(permits: &Api<DataPermit>, permit: &DataPermit) -> Result<String> {
    match permits.create(&PostParams::default(), permit).await {
        Ok(_) => anyhow::bail!("{} was admitted", permit.metadata.name.clone().unwrap_or_default()),
        Err(kube::Error::Api(status)) => Ok(status.message),
        Err(other) => Err(other.into()),
    }
}

#[tokio::test]
async fn a_permit_that_loosens_its_tier_is_rejected_naming_the_field() -> Result<()> {
    let client = admin().await?;
    let permits: Api<DataPermit> = Api::all(client.clone());

    let mut mirror_at_4 = permit_at(&unique_name("loose-egress"), 4)?;
    mirror_at_4.spec.environment = permit_at("x", 3)?.spec.environment;
    let message = refused(&permits, &mirror_at_4).await?;
    assert!(
        message.contains(
            "spec.environment.egress: PackageMirror is more open than tier 4 allows (at most None)"
        ),
        "{message}"
    );

    let mut one_reviewer_at_4 = permit_at(&unique_name("loose-reviewers"), 4)?;
    one_reviewer_at_4.spec.reviewers.truncate(1);
    let message = refused(&permits, &one_reviewer_at_4).await?;
    assert!(message.contains("spec.reviewers: tier 4 needs 2 approvals per export"), "{message}");

    let mut svg_at_3 = permit_at(&unique_name("loose-types"), 3)?;
    svg_at_3.spec.airlock.allowed_file_types = Some(vec!["csv".into(), "svg".into()]);
    let message = refused(&permits, &svg_at_3).await?;
    assert!(message.contains("spec.airlock.allowedFileTypes: tier 3 does not allow svg"), "{message}");

    let mut lifetime_at_4 = permit_at(&unique_name("loose-lifetime"), 4)?;
    lifetime_at_4.spec.environment.max_workspace_lifetime = Some("1000h".into());
    let message = refused(&permits, &lifetime_at_4).await?;
    assert!(
        message.contains("spec.environment.maxWorkspaceLifetime: 1000h is longer than tier 4 allows (720h)"),
        "{message}"
    );

    let mut unreviewed_at_2 = permit_at(&unique_name("loose-imports"), 2)?;
    unreviewed_at_2.spec.airlock.import_review = Some(false);
    let message = refused(&permits, &unreviewed_at_2).await?;
    assert!(
        message.contains("spec.airlock.importReview: tier 2 requires imports to be reviewed"),
        "{message}"
    );

    let mut one_approval_at_4 = permit_at(&unique_name("loose-approvals"), 4)?;
    one_approval_at_4.spec.airlock.required_approvals = Some(1);
    let message = refused(&permits, &one_approval_at_4).await?;
    assert!(
        message.contains("spec.airlock.requiredApprovals: 1 is fewer than tier 4 requires (2)"),
        "{message}"
    );

    // Tightening is always allowed...
    let tight_name = unique_name("tight");
    let mut tight = permit_at(&tight_name, 1)?;
    tight.spec.environment.egress = EgressProfile::None;
    tight.spec.environment.max_workspace_lifetime = Some("24h".into());
    tight.spec.airlock.required_approvals = Some(2);
    tight.spec.airlock.allowed_file_types = Some(vec!["csv".into()]);
    permits.create(&PostParams::default(), &tight).await?;
    // ...and raising a permit's tier past what it asks for is refused like a new permit.
    let raise = json!({"spec": {"tier": 4, "reviewers": [CHECKER], "airlock": {"requiredApprovals": null}}});
    let error = permits
        .patch(&tight_name, &PatchParams::default(), &Patch::Merge(&raise))
        .await
        .expect_err("tier 4 with one reviewer");
    assert!(error.to_string().contains("spec.reviewers: tier 4 needs 2 approvals per export"), "{error}");
    // A change that does not touch the tier's controls is not re-judged (suspending must work
    // even after the profiles were tightened).
    permits
        .patch(&tight_name, &PatchParams::default(), &Patch::Merge(&json!({"spec": {"suspended": true}})))
        .await?;
    Ok(())
}

#[tokio::test]
async fn changing_a_permits_tier_reconciles_its_workspaces() -> Result<()> {
    let client = admin().await?;
    let root = data_root("retier")?;
    fixtures::write_raw_source(&root)?;
    let _operator = Operator::start(&root).await?;
    let permits: Api<DataPermit> = Api::all(client.clone());
    let workspaces: Api<Workspace> = Api::all(client.clone());
    let (permit, workspace) = (unique_name("retier-p"), unique_name("retier-w"));
    permits.create(&PostParams::default(), &permit_at(&permit, 1)?).await?;
    workspaces
        .create(&PostParams::default(), &fixtures::workspace(&workspace, &permit, USER, json!({}))?)
        .await?;
    let before = workspace::ready(&workspaces, &workspace).await?;
    let namespace = format!("ws-{workspace}");
    assert!(policy_names(&client, &namespace).await?.contains(&"allow-internet".to_owned()));
    assert_eq!(clipboard_out(&client, &namespace).await?.as_deref(), Some("enabled"));

    // The data access body reclassifies the data as tier 4: no egress at all.
    let tier_4 = json!({"spec": {"tier": 4, "environment": {"egress": "None"}}});
    permits.patch(&permit, &PatchParams::default(), &Patch::Merge(&tier_4)).await?;
    let lifetime_end = created(&before)? + Duration::hours(720);
    eventually(DEADLINE, "the workspace follows tier 4", || async {
        let policies = policy_names(&client, &namespace).await?;
        let clipboard = clipboard_out(&client, &namespace).await?;
        let expires = workspaces.get(&workspace).await?.status.and_then(|s| s.expires_at);
        let done = !policies.contains(&"allow-internet".to_owned())
            && clipboard.as_deref() == Some("disabled")
            && expires.is_some_and(|at| (at - lifetime_end).num_seconds().abs() <= 1);
        Ok(done.then_some(()))
    })
    .await?;
    assert_eq!(controls_of(&permits, &permit).await?.egress, EgressProfile::None);
    Ok(())
}
