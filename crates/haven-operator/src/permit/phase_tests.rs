use chrono::{DateTime, Duration, TimeZone, Utc};
use haven_api::{
    DataPermit, DataPermitStatus,
    permit::{DestructionRecord, PermitPhase},
};

use super::*;

fn t(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, 0, 0, 0).single().expect("valid")
}

/// The example permit, valid from day 2 to day 10 with 5 days' retention.
fn spec() -> DataPermitSpec {
    let text =
        std::fs::read_to_string(format!("{}/../../examples/datapermit.yaml", env!("CARGO_MANIFEST_DIR")))
            .expect("example");
    let mut permit: DataPermit = serde_saphyr::from_str(&text).expect("parses");
    permit.spec.valid_from = t(2);
    permit.spec.valid_until = t(10);
    permit.spec.retention = "120h".into();
    permit.spec
}

fn ready() -> PermitFacts {
    PermitFacts { extracts_present: true, live_workspaces: 1, deleting: false }
}

fn phase_at(day: u32, spec: &DataPermitSpec, facts: PermitFacts) -> Lifecycle {
    lifecycle(spec, &DataPermitStatus::default(), facts, t(day))
}

#[test]
fn pending_until_valid_from_then_active_until_valid_until() {
    let pending = phase_at(1, &spec(), ready());
    assert_eq!((pending.phase, pending.next_change), (PermitPhase::Pending, Some(t(2))));
    let active = phase_at(2, &spec(), ready());
    assert_eq!((active.phase, active.next_change), (PermitPhase::Active, Some(t(10))));
}

#[test]
fn preparing_while_an_extract_is_missing() {
    let facts = PermitFacts { extracts_present: false, ..ready() };
    assert_eq!(phase_at(3, &spec(), facts).phase, PermitPhase::Preparing);
}

#[test]
fn suspended_while_the_spec_says_so() {
    let mut spec = spec();
    spec.suspended = true;
    assert_eq!(phase_at(3, &spec, ready()).phase, PermitPhase::Suspended);
}

#[test]
fn expired_while_workspaces_remain_then_archived_when_none_do() {
    assert_eq!(phase_at(10, &spec(), ready()).phase, PermitPhase::Expired);
    let archived = phase_at(11, &spec(), PermitFacts { live_workspaces: 0, ..ready() });
    assert_eq!(archived.phase, PermitPhase::Archived);
    assert_eq!(archived.archived_at, Some(t(11)));
    assert_eq!(archived.destroy_after, Some(t(16)));
    assert!(!archived.destroy_now);
    assert_eq!(archived.next_change, Some(t(16)));
}

#[test]
fn revocation_wins_over_an_open_window() {
    let mut spec = spec();
    spec.revoked = true;
    assert_eq!(phase_at(3, &spec, ready()).phase, PermitPhase::Revoked);
    assert_eq!(
        phase_at(3, &spec, PermitFacts { live_workspaces: 0, ..ready() }).phase,
        PermitPhase::Archived
    );
}

#[test]
fn deleting_a_permit_is_treated_as_revoking_it() {
    let facts = PermitFacts { deleting: true, ..ready() };
    assert_eq!(phase_at(3, &spec(), facts).phase, PermitPhase::Revoked);
}

#[test]
fn nothing_is_destroyed_before_the_retention_ends() {
    let status = DataPermitStatus { archived_at: Some(t(11)), ..DataPermitStatus::default() };
    let facts = PermitFacts { live_workspaces: 0, ..ready() };
    let just_before = lifecycle(&spec(), &status, facts, t(16) - Duration::seconds(1));
    assert_eq!((just_before.phase, just_before.destroy_now), (PermitPhase::Archived, false));
    let at_the_end = lifecycle(&spec(), &status, facts, t(16));
    assert_eq!((at_the_end.phase, at_the_end.destroy_now), (PermitPhase::Archived, true));
}

#[test]
fn the_archive_time_is_kept_once_set() {
    let status = DataPermitStatus { archived_at: Some(t(11)), ..DataPermitStatus::default() };
    let later = lifecycle(&spec(), &status, PermitFacts { live_workspaces: 0, ..ready() }, t(13));
    assert_eq!(later.archived_at, Some(t(11)));
}

#[test]
fn destroyed_is_final() {
    let status = DataPermitStatus {
        archived_at: Some(t(11)),
        destruction: Some(DestructionRecord {
            destroyed_at: t(16),
            deleted: vec![],
            key_fingerprint: "sha256:00".into(),
            key_shredded: true,
            archives_sealed: true,
            shredding_limit: String::new(),
        }),
        ..DataPermitStatus::default()
    };
    let destroyed = lifecycle(&spec(), &status, ready(), t(20));
    assert_eq!(
        (destroyed.phase, destroyed.destroy_now, destroyed.next_change),
        (PermitPhase::Destroyed, false, None)
    );
}
