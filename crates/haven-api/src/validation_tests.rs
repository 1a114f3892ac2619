use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, 12, 0, 0).single().expect("valid date")
}

#[test]
fn permit_window_is_pending_before_valid_from() {
    let window = PermitWindow::at(at(1), at(2), at(10));
    assert_eq!(window, PermitWindow::NotYetOpen { opens_at: at(2) });
    assert_eq!(window.next_change(), Some(at(2)));
    assert!(!window.is_open());
}

#[test]
fn permit_window_opens_exactly_at_valid_from() {
    let window = PermitWindow::at(at(2), at(2), at(10));
    assert_eq!(window, PermitWindow::Open { closes_at: at(10) });
    assert_eq!(window.next_change(), Some(at(10)));
}

#[test]
fn permit_window_is_closed_at_the_instant_of_valid_until() {
    assert_eq!(PermitWindow::at(at(10), at(2), at(10)), PermitWindow::Closed { closed_at: at(10) });
    let just_before = at(10) - Duration::nanoseconds(1);
    assert!(PermitWindow::at(just_before, at(2), at(10)).is_open());
}

#[test]
fn closed_permit_window_has_no_next_change() {
    assert_eq!(PermitWindow::at(at(20), at(2), at(10)).next_change(), None);
}

#[test]
fn effective_expiry_defaults_to_the_permit_end() {
    assert_eq!(effective_expiry(None, at(10)), at(10));
}

#[test]
fn effective_expiry_keeps_an_earlier_workspace_expiry() {
    assert_eq!(effective_expiry(Some(at(5)), at(10)), at(5));
}

#[test]
fn effective_expiry_never_outlives_the_permit() {
    assert_eq!(effective_expiry(Some(at(25)), at(10)), at(10));
    assert_eq!(effective_expiry(Some(at(10)), at(10)), at(10));
}

#[test]
fn workspace_namespace_is_prefixed() {
    assert_eq!(workspace_namespace("cancer-study"), "ws-cancer-study");
}

#[test]
fn image_allowed_matches_exact_references_only_without_wildcard() {
    let allowed = vec!["quay.io/jupyter/scipy-notebook:2026-01-05".to_string()];
    assert!(image_allowed("quay.io/jupyter/scipy-notebook:2026-01-05", &allowed));
    assert!(!image_allowed("quay.io/jupyter/scipy-notebook:latest", &allowed));
    assert!(!image_allowed("quay.io/jupyter/scipy-notebook:2026-01-05-evil", &allowed));
}

#[test]
fn image_allowed_wildcard_allows_any_tag_of_the_repository() {
    let allowed = vec!["quay.io/jupyter/scipy-notebook:*".to_string()];
    assert!(image_allowed("quay.io/jupyter/scipy-notebook:latest", &allowed));
    assert!(!image_allowed("quay.io/jupyter/scipy-notebook-evil:latest", &allowed));
    assert!(!image_allowed("docker.io/library/alpine:3", &allowed));
}

#[test]
fn image_allowed_rejects_everything_when_nothing_is_allowed() {
    assert!(!image_allowed("anything", &[]));
}

// The path rules themselves are tested where they live, in haven-data's names_tests.
#[test]
fn safe_path_normalises_what_is_safe_and_refuses_escapes() {
    assert_eq!(SafeRelativePath::parse("./results/t.csv").expect("safe").as_str(), "results/t.csv");
    assert_eq!(SafeRelativePath::parse("../secret.csv"), Err(PathError::ParentDir));
    assert_eq!(SafeRelativePath::parse("/etc/passwd"), Err(PathError::Absolute));
}

#[test]
fn durations_parse_in_the_units_the_schema_allows() {
    assert_eq!(parse_duration("4392h"), Some(Duration::days(183)));
    assert_eq!(parse_duration("1h30m"), Some(Duration::minutes(90)));
    assert_eq!(parse_duration("2.5s"), Some(Duration::milliseconds(2500)));
    assert_eq!(parse_duration("500ms"), Some(Duration::milliseconds(500)));
    for bad in ["", "6 months", "10d", "h", "1x", "-1h"] {
        assert_eq!(parse_duration(bad), None, "{bad:?}");
    }
}

#[test]
fn durations_longer_than_a_hundred_years_are_refused_so_date_arithmetic_cannot_overflow() {
    assert_eq!(parse_duration("876000h"), Some(Duration::hours(876_000)));
    for absurd in ["876000h1s", "3000000000h", "9999999999999999999999999h", "876000h876000h"] {
        assert_eq!(parse_duration(absurd), None, "{absurd:?}");
    }
}
