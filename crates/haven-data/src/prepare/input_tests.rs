use super::test_support::{OTHER_KEY, Scratch, run, run_err};
use super::*;

fn two_columns() -> PreparationSpec {
    PreparationSpec::test(vec![ColumnSpec::keep("id"), ColumnSpec::keep("note")])
}

/// Asserts the message names the dataset and every given fragment.
fn says(err: &PrepareError, fragments: &[&str]) {
    let message = err.to_string();
    assert!(message.contains("dataset visits"), "{message}");
    for fragment in fragments {
        assert!(message.contains(fragment), "{fragment:?} missing from: {message}");
    }
}

#[test]
fn an_unterminated_quote_in_the_last_column_is_an_error_naming_its_row() {
    let err = run_err(&two_columns(), "id,note\n1,ok\n2,\"never closed\n3,more\n");
    assert!(matches!(err, PrepareError::UnterminatedQuote { row: 2, line: 3, .. }), "{err:?}");
    says(&err, &["row 2 (line 3)", "never closed", "closing quote"]);
}

#[test]
fn an_unterminated_quote_mid_row_is_reported_as_such_not_as_a_ragged_row() {
    let err = run_err(&two_columns(), "id,note\n\"1,x\n2,y\n");
    assert!(matches!(err, PrepareError::UnterminatedQuote { row: 1, line: 2, .. }), "{err:?}");
}

#[test]
fn an_unterminated_quote_is_found_before_a_transform_trips_over_it() {
    let spec = PreparationSpec::test(vec![ColumnSpec::keep("id"), ColumnSpec::band("age", 10, None, None)]);
    let err = run_err(&spec, "id,age\n1,\"34\n2,35\n");
    assert!(matches!(err, PrepareError::UnterminatedQuote { row: 1, .. }), "{err:?}");
}

#[test]
fn a_quote_closed_at_the_end_of_the_file_is_fine() {
    let (output, _) = run(&two_columns(), "id,note\n1,\"closed \"\"here\"\"\"").expect("prepare");
    assert_eq!(output, "id,note\n1,\"closed \"\"here\"\"\"\n");
}

#[test]
fn a_ragged_row_is_an_error_naming_its_row_and_line() {
    let err = run_err(&two_columns(), "id,note\n1,\"two\nlines\"\n2,a,b\n");
    assert!(
        matches!(err, PrepareError::RaggedRow { row: 2, line: 4, expected: 2, found: 3, .. }),
        "the line counts the embedded newline: {err:?}"
    );
    says(&err, &["row 2 (line 4)", "3 fields", "header has 2"]);
    let short = run_err(&two_columns(), "id,note\n1\n");
    assert!(matches!(short, PrepareError::RaggedRow { row: 1, found: 1, .. }), "{short:?}");
}

#[test]
fn invalid_utf8_is_an_error_naming_row_and_column() {
    let err = run_err(&two_columns(), b"id,note\n1,ok\n2,caf\xe9\n".as_slice());
    assert!(
        matches!(&err, PrepareError::InvalidUtf8 { row: 2, line: 3, column, .. } if column == "note"),
        "{err:?}"
    );
    says(&err, &["row 2 (line 3)", "\"note\"", "UTF-8"]);
}

#[test]
fn invalid_utf8_in_a_dropped_or_suppressed_column_does_not_matter() {
    let spec = PreparationSpec::test(vec![
        ColumnSpec::keep("id"),
        ColumnSpec::drop("note"),
        ColumnSpec::test("gp", RuleKind::Suppress),
    ]);
    let (output, _) = run(&spec, b"id,note,gp\n1,caf\xe9,\xff\n".as_slice()).expect("prepare");
    assert_eq!(output, "id,gp\n1,\n");
}

#[test]
fn a_header_that_is_not_utf8_is_an_error() {
    let err = run_err(&two_columns(), b"id,n\xf6te\n1,2\n".as_slice());
    assert!(matches!(err, PrepareError::HeaderNotUtf8 { position: 2, .. }), "{err:?}");
}

#[test]
fn a_rule_naming_a_missing_column_is_an_error_naming_it() {
    let spec = PreparationSpec::test(vec![ColumnSpec::keep("id"), ColumnSpec::hmac("nhs_number")]);
    let err = run_err(&spec, "id\n1\n");
    assert!(matches!(&err, PrepareError::MissingColumn { column, .. } if column == "nhs_number"), "{err:?}");
    says(&err, &["\"nhs_number\"", "header does not have"]);
}

#[test]
fn an_unknown_column_fails_by_default_naming_it() {
    let err = run_err(&two_columns(), "id,note,secret\n1,2,3\n");
    assert!(matches!(&err, PrepareError::UnknownColumn { position: 3, .. }), "{err:?}");
    says(&err, &["source column 3", "onUnknownColumn"]);
}

