//! Every step at this site, in its own hash-chained log `audit/federation.log` (verified like
//! the operator's with `haven audit verify`).

use chrono::Utc;
use haven_data::{AuditLog, AuditRecord, DataStore};
use serde_json::{Map, Value};

pub const FEDERATION_LOG: &str = "federation.log";

/// The log, shared by the hub and the agent of one process.
#[derive(Debug)]
pub struct Trail {
    log: AuditLog,
}

impl Trail {
    pub fn open(store: &DataStore) -> anyhow::Result<Self> {
        let dir = store.audit_dir();
        std::fs::create_dir_all(&dir)?;
        Ok(Self { log: AuditLog::open_at(&dir.join(FEDERATION_LOG))? })
    }

    /// Appends one record: `actor` did `action` to the task `object`, with `detail`.
    pub fn record(&self, actor: &str, action: &str, object: &str, detail: Value) -> anyhow::Result<()> {
        let detail = match detail {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let record = AuditRecord {
            time: Utc::now(),
            actor: actor.into(),
            action: action.into(),
            object: object.into(),
            detail,
        };
        if self.log.append(record.clone()).is_err() {
            // A failed append leaves the log unusable until the torn line is dropped.
            self.log.recover()?;
            self.log.append(record)?;
        }
        Ok(())
    }
}
