//! The airlock admission policy on its own (no operator): who may create, review and cancel
//! an AirlockRequest is bound to `request.userInfo`, whatever the verb (patch or a full PUT),
//! and no one can attach finalizers or ownerReferences to the record (S5, S6).

use anyhow::{Context, Result};
use haven_api::AirlockRequest;
use haven_e2e::{DEADLINE, TestNamespace, admin, as_user, eventually, unique_name};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};

const RESEARCHER: &str = "alice@example.org";
const CO_RESEARCHER: &str = "bob@example.org";
const CHECKER: &str = "carol@example.org";

/// Requests in `namespace` as `user`, with RBAC out of the way: the policy is under test.
async fn requests_as(user: &str, namespace: &str) -> Result<Api<AirlockRequest>> {
    Ok(Api::namespaced(as_user(user, &["system:masters"]).await?, namespace))
}

fn merge(patch: Value) -> Patch<Value> {
    Patch::Merge(patch)
}

/// The API server's message for a denied change.
async fn denied<T: std::fmt::Debug>(what: &str, result: kube::Result<T>) -> Result<String> {
    match result {
        Ok(value) => anyhow::bail!("{what} was allowed: {value:?}"),
        Err(error) => Ok(error.to_string()),
    }
}

async fn set_phase(client: &Client, namespace: &str, name: &str, phase: &str) -> Result<()> {
    Api::<AirlockRequest>::namespaced(client.clone(), namespace)
        .patch_status(name, &PatchParams::default(), &merge(json!({"status": {"phase": phase}})))
        .await?;
    Ok(())
}

#[tokio::test]
async fn the_admission_policy_binds_requests_and_reviews_to_the_people_acting() -> Result<()> {
    let client = admin().await?;
    let namespace = TestNamespace::create(&client, "e2e-admission", &[]).await?;
    let ns = namespace.name.as_str();
    let name = unique_name("request");
    let request: AirlockRequest = serde_json::from_value(json!({
        "apiVersion": "haven.io/v1alpha1", "kind": "AirlockRequest",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"direction": "Export", "requestedBy": RESEARCHER, "files": ["t.csv"], "justification": "counts"},
    }))?;
    let alice = requests_as(RESEARCHER, ns).await?;
    let carol = requests_as(CHECKER, ns).await?;
    let bob = requests_as(CO_RESEARCHER, ns).await?;

    // The policy takes effect a moment after it is installed: the first denial is awaited,
    // probing with dry runs so an early success stores nothing.
    let dry_run = PostParams { dry_run: true, ..PostParams::default() };
    let message = eventually(DEADLINE, "the policy denies a request in another's name", || async {
        let created = bob.create(&dry_run, &request).await;
        Ok(created.err().map(|e| e.to_string()))
    })
    .await?;
    let stored = bob.create(&PostParams::default(), &request).await;
    assert!(stored.is_err(), "the policy denies it for real too");
    assert!(message.contains("spec.requestedBy must be the user creating the request"), "{message}");
    alice.create(&PostParams::default(), &request).await?;

    let review = |who: &str| json!({"reviewer": who, "decision": "Approve"});
    let add = |who: &str| merge(json!({"spec": {"reviews": [review(who)]}}));
    // Not before the checks are done.
    let early = denied(
        "a review before the checks",
        carol.patch(&name, &PatchParams::default(), &add(CHECKER)).await,
    )
    .await?;
    assert!(early.contains("only while the request is AwaitingReview"), "{early}");

    set_phase(&client, ns, &name, "AwaitingReview").await?;
    // Not in someone else's name, not even with a full PUT of the object.
    let mut replaced = alice.get(&name).await?;
    replaced.spec.reviews = serde_json::from_value(json!([review(CHECKER)]))?;
    let put = denied(
        "a PUT with a review in another's name",
        alice.replace(&name, &PostParams::default(), &replaced).await,
    )
    .await?;
    assert!(put.contains("only be added in your own name"), "{put}");
    carol.patch(&name, &PatchParams::default(), &add(CHECKER)).await?;

    // Only the requester cancels.
    let cancel = merge(json!({"spec": {"cancelled": true}}));
    let by_bob =
        denied("a cancel by a co-researcher", bob.patch(&name, &PatchParams::default(), &cancel).await)
            .await?;
    assert!(by_bob.contains("only the requester"), "{by_bob}");
    let by_carol =
        denied("a cancel by the reviewer", carol.patch(&name, &PatchParams::default(), &cancel).await)
            .await?;
    assert!(by_carol.contains("only the requester"), "{by_carol}");

    // No one attaches a finalizer or an owner to the record, not even an admin.
    let admin_requests = Api::<AirlockRequest>::namespaced(client.clone(), ns);
    let finalizer = merge(json!({"metadata": {"finalizers": ["example.org/hold"]}}));
    let held =
        denied("a finalizer", admin_requests.patch(&name, &PatchParams::default(), &finalizer).await).await?;
    assert!(held.contains("no finalizers or ownerReferences"), "{held}");
    let owner = merge(json!({"metadata": {"ownerReferences": [{
        "apiVersion": "v1", "kind": "ConfigMap", "name": "gone", "uid": "00000000-0000-0000-0000-000000000000"}]}}));
    let owned =
        denied("an ownerReference", alice.patch(&name, &PatchParams::default(), &owner).await).await?;
    assert!(owned.contains("no finalizers or ownerReferences"), "{owned}");

    // Once decided, no more reviews.
    set_phase(&client, ns, &name, "Exported").await?;
    let dave = requests_as("dave@example.org", ns).await?;
    let late = merge(json!({"spec": {"reviews": [review(CHECKER), review("dave@example.org")]}}));
    let after =
        denied("a review after the decision", dave.patch(&name, &PatchParams::default(), &late).await)
            .await?;
    assert!(after.contains("it is Exported"), "{after}");

    // The requester's own cancel goes through, and the record is intact.
    set_phase(&client, ns, &name, "AwaitingReview").await?;
    alice.patch(&name, &PatchParams::default(), &cancel).await?;
    let record = admin_requests.get(&name).await?;
    assert!(record.spec.cancelled);
    assert_eq!(record.spec.reviews.len(), 1);
    assert_eq!(record.spec.reviews.first().map(|r| r.reviewer.as_str()), Some(CHECKER));
    namespace.delete().await.context("cleanup")?;
    Ok(())
}

