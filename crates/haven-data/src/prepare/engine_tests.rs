use std::fs;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::test_support::{KEY, Scratch, apply, run};
use super::*;

fn sha256(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn pseudonym(column: &str, value: &str) -> String {
    apply(&ColumnSpec::hmac(column), KEY, value).expect("hmac")
}

fn visits_spec() -> PreparationSpec {
    PreparationSpec::test(vec![
        ColumnSpec::hmac("pid"),
        ColumnSpec::date("dob", DateGranularity::YearMonth, None),
        ColumnSpec::truncate("postcode", 4),
        ColumnSpec::band("age", 10, Some(90), Some(18)),
        ColumnSpec::drop("name"),
        ColumnSpec::test("gp", RuleKind::Suppress),
        ColumnSpec::keep("sex"),
    ])
}

const VISITS: &str = "\
pid,dob,postcode,age,name,gp,sex
P1,1987-06-15,SW1A 1AA,34,Alice Smith,Dr Who,F
P2,2024-02-29T08:00:00Z,N1,95,Bob Jones,Dr No,M
P1,,EC1A 1BB,17,,Dr Who,
";

#[test]
fn a_small_table_is_prepared_rule_by_rule() {
    let (output, report) = run(&visits_spec(), VISITS).expect("prepare");
    let (p1, p2) = (pseudonym("pid", "P1"), pseudonym("pid", "P2"));
    assert_eq!(
        output,
        format!(
            "pid,dob,postcode,age,gp,sex\n{p1},1987-06,SW1A,30-39,,F\n{p2},2024-02,N1,90+,,M\n{p1},,EC1A,<18,,\n"
        )
    );
    assert_eq!(
        (report.dataset.as_str(), report.rows_in, report.rows_out, report.suppressed_rows),
        ("visits", 3, 3, 0)
    );
    assert_eq!(report.input_sha256, sha256(VISITS));
    assert_eq!(report.output_sha256, sha256(&output));
    assert_eq!(report.rules_sha256, rules_sha256(&visits_spec()));
    assert_eq!(report.key_fingerprint, key_fingerprint(KEY));
    assert!(report.k_anonymity.is_none(), "no kAnonymity spec, no k report");
    let stats: Vec<_> =
        report.columns.iter().map(|c| (c.name.as_str(), c.rule.as_str(), c.nulls, c.distinct)).collect();
    assert_eq!(
        stats,
        [
            ("pid", "Hmac", 0, 2),
            ("dob", "GeneraliseDate", 1, 2),
            ("postcode", "Truncate", 0, 3),
            ("age", "Band", 0, 3),
            ("gp", "Suppress", 3, 0),
            ("sex", "Keep", 1, 2),
        ]
    );
    assert!(report.columns.iter().all(|c| !c.distinct_is_lower_bound));
    assert!(report.rows_per_second >= 0.0 && report.megabytes_per_second >= 0.0);
}

#[test]
fn quoted_delimiters_and_embedded_newlines_survive_a_keep() {
    let input = "id,note\n1,\"a, b\"\n2,\"line one\nline \"\"two\"\"\"\n3,plain\n";
    let spec = PreparationSpec::test(vec![ColumnSpec::keep("id"), ColumnSpec::keep("note")]);
    let (output, report) = run(&spec, input).expect("prepare");
    assert_eq!(output, input, "the writer quotes exactly what needs quoting");
    assert_eq!(report.rows_in, 3);
}

#[test]
fn embedded_newlines_are_pseudonymised_as_one_value() {
    let input = "id,note\n\"P\n1\",x\n";
    let spec = PreparationSpec::test(vec![ColumnSpec::hmac("id"), ColumnSpec::drop("note")]);
    let (output, _) = run(&spec, input).expect("prepare");
    assert_eq!(output, format!("id\n{}\n", pseudonym("id", "P\n1")));
}

#[test]
fn the_configured_delimiter_is_used_for_input_and_output() {
    let spec =
        PreparationSpec::test(vec![ColumnSpec::keep("a"), ColumnSpec::truncate("b", 2)]).delimited(";");
    let (output, _) = run(&spec, "a;b\nx,y;hello\n").expect("prepare");
    assert_eq!(output, "a;b\nx,y;he\n", "a comma is just data with ';'");
    let tab = PreparationSpec::test(vec![ColumnSpec::keep("a"), ColumnSpec::keep("b")]).delimited("\t");
    assert_eq!(run(&tab, "a\tb\n1\t2\n").expect("prepare").0, "a\tb\n1\t2\n");
}

#[test]
fn unknown_columns_are_left_out_when_the_policy_is_drop() {
    let spec = PreparationSpec::test(vec![ColumnSpec::keep("b")]).dropping_unknown();
    let (output, report) = run(&spec, "a,b,c\n1,2,3\n").expect("prepare");
    assert_eq!(output, "b\n2\n");
    assert_eq!(report.columns.len(), 1);
}

#[test]
fn output_columns_follow_the_source_order_not_the_rules_order() {
    let spec =
        PreparationSpec::test(vec![ColumnSpec::keep("c"), ColumnSpec::keep("a"), ColumnSpec::drop("b")]);
    assert_eq!(run(&spec, "a,b,c\n1,2,3\n").expect("prepare").0, "a,c\n1,3\n");
}

#[test]
fn a_byte_order_mark_and_crlf_line_ends_are_accepted() {
    let spec = PreparationSpec::test(vec![ColumnSpec::keep("id"), ColumnSpec::band("age", 10, None, None)]);
    let (output, _) = run(&spec, "\u{feff}id,age\r\n1,34\r\n2,41\r\n").expect("prepare");
    assert_eq!(output, "id,age\n1,30-39\n2,40-49\n");
}

#[test]
fn a_header_without_rows_gives_an_empty_extract_with_a_header() {
    let spec = PreparationSpec::test(vec![ColumnSpec::hmac("id")]);
    let (output, report) = run(&spec, "id\n").expect("prepare");
    assert_eq!(output, "id\n");
    assert_eq!((report.rows_in, report.rows_out), (0, 0));
}

#[test]
fn a_single_null_column_row_is_written_so_it_reads_back_as_a_row() {
    let spec = PreparationSpec::test(vec![ColumnSpec::test("gp", RuleKind::Suppress)]);
    let (output, report) = run(&spec, "gp\nDr Who\n").expect("prepare");
    assert_eq!(output, "gp\n\"\"\n");
    assert_eq!(report.rows_out, 1);
}

#[test]
fn very_long_fields_stream_through() {
    let long = "x".repeat(3_000_000);
    let spec = PreparationSpec::test(vec![
        ColumnSpec::keep("a"),
        ColumnSpec::hmac("b"),
        ColumnSpec::truncate("c", 3),
    ]);
    let (output, _) = run(&spec, format!("a,b,c\n{long},{long},{long}\n")).expect("prepare");
    assert_eq!(output, format!("a,b,c\n{long},{},xxx\n", pseudonym("b", &long)));
}

#[test]
fn progress_is_reported_every_64k_rows_and_at_the_end() {
    let mut input = String::from("id\n");
    for i in 0..140_000 {
        input.push_str(&format!("{i}\n"));
    }
    let scratch = Scratch::with_input(input);
    let calls = Mutex::new(Vec::new());
    let spec = PreparationSpec::test(vec![ColumnSpec::keep("id")]);
    let record = |rows| calls.lock().expect("lock").push(rows);
    prepare_csv(&spec, KEY, &scratch.input, &scratch.output(), &record).expect("prepare");
    assert_eq!(*calls.lock().expect("lock"), [65_536, 131_072, 140_000]);
}

#[test]
fn distinct_counts_become_a_lower_bound_past_the_cap() {
    use super::stats::DistinctCounter;
    let mut counter = DistinctCounter::with_cap(3);
    for value in ["a", "b", "a", "c"] {
        counter.observe(value.as_bytes());
    }
    assert_eq!(counter.result(), (3, false), "exact up to the cap");
    counter.observe(b"d");
    counter.observe(b"e");
    assert_eq!(counter.result(), (3, true));
}

#[test]
fn the_output_file_is_replaced_not_appended_to() {
    let scratch = Scratch::with_input("id\n1\n");
    fs::write(scratch.output(), "stale stale stale stale\n").expect("write");
    let spec = PreparationSpec::test(vec![ColumnSpec::keep("id")]);
    prepare_csv(&spec, KEY, &scratch.input, &scratch.output(), &|_| {}).expect("prepare");
    assert_eq!(fs::read_to_string(scratch.output()).expect("read"), "id\n1\n");
}
