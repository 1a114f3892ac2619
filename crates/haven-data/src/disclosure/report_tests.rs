use chrono::TimeZone;

use super::*;
use crate::disclosure::FileChecks;
use crate::disclosure::test_support::checks_of;

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 8, 11, 10, 0, 0).single().expect("valid time")
}

fn file(path: &str, bytes: &str) -> FileChecks {
    FileChecks {
        path: path.into(),
        size: bytes.len() as u64,
        sha256: "ab".repeat(32),
        checks: checks_of(path, bytes),
    }
}

fn sample() -> Report {
    let files = [
        file("tables/ages.csv", "region,count\nNorth,4\nSouth,40\nEast,2\n"),
        file("models/ols.txt", "Df Residuals: 5\n"),
        file("figures/plot.png", "\u{89}PNG"),
    ];
    report("team-a/export-1", &files, &Thresholds::default(), at())
}

#[test]
fn the_report_has_acros_results_json_shape() {
    let json = serde_json::to_value(sample()).expect("serialise");
    assert_eq!(json["version"], REPORT_VERSION);
    let results = json["results"].as_object().expect("results keyed by uid");
    assert_eq!(results.keys().collect::<Vec<_>>(), ["output_0", "output_1", "output_2"]);

    let table = &results["output_0"];
    for field in [
        "uid",
        "status",
        "type",
        "properties",
        "files",
        "outcome",
        "command",
        "summary",
        "timestamp",
        "comments",
        "exception",
    ] {
        assert!(table.get(field).is_some(), "missing {field} in {table:#}");
    }
    assert_eq!(table["uid"], "output_0");
    assert_eq!(table["status"], "fail");
    assert_eq!(table["type"], "table");
    assert_eq!(table["files"][0]["name"], "tables/ages.csv");
    let sdc = &table["files"][0]["sdc"];
    assert_eq!(sdc["summary"]["suppressed"], false);
    assert_eq!(sdc["summary"]["threshold"], 2);
    assert_eq!(sdc["summary"]["zeros"], 0);
    assert_eq!(sdc["cells"]["threshold"], serde_json::json!([[0, 0], [2, 0]]));
    assert_eq!(sdc["cells"]["zeros"], serde_json::json!([]));
    assert_eq!(table["summary"], "fail; threshold: 2 cells may need suppressing");
    assert_eq!(table["timestamp"], "2026-08-11T10:00:00Z");
    assert_eq!(table["comments"], serde_json::json!([]));
    assert_eq!(table["exception"], "");
    assert_eq!(table["properties"]["request"], "team-a/export-1");
    assert_eq!(table["properties"]["risk_appetite"]["safe_threshold"], 10);

    let model = &results["output_1"];
    assert_eq!(model["type"], "regression");
    assert_eq!(model["files"][0]["sdc"]["summary"]["degrees-of-freedom"], 1);
    assert_eq!(model["summary"], "fail; degrees-of-freedom: fail");

    let custom = &results["output_2"];
    assert_eq!(custom["type"], "custom");
    assert_eq!(custom["status"], "review");
    assert_eq!(custom["summary"], "review; content: review");
    assert_eq!(custom["files"][0]["sdc"], serde_json::json!({"summary": {"suppressed": false}, "cells": {}}));
}

#[test]
fn the_report_deserialises_back_to_itself() {
    let report = sample();
    let json = serde_json::to_string_pretty(&report).expect("serialise");
    let back: Report = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(back, report);
}

#[test]
fn outputs_keep_request_order_past_ten_files() {
    let files: Vec<FileChecks> = (0..12).map(|i| file(&format!("f{i}.md"), "# x")).collect();
    let json =
        serde_json::to_string(&report("ns/r", &files, &Thresholds::default(), at())).expect("serialise");
    let at_2 = json.find("\"output_2\"").expect("output_2");
    let at_10 = json.find("\"output_10\"").expect("output_10");
    assert!(at_2 < at_10, "ACRO lists outputs in the order they were added");
    let back: Report = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(back.results[11].files[0].name, "f11.md");
}

#[test]
fn a_passing_file_reports_pass_and_blocks_nothing() {
    let files = [file("t.csv", "region,count\nNorth,40\n")];
    let report = report("ns/r", &files, &Thresholds::default(), at());
    assert_eq!(report.results[0].status, Outcome::Pass);
    assert_eq!(report.results[0].summary, "pass");
    assert!(!report.blocks());
}

#[test]
fn a_hard_failure_blocks_the_report() {
    let files = [file("t.csv", "pid,count\n3f2a9c0b1d4e5f60,12\n")];
    assert!(report("ns/r", &files, &Thresholds::default(), at()).blocks());
}

#[test]
fn a_zero_count_is_named_under_threshold_too_as_acro_shows_it() {
    let files = [file("t.csv", "region,count\nNorth,40\nSouth,0\nEast,3\n")];
    let report = report("ns/r", &files, &Thresholds::default(), at());
    let sdc = &report.results[0].files[0].sdc;
    assert_eq!(sdc.summary.counts.get(ZEROS), Some(&1));
    assert_eq!(sdc.summary.counts.get(THRESHOLD), Some(&2), "East (3) and South (0)");
    assert_eq!(sdc.cells.get(THRESHOLD), Some(&vec![[1, 0], [2, 0]]));
}
