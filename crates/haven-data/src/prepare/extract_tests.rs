use std::fs;
use std::path::{Path, PathBuf};

use super::test_support::KEY;
use super::*;

/// A data store root with a source file and the extract's path.
struct Store {
    root: tempfile::TempDir,
    input: PathBuf,
    extract: PathBuf,
}

impl Store {
    fn new(source: impl AsRef<[u8]>) -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let input = root.path().join("raw/visits.csv");
        fs::create_dir_all(input.parent().expect("parent")).expect("mkdir");
        fs::write(&input, source).expect("write source");
        let extract = root.path().join("extracts/p1/visits");
        Self { root, input, extract }
    }

    fn prepare(&self, spec: &PreparationSpec) -> Result<PreparationReport, PrepareError> {
        prepare_extract(spec, KEY, &self.input, &self.extract, &|_| {})
    }

    /// Everything in `extracts/p1/`, hidden entries included.
    fn permit_dir(&self) -> Vec<String> {
        let dir = self.root.path().join("extracts/p1");
        let mut names: Vec<String> = fs::read_dir(dir)
            .map(|entries| entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        names
    }
}

fn spec() -> PreparationSpec {
    PreparationSpec::test(vec![ColumnSpec::hmac("pid"), ColumnSpec::band("age", 10, None, None)])
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).expect("read")
}

#[test]
fn an_extract_holds_the_data_and_the_report_it_returned() {
    let store = Store::new("pid,age\nP1,34\n");
    let report = store.prepare(&spec()).expect("prepare");
    let mut files: Vec<_> =
        fs::read_dir(&store.extract).expect("list").flatten().map(|e| e.file_name()).collect();
    files.sort();
    assert_eq!(files, [DATA_FILE, REPORT_FILE]);
    assert_eq!(
        read_extract_report(&store.extract),
        Some(report.clone()),
        "the report survives a JSON round trip"
    );
    assert_eq!(
        report.output_sha256,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(read(&store.extract.join(DATA_FILE))))
    );
    assert_eq!(store.permit_dir(), ["visits"], "no temporary directory is left");
}

#[test]
fn preparing_again_with_a_changed_rule_replaces_the_extract() {
    let store = Store::new("pid,age\nP1,34\n");
    let first = store.prepare(&spec()).expect("first");
    assert!(read(&store.extract.join(DATA_FILE)).contains("30-39"));
    let mut changed = spec();
    changed.columns[1].band = Some(BandSpec { width: 5, top_code: None, bottom_code: None });
    let second = store.prepare(&changed).expect("second");
    assert_ne!(second.rules_sha256, first.rules_sha256);
    assert_eq!(read_extract_report(&store.extract).expect("report").rules_sha256, second.rules_sha256);
    assert!(read(&store.extract.join(DATA_FILE)).contains("30-34"));
    assert_eq!(store.permit_dir(), ["visits"], "the old extract and the temporary are gone");
}

/// Sources and specs that must fail, each with the error it must give.
fn failures() -> Vec<(&'static str, Vec<u8>, PreparationSpec)> {
    let mut missing = spec();
    missing.columns.push(ColumnSpec::keep("absent"));
    vec![
        ("unterminated quote", b"pid,age\nP1,\"34\n".to_vec(), spec()),
        ("ragged row", b"pid,age\nP1,34,extra\n".to_vec(), spec()),
        ("not UTF-8", b"pid,age\nP\xff1,34\n".to_vec(), spec()),
        ("missing column", b"pid,age\nP1,34\n".to_vec(), missing),
        ("unknown column", b"pid,age,secret\nP1,34,x\n".to_vec(), spec()),
        ("bad value", b"pid,age\nP1,34\nP2,old\n".to_vec(), spec()),
        (
            "too many suppressed",
            b"pid,age\nP1,34\nP2,45\n".to_vec(),
            PreparationSpec::test(vec![
                ColumnSpec::hmac("pid"),
                ColumnSpec::band("age", 10, None, None).quasi(),
            ])
            .k_anonymous(2, KAnonymityAction::SuppressRows, 10),
        ),
    ]
}

#[test]
fn a_failed_preparation_leaves_no_extract_and_no_temporary_directory() {
    for (case, source, spec) in failures() {
        let store = Store::new(source);
        let err = store.prepare(&spec).expect_err(case);
        assert!(err.to_string().contains("dataset visits"), "{case}: {err}");
        assert!(!store.extract.exists(), "{case}: no extract");
        assert!(store.permit_dir().is_empty(), "{case}: nothing left behind: {:?}", store.permit_dir());
        assert_eq!(read_extract_report(&store.extract), None);
    }
}

#[test]
fn a_failed_preparation_leaves_the_previous_extract_untouched() {
    for (case, source, spec_that_fails) in failures() {
        let store = Store::new("pid,age\nP1,34\n");
        let good = store.prepare(&spec()).expect("first");
        let data = read(&store.extract.join(DATA_FILE));
        fs::write(&store.input, source).expect("break the source");
        store.prepare(&spec_that_fails).expect_err(case);
        assert_eq!(read(&store.extract.join(DATA_FILE)), data, "{case}");
        assert_eq!(read_extract_report(&store.extract), Some(good), "{case}");
        assert_eq!(store.permit_dir(), ["visits"], "{case}");
    }
}

#[test]
fn leftovers_of_a_crashed_run_are_cleaned_up() {
    let store = Store::new("pid,age\nP1,34\n");
    let permit = store.root.path().join("extracts/p1");
    for leftover in [".visits.partial-1-0", ".visits.old-1-3"] {
        fs::create_dir_all(permit.join(leftover)).expect("mkdir");
        fs::write(permit.join(leftover).join(DATA_FILE), "half").expect("write");
    }
    fs::create_dir_all(permit.join(".labs.partial-1-0")).expect("another dataset's");
    store.prepare(&spec()).expect("prepare");
    assert_eq!(store.permit_dir(), [".labs.partial-1-0", "visits"]);
}

#[test]
fn only_a_real_directory_with_a_parsable_report_is_a_complete_extract() {
    let store = Store::new("pid,age\nP1,34\n");
    assert_eq!(read_extract_report(&store.extract), None, "missing");
    fs::create_dir_all(&store.extract).expect("mkdir");
    fs::write(store.extract.join(DATA_FILE), "pid,age\n").expect("write");
    assert_eq!(read_extract_report(&store.extract), None, "data without a report");
    fs::write(store.extract.join(REPORT_FILE), "{\"dataset\":").expect("write");
    assert_eq!(read_extract_report(&store.extract), None, "a torn report");
    fs::remove_dir_all(&store.extract).expect("clean");

    let real = store.root.path().join("elsewhere");
    prepare_extract(&spec(), KEY, &store.input, &real, &|_| {}).expect("prepare");
    assert!(read_extract_report(&real).is_some());
    std::os::unix::fs::symlink(&real, &store.extract).expect("link");
    assert_eq!(read_extract_report(&store.extract), None, "a symlinked extract");
}
