//! A task's status at the requesting site, computed from what each data site reported: pure
//! functions, so the same reports always give the same status.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use haven_api::task::{AnalysisTaskStatus, SiteProgress, SiteTaskState, StateChange, TesState};

use crate::wire::Report;

/// The most state changes kept per site (a task's life has about ten).
const HISTORY: usize = 32;

/// What the task runs under, or why it cannot run.
pub type Scope = Result<Targets, String>;

/// The multi-site permit's id and the data sites the task goes to.
#[derive(Debug, Clone, PartialEq)]
pub struct Targets {
    pub multi_site_permit: String,
    pub sites: Vec<String>,
}

/// `old` with an entry for every target site (new ones `Waiting` since `now`) and the state
/// and summary that follow from the entries.
pub fn derive(
    old: &AnalysisTaskStatus,
    scope: &Scope,
    cancelled: bool,
    now: DateTime<Utc>,
) -> AnalysisTaskStatus {
    let mut status = old.clone();
    let targets = match scope {
        Ok(targets) => targets,
        Err(_) => {
            status.state = TesState::SystemError;
            status.summary = Some("not sent: see conditions".into());
            return status;
        }
    };
    status.multi_site_permit = Some(targets.multi_site_permit.clone());
    for site in &targets.sites {
        if !status.sites.iter().any(|p| &p.site == site) {
            status.sites.push(SiteProgress {
                site: site.clone(),
                state: SiteTaskState::Waiting,
                reason: String::new(),
                message: String::new(),
                history: vec![StateChange { state: SiteTaskState::Waiting, at: now }],
                manifest_sha256: None,
                delivered_to: None,
            });
        }
    }
    status.sites.sort_by(|a, b| a.site.cmp(&b.site));
    status.state = overall(&status.sites, cancelled);
    status.summary = Some(summary(&status.sites));
    status
}

fn overall(sites: &[SiteProgress], cancelled: bool) -> TesState {
    use SiteTaskState as S;
    let any = |f: fn(SiteTaskState) -> bool| sites.iter().any(|p| f(p.state));
    if cancelled {
        return TesState::Canceled;
    }
    if !sites.is_empty() && sites.iter().all(|p| p.state.is_final()) {
        let failed_only = sites.iter().all(|p| p.state == S::Failed);
        return if failed_only { TesState::ExecutorError } else { TesState::Complete };
    }
    if any(|s| matches!(s, S::Running | S::Checking | S::AwaitingReview | S::Approved)) {
        TesState::Running
    } else if any(|s| s == S::Pulled || s.is_final()) {
        TesState::Initializing
    } else {
        TesState::Queued
    }
}

/// e.g. `1 Delivered, 1 NotParticipating, 1 Rejected`.
fn summary(sites: &[SiteProgress]) -> String {
    let mut counts = BTreeMap::<String, usize>::new();
    for progress in sites {
        *counts.entry(format!("{:?}", progress.state)).or_default() += 1;
    }
    counts.iter().map(|(state, n)| format!("{n} {state}")).collect::<Vec<_>>().join(", ")
}

/// Why a report cannot be taken.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("site {0} is not a data site of this task")]
    NotATarget(String),
    #[error("only the requesting site records a delivery")]
    DeliveryIsOurs,
}

/// Records `report` from `site`. A site that has finished stays finished (a late or repeated
/// report changes nothing); `Delivered` is only ever recorded by the requesting site itself,
/// when the package is in place.
pub fn apply_report(status: &mut AnalysisTaskStatus, site: &str, report: &Report) -> Result<bool, Refusal> {
    if report.state == SiteTaskState::Delivered {
        return Err(Refusal::DeliveryIsOurs);
    }
    let progress =
        status.sites.iter_mut().find(|p| p.site == site).ok_or_else(|| Refusal::NotATarget(site.into()))?;
    if progress.state.is_final() {
        return Ok(false);
    }
    Ok(record(
        progress,
        report.state,
        &report.reason,
        &report.message,
        report.at,
        report.manifest_sha256.clone(),
    ))
}

/// Moves `progress` to `state`; whether anything changed.
pub fn record(
    progress: &mut SiteProgress,
    state: SiteTaskState,
    reason: &str,
    message: &str,
    at: DateTime<Utc>,
    manifest_sha256: Option<String>,
) -> bool {
    let before = progress.clone();
    if progress.state != state {
        progress.history.push(StateChange { state, at });
        if progress.history.len() > HISTORY {
            progress.history.remove(0);
        }
    }
    progress.state = state;
    progress.reason = reason.into();
    progress.message = message.into();
    if manifest_sha256.is_some() {
        progress.manifest_sha256 = manifest_sha256;
    }
    *progress != before
}

#[cfg(test)]
#[path = "progress_tests.rs"]
mod tests;
