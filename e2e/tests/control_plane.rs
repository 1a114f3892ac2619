//! The local control plane is real: garbage collection and namespace deletion run
//! (kube-controller-manager), pods are scheduled and reach Running (kube-scheduler + kwok),
//! admission enforces Pod Security, and RBAC applies to impersonated users.

use anyhow::Result;
use haven_e2e::{DEADLINE, TestNamespace, admin, as_user, within};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, PostParams},
    runtime::wait::{await_condition, conditions},
};
use serde_json::json;

fn config_map(name: &str, owner: Option<&ConfigMap>) -> Result<ConfigMap> {
    let owners: Vec<_> = owner
        .map(|o| json!({"apiVersion": "v1", "kind": "ConfigMap", "name": o.name_any(), "uid": o.uid()}))
        .into_iter()
        .collect();
    Ok(serde_json::from_value(json!({"metadata": {"name": name, "ownerReferences": owners}}))?)
}

#[tokio::test]
async fn garbage_collector_deletes_dependents_of_a_deleted_owner() -> Result<()> {
    let client = admin().await?;
    let namespace = TestNamespace::create(&client, "e2e-gc", &[]).await?;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace.name);
    let owner = maps.create(&PostParams::default(), &config_map("owner", None)?).await?;
    let dependent = maps.create(&PostParams::default(), &config_map("dependent", Some(&owner))?).await?;

    maps.delete("owner", &DeleteParams::background()).await?;
    within(
        DEADLINE,
        await_condition(
            maps.clone(),
            "dependent",
            conditions::is_deleted(&dependent.uid().unwrap_or_default()),
        ),
    )
    .await??;
    namespace.delete().await
}

#[tokio::test]
async fn deleting_a_namespace_removes_it_and_its_contents() -> Result<()> {
    let client = admin().await?;
    let namespace = TestNamespace::create(&client, "e2e-nsdel", &[]).await?;
    let name = namespace.name.clone();
    Api::<ConfigMap>::namespaced(client.clone(), &name)
        .create(&PostParams::default(), &config_map("content", None)?)
        .await?;
    let uid = Api::<Namespace>::all(client.clone()).get(&name).await?.uid().unwrap_or_default();

    namespace.delete().await?;
    within(DEADLINE, await_condition(Api::<Namespace>::all(client), &name, conditions::is_deleted(&uid)))
        .await??;
    Ok(())
}

fn pod(name: &str, security_context: serde_json::Value) -> Result<Pod> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "main", "image": "registry.example/analysis:1", "securityContext": security_context}]}
    }))?)
}

#[tokio::test]
async fn a_pod_is_scheduled_onto_the_fake_node_and_runs() -> Result<()> {
    let client = admin().await?;
    let namespace = TestNamespace::create(&client, "e2e-pod", &[]).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace.name);
    pods.create(&PostParams::default(), &pod("runner", json!({}))?).await?;

    let running =
        within(DEADLINE, await_condition(pods.clone(), "runner", conditions::is_pod_running())).await??;
    let node = running.and_then(|p| p.spec).and_then(|s| s.node_name).unwrap_or_default();
    assert!(!node.is_empty(), "the running pod has no node");
    namespace.delete().await
}

#[tokio::test]
async fn pod_security_restricted_rejects_a_privileged_pod() -> Result<()> {
    let client = admin().await?;
    let namespace =
        TestNamespace::create(&client, "e2e-psa", &[("pod-security.kubernetes.io/enforce", "restricted")])
            .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace.name);

    let error = pods
        .create(&PostParams::default(), &pod("privileged", json!({"privileged": true}))?)
        .await
        .expect_err("a privileged pod must be rejected");
    let message = error.to_string();
    assert!(message.contains("violates PodSecurity \"restricted:"), "unexpected error: {message}");
    assert!(message.contains("privileged"), "the error should name the privileged field: {message}");

    // A pod that meets `restricted` is admitted, so the rejection above is about privilege.
    let compliant = json!({
        "allowPrivilegeEscalation": false, "runAsNonRoot": true, "runAsUser": 1000,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}
    });
    pods.create(&PostParams::default(), &pod("restricted", compliant)?).await?;
    namespace.delete().await
}

#[tokio::test]
async fn an_impersonated_user_is_bound_by_rbac() -> Result<()> {
    let client = admin().await?;
    let namespace = TestNamespace::create(&client, "e2e-rbac", &[]).await?;
    let alice: Client = as_user("alice@example.org", &["researchers"]).await?;

    let secrets =
        Api::<Secret>::namespaced(alice.clone(), &namespace.name).list(&ListParams::default()).await;
    match secrets {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "expected Forbidden: {status:?}"),
        other => panic!("alice must not list secrets, got {other:?}"),
    }
    // The admin can, so the 403 is RBAC acting on alice, not a broken request.
    Api::<Secret>::namespaced(client.clone(), &namespace.name).list(&ListParams::default()).await?;

    // The API server sees alice, not the admin.
    let review: serde_json::Value = alice
        .request(http_post_json(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
        )?)
        .await?;
    assert_eq!(review["status"]["userInfo"]["username"], "alice@example.org");
    let groups = review["status"]["userInfo"]["groups"].to_string();
    assert!(groups.contains("researchers"), "groups: {groups}");
    namespace.delete().await
}

fn http_post_json(path: &str, body: &serde_json::Value) -> Result<http::Request<Vec<u8>>> {
    Ok(http::Request::post(path)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body)?)?)
}
