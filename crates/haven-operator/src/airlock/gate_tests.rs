use haven_api::{DataPermitStatus, workspace::WorkspaceStatus};

use super::*;

fn example<T: serde::de::DeserializeOwned>(file: &str) -> T {
    let path = format!("{}/../../examples/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_saphyr::from_str(&std::fs::read_to_string(path).expect("example exists")).expect("example parses")
}

fn scope(workspace: WorkspacePhase, permit: Option<PermitPhase>) -> Scope {
    let mut ws: Workspace = example("workspace.yaml");
    ws.status = Some(WorkspaceStatus { phase: workspace, ..WorkspaceStatus::default() });
    let mut dp: DataPermit = example("datapermit.yaml");
    dp.status = permit.map(|phase| DataPermitStatus { phase, ..DataPermitStatus::default() });
    let controls = haven_api::tier::TierProfiles::default().controls(&dp.spec);
    Scope { workspace: ws, permit: dp, controls }
}

#[test]
fn files_move_only_under_a_live_workspace_and_an_active_permit() {
    for workspace in [WorkspacePhase::Ready, WorkspacePhase::Paused] {
        assert!(matches!(gate(&scope(workspace, Some(PermitPhase::Active))), Gate::Open), "{workspace:?}");
    }
}

#[test]
fn a_suspended_permit_or_a_workspace_still_provisioning_makes_requests_wait() {
    assert!(matches!(gate(&scope(WorkspacePhase::Ready, Some(PermitPhase::Suspended))), Gate::Wait(..)));
    assert!(matches!(gate(&scope(WorkspacePhase::Provisioning, Some(PermitPhase::Active))), Gate::Wait(..)));
}

#[test]
fn an_ended_permit_or_a_workspace_being_archived_ends_requests() {
    for permit in [None, Some(PermitPhase::Expired), Some(PermitPhase::Revoked), Some(PermitPhase::Destroyed)]
    {
        let Gate::Closed(reason, message) = gate(&scope(WorkspacePhase::Ready, permit)) else {
            panic!("{permit:?} must close the airlock");
        };
        assert_eq!(reason, reasons::PERMIT_NOT_ACTIVE);
        assert!(message.contains("nothing moves through the airlock"), "{message}");
    }
    for workspace in [WorkspacePhase::Expiring, WorkspacePhase::Archived] {
        let closed = gate(&scope(workspace, Some(PermitPhase::Active)));
        assert!(matches!(closed, Gate::Closed(reasons::WORKSPACE_NOT_FOUND, _)), "{workspace:?}");
    }
    let mut deleting = scope(WorkspacePhase::Ready, Some(PermitPhase::Active));
    deleting.workspace.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
    assert!(matches!(gate(&deleting), Gate::Closed(..)));
}