/// AnalysisTasks as AirlockRequests: the requester is the creator, only they cancel, and the
/// spec the data sites judge cannot change afterwards.
#[tokio::test]
async fn an_analysis_task_is_bound_to_its_creator_and_frozen_but_for_cancelling() -> Result<()> {
    use haven_api::AnalysisTask;
    let client = admin().await?;
    let namespace = TestNamespace::create(&client, "e2e-task-admission", &[]).await?;
    let ns = namespace.name.as_str();
    let name = unique_name("task");
    let task: AnalysisTask = serde_json::from_value(json!({
        "apiVersion": "haven.io/v1alpha1", "kind": "AnalysisTask",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"requestedBy": RESEARCHER, "executors": [{"image": "haven.local/testenv:0.1.0", "command": ["/haven-testenv", "count"]}]},
    }))?;
    // As the researchers' Role grants (not as admins: a cluster admin's wildcard holds
    // `submit-for` too); a service with `submit-for` here (the access gateway) as well.
    let role = |name: &str, verbs: &[&str], subject: Value| -> Result<()> {
        let rbac = "rbac.authorization.k8s.io/v1";
        let rules = json!([{"apiGroups": ["haven.io"], "resources": ["analysistasks"], "verbs": verbs}]);
        let manifest = json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": rbac, "kind": "Role", "metadata": {"name": name, "namespace": ns}, "rules": rules},
            {"apiVersion": rbac, "kind": "RoleBinding", "metadata": {"name": name, "namespace": ns},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}, "subjects": [subject]}]});
        let output = haven_e2e::kubectl_with_input(&["apply", "-f", "-"], &manifest.to_string())?;
        anyhow::ensure!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        Ok(())
    };
    let researchers =
        json!({"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "e2e-task-researchers"});
    role("researchers", &["get", "create", "patch", "update"], researchers)?;
    let gateway_user = "system:serviceaccount:e2e:gateway";
    let gateway = json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": gateway_user});
    role("gateway", &["get", "create", "patch", "submit-for"], gateway)?;
    let tasks_as = |user: &str, group: &str| {
        let (user, group) = (user.to_owned(), group.to_owned());
        async move { anyhow::Ok(Api::<AnalysisTask>::namespaced(as_user(&user, &[&group]).await?, ns)) }
    };
    let alice = tasks_as(RESEARCHER, "e2e-task-researchers").await?;
    let bob = tasks_as(CO_RESEARCHER, "e2e-task-researchers").await?;
    let dry_run = PostParams { dry_run: true, ..PostParams::default() };
    let message = eventually(DEADLINE, "the policy denies a task in another's name", || async {
        Ok(bob.create(&dry_run, &task).await.err().map(|e| e.to_string()))
    })
    .await?;
    assert!(message.contains("spec.requestedBy must be the user creating the task"), "{message}");
    // The holder of submit-for may write it in alice's name (the gateway does, after asking
    // RBAC as alice); RBAC takes a moment to see the new binding.
    let service = tasks_as(gateway_user, "system:serviceaccounts").await?;
    eventually(DEADLINE, "submit-for lets a service write a task in another's name", || async {
        Ok(service.create(&dry_run, &task).await.ok().map(drop))
    })
    .await?;
    alice.create(&PostParams::default(), &task).await?;
    let swap =
        merge(json!({"spec": {"executors": [{"image": "registry.example.org/exfil:1", "command": ["sh"]}]}}));
    let swapped =
        denied("a changed executor", alice.patch(&name, &PatchParams::default(), &swap).await).await?;
    assert!(swapped.contains("spec is immutable but for spec.cancelled"), "{swapped}");
    let cancel = merge(json!({"spec": {"cancelled": true}}));
    let by_bob =
        denied("a cancel by another", bob.patch(&name, &PatchParams::default(), &cancel).await).await?;
    assert!(by_bob.contains("only the requester"), "{by_bob}");
    alice.patch(&name, &PatchParams::default(), &cancel).await?;
    namespace.delete().await.context("cleanup")?;
    Ok(())
}
