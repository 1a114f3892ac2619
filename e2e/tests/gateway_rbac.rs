//! What the access gateway learns from the API server, against the real control plane: on every
//! visit it asks (a SubjectAccessReview) whether a person may `connect` to a workspace, and
//! only that workspace's users may; removing someone from the workspace, or revoking the
//! permit, takes that away. And `status.controls.requireMfa` tells it whether a permit's tier
//! needs a second factor.

use anyhow::{Context, Result, ensure};
use haven_api::{DataPermit, Workspace};
use haven_e2e::{
    DEADLINE, Operator, admin, data_root, ensure_namespace, eventually, fixtures, unique_name, workspace,
};
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use kube::{
    Api, Client,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

/// The gateway's question, exactly as it asks it: may `user` connect to `workspace`?
async fn may_connect(client: &Client, user: &str, workspace: &str) -> Result<bool> {
    let review = haven_gateway::authz::connect_review(workspace, user);
    let answer =
        Api::<SubjectAccessReview>::all(client.clone()).create(&PostParams::default(), &review).await?;
    Ok(answer.status.context("the review has a status")?.allowed)
}

/// Waits until the API server gives `answer` to whether `user` may connect to `workspace`.
async fn until_connect_is(client: &Client, user: &str, workspace: &str, answer: bool) -> Result<()> {
    let what = format!("{user} may connect to {workspace}: {answer}");
    eventually(DEADLINE, &what, || async {
        Ok((may_connect(client, user, workspace).await? == answer).then_some(()))
    })
    .await
}

/// A permit for `users` at `tier`, reviewed by `checker`.
fn permit_for(name: &str, users: &[&str], checker: &str, tier: u8) -> Result<DataPermit> {
    let mut permit = fixtures::permit(name, users.first().context("a user")?, -5, 3600)?;
    permit.spec.users = users.iter().map(|u| (*u).to_owned()).collect();
    permit.spec.reviewers = vec![checker.to_owned()];
    permit.spec.tier = tier;
    Ok(permit)
}

#[tokio::test]
async fn only_a_workspaces_own_users_may_connect_to_it() -> Result<()> {
    let client = admin().await?;
    ensure_namespace(&client, "haven-system").await?;
    let root = data_root("gateway-rbac")?;
    fixtures::write_raw_source(&root)?;
    let _operator = Operator::start(&root).await?;
    let permits: Api<DataPermit> = Api::all(client.clone());
    let workspaces: Api<Workspace> = Api::all(client.clone());

    // Two projects, each with its own researcher and output checker.
    let (ours, theirs) = (unique_name("gw-ours"), unique_name("gw-theirs"));
    let (alice, checker) = (format!("alice-{ours}@example.org"), format!("checker-{ours}@example.org"));
    let (bob, other_checker) = (format!("bob-{theirs}@example.org"), format!("checker-{theirs}@example.org"));
    for (name, user, reviewer) in [(&ours, &alice, &checker), (&theirs, &bob, &other_checker)] {
        permits.create(&PostParams::default(), &permit_for(name, &[user], reviewer, 3)?).await?;
        workspaces.create(&PostParams::default(), &fixtures::workspace(name, name, user, json!({}))?).await?;
    }
    workspace::ready(&workspaces, &ours).await?;
    workspace::ready(&workspaces, &theirs).await?;

    until_connect_is(&client, &alice, &ours, true).await?;
    until_connect_is(&client, &bob, &theirs, true).await?;
    // Both workspaces' bindings are in place, so a refusal below is RBAC's answer, not a race.
    ensure!(!may_connect(&client, &checker, &ours).await?, "the output checker reviews, never enters");
    ensure!(!may_connect(&client, &bob, &ours).await?, "another workspace's user may not enter ours");
    ensure!(!may_connect(&client, &alice, &theirs).await?, "our user may not enter another workspace");
    ensure!(!may_connect(&client, &other_checker, &ours).await?, "nor may another project's checker");

    for name in [&ours, &theirs] {
        workspaces.delete(name, &DeleteParams::default()).await?;
        permits.delete(name, &DeleteParams::default()).await?;
    }
    Ok(())
}

#[tokio::test]
async fn removal_from_the_workspace_and_revocation_of_the_permit_cut_gateway_access() -> Result<()> {
    let client = admin().await?;
    ensure_namespace(&client, "haven-system").await?;
    let root = data_root("gateway-cut")?;
    fixtures::write_raw_source(&root)?;
    let _operator = Operator::start(&root).await?;
    let permits: Api<DataPermit> = Api::all(client.clone());
    let workspaces: Api<Workspace> = Api::all(client.clone());

    let name = unique_name("gw-cut");
    let (alice, bob) = (format!("alice-{name}@example.org"), format!("bob-{name}@example.org"));
    let checker = format!("checker-{name}@example.org");
    permits.create(&PostParams::default(), &permit_for(&name, &[&alice, &bob], &checker, 3)?).await?;
    let both = fixtures::workspace(&name, &name, &alice, json!({"users": [alice, bob]}))?;
    workspaces.create(&PostParams::default(), &both).await?;
    workspace::ready(&workspaces, &name).await?;
    until_connect_is(&client, &alice, &name, true).await?;
    until_connect_is(&client, &bob, &name, true).await?;

    // Bob leaves the workspace (still on the permit): the gateway lets him in no more.
    let only_alice = json!({"spec": {"users": [alice]}});
    workspaces.patch(&name, &PatchParams::default(), &Patch::Merge(&only_alice)).await?;
    until_connect_is(&client, &bob, &name, false).await?;
    ensure!(may_connect(&client, &alice, &name).await?, "Alice stays");

    // The permit is revoked: nobody gets in, before the workspace is even archived.
    let revoke = json!({"spec": {"revoked": true, "revocationReason": "e2e: gateway access"}});
    permits.patch(&name, &PatchParams::default(), &Patch::Merge(&revoke)).await?;
    until_connect_is(&client, &alice, &name, false).await?;

    workspaces.delete(&name, &DeleteParams::default()).await?;
    permits.delete(&name, &DeleteParams::default()).await?;
    Ok(())
}

#[tokio::test]
async fn status_controls_say_whether_the_gateway_requires_mfa() -> Result<()> {
    let client = admin().await?;
    ensure_namespace(&client, "haven-system").await?;
    let root = data_root("gateway-mfa")?;
    fixtures::write_raw_source(&root)?;
    let _operator = Operator::start(&root).await?;
    let permits: Api<DataPermit> = Api::all(client.clone());

    let (tier3, tier1, tier1_asking) = (unique_name("mfa-t3"), unique_name("mfa-t1"), unique_name("mfa-t1x"));
    let user = format!("{tier3}@example.org");
    let checker = format!("checker-{tier3}@example.org");
    permits.create(&PostParams::default(), &permit_for(&tier3, &[&user], &checker, 3)?).await?;
    permits.create(&PostParams::default(), &permit_for(&tier1, &[&user], &checker, 1)?).await?;
    // A permit may require MFA where its tier does not.
    let mut asking = permit_for(&tier1_asking, &[&user], &checker, 1)?;
    asking.spec.environment.require_mfa = Some(true);
    permits.create(&PostParams::default(), &asking).await?;

    for (name, expected) in [(&tier3, true), (&tier1, false), (&tier1_asking, true)] {
        let require_mfa = eventually(DEADLINE, &format!("{name} records its controls"), || async {
            Ok(permits.get(name).await?.status.and_then(|s| s.controls).map(|c| c.require_mfa))
        })
        .await?;
        ensure!(require_mfa == expected, "{name}: requireMfa {require_mfa}, expected {expected}");
    }
    for name in [&tier3, &tier1, &tier1_asking] {
        permits.delete(name, &DeleteParams::default()).await?;
    }
    Ok(())
}
