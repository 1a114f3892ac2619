//! Dataset preparation through the operator: a source that cannot be prepared leaves the permit
//! Preparing with a condition naming the dataset, column and row and no extract; once fixed it
//! is prepared and the permit is Active; a changed rule prepares the extract again.

use anyhow::Result;
use haven_api::{DataPermit, constants::conditions, permit::PermitPhase};
use haven_e2e::{DEADLINE, Operator, admin, data_root, ensure_namespace, eventually, fixtures, unique_name};
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

async fn prepared_condition(permits: &Api<DataPermit>, name: &str) -> Result<Option<(String, String)>> {
    let status = permits.get(name).await?.status.unwrap_or_default();
    Ok(status
        .conditions
        .iter()
        .find(|c| c.type_ == conditions::DATASETS_PREPARED)
        .map(|c| (c.reason.clone(), c.message.clone())))
}

#[tokio::test]
async fn a_bad_source_is_reported_by_row_and_column_then_fixed_and_a_changed_rule_reprepares() -> Result<()> {
    let client = admin().await?;
    ensure_namespace(&client, "haven-system").await?;
    let root = data_root("prepare")?;
    let name = unique_name("prep");
    // Row 2 has a value the Band rule cannot read.
    std::fs::create_dir_all(root.join("raw"))?;
    std::fs::write(root.join("raw/survey.csv"), "id,age\n9434765919,34\n9434765870,thirty\n")?;
    let _operator = Operator::start(&root).await?;

    let permits: Api<DataPermit> = Api::all(client.clone());
    let mut permit = fixtures::permit(&name, "someone@example.org", -5, 600)?;
    permit.spec.datasets[0].columns = serde_json::from_value(json!([
        {"name": "id", "rule": "Hmac"},
        {"name": "age", "rule": "Band", "band": {"width": 10}},
    ]))?;
    permits.create(&PostParams::default(), &permit).await?;

    let (reason, message) = eventually(DEADLINE, "preparation fails", || async {
        Ok(prepared_condition(&permits, &name).await?.filter(|(reason, _)| reason == "PreparationFailed"))
    })
    .await?;
    assert!(
        message.contains("survey") && message.contains("age") && message.contains("row 2"),
        "{reason}: {message}"
    );
    assert!(!message.contains("thirty"), "the raw value must not reach the status: {message}");
    assert_eq!(permits.get(&name).await?.status.map(|s| s.phase), Some(PermitPhase::Preparing));
    let extracts = root.join("extracts").join(&name);
    let left: Vec<_> = std::fs::read_dir(&extracts)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "nothing may be left behind: {left:?}");

    // The custodian fixes the source and changes nothing else: it is prepared at the next try.
    std::fs::write(root.join("raw/survey.csv"), "id,age\n9434765919,34\n9434765870,30\n")?;
    eventually(DEADLINE, "permit Active", || async {
        Ok((permits.get(&name).await?.status.map(|s| s.phase) == Some(PermitPhase::Active)).then_some(()))
    })
    .await?;
    let data = std::fs::read_to_string(extracts.join("survey/data.csv"))?;
    assert!(data.contains("30-39"), "bands of 10: {data}");
    let first_sha = permits.get(&name).await?.status.map(|s| s.datasets[0].output_sha256.clone());

    // A changed rule prepares again: bands of 5 now.
    let narrower = json!({"spec": {"datasets": [{"name": "survey", "source": "survey.csv", "columns": [
        {"name": "id", "rule": "Hmac"}, {"name": "age", "rule": "Band", "band": {"width": 5}}]}]}});
    permits.patch(&name, &PatchParams::default(), &Patch::Merge(&narrower)).await?;
    eventually(DEADLINE, "re-prepared", || async {
        let status = permits.get(&name).await?.status.unwrap_or_default();
        let sha = status.datasets.first().map(|d| d.output_sha256.clone());
        Ok((sha != first_sha && status.phase == PermitPhase::Active).then_some(()))
    })
    .await?;
    let data = std::fs::read_to_string(extracts.join("survey/data.csv"))?;
    assert!(data.contains("30-34") && !data.contains("30-39"), "bands of 5: {data}");
    permits.delete(&name, &DeleteParams::default()).await?;
    Ok(())
}
