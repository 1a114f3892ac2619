use super::*;

#[test]
fn dns_labels_are_accepted() {
    for name in ["a", "cancer-study", "ws-2026", "0", &"a".repeat(MAX_NAME_LEN)] {
        assert_eq!(check_name(name), Ok(()), "{name:?}");
    }
}

#[test]
fn names_that_could_escape_or_collide_are_refused() {
    let cases = [
        ("", NameError::Empty),
        ("..", NameError::InvalidCharacter('.')),
        (".partial", NameError::InvalidCharacter('.')),
        ("a/b", NameError::InvalidCharacter('/')),
        ("Study", NameError::InvalidCharacter('S')),
        ("a_b", NameError::InvalidCharacter('_')),
        ("é", NameError::InvalidCharacter('é')),
        ("-a", NameError::EdgeHyphen),
        ("a-", NameError::EdgeHyphen),
    ];
    for (raw, expected) in cases {
        assert_eq!(check_name(raw), Err(expected), "{raw:?}");
    }
}

#[test]
fn names_longer_than_a_label_are_refused() {
    assert_eq!(check_name(&"a".repeat(64)), Err(NameError::TooLong(64)));
}

#[test]
fn relative_paths_are_normalised() {
    assert_eq!(check_relative_path("cohort/2026/visits.csv"), Ok("cohort/2026/visits.csv".into()));
    assert_eq!(check_relative_path("./cohort/./v.csv"), Ok("cohort/v.csv".into()));
    assert_eq!(check_relative_path("a..b/..c"), Ok("a..b/..c".into()));
}

#[test]
fn relative_paths_that_escape_or_are_odd_are_refused() {
    let cases = [
        ("", PathError::Empty),
        ("/etc/passwd", PathError::Absolute),
        ("../other", PathError::ParentDir),
        ("a/../../b", PathError::ParentDir),
        ("a//b", PathError::EmptySegment),
        ("a/", PathError::EmptySegment),
        ("a\\b", PathError::ForbiddenCharacter),
        ("a\0b", PathError::ForbiddenCharacter),
        ("a\nb", PathError::ForbiddenCharacter),
        (".", PathError::NoName),
    ];
    for (raw, expected) in cases {
        assert_eq!(check_relative_path(raw), Err(expected), "{raw:?}");
    }
    assert_eq!(check_relative_path(&"a/".repeat(MAX_PATH_LEN)), Err(PathError::TooLong));
}
