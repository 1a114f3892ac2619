//! Who is inside now. A visit is one browser session's stay in one workspace (HTTP requests,
//! ended after a quiet spell) or one WebSocket connection; each begins and ends with a record.
//! The sweeper asks again for everyone inside and ends the visits of whoever lost access,
//! closing their WebSockets.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use haven_data::audit::AuditError;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::{
    activity::{self, Activity},
    authz::{Authorizer, Refusal},
    evidence::{Evidence, Origin, timestamp},
    session::{Session, random_token},
};

/// How a visit ended by the sweeper's recheck begins its reason.
pub const ACCESS_REMOVED: &str = "access removed";

/// An HTTP visit with no request for this long has ended.
pub const VISIT_QUIET: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisitKind {
    Http,
    WebSocket,
}

impl VisitKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::WebSocket => "websocket",
        }
    }
}

/// One stay, with its counters.
#[derive(Debug)]
pub struct Visit {
    pub id: String,
    pub session: String,
    pub user: String,
    pub mfa: bool,
    pub workspace: String,
    pub permit: String,
    pub kind: VisitKind,
    pub start: DateTime<Utc>,
    /// When the session's login was: its absolute lifetime ends WebSockets too.
    pub logged_in: DateTime<Utc>,
    last: Mutex<Instant>,
    pub requests: AtomicU64,
    /// Bytes from the person to the environment.
    pub bytes_in: AtomicU64,
    /// Bytes from the environment to the person.
    pub bytes_out: AtomicU64,
    /// Cancelled when the visit ends: a WebSocket's copy loops stop and its sockets close.
    pub closed: CancellationToken,
}

impl Visit {
    pub fn touch(&self) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    fn quiet_for(&self) -> Duration {
        self.last.lock().unwrap_or_else(PoisonError::into_inner).elapsed()
    }
}

/// The visits in progress.
#[derive(Debug, Clone)]
pub struct Tracker {
    evidence: Evidence,
    visits: Arc<Mutex<HashMap<String, Arc<Visit>>>>,
    /// Held while an HTTP visit is looked up and begun, so a page's parallel first requests
    /// begin one visit, not several.
    beginning: Arc<tokio::sync::Mutex<()>>,
}

impl Tracker {
    pub fn new(evidence: Evidence) -> Self {
        Self { evidence, visits: Arc::default(), beginning: Arc::default() }
    }

    /// The session's HTTP visit to the workspace: the one in progress, or a new one whose
    /// start is recorded first (no record, no entry).
    pub async fn http_visit(
        &self,
        session: &Session,
        workspace: &str,
        permit: &str,
        origin: &Origin,
    ) -> Result<Arc<Visit>, AuditError> {
        let found = |visits: &HashMap<String, Arc<Visit>>| {
            visits
                .values()
                .find(|v| {
                    v.kind == VisitKind::Http
                        && v.session == session.id
                        && v.workspace == workspace
                        && v.mfa == session.mfa
                })
                .cloned()
        };
        if let Some(visit) = found(&self.lock()) {
            return Ok(visit);
        }
        let _one_at_a_time = self.beginning.lock().await;
        if let Some(visit) = found(&self.lock()) {
            return Ok(visit);
        }
        self.begin(session, workspace, permit, origin, VisitKind::Http)
    }

    /// A new WebSocket visit.
    pub fn websocket(
        &self,
        session: &Session,
        workspace: &str,
        permit: &str,
        origin: &Origin,
    ) -> Result<Arc<Visit>, AuditError> {
        self.begin(session, workspace, permit, origin, VisitKind::WebSocket)
    }

    fn begin(
        &self,
        session: &Session,
        workspace: &str,
        permit: &str,
        origin: &Origin,
        kind: VisitKind,
    ) -> Result<Arc<Visit>, AuditError> {
        let visit = Arc::new(Visit {
            id: random_token(8),
            session: session.id.clone(),
            user: session.user.clone(),
            mfa: session.mfa,
            workspace: workspace.to_owned(),
            permit: permit.to_owned(),
            kind,
            start: Utc::now(),
            logged_in: session.issued,
            last: Mutex::new(Instant::now()),
            requests: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            closed: CancellationToken::new(),
        });
        let detail = json!({
            "visit": visit.id, "kind": kind.as_str(), "permit": permit,
            "source": origin.source, "userAgent": origin.user_agent,
        });
        self.evidence.record(&visit.user, "visit-start", &format!("workspace/{workspace}"), detail)?;
        let note = format!("{} entered ({})", visit.user, kind.as_str());
        self.evidence.event(workspace, &visit.user, "Visit", kube::runtime::events::EventType::Normal, &note);
        self.evidence.metrics.visit_began(kind.as_str());
        self.lock().insert(visit.id.clone(), Arc::clone(&visit));
        Ok(visit)
    }

    /// Ends a visit once: records its end with its counters and closes its connections.
    pub fn end(&self, id: &str, reason: &str) {
        let Some(visit) = self.lock().remove(id) else { return };
        visit.closed.cancel();
        self.evidence.metrics.visit_ended(visit.kind.as_str(), reason.starts_with(ACCESS_REMOVED));
        let end = Utc::now();
        let seconds = (end - visit.start).num_milliseconds() as f64 / 1000.0;
        let mut detail = json!({
            "visit": visit.id, "kind": visit.kind.as_str(), "permit": visit.permit,
            "start": timestamp(visit.start), "end": timestamp(end), "seconds": seconds,
            "bytesIn": visit.bytes_in.load(Ordering::Relaxed), "bytesOut": visit.bytes_out.load(Ordering::Relaxed),
            "reason": reason,
        });
        if visit.kind == VisitKind::Http {
            detail["requests"] = json!(visit.requests.load(Ordering::Relaxed));
        }
        self.evidence.record_or_log(
            &visit.user,
            "visit-end",
            &format!("workspace/{}", visit.workspace),
            detail,
        );
    }

