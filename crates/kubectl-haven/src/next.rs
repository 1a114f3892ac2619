//! What happens next to a permit or a workspace, and when: computed from spec and status only,
//! the same inputs the operator schedules its transitions from.

use chrono::{DateTime, Utc};
use haven_api::{
    DataPermit, Workspace, permit::PermitPhase, validation::effective_expiry, workspace::WorkspacePhase,
};

use crate::format::{date, humanize};

/// When a permit's workspaces lose access: its `validUntil`, while that is still ahead.
pub fn permit_expiry(permit: &DataPermit) -> Option<DateTime<Utc>> {
    let phase = permit.status.as_ref().map(|s| s.phase).unwrap_or_default();
    matches!(
        phase,
        PermitPhase::Pending | PermitPhase::Preparing | PermitPhase::Active | PermitPhase::Suspended
    )
    .then_some(permit.spec.valid_until)
}

/// What the operator will do next with `permit`.
pub fn permit_next(permit: &DataPermit, now: DateTime<Utc>) -> String {
    let spec = &permit.spec;
    let status = permit.status.clone().unwrap_or_default();
    let expires = format!("expires {} → workspaces archived", date(spec.valid_until));
    match status.phase {
        PermitPhase::Pending if spec.valid_from > now => {
            format!(
                "activates {} (in {}) → datasets prepared",
                date(spec.valid_from),
                humanize(spec.valid_from - now)
            )
        }
        PermitPhase::Pending => "activating → datasets prepared".into(),
        PermitPhase::Preparing => {
            format!("preparing datasets ({}/{} done) → Active", status.datasets.len(), spec.datasets.len())
        }
        PermitPhase::Active => expires,
        PermitPhase::Suspended => format!("suspended until spec.suspended is cleared; {expires}"),
        PermitPhase::Expired | PermitPhase::Revoked if status.workspaces > 0 => format!(
            "archiving {} workspace{} → Archived, then destroyed after retention ({})",
            status.workspaces,
            if status.workspaces == 1 { "" } else { "s" },
            spec.retention
        ),
        PermitPhase::Expired | PermitPhase::Revoked => {
            format!("→ Archived, then destroyed after retention ({})", spec.retention)
        }
        PermitPhase::Archived => match status.destroy_after {
            Some(at) => format!("destroyed after retention on {}", date(at)),
            None => format!("destroyed after retention ({})", spec.retention),
        },
        PermitPhase::Destroyed => match status.destruction {
            Some(record) => {
                format!("nothing: data destroyed on {}; the record is kept", date(record.destroyed_at))
            }
            None => "nothing: data destroyed".into(),
        },
    }
}

/// When a workspace is torn down: the status's effective expiry, else the earlier of its own
/// `expiresAt` and its permit's `validUntil`; only while it is not yet being torn down.
pub fn workspace_expiry(workspace: &Workspace, permit: Option<&DataPermit>) -> Option<DateTime<Utc>> {
    let status = workspace.status.clone().unwrap_or_default();
    if matches!(status.phase, WorkspacePhase::Expiring | WorkspacePhase::Archived) {
        return None;
    }
    status.expires_at.or_else(|| match permit {
        Some(permit) => Some(effective_expiry(workspace.spec.expires_at, permit.spec.valid_until)),
        None => workspace.spec.expires_at,
    })
}

