//! Table structure and row-level detection.

use crate::disclosure::test_support::{csv_checks, find, names, outcome, policy};
use crate::disclosure::{
    CheckPolicy, DEGREES_OF_FREEDOM, FILE_POLICY, NEGATIVE, Outcome, ROW_LEVEL, TABLE_STRUCTURE, THRESHOLD,
    UNIQUE_KEY_MIN_ROWS, ZEROS,
};

fn default_checks(text: &str) -> Vec<crate::disclosure::Check> {
    csv_checks(text, &CheckPolicy::default())
}

/// `rows` rows of `id,region,count` with a distinct id on each.
fn keyed_rows(rows: u64) -> String {
    let mut text = String::from("id,region,count\n");
    for i in 0..rows {
        text.push_str(&format!("{},{},{}\n", 100_000 + i, ["North", "South"][(i % 2) as usize], 10 + i % 7));
    }
    text
}

#[test]
fn a_count_table_gets_its_checks_in_a_fixed_order() {
    let checks = default_checks("region,count\nNorth,12\n");
    assert_eq!(names(&checks), [FILE_POLICY, ROW_LEVEL, TABLE_STRUCTURE, THRESHOLD, ZEROS, NEGATIVE]);
    assert!(checks.iter().all(|c| c.outcome == Outcome::Pass), "{checks:#?}");
}

#[test]
fn a_csv_without_recognised_columns_is_for_review_with_the_convention() {
    let checks = default_checks("region,people\nNorth,4\n");
    let structure = find(&checks, TABLE_STRUCTURE);
    assert_eq!(structure.outcome, Outcome::Review);
    assert!(structure.detail.contains("no count, total, top1 or df_resid column"), "{}", structure.detail);
    assert!(structure.detail.contains("one row per cell"), "{}", structure.detail);
    assert!(checks.iter().all(|c| c.check != THRESHOLD), "nothing is guessed");
}

#[test]
fn an_empty_csv_is_for_review() {
    let checks = default_checks("");
    assert_eq!(outcome(&checks, TABLE_STRUCTURE), Outcome::Review);
    assert_eq!(outcome(&checks, ROW_LEVEL), Outcome::Pass);
}

#[test]
fn a_byte_order_mark_does_not_hide_the_first_header() {
    let checks = default_checks("\u{feff}count,region\n4,North\n");
    assert_eq!(outcome(&checks, THRESHOLD), Outcome::Fail);
}

#[test]
fn ragged_rows_are_for_review() {
    let checks = default_checks("region,count\nNorth,12,extra\nSouth,40\n");
    let structure = find(&checks, TABLE_STRUCTURE);
    assert_eq!(structure.outcome, Outcome::Review);
    assert!(structure.detail.starts_with("1 row with a different number of fields than the header (row 2)"));
}

#[test]
fn a_magnitude_table_without_a_count_is_for_review() {
    let checks = default_checks("region,top1,top2,total\nNorth,10,9,300\n");
    let structure = find(&checks, TABLE_STRUCTURE);
    assert_eq!(structure.outcome, Outcome::Review);
    assert!(structure.detail.contains("no count column"), "{}", structure.detail);
}

#[test]
fn a_sum_without_top_contributions_is_for_review() {
    let checks = default_checks("region,count,sum\nNorth,20,300\n");
    let structure = find(&checks, TABLE_STRUCTURE);
    assert_eq!(structure.outcome, Outcome::Review);
    assert!(structure.detail.contains("has a total but no top1"), "{}", structure.detail);
}

#[test]
fn a_column_of_pseudonyms_fails_row_level() {
    let checks = default_checks(
        "pid,region,count\n3f2a9c0b1d4e5f60,North,12\n0a1b2c3d4e5f6a7b,South,14\n9f8e7d6c5b4a3928,East,11\n",
    );
    let row_level = find(&checks, ROW_LEVEL);
    assert_eq!(row_level.outcome, Outcome::Fail);
    assert!(row_level.blocks());
    assert!(
        row_level.detail.contains("column pid: 3 of 3 values look like the permit's pseudonyms"),
        "{}",
        row_level.detail
    );
}

#[test]
fn pseudonym_shapes_follow_the_permits_lengths() {
    let text = "pid,count\n3f2a9c0b1d4e5f60,12\n0a1b2c3d4e5f6a7b,14\n";
    let checks = csv_checks(text, &policy(|p| p.pseudonym_hex_lengths = vec![32]));
    assert_eq!(outcome(&checks, ROW_LEVEL), Outcome::Pass);
}

#[test]
fn a_minority_of_hex_values_is_not_a_pseudonym_column() {
    let checks = default_checks("code,count\n3f2a9c0b1d4e5f60,12\nA1,14\nB2,15\n");
    assert_eq!(outcome(&checks, ROW_LEVEL), Outcome::Pass);
}

#[test]
fn upper_case_hex_is_not_the_permits_pseudonym_shape() {
    let checks = default_checks("code,count\n3F2A9C0B1D4E5F60,12\n0A1B2C3D4E5F6A7B,14\n");
    assert_eq!(outcome(&checks, ROW_LEVEL), Outcome::Pass);
}

#[test]
fn a_unique_key_in_a_thousand_rows_fails_row_level() {
    let checks = default_checks(&keyed_rows(UNIQUE_KEY_MIN_ROWS));
    let row_level = find(&checks, ROW_LEVEL);
    assert_eq!(row_level.outcome, Outcome::Fail);
    assert!(
        row_level.detail.contains("column id has a different value in each of its 1000 rows"),
        "{}",
        row_level.detail
    );
}

#[test]
fn a_unique_key_in_999_rows_does_not_fail_row_level() {
    let checks = default_checks(&keyed_rows(UNIQUE_KEY_MIN_ROWS - 1));
    assert_eq!(outcome(&checks, ROW_LEVEL), Outcome::Pass);
}

#[test]
fn a_repeated_value_means_a_column_is_not_a_key() {
    let mut text = keyed_rows(1500);
    text.push_str("100000,North,12\n");
    assert_eq!(outcome(&default_checks(&text), ROW_LEVEL), Outcome::Pass);
}

#[test]
fn distinct_decimals_and_evidence_columns_are_not_keys() {
    let mut text = String::from("cell,mean,total,count,top1,top2\n");
    for i in 0..1200u64 {
        text.push_str(&format!(
            "{},{}.25,{},{},{},{}\n",
            ["a", "b"][(i % 2) as usize],
            1000 + i,
            10_000 + i,
            20 + i,
            10,
            9
        ));
    }
    let checks = default_checks(&text);
    assert_eq!(outcome(&checks, ROW_LEVEL), Outcome::Pass, "{:#?}", find(&checks, ROW_LEVEL));
}

#[test]
fn a_model_csv_with_a_dof_column_gets_degrees_of_freedom_and_no_structure_review() {
    let checks = default_checks("term,coef,df_resid\nconst,1.2,5\nage,0.3,5\n");
    let dof = find(&checks, DEGREES_OF_FREEDOM);
    assert_eq!(dof.outcome, Outcome::Fail);
    assert!(
        dof.detail.starts_with("2 rows with residual degrees of freedom below 10 (rows 2, 3)"),
        "{}",
        dof.detail
    );
    assert!(checks.iter().all(|c| c.check != TABLE_STRUCTURE));

    let checks = default_checks("term,coef,DoF\nconst,1.2,95\n");
    assert_eq!(outcome(&checks, DEGREES_OF_FREEDOM), Outcome::Pass);
}
