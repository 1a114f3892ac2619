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

#[test]
fn safe_path_accepts_nested_relative_paths() {
    let path = SafeRelativePath::parse("results/table1.csv").expect("safe");
    assert_eq!(path.as_str(), "results/table1.csv");
}

#[test]
fn safe_path_drops_dot_segments() {
    assert_eq!(SafeRelativePath::parse("./results/./t.csv").expect("safe").as_str(), "results/t.csv");
}

#[test]
fn safe_path_allows_dots_inside_names() {
    assert_eq!(SafeRelativePath::parse("a..b/..c/d..").expect("safe").as_str(), "a..b/..c/d..");
}

#[test]
fn safe_path_refuses_escapes_and_oddities() {
    let cases = [
        ("", PathError::Empty),
        ("/etc/passwd", PathError::Absolute),
        ("../secret.csv", PathError::ParentDir),
        ("results/../../secret.csv", PathError::ParentDir),
        ("results/..", PathError::ParentDir),
        ("results//t.csv", PathError::EmptySegment),
        ("results/", PathError::EmptySegment),
        ("results\\..\\t.csv", PathError::ForbiddenCharacter),
        ("t\0.csv", PathError::ForbiddenCharacter),
        ("t\n.csv", PathError::ForbiddenCharacter),
        (".", PathError::NoName),
        ("./.", PathError::NoName),
    ];
    for (raw, expected) in cases {
        assert_eq!(SafeRelativePath::parse(raw), Err(expected.clone()), "{raw:?}");
    }
}

#[test]
fn safe_path_refuses_overlong_paths() {
    let long = "a/".repeat(MAX_PATH_LEN / 2) + "b";
    assert_eq!(SafeRelativePath::parse(&long), Err(PathError::TooLong));
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
