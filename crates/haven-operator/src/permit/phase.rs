//! Where a permit is in its lifecycle, from its spec, its status, the clock and what exists
//! (pure). The controller turns the result into status, Events and a requeue.

use chrono::{DateTime, Duration, Utc};
use haven_api::{
    DataPermitSpec, DataPermitStatus,
    permit::PermitPhase,
    validation::{PermitWindow, parse_duration},
};

/// What the controller observed outside the permit itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PermitFacts {
    /// Every dataset has an extract in the data store (the seam for preparation).
    pub extracts_present: bool,
    /// Workspaces of the permit not yet archived.
    pub live_workspaces: u32,
    /// The DataPermit is being deleted: treated as revoked, data still kept for retention.
    pub deleting: bool,
}

/// The permit's lifecycle position and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lifecycle {
    pub phase: PermitPhase,
    /// When every workspace was archived (set once, kept).
    pub archived_at: Option<DateTime<Utc>>,
    /// When the data may be destroyed.
    pub destroy_after: Option<DateTime<Utc>>,
    /// Retention has ended and the data is not destroyed yet: destroy it now.
    pub destroy_now: bool,
    /// When the phase will next change by the clock alone.
    pub next_change: Option<DateTime<Utc>>,
}

pub fn lifecycle(
    spec: &DataPermitSpec,
    status: &DataPermitStatus,
    facts: PermitFacts,
    now: DateTime<Utc>,
) -> Lifecycle {
    // The schema admits only valid durations; an unreadable one keeps data the longest default.
    let retention = parse_duration(&spec.retention).unwrap_or_else(|| Duration::days(183));
    let settle = |phase, archived_at: Option<DateTime<Utc>>, next_change| Lifecycle {
        phase,
        archived_at,
        destroy_after: archived_at.map(|at| at + retention),
        destroy_now: false,
        next_change,
    };
    if status.destruction.is_some() {
        return settle(PermitPhase::Destroyed, status.archived_at, None);
    }
    let window = PermitWindow::at(now, spec.valid_from, spec.valid_until);
    let closed = spec.revoked || facts.deleting || matches!(window, PermitWindow::Closed { .. });
    if closed || status.archived_at.is_some() {
        if let Some(archived_at) = status.archived_at.or((facts.live_workspaces == 0).then_some(now)) {
            let destroy_after = archived_at + retention;
            let mut archived = settle(PermitPhase::Archived, Some(archived_at), Some(destroy_after));
            archived.destroy_now = now >= destroy_after;
            return archived;
        }
        let phase = if spec.revoked || facts.deleting { PermitPhase::Revoked } else { PermitPhase::Expired };
        return settle(phase, None, None);
    }
    let phase = match window {
        PermitWindow::NotYetOpen { .. } => PermitPhase::Pending,
        _ if spec.suspended => PermitPhase::Suspended,
        _ if !facts.extracts_present => PermitPhase::Preparing,
        _ => PermitPhase::Active,
    };
    settle(phase, None, window.next_change())
}

#[cfg(test)]
#[path = "phase_tests.rs"]
mod tests;
