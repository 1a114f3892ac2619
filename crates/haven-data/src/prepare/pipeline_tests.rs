//! The threaded engine against a plain one-thread reference: same bytes, same report, same
//! first error, over many (deliberately small, in tests) batches.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::sync::Mutex;

use csv::ByteRecord;
use sha2::{Digest, Sha256};

use super::report::k_anonymity_report;
use super::stats::ClassKey;
use super::test_support::{KEY, Scratch, run_err};
use super::*;

fn spec() -> PreparationSpec {
    PreparationSpec::test(vec![
        ColumnSpec::hmac("pid"),
        ColumnSpec::hmac("surname").with_hmac(12, true, true),
        ColumnSpec::date("dob", DateGranularity::YearBand, Some(5)).quasi(),
        ColumnSpec::truncate("postcode", 2).quasi(),
        ColumnSpec::band("age", 20, Some(80), Some(18)).quasi(),
        ColumnSpec::keep("sex").quasi(),
        ColumnSpec::test("gp", RuleKind::Suppress),
        ColumnSpec::keep("notes"),
        ColumnSpec::drop("free_text"),
    ])
}

/// `rows` generated rows with nulls, quoting, line breaks and non-ASCII text.
fn source(rows: u64) -> String {
    let mut csv = String::from("pid,surname,dob,postcode,age,sex,gp,free_text,notes\n");
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    for row in 1..=rows {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let r = state >> 33;
        let surname = ["Smith", " ZOË ", "o'brien", "", "Nguyễn"][(r % 5) as usize];
        let dob = if r.is_multiple_of(17) {
            String::new()
        } else {
            format!("{}-0{}-1{}", 1930 + r % 80, 1 + r % 9, r % 10)
        };
        let postcode = ["SW1A 1AA", "N1", "\"EC1A, 1BB\"", "", "M1 1AE"][(r % 7 % 5) as usize];
        let notes = if r.is_multiple_of(11) { "\"line one\nline \"\"two\"\"\"" } else { "ok" };
        let sex = ["F", "M", ""][(r % 3) as usize];
        let age = (r >> 4) % 100;
        csv.push_str(&format!("P{row},{surname},{dob},{postcode},{age},{sex},Dr {r},secret {r},{notes}\n"));
    }
    csv
}

fn sha256(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The obvious implementation: everything in memory on one thread.
fn reference(spec: &PreparationSpec, input: &str) -> (Vec<u8>, PreparationReport) {
    let mut reader = csv::ReaderBuilder::new().from_reader(input.as_bytes());
    let header = reader.byte_headers().expect("header").clone();
    let plan = plan::plan(spec, KEY, &header).expect("plan");
    let rows: Vec<ByteRecord> = reader.byte_records().map(|r| r.expect("record")).collect();
    let transformed: Vec<ByteRecord> = rows
        .iter()
        .map(|record| {
            let value = |c: &plan::PlannedColumn| std::str::from_utf8(&record[c.input]).expect("utf-8");
            plan.columns
                .iter()
                .map(|c| {
                    let mut out = Vec::new();
                    if !value(c).is_empty() {
                        c.transform.apply(value(c), &mut out).expect("valid value");
                    }
                    out
                })
                .collect()
        })
        .collect();
    let mut class_key = ClassKey::default();
    let classes: Vec<u128> =
        transformed.iter().map(|out| class_key.of(plan.quasi_identifiers.iter().map(|&i| &out[i]))).collect();
    let mut sizes: HashMap<u128, u64> = HashMap::new();
    for class in &classes {
        *sizes.entry(*class).or_default() += 1;
    }
    let k = spec.k_anonymity.as_ref().expect("k-anonymity");
    let suppress = k.action == KAnonymityAction::SuppressRows;
    let min_size = if suppress { u64::from(k.k) } else { 1 };
    let kept: Vec<&ByteRecord> = transformed
        .iter()
        .zip(&classes)
        .filter(|(_, class)| sizes[*class] >= min_size)
        .map(|(r, _)| r)
        .collect();

    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_byte_record(&plan.header()).expect("header");
    kept.iter().for_each(|r| writer.write_byte_record(r).expect("row"));
    let output = writer.into_inner().expect("flush");
    let columns = plan
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let nulls = kept.iter().filter(|r| r[i].is_empty()).count() as u64;
            let distinct: HashSet<&[u8]> = kept.iter().map(|r| &r[i]).filter(|v| !v.is_empty()).collect();
            ColumnReport {
                name: c.name.clone(),
                rule: c.rule.as_str().to_owned(),
                nulls,
                distinct: distinct.len() as u64,
                distinct_is_lower_bound: false,
            }
        })
        .collect();
    let quasi = plan.quasi_identifiers.iter().map(|&i| plan.columns[i].name.clone()).collect();
    let report = PreparationReport {
        dataset: spec.name.clone(),
        rows_in: rows.len() as u64,
        rows_out: kept.len() as u64,
        suppressed_rows: (rows.len() - kept.len()) as u64,
        input_sha256: sha256(input),
        output_sha256: sha256(&output),
        rules_sha256: rules_sha256(spec),
        key_fingerprint: key_fingerprint(KEY),
        columns,
        k_anonymity: Some(k_anonymity_report(k.k, quasi, sizes.values().copied(), min_size)),
        duration_ms: 0,
        rows_per_second: 0.0,
        megabytes_per_second: 0.0,
    };
    (output, report)
}

