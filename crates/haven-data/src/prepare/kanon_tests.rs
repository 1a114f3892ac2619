use std::collections::BTreeMap;
use std::sync::Mutex;

use super::report::bucket;
use super::test_support::{KEY, Scratch, run, run_err};
use super::*;

/// Ages band to 30-39 ×3 F, 40-49 ×2 M, 50-59 ×1 F: raw ages are all distinct, so the
/// classes only exist on the transformed values.
const TABLE: &str = "\
pid,age,sex
a,31,F
b,35,F
c,38,F
d,42,M
e,47,M
f,55,F
";

fn spec() -> PreparationSpec {
    PreparationSpec::test(vec![
        ColumnSpec::hmac("pid"),
        ColumnSpec::band("age", 10, None, None).quasi(),
        ColumnSpec::keep("sex").quasi(),
    ])
}

fn histogram(entries: &[(&str, u64)]) -> BTreeMap<String, u64> {
    let mut histogram: BTreeMap<String, u64> =
        HISTOGRAM_BUCKETS.iter().map(|b| ((*b).to_owned(), 0)).collect();
    for (bucket, count) in entries {
        histogram.insert((*bucket).to_owned(), *count);
    }
    histogram
}

#[test]
fn report_measures_classes_on_transformed_values_and_changes_nothing() {
    let (output, report) = run(&spec().k_anonymous(2, KAnonymityAction::Report, 5), TABLE).expect("prepare");
    assert_eq!((report.rows_in, report.rows_out, report.suppressed_rows), (6, 6, 0));
    assert_eq!(output.lines().count(), 7);
    let k = report.k_anonymity.expect("k report");
    assert_eq!(k.k, 2);
    assert_eq!(k.quasi_identifiers, ["age", "sex"]);
    assert_eq!((k.minimum_k, k.classes), (Some(1), 3));
    assert_eq!(k.class_size_histogram, histogram(&[("1", 1), ("2", 1), ("3-4", 1)]));
}

#[test]
fn suppress_rows_removes_classes_smaller_than_k() {
    let (output, report) =
        run(&spec().k_anonymous(2, KAnonymityAction::SuppressRows, 20), TABLE).expect("prepare");
    assert_eq!((report.rows_in, report.rows_out, report.suppressed_rows), (6, 5, 1));
    assert!(!output.contains("50-59"), "the lone 50-59/F row is gone:\n{output}");
    assert_eq!(output.lines().count(), 6);
    let k = report.k_anonymity.expect("k report");
    assert_eq!((k.minimum_k, k.classes), (Some(2), 2), "the report describes the extract");
    assert_eq!(k.class_size_histogram, histogram(&[("2", 1), ("3-4", 1)]));
    assert_eq!(report.columns[0].distinct, 5, "column statistics count only rows written");
}

#[test]
fn suppression_at_exactly_the_maximum_percentage_is_allowed() {
    let (output, report) =
        run(&spec().k_anonymous(3, KAnonymityAction::SuppressRows, 50), TABLE).expect("prepare");
    assert_eq!((report.rows_out, report.suppressed_rows), (3, 3));
    assert!(output.lines().skip(1).all(|line| line.ends_with(",30-39,F")), "{output}");
}

#[test]
fn suppressing_more_than_the_maximum_percentage_fails_and_writes_nothing() {
    let err = run_err(&spec().k_anonymous(3, KAnonymityAction::SuppressRows, 40), TABLE);
    assert!(
        matches!(err, PrepareError::TooManySuppressed { k: 3, suppressed: 3, rows: 6, max_percent: 40, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("dataset visits") && message.contains("maxSuppressedPercent"), "{message}");
}

#[test]
fn nulls_in_a_quasi_identifier_form_a_class_of_their_own() {
    let input = "pid,age,sex\na,31,F\nb,,F\nc,33,F\n";
    let (_, report) = run(&spec().k_anonymous(2, KAnonymityAction::Report, 5), input).expect("prepare");
    let k = report.k_anonymity.expect("k report");
    assert_eq!((k.minimum_k, k.classes), (Some(1), 2));
}

#[test]
fn an_empty_table_has_no_minimum_k() {
    let (_, report) =
        run(&spec().k_anonymous(2, KAnonymityAction::SuppressRows, 0), "pid,age,sex\n").expect("prepare");
    let k = report.k_anonymity.expect("k report");
    assert_eq!((k.minimum_k, k.classes), (None, 0));
}

#[test]
fn suppression_reads_the_source_twice_and_progress_counts_both_passes() {
    let scratch = Scratch::with_input(TABLE);
    let calls = Mutex::new(Vec::new());
    let spec = spec().k_anonymous(2, KAnonymityAction::SuppressRows, 20);
    let record = |rows| calls.lock().expect("lock").push(rows);
    let report = prepare_csv(&spec, KEY, &scratch.input, &scratch.output(), &record).expect("prepare");
    assert_eq!(*calls.lock().expect("lock"), [12]);
    assert_eq!(report.rows_in, 6);
}

#[test]
fn class_sizes_fall_into_histogram_buckets() {
    let cases =
        [(1, "1"), (2, "2"), (3, "3-4"), (4, "3-4"), (5, "5-9"), (19, "10-19"), (20, "20-49"), (99, "50-99")];
    for (size, expected) in cases {
        assert_eq!(bucket(size), expected, "{size}");
    }
    assert_eq!(bucket(100), "100+");
    assert_eq!(bucket(u64::MAX), "100+");
}
