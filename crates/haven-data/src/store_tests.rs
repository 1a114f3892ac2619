use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};

use super::*;
use crate::prepare::read_extract_report;

fn store() -> (tempfile::TempDir, DataStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = DataStore::new(dir.path());
    (dir, store)
}

#[test]
fn layout_follows_the_design() {
    let (dir, store) = store();
    let root = dir.path();
    assert_eq!(store.raw("cohort/visits.csv").expect("raw"), root.join("raw/cohort/visits.csv"));
    assert_eq!(store.extract("p1", "visits").expect("extract"), root.join("extracts/p1/visits"));
    assert_eq!(store.workspace_home("ws1").expect("home"), root.join("workspaces/ws1/home"));
    assert_eq!(store.outbox("ws1").expect("outbox"), root.join("workspaces/ws1/home/outputs"));
    assert_eq!(store.quarantine("ws-ws1", "r1").expect("q"), root.join("quarantine/ws-ws1/r1"));
    assert_eq!(store.egress("p1", "ws-a", "r1").expect("egress"), root.join("egress/p1/ws-a/r1"));
    assert_eq!(store.imports("ws1").expect("imports"), root.join("imports/ws1"));
    assert_eq!(store.archive("p1", "ws1").expect("archive"), root.join("archive/p1/ws1"));
    assert_eq!(store.audit_log(), root.join("audit/audit.log"));
}

#[test]
fn a_bad_name_is_refused_naming_the_argument() {
    let (_dir, store) = store();
    let err = store.extract("p1", "../p2").expect_err("escape");
    assert!(
        matches!(&err, StoreError::InvalidName { argument: "dataset", value, reason: NameError::InvalidCharacter('.') } if value == "../p2"),
        "{err:?}"
    );
    assert!(err.to_string().contains("dataset"), "{err}");
    let err = store.quarantine("Team-A", "r1").expect_err("uppercase");
    assert!(matches!(err, StoreError::InvalidName { argument: "namespace", .. }), "{err:?}");
    let err = store.egress("p1", "ws-a", "").expect_err("empty");
    assert!(matches!(err, StoreError::InvalidName { argument: "request", reason: NameError::Empty, .. }));
}

#[test]
fn raw_paths_cannot_leave_raw() {
    let (_dir, store) = store();
    for bad in ["/etc/passwd", "../extracts/p1", "a/../../b", "a//b", "a\\b", "a\u{7}b", ""] {
        let err = store.raw(bad).expect_err(bad);
        assert!(matches!(err, StoreError::InvalidPath { .. }), "{bad:?}: {err:?}");
    }
}

#[test]
fn ensure_workspace_home_creates_home_and_outbox_idempotently() {
    let (_dir, store) = store();
    let home = store.ensure_workspace_home("ws1").expect("create");
    assert!(home.is_dir());
    let outbox = store.outbox("ws1").expect("outbox");
    assert!(outbox.is_dir());
    // The group (the environment's supplemental group) may write whatever the umask says,
    // and setgid keeps the researcher's files in it; others get nothing.
    for dir in [&home, &outbox, &store.workspace_imports("ws1").expect("imports")] {
        let mode = fs::metadata(dir).expect("meta").permissions().mode() & 0o7777;
        assert_eq!(mode, 0o2770, "{}: {mode:o}", dir.display());
    }
    assert_eq!(store.ensure_workspace_home("ws1").expect("again"), home);
}

/// Prepares a one-column extract into `dir`, as the operator would.
fn prepare_into(root: &Path, dir: &Path) {
    use crate::prepare::{ColumnSpec, PreparationSpec, RuleKind, prepare_extract};
    let input = root.join("source.csv");
    fs::write(&input, "id\n1\n").expect("write source");
    let column: ColumnSpec =
        serde_json::from_value(serde_json::json!({"name": "id", "rule": "Keep"})).expect("column");
    assert_eq!(column.rule, RuleKind::Keep);
    let spec = PreparationSpec {
        name: "visits".into(),
        source: String::new(),
        custodian: None,
        delimiter: ",".into(),
        columns: vec![column],
        on_unknown_column: Default::default(),
        k_anonymity: None,
    };
    prepare_extract(&spec, b"permit-key-0123456789abcdef", &input, dir, &|_| {}).expect("prepare");
}

#[test]
fn an_extract_is_complete_only_with_a_report() {
    let (dir, store) = store();
    let visits = store.extract("p1", "visits").expect("path");
    assert!(read_extract_report(&visits).is_none());
    fs::create_dir_all(&visits).expect("mkdir");
    fs::write(visits.join("data.csv"), "id\n").expect("write");
    assert!(read_extract_report(&visits).is_none(), "data without a report is not complete");
    fs::write(visits.join("report.json"), "{").expect("write");
    assert!(read_extract_report(&visits).is_none(), "a report that does not parse is not complete");
    fs::remove_dir_all(&visits).expect("clean");
    prepare_into(dir.path(), &visits);
    assert!(read_extract_report(&visits).is_some());
}

#[test]
fn a_symlinked_extract_is_not_present() {
    let (dir, store) = store();
    let elsewhere = dir.path().join("elsewhere");
    prepare_into(dir.path(), &elsewhere);
    let labs = store.extract("p1", "labs").expect("path");
    fs::create_dir_all(labs.parent().expect("parent")).expect("mkdir");
    symlink(&elsewhere, &labs).expect("link");
    assert!(read_extract_report(&labs).is_none());
}