fn assert_same_as_reference(action: KAnonymityAction) {
    let spec = spec().dropping_unknown().k_anonymous(3, action, 100);
    let input = source(3_000);
    let scratch = Scratch::with_input(&input);
    let calls = Mutex::new(Vec::new());
    let mut report = prepare_csv(&spec, KEY, &scratch.input, &scratch.output(), &|rows| {
        calls.lock().expect("lock").push(rows);
    })
    .expect("prepare");
    (report.duration_ms, report.rows_per_second, report.megabytes_per_second) = (0, 0.0, 0.0);
    let output = fs::read(scratch.output()).expect("output");
    let (expected_output, expected_report) = reference(&spec, &input);
    assert!(output == expected_output, "the extract's bytes differ from the reference");
    assert_eq!(report, expected_report);
    let passes = if action == KAnonymityAction::SuppressRows { 2 } else { 1 };
    assert_eq!(*calls.lock().expect("lock"), [3_000 * passes]);
}

#[test]
fn the_threaded_engine_writes_what_one_thread_would_when_reporting() {
    assert_same_as_reference(KAnonymityAction::Report);
}

#[test]
fn the_threaded_engine_writes_what_one_thread_would_when_suppressing() {
    let (_, report) = reference(&spec().k_anonymous(3, KAnonymityAction::SuppressRows, 100), &source(3_000));
    assert!(report.suppressed_rows > 0 && report.rows_out > 0, "the data must exercise suppression");
    assert_same_as_reference(KAnonymityAction::SuppressRows);
}

#[test]
fn the_first_error_in_row_order_wins_across_batches_and_threads() {
    let bad_age = "P,Smith,1980-01-01,N1,old,F,Dr,x,ok\n";
    let ragged = "P,Smith\n";
    for action in [KAnonymityAction::Report, KAnonymityAction::SuppressRows] {
        let spec = spec().dropping_unknown().k_anonymous(3, action, 100);
        let input = with_row(&with_row(&source(2_000), 1_234, bad_age), 1_900, ragged);
        assert!(matches!(run_err(&spec, &input), PrepareError::InvalidValue { row: 1_234, .. }));
        let input = with_row(&with_row(&source(2_000), 1_900, bad_age), 1_234, ragged);
        assert!(matches!(run_err(&spec, &input), PrepareError::RaggedRow { row: 1_234, .. }));
    }
}

/// `input` with data row `row` (1-based; the header is record 0) replaced by `line`.
fn with_row(input: &str, row: usize, line: &str) -> String {
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(input.as_bytes());
    let mut out = Vec::new();
    for (i, record) in reader.byte_records().enumerate() {
        if i == row {
            out.extend_from_slice(line.as_bytes());
        } else {
            let mut writer = csv::WriterBuilder::new().flexible(true).from_writer(&mut out);
            writer.write_byte_record(&record.expect("record")).expect("write");
            writer.flush().expect("flush");
        }
    }
    String::from_utf8(out).expect("utf-8")
}
