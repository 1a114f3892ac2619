//! Evidence of access: every login, refused login, visit and refusal is a record in the
//! hash-chained access log (`haven audit verify` checks it; `kubectl haven access` lists it),
//! and connects and refusals are Workspace Events, at most one per person, kind and minute.

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use haven_data::audit::{AuditError, AuditLog, AuditRecord};
use kube::{
    Client, Resource,
    runtime::events::{Event, EventType, Recorder, Reporter},
};
use serde_json::{Map, Value, json};

use crate::{directory::Directory, metrics::Metrics};

/// Who writes the Events.
pub const REPORTER: &str = "haven-gateway";
/// The shortest time between two Events of one person, workspace and kind.
const EVENT_INTERVAL: Duration = Duration::from_secs(60);

/// Where a request came from, for every record.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub source: String,
    pub user_agent: String,
}

/// (workspace, user, kind) → when its last Event was sent.
type RecentEvents = HashMap<(String, String, String), Instant>;

/// The access log and the Event recorder.
#[derive(Clone)]
pub struct Evidence {
    log: Arc<AuditLog>,
    pub metrics: Arc<Metrics>,
    recorder: Option<(Recorder, Directory)>,
    recent: Arc<Mutex<RecentEvents>>,
}

impl std::fmt::Debug for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evidence").field("log", &self.log.path()).finish_non_exhaustive()
    }
}

impl Evidence {
    /// Opens the access log; with a client and the watched objects, Events go to Workspaces.
    pub fn open(path: &Path, events: Option<(Client, Directory)>) -> Result<Self, AuditError> {
        let log = AuditLog::open_at(path)?;
        let instance = std::env::var("POD_NAME").or_else(|_| std::env::var("HOSTNAME")).ok();
        let recorder = events.map(|(client, directory)| {
            (Recorder::new(client, Reporter { controller: REPORTER.into(), instance }), directory)
        });
        Ok(Self { log: Arc::new(log), metrics: Arc::default(), recorder, recent: Arc::default() })
    }

    /// Appends one record, synced before it returns: a visit is let in only once its start
    /// is on disk.
    pub fn record(&self, actor: &str, action: &str, object: &str, detail: Value) -> Result<(), AuditError> {
        let detail = match detail {
            Value::Object(map) => map,
            other => Map::from_iter([("value".to_owned(), other)]),
        };
        let record = AuditRecord {
            time: Utc::now(),
            actor: actor.into(),
            action: action.into(),
            object: object.into(),
            detail,
        };
        let log = Arc::clone(&self.log);
        // Appends fsync; keep them off the request threads' hot path.
        tokio::task::block_in_place(|| log.append(record))
    }

    /// Records and logs a failure to record, for events whose record must not stop anything
    /// (a refusal is refused whether or not the log took it).
    pub fn record_or_log(&self, actor: &str, action: &str, object: &str, detail: Value) {
        if let Err(error) = self.record(actor, action, object, detail) {
            tracing::error!(%error, actor, action, object, "the access log did not take a record");
        }
    }

    pub fn login(&self, user: &str, origin: &Origin, amr: &[String], mfa: bool) -> Result<(), AuditError> {
        let detail = json!({"source": origin.source, "userAgent": origin.user_agent, "amr": amr, "mfa": mfa});
        self.record(user, "login", "gateway", detail)?;
        self.metrics.login(true);
        Ok(())
    }

    pub fn login_refused(&self, user: Option<&str>, origin: &Origin, reason: &str) {
        let detail = json!({"reason": reason, "source": origin.source, "userAgent": origin.user_agent});
        self.metrics.login(false);
        self.record_or_log(user.unwrap_or("anonymous"), "login-refused", "gateway", detail);
    }

    pub fn refused(&self, user: Option<&str>, workspace: Option<&str>, request: &RefusedRequest<'_>) {
        let RefusedRequest { reason, kind, method, path, status, origin } = request;
        let detail = json!({
            "reason": reason, "method": method, "path": path, "status": status,
            "source": origin.source, "userAgent": origin.user_agent,
        });
        self.metrics.refused(kind);
        let object = workspace.map_or_else(|| "gateway".to_owned(), |w| format!("workspace/{w}"));
        let actor = user.unwrap_or("anonymous");
        self.record_or_log(actor, "refused", &object, detail);
        if let Some(workspace) = workspace {
            self.event(workspace, actor, kind, EventType::Warning, &format!("refused {actor}: {reason}"));
        }
    }

    /// A Workspace Event, unless this person had one of this kind for it within the minute, or
    /// the workspace does not exist (a name anyone can make up must not make Events).
    pub fn event(&self, workspace: &str, user: &str, kind: &str, type_: EventType, note: &str) {
        let Some((recorder, directory)) = self.recorder.clone() else { return };
        let Some(object) = directory.workspace(workspace) else { return };
        let key = (workspace.to_owned(), user.to_owned(), kind.to_owned());
        {
            let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
            if recent.get(&key).is_some_and(|at| at.elapsed() < EVENT_INTERVAL) {
                return;
            }
            recent.retain(|_, at| at.elapsed() < EVENT_INTERVAL);
            recent.insert(key, Instant::now());
        }
        let reference = object.object_ref(&());
        let event = Event {
            type_,
            reason: kind.to_owned(),
            note: Some(note.chars().take(1000).collect()),
            action: "Access".into(),
            secondary: None,
        };
        tokio::spawn(async move {
            if let Err(error) = recorder.publish(&event, &reference).await {
                tracing::warn!(%error, "could not publish a Workspace Event");
            }
        });
    }
}

/// A refused request, as recorded.
#[derive(Debug)]
pub struct RefusedRequest<'a> {
    pub reason: &'a str,
    /// A stable word for the Event's reason.
    pub kind: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub origin: &'a Origin,
}

/// RFC 3339 to the second, as the records show times.
pub fn timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
