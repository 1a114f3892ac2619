use chrono::TimeZone;

use super::*;

fn at(second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, second).single().expect("a valid time")
}

fn three_sites() -> Scope {
    Ok(Targets {
        multi_site_permit: "MS-1".into(),
        sites: vec!["south".into(), "hub".into(), "north".into()],
    })
}

fn report(state: SiteTaskState) -> Report {
    Report { state, reason: String::new(), message: String::new(), at: at(5), manifest_sha256: None }
}

#[test]
fn a_new_task_waits_at_every_target_site() {
    let status = derive(&AnalysisTaskStatus::default(), &three_sites(), false, at(0));
    let sites: Vec<_> = status.sites.iter().map(|p| (p.site.as_str(), p.state)).collect();
    assert_eq!(
        sites,
        [
            ("hub", SiteTaskState::Waiting),
            ("north", SiteTaskState::Waiting),
            ("south", SiteTaskState::Waiting)
        ]
    );
    assert_eq!(status.state, TesState::Queued);
    assert_eq!(status.summary.as_deref(), Some("3 Waiting"));
}

#[test]
fn the_task_is_complete_only_when_every_site_has_finished() {
    let mut status = derive(&AnalysisTaskStatus::default(), &three_sites(), false, at(0));
    apply_report(&mut status, "south", &report(SiteTaskState::NotParticipating)).expect("present");
    apply_report(&mut status, "hub", &report(SiteTaskState::Rejected)).expect("present");
    apply_report(&mut status, "north", &report(SiteTaskState::AwaitingReview)).expect("present");
    assert_eq!(derive(&status, &three_sites(), false, at(6)).state, TesState::Running);
    let north = status.sites.iter_mut().find(|p| p.site == "north").expect("present");
    record(north, SiteTaskState::Delivered, "", "", at(7), Some("abc".into()));
    let status = derive(&status, &three_sites(), false, at(8));
    assert_eq!(status.state, TesState::Complete);
    assert_eq!(status.summary.as_deref(), Some("1 Delivered, 1 NotParticipating, 1 Rejected"));
}

#[test]
fn a_finished_site_stays_finished_and_history_keeps_each_change_once() {
    let mut status = derive(&AnalysisTaskStatus::default(), &three_sites(), false, at(0));
    assert!(apply_report(&mut status, "hub", &report(SiteTaskState::Running)).expect("present"));
    assert!(!apply_report(&mut status, "hub", &report(SiteTaskState::Running)).expect("present"));
    assert!(apply_report(&mut status, "hub", &report(SiteTaskState::Blocked)).expect("present"));
    assert!(!apply_report(&mut status, "hub", &report(SiteTaskState::Approved)).expect("present"));
    let hub = status.sites.iter().find(|p| p.site == "hub").expect("present");
    assert_eq!(hub.state, SiteTaskState::Blocked);
    let states: Vec<_> = hub.history.iter().map(|c| c.state).collect();
    assert_eq!(states, [SiteTaskState::Waiting, SiteTaskState::Running, SiteTaskState::Blocked]);
}

#[test]
fn only_target_sites_report_and_none_may_claim_a_delivery() {
    let mut status = derive(&AnalysisTaskStatus::default(), &three_sites(), false, at(0));
    assert_eq!(
        apply_report(&mut status, "west", &report(SiteTaskState::Running)),
        Err(Refusal::NotATarget("west".into()))
    );
    assert_eq!(
        apply_report(&mut status, "north", &report(SiteTaskState::Delivered)),
        Err(Refusal::DeliveryIsOurs)
    );
}

#[test]
fn failures_everywhere_are_an_executor_error_and_a_cancelled_task_is_canceled() {
    let mut status = derive(&AnalysisTaskStatus::default(), &three_sites(), false, at(0));
    for site in ["hub", "north", "south"] {
        apply_report(&mut status, site, &report(SiteTaskState::Failed)).expect("present");
    }
    assert_eq!(derive(&status, &three_sites(), false, at(9)).state, TesState::ExecutorError);
    assert_eq!(derive(&status, &three_sites(), true, at(9)).state, TesState::Canceled);
}

#[test]
fn a_task_without_a_multi_site_permit_is_a_system_error() {
    let status = derive(&AnalysisTaskStatus::default(), &Err("no multi-site permit".into()), false, at(0));
    assert_eq!(status.state, TesState::SystemError);
    assert!(status.sites.is_empty());
}
