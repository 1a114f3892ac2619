//! `kubectl haven audit verify`: check the hash chain of a data store's audit log, as
//! `haven audit verify` does, from wherever the auditor has a copy of the data store.

use std::path::Path;

use anyhow::Context;
use haven_api::constants::AUDIT_ANCHOR_CONFIG_MAP;
use haven_data::audit::Anchor;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

use crate::connect::Connect;

/// The log to check: `<root>/audit/audit.log` for a data store root, else the file itself.
pub fn log_path(path: &Path) -> std::path::PathBuf {
    if path.is_dir() { haven_data::DataStore::new(path).audit_log() } else { path.to_owned() }
}

/// Checks the chain and, given an anchor, that the log still holds the anchored line.
pub fn verify(path: &Path, anchor: Option<&Anchor>) -> anyhow::Result<()> {
    let log = log_path(path);
    if !log.is_file() {
        anyhow::bail!("{} is not an audit log, nor a data store root with audit/audit.log", path.display());
    }
    let Some(anchor) = anchor else {
        let report = haven_data::audit::verify(&log).context("the audit chain does not verify")?;
        println!("{}: {} records, chain intact (head {})", log.display(), report.records, report.head);
        println!(
            "not checked against an anchor (--anchor or --cluster): a log cut short or rewritten and re-chained would pass"
        );
        return Ok(());
    };
    let report = haven_data::audit::verify_against(&log, anchor)
        .context("the audit log does not verify against its anchor")?;
    println!(
        "{}: {} records, chain intact (head {}), holds anchored line {}",
        log.display(),
        report.records,
        report.head,
        anchor.seq
    );
    Ok(())
}

/// The anchor the operator keeps in the cluster.
pub async fn cluster_anchor(connect: &Connect, operator_namespace: &str) -> anyhow::Result<Anchor> {
    let session = connect.session().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(session.client, operator_namespace);
    let found = config_maps
        .get(AUDIT_ANCHOR_CONFIG_MAP)
        .await
        .with_context(|| format!("reading ConfigMap {operator_namespace}/{AUDIT_ANCHOR_CONFIG_MAP}"))?;
    Anchor::from_data(&found.data.unwrap_or_default())
        .map_err(|e| anyhow::anyhow!("ConfigMap {operator_namespace}/{AUDIT_ANCHOR_CONFIG_MAP}: {e}"))
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use haven_data::{
        DataStore,
        audit::{AuditLog, AuditRecord},
    };

    use super::*;

    fn store_with_records(count: u32) -> anyhow::Result<(tempfile::TempDir, DataStore)> {
        let dir = tempfile::tempdir()?;
        let store = DataStore::new(dir.path());
        let log = AuditLog::open(&store)?;
        for n in 0..count {
            let detail = serde_json::json!({"n": n}).as_object().cloned().unwrap_or_default();
            let record = AuditRecord {
                time: Utc::now(),
                actor: "haven-operator".into(),
                action: "Exported".into(),
                object: "airlockrequest/ws-a/t".into(),
                detail,
            };
            log.append(record)?;
        }
        Ok((dir, store))
    }

    #[test]
    fn a_data_store_root_is_checked_through_its_audit_log() -> anyhow::Result<()> {
        let (dir, store) = store_with_records(3)?;
        assert_eq!(log_path(dir.path()), store.audit_log());
        verify(dir.path(), None)?;
        verify(&store.audit_log(), None)?;
        Ok(())
    }

    #[test]
    fn a_log_cut_short_fails_against_its_anchor() -> anyhow::Result<()> {
        let (dir, store) = store_with_records(3)?;
        let head = haven_data::audit::verify(&store.audit_log())?.head;
        let anchor: Anchor = format!("3:{head}").parse().map_err(anyhow::Error::msg)?;
        verify(dir.path(), Some(&anchor))?;
        let text = std::fs::read_to_string(store.audit_log())?;
        let kept: Vec<&str> = text.lines().take(2).collect();
        std::fs::write(store.audit_log(), kept.join("\n") + "\n")?;
        verify(dir.path(), None)?; // the chain alone cannot tell
        let message = verify(dir.path(), Some(&anchor)).err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(message.contains("cut short"), "{message}");
        Ok(())
    }

    #[test]
    fn an_edited_record_breaks_the_chain() -> anyhow::Result<()> {
        let (dir, store) = store_with_records(3)?;
        let text = std::fs::read_to_string(store.audit_log())?;
        std::fs::write(store.audit_log(), text.replacen("haven-operator", "haven-0perator", 1))?;
        let message = verify(dir.path(), None).err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(
            message.contains("the audit chain does not verify") && message.contains("line 2"),
            "{message}"
        );
        Ok(())
    }

    #[test]
    fn a_missing_log_is_a_clear_error() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let message = verify(dir.path(), None).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("nor a data store root with audit/audit.log"), "{message}");
        Ok(())
    }
}
