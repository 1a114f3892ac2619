//! No change without its record: while the audit log cannot be written, the operator makes no
//! state change it would have to record (the permit stays as it was, the failure is logged and
//! counted), and once the log can be written again the change goes through with its record
//! and the chain intact. The log is made unwritable with the immutable flag (`chattr +i`),
//! which stops even root and the operator's open file.

use anyhow::{Context, Result, ensure};
use haven_api::{DataPermit, permit::PermitPhase};
use haven_data::DataStore;
use haven_e2e::{DEADLINE, Operator, admin, data_root, ensure_namespace, eventually, fixtures, unique_name};
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

fn chattr(flag: &str, path: &std::path::Path) -> Result<()> {
    let status =
        std::process::Command::new("chattr").arg(flag).arg(path).status().context("running chattr")?;
    ensure!(status.success(), "chattr {flag} {} failed", path.display());
    Ok(())
}

async fn phase(permits: &Api<DataPermit>, name: &str) -> Result<PermitPhase> {
    Ok(permits.get(name).await?.status.map(|s| s.phase).unwrap_or_default())
}

#[tokio::test]
async fn while_the_audit_log_cannot_be_written_no_change_is_made_without_its_record() -> Result<()> {
    let client = admin().await?;
    ensure_namespace(&client, "haven-system").await?;
    let root = data_root("audit-durable")?;
    fixtures::write_raw_source(&root)?;
    let store = DataStore::new(&root);
    let operator = Operator::start(&root).await?;
    let permits: Api<DataPermit> = Api::all(client.clone());
    let name = unique_name("durable-p");
    permits.create(&PostParams::default(), &fixtures::permit(&name, "durable@example.org", -5, 600)?).await?;
    // The canary: with a writable log the permit becomes Active, recorded.
    eventually(DEADLINE, "permit Active", || async {
        Ok((phase(&permits, &name).await? == PermitPhase::Active).then_some(()))
    })
    .await?;
    let log = store.audit_log();
    let records_before = std::fs::read_to_string(&log)?.lines().count();

    chattr("+i", &log)?;
    let outcome = async {
        let revoke = json!({"spec": {"revoked": true, "revocationReason": "e2e: audit durability"}});
        permits.patch(&name, &PatchParams::default(), &Patch::Merge(&revoke)).await?;
        // The operator tries (and says so), but the permit does not move without its record.
        let operator_log = std::path::PathBuf::from(format!("{}.operator.log", root.display()));
        eventually(DEADLINE, "the failed append is logged", || async {
            let text = std::fs::read_to_string(&operator_log).unwrap_or_default();
            Ok(text.contains("could not append to the audit log").then_some(()))
        })
        .await?;
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        ensure!(
            phase(&permits, &name).await? == PermitPhase::Active,
            "the permit changed without its record"
        );
        Ok(())
    }
    .await;
    chattr("-i", &log)?;
    outcome?;

    // Writable again: the change goes through, recorded, and the chain is whole.
    eventually(DEADLINE, "permit revoked or archived", || async {
        let now = phase(&permits, &name).await?;
        Ok(matches!(now, PermitPhase::Revoked | PermitPhase::Archived).then_some(now))
    })
    .await?;
    let text = std::fs::read_to_string(&log)?;
    ensure!(text.lines().count() > records_before, "no record was added");
    let recorded = text.lines().skip(records_before).any(|line| {
        line.contains(&format!("\"object\":\"datapermit/{name}\""))
            && (line.contains("\"Revoked\"") || line.contains("\"Archived\""))
    });
    ensure!(recorded, "the change's record is in the log:\n{text}");
    haven_data::audit::verify(&log)?;
    drop(operator);
    permits.delete(&name, &DeleteParams::default()).await?;
    Ok(())
}