    /// Ends every visit (the gateway is stopping).
    pub fn end_all(&self, reason: &str) {
        let ids: Vec<String> = self.lock().keys().cloned().collect();
        for id in ids {
            self.end(&id, reason);
        }
    }

    /// Ends the visits of a session (logout).
    pub fn end_session(&self, session: &str, reason: &str) {
        let ids: Vec<String> =
            self.lock().values().filter(|v| v.session == session).map(|v| v.id.clone()).collect();
        for id in ids {
            self.end(&id, reason);
        }
    }

    pub fn open_visits(&self) -> Vec<Arc<Visit>> {
        self.lock().values().cloned().collect()
    }

    /// One pass of the sweeper: asks again for each person inside each workspace and ends
    /// the visits of whoever may no longer be there; ends quiet HTTP visits.
    /// Also ends visits whose session outlived its absolute lifetime, and reports activity for
    /// workspaces someone used since the last pass (a terminal or kernel over a WebSocket
    /// sends no new requests).
    pub async fn sweep(
        &self,
        authorizer: &Authorizer,
        activity: &Activity,
        session_lifetime: chrono::Duration,
    ) {
        let mut people: Vec<(String, String, bool)> =
            self.open_visits().iter().map(|v| (v.workspace.clone(), v.user.clone(), v.mfa)).collect();
        people.sort();
        people.dedup();
        for (workspace, user, mfa) in people {
            match authorizer.ask_fresh(&workspace, &user, mfa).await {
                Ok(_) | Err(Refusal::Unavailable(_)) => {}
                Err(refusal) => {
                    let reason = format!("{ACCESS_REMOVED}: {refusal}");
                    let ids: Vec<String> = self
                        .open_visits()
                        .iter()
                        .filter(|v| v.workspace == workspace && v.user == user && v.mfa == mfa)
                        .map(|v| v.id.clone())
                        .collect();
                    tracing::info!(%workspace, %user, reason, visits = ids.len(), "ending visits");
                    for id in ids {
                        self.end(&id, &reason);
                    }
                }
            }
        }
        let now = Utc::now();
        let outlived: Vec<String> = self
            .open_visits()
            .iter()
            .filter(|v| now - v.logged_in > session_lifetime)
            .map(|v| v.id.clone())
            .collect();
        for id in outlived {
            self.end(&id, "the session's lifetime ended");
        }
        for visit in self.open_visits().iter().filter(|v| v.quiet_for() < activity::REPORT_INTERVAL) {
            activity.report(&visit.workspace, false);
        }
        let quiet: Vec<String> = self
            .open_visits()
            .iter()
            .filter(|v| v.kind == VisitKind::Http && v.quiet_for() > VISIT_QUIET)
            .map(|v| v.id.clone())
            .collect();
        for id in quiet {
            self.end(&id, "idle");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Visit>>> {
        self.visits.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn session(id: &str) -> Session {
        let now = Utc::now();
        Session { id: id.into(), user: "ada@x".into(), mfa: true, amr: vec![], issued: now, seen: now }
    }

    fn records(path: &std::path::Path) -> Vec<serde_json::Value> {
        haven_data::audit::verify(path).expect("the chain verifies");
        let text = std::fs::read_to_string(path).expect("log");
        text.lines().map(|l| serde_json::from_str(l).expect("json")).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sessions_requests_are_one_visit_and_it_ends_once_with_its_counters() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("access.log");
        let tracker = Tracker::new(Evidence::open(&log, None).expect("log"));
        let origin = Origin { source: "10.0.0.9".into(), user_agent: "test".into() };
        let first = tracker.http_visit(&session("s1"), "w", "p", &origin).await.expect("visit");
        let again = tracker.http_visit(&session("s1"), "w", "p", &origin).await.expect("visit");
        assert_eq!(first.id, again.id, "one visit per session and workspace");
        let other = tracker.http_visit(&session("s2"), "w", "p", &origin).await.expect("visit");
        assert_ne!(first.id, other.id, "another session is another visit");
        let socket = tracker.websocket(&session("s1"), "w", "p", &origin).expect("visit");
        first.bytes_out.fetch_add(523, Ordering::Relaxed);
        tracker.end(&first.id, "idle");
        tracker.end(&first.id, "idle");
        tracker.end_session("s1", "logged out");
        assert!(socket.closed.is_cancelled(), "logging out closes the session's WebSockets");
        assert_eq!(tracker.open_visits().len(), 1, "s2's visit stays open");
        let records = records(&log);
        let ends: Vec<_> = records.iter().filter(|r| r["action"] == "visit-end").collect();
        assert_eq!(ends.len(), 2, "one end per visit: {ends:?}");
        assert_eq!(ends[0]["detail"]["bytesOut"], 523);
        assert_eq!(ends[0]["detail"]["reason"], "idle");
        assert_eq!(ends[1]["detail"]["kind"], "websocket");
        assert_eq!(ends[1]["detail"]["reason"], "logged out");
        assert_eq!(records.iter().filter(|r| r["action"] == "visit-start").count(), 3);
    }
}