/// What the operator will do next with `workspace`; `permit` is its permit, when readable.
pub fn workspace_next(workspace: &Workspace, permit: Option<&DataPermit>) -> String {
    let status = workspace.status.clone().unwrap_or_default();
    let expires = workspace_expiry(workspace, permit).map(date);
    let false_condition = || {
        status
            .conditions
            .iter()
            .find(|c| c.status == "False" && !c.message.is_empty())
            .map(|c| c.message.clone())
    };
    match status.phase {
        WorkspacePhase::Pending => false_condition().map_or_else(
            || format!("waiting for permit {}", workspace.spec.permit),
            |m| format!("waiting: {m}"),
        ),
        WorkspacePhase::Provisioning => "provisioning → Ready".into(),
        WorkspacePhase::Ready => match expires {
            Some(at) => format!("expires {at} → archived and torn down"),
            None => "running".into(),
        },
        WorkspacePhase::Paused => match expires {
            Some(at) => format!("paused (files kept); expires {at} → archived and torn down"),
            None => "paused (files kept)".into(),
        },
        WorkspacePhase::Expiring => "archiving files → namespace deleted".into(),
        WorkspacePhase::Archived => {
            let archived = status.archive.as_ref().map_or_else(String::new, |a| {
                format!(" {} ({} file{})", date(a.archived_at), a.files, if a.files == 1 { "" } else { "s" })
            });
            let destroyed = match permit.and_then(|p| p.status.as_ref()) {
                Some(s) if s.phase == PermitPhase::Destroyed => "; destroyed with its permit".to_owned(),
                Some(s) => s.destroy_after.map_or_else(
                    || format!("; destroyed with permit {} after its retention", workspace.spec.permit),
                    |at| format!("; destroyed after retention on {}", date(at)),
                ),
                None => format!("; destroyed with permit {} after its retention", workspace.spec.permit),
            };
            format!("archived{archived}{destroyed}")
        }
        WorkspacePhase::Failed => {
            false_condition().map_or_else(|| "failed".into(), |m| format!("failed: {m}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{NOW, permit, workspace};

    fn now() -> DateTime<Utc> {
        NOW.parse().expect("fixture time")
    }

    #[test]
    fn an_active_permit_says_when_it_expires_and_that_workspaces_are_archived() {
        let permit = permit("phase: Active\nworkspaces: 1\n");
        assert_eq!(permit_next(&permit, now()), "expires 2026-06-13 16:30 UTC → workspaces archived");
        assert_eq!(permit_expiry(&permit), Some(permit.spec.valid_until));
    }

    #[test]
    fn an_archived_permit_says_when_it_is_destroyed() {
        let permit =
            permit("phase: Archived\narchivedAt: 2026-06-14T00:00:00Z\ndestroyAfter: 2026-12-14T00:00:00Z\n");
        assert_eq!(permit_next(&permit, now()), "destroyed after retention on 2026-12-14 00:00 UTC");
        assert_eq!(permit_expiry(&permit), None, "an archived permit has nothing left to expire");
    }

    #[test]
    fn a_pending_permit_says_when_it_activates() {
        let mut permit = permit("phase: Pending\n");
        permit.spec.valid_from = "2026-06-03T12:00:00Z".parse().expect("time");
        assert_eq!(permit_next(&permit, now()), "activates 2026-06-03 12:00 UTC (in 2d) → datasets prepared");
    }

    #[test]
    fn an_expired_permit_counts_the_workspaces_still_being_archived() {
        let permit = permit("phase: Expired\nworkspaces: 2\n");
        assert_eq!(
            permit_next(&permit, now()),
            "archiving 2 workspaces → Archived, then destroyed after retention (4392h)"
        );
    }

    #[test]
    fn a_destroyed_permit_has_nothing_next_but_keeps_its_record() {
        let permit = permit(
            "phase: Destroyed\ndestruction:\n  destroyedAt: 2026-12-14T00:05:00Z\n  deleted: []\n  keyFingerprint: ab\n  keyShredded: true\n",
        );
        assert_eq!(
            permit_next(&permit, now()),
            "nothing: data destroyed on 2026-12-14 00:05 UTC; the record is kept"
        );
    }

    #[test]
    fn a_ready_workspace_expires_at_its_effective_expiry() {
        let workspace = workspace("phase: Ready\nexpiresAt: 2026-06-10T08:00:00Z\n");
        assert_eq!(workspace_next(&workspace, None), "expires 2026-06-10 08:00 UTC → archived and torn down");
    }

    #[test]
    fn a_workspace_without_status_expiry_takes_the_earlier_of_its_own_and_the_permits() {
        let mut workspace = workspace("phase: Provisioning\n");
        let permit = permit("phase: Active\n");
        assert_eq!(workspace_expiry(&workspace, Some(&permit)), Some(permit.spec.valid_until));
        workspace.spec.expires_at = Some("2026-06-05T00:00:00Z".parse().expect("time"));
        assert_eq!(workspace_expiry(&workspace, Some(&permit)), workspace.spec.expires_at);
    }

    #[test]
    fn an_archived_workspace_says_when_its_files_are_destroyed() {
        let workspace = workspace(
            "phase: Archived\narchive:\n  path: archive/p/w\n  files: 3\n  bytes: 10\n  manifestSha256: ab\n  archivedAt: 2026-06-14T00:00:00Z\n",
        );
        let permit = permit("phase: Archived\ndestroyAfter: 2026-12-14T00:00:00Z\n");
        assert_eq!(
            workspace_next(&workspace, Some(&permit)),
            "archived 2026-06-14 00:00 UTC (3 files); destroyed after retention on 2026-12-14 00:00 UTC"
        );
    }

    #[test]
    fn a_pending_workspace_gives_the_reason_it_waits() {
        let workspace = workspace(
            "phase: Pending\nconditions:\n- type: PermitValid\n  status: \"False\"\n  reason: PermitNotActive\n  message: permit study is Pending until 2026-07-01\n  lastTransitionTime: 2026-06-01T00:00:00Z\n",
        );
        assert_eq!(workspace_next(&workspace, None), "waiting: permit study is Pending until 2026-07-01");
    }
}
