//! The gateway's access records read back as visits (a `visit-start` paired with the
//! `visit-end` of the same id) and refusals. Pure: records in, rows out.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use haven_data::audit::AuditRecord;
use serde::Serialize;
use serde_json::{Map, Value};

/// The object prefix of records about a workspace.
const WORKSPACE_PREFIX: &str = "workspace/";

/// One visit: from its `visit-start`, completed by its `visit-end` if one was written.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Visit {
    pub workspace: String,
    pub visit: String,
    pub user: String,
    /// `http` (one browser session, many requests) or `websocket` (one connection).
    pub kind: String,
    pub permit: Option<String>,
    pub start: DateTime<Utc>,
    /// None while open: no `visit-end` (still inside, or the gateway stopped without one).
    pub end: Option<DateTime<Utc>>,
    pub seconds: Option<f64>,
    pub requests: Option<u64>,
    /// Bytes from the user.
    pub bytes_in: Option<u64>,
    /// Bytes to the user.
    pub bytes_out: Option<u64>,
    pub source: Option<String>,
    pub user_agent: Option<String>,
    /// Why it ended: `idle`, `closed`, `access removed: …`, `gateway stopped`.
    pub ended: Option<String>,
}

impl Visit {
    /// How long it lasted; None while open.
    pub fn duration(&self) -> Option<TimeDelta> {
        self.seconds.map(|seconds| TimeDelta::milliseconds((seconds * 1000.0).round() as i64))
    }

    fn begun(workspace: &str, id: &str, record: &AuditRecord, start: DateTime<Utc>) -> Self {
        let detail = &record.detail;
        Self {
            workspace: workspace.to_owned(),
            visit: id.to_owned(),
            user: record.actor.clone(),
            kind: text(detail, "kind").unwrap_or_else(|| "-".into()),
            permit: text(detail, "permit"),
            start,
            end: None,
            seconds: None,
            requests: None,
            bytes_in: None,
            bytes_out: None,
            source: text(detail, "source"),
            user_agent: text(detail, "userAgent"),
            ended: None,
        }
    }

    /// Completes the visit from its `visit-end`; the gateway's own start and end win over the
    /// records' write times (a `visit-start` is written just after its visit began).
    fn end_with(&mut self, record: &AuditRecord) {
        let detail = &record.detail;
        self.start = instant(detail, "start").unwrap_or(self.start);
        let end = instant(detail, "end").unwrap_or(record.time);
        self.end = Some(end);
        self.seconds = detail
            .get("seconds")
            .and_then(Value::as_f64)
            .or_else(|| Some((end - self.start).num_milliseconds() as f64 / 1000.0));
        self.requests = count(detail, "requests");
        self.bytes_in = count(detail, "bytesIn");
        self.bytes_out = count(detail, "bytesOut");
        self.ended = text(detail, "reason");
        self.permit = self.permit.take().or_else(|| text(detail, "permit"));
        self.source = self.source.take().or_else(|| text(detail, "source"));
    }
}

/// The visits in `records` (log order), sorted by start. A `visit-end` pairs with the open
/// `visit-start` of the same workspace and id; one without a start still counts, from the
/// start it gives.
pub fn visits(records: &[AuditRecord]) -> Vec<Visit> {
    let mut visits: Vec<Visit> = Vec::new();
    let mut open: HashMap<(&str, String), usize> = HashMap::new();
    for record in records {
        let Some(workspace) = record.object.strip_prefix(WORKSPACE_PREFIX) else { continue };
        let Some(id) = text(&record.detail, "visit") else { continue };
        match record.action.as_str() {
            "visit-start" => {
                visits.push(Visit::begun(workspace, &id, record, record.time));
                open.insert((workspace, id), visits.len() - 1);
            }
            "visit-end" => {
                let started = open.remove(&(workspace, id.clone()));
                if let Some(visit) = started.and_then(|index| visits.get_mut(index)) {
                    visit.end_with(record);
                } else {
                    let mut visit = Visit::begun(workspace, &id, record, record.time);
                    visit.end_with(record);
                    visits.push(visit);
                }
            }
            _ => {}
        }
    }
    visits.sort_by_key(|visit| visit.start);
    visits
}

/// A request or login the gateway turned away.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Refusal {
    pub time: DateTime<Utc>,
    /// `refused` (a request) or `login-refused`.
    pub action: String,
    /// None for a refusal at the gateway itself (a login, a request for no workspace).
    pub workspace: Option<String>,
    /// The user, or `anonymous`.
    pub user: String,
    pub reason: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub status: Option<u64>,
    pub source: Option<String>,
    pub user_agent: Option<String>,
}

/// The `refused` and `login-refused` records, sorted by time.
pub fn refusals(records: &[AuditRecord]) -> Vec<Refusal> {
    let mut refusals: Vec<Refusal> = records
        .iter()
        .filter(|record| matches!(record.action.as_str(), "refused" | "login-refused"))
        .map(|record| {
            let detail = &record.detail;
            Refusal {
                time: record.time,
                action: record.action.clone(),
                workspace: record.object.strip_prefix(WORKSPACE_PREFIX).map(str::to_owned),
                user: record.actor.clone(),
                reason: text(detail, "reason"),
                method: text(detail, "method"),
                path: text(detail, "path"),
                status: count(detail, "status"),
                source: text(detail, "source"),
                user_agent: text(detail, "userAgent"),
            }
        })
        .collect();
    refusals.sort_by_key(|refusal| refusal.time);
    refusals
}

fn text(detail: &Map<String, Value>, key: &str) -> Option<String> {
    detail.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn count(detail: &Map<String, Value>, key: &str) -> Option<u64> {
    detail.get(key).and_then(Value::as_u64)
}

fn instant(detail: &Map<String, Value>, key: &str) -> Option<DateTime<Utc>> {
    detail
        .get(key)
        .and_then(Value::as_str)
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .map(Into::into)
}