#[test]
fn a_duplicated_header_column_is_an_error() {
    let err = run_err(&two_columns(), "id,note,note\n1,2,3\n");
    assert!(matches!(&err, PrepareError::DuplicateColumn { first: 2, second: 3, .. }), "{err:?}");
}

#[test]
fn a_file_without_a_header_row_never_has_its_first_row_printed() {
    // The "header" is a row of data: a repeated identifier, and values no rule names.
    for source in ["SECRET-4711,SECRET-4711\n1,2\n", "id,note,SECRET-0815\n1,2,3\n"] {
        let err = run_err(&two_columns(), source);
        assert!(!err.to_string().contains("SECRET"), "{err}");
    }
}

#[test]
fn a_line_longer_than_the_limit_is_refused_naming_the_line_not_its_text() {
    let long = format!("id,note\n1,{}\n", "SECRET".repeat((MAX_LINE_BYTES / 6 + 1) as usize));
    let err = run_err(&two_columns(), &long);
    let text = err.to_string();
    assert!(text.contains("line 2 is longer than"), "{text}");
    assert!(!text.contains("SECRETSECRET"), "{}", &text[..text.len().min(300)]);
}

#[test]
fn an_empty_source_has_no_header() {
    assert!(matches!(run_err(&two_columns(), ""), PrepareError::MissingHeader { .. }));
    assert!(matches!(run_err(&two_columns(), "\n\n"), PrepareError::MissingHeader { .. }));
}

#[test]
fn a_value_a_rule_cannot_handle_names_row_column_and_rule_but_not_the_value() {
    let spec = PreparationSpec::test(vec![
        ColumnSpec::keep("id"),
        ColumnSpec::date("dob", DateGranularity::Year, None),
        ColumnSpec::band("age", 10, None, None),
    ]);
    let err = run_err(&spec, "id,dob,age\n1,1987-06-15,34\n2,1987-02-30,35\n");
    assert!(
        matches!(&err, PrepareError::InvalidValue { row: 2, line: 3, column, .. } if column == "dob"),
        "{err:?}"
    );
    says(&err, &["row 2 (line 3)", "\"dob\"", "GeneraliseDate", "not a real calendar date"]);
    assert!(!err.to_string().contains("1987-02-30"), "raw values stay out of status: {err}");
    let err = run_err(&spec, "id,dob,age\n1,1987-06-15,thirty\n");
    says(&err, &["row 1 (line 2)", "\"age\"", "Band", "number"]);
}

#[test]
fn bad_rules_are_refused_before_the_source_is_read() {
    let missing_file = |spec: &PreparationSpec| {
        let scratch = Scratch::with_input("");
        let input = scratch.dir.path().join("absent.csv");
        prepare_csv(spec, OTHER_KEY, &input, &scratch.output(), &|_| {}).expect_err("refused")
    };
    let two_byte = two_columns().delimited(";;");
    assert!(matches!(missing_file(&two_byte), PrepareError::InvalidSpec { .. }));
    let quote = two_columns().delimited("\"");
    assert!(matches!(missing_file(&quote), PrepareError::InvalidSpec { .. }));
    let twice = PreparationSpec::test(vec![ColumnSpec::keep("id"), ColumnSpec::hmac("id")]);
    let err = missing_file(&twice);
    assert!(matches!(&err, PrepareError::InvalidSpec { column: Some(c), .. } if c == "id"), "{err:?}");
    says(&err, &["column \"id\"", "more than one rule"]);
    let all_dropped = PreparationSpec::test(vec![ColumnSpec::drop("id")]);
    assert!(missing_file(&all_dropped).to_string().contains("extract would be empty"));
    let no_quasi = two_columns().k_anonymous(2, KAnonymityAction::Report, 5);
    assert!(missing_file(&no_quasi).to_string().contains("quasiIdentifier"));
    let ok = two_columns();
    assert!(matches!(missing_file(&ok), PrepareError::ReadInput { .. }), "a missing source names the path");
}

#[test]
fn a_short_key_is_refused_when_a_column_is_pseudonymised() {
    let scratch = Scratch::with_input("id\n1\n");
    let spec = PreparationSpec::test(vec![ColumnSpec::hmac("id")]);
    let err = prepare_csv(&spec, b"short", &scratch.input, &scratch.output(), &|_| {}).expect_err("refused");
    says(&err, &["5 bytes", "at least 16"]);
    let keep = PreparationSpec::test(vec![ColumnSpec::keep("id")]);
    prepare_csv(&keep, b"", &scratch.input, &scratch.output(), &|_| {}).expect("no key needed without Hmac");
}
