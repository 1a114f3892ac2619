//! ACRO's rules on finished tables, including its edge cases.

use crate::disclosure::test_support::{csv_checks, find, outcome, policy};
use crate::disclosure::{
    CheckPolicy, DOMINANCE, MISSING, NEGATIVE, Outcome, P_RATIO, TABLE_STRUCTURE, THRESHOLD, ZEROS,
};

fn default_checks(text: &str) -> Vec<crate::disclosure::Check> {
    csv_checks(text, &CheckPolicy::default())
}

#[test]
fn a_count_of_ten_passes_the_threshold_and_nine_fails() {
    let checks = default_checks("region,count\nNorth,10\nSouth,9\n");
    let threshold = find(&checks, THRESHOLD);
    assert_eq!(threshold.outcome, Outcome::Fail);
    assert!(
        threshold.detail.starts_with("1 cell with a count below 10 (row 3): region=South, count 9"),
        "{}",
        threshold.detail
    );
    assert!(!threshold.blocks(), "an output checker may approve an exception");

    let checks = default_checks("region,count\nNorth,10\nSouth,250\n");
    assert_eq!(outcome(&checks, THRESHOLD), Outcome::Pass);
}

#[test]
fn failing_cells_are_named_by_row_and_category_values() {
    let checks = default_checks("region,sex,count\nNorth,F,12\nNorth,M,4\nSouth,F,30\nSouth,M,2\n");
    let threshold = find(&checks, THRESHOLD);
    assert!(
        threshold.detail.starts_with(
            "2 cells with a count below 10 (rows 3, 5): region=North, sex=M, count 4; region=South, sex=M, count 2"
        ),
        "{}",
        threshold.detail
    );
}

#[test]
fn the_threshold_follows_the_permit() {
    let checks = csv_checks("region,count\nNorth,6\n", &policy(|p| p.thresholds.min_cell_count = 5));
    assert_eq!(outcome(&checks, THRESHOLD), Outcome::Pass);
}

#[test]
fn count_headers_are_recognised_case_insensitively_with_aliases() {
    for header in ["count", "COUNT", " N ", "freq", "Frequency"] {
        let checks = default_checks(&format!("region,{header}\nNorth,3\n"));
        assert_eq!(outcome(&checks, THRESHOLD), Outcome::Fail, "{header}");
    }
}

#[test]
fn zero_cells_fail_when_zeros_are_disclosive_as_acro_defaults() {
    let checks = default_checks("region,count\nNorth,0\nSouth,40\n");
    let zeros = find(&checks, ZEROS);
    assert_eq!(zeros.outcome, Outcome::Fail);
    assert!(
        zeros.detail.starts_with("1 cell with a count of zero (row 2): region=North, count 0"),
        "{}",
        zeros.detail
    );
    assert_eq!(outcome(&checks, THRESHOLD), Outcome::Pass, "a zero is reported once, under zeros");
}

#[test]
fn zero_cells_pass_when_the_permit_says_zeros_are_not_disclosive() {
    let checks = csv_checks(
        "region,count\nNorth,0\nSouth,40\n",
        &policy(|p| p.thresholds.zeros_are_disclosive = false),
    );
    let zeros = find(&checks, ZEROS);
    assert_eq!(zeros.outcome, Outcome::Pass);
    assert!(zeros.detail.contains("not considered disclosive"), "{}", zeros.detail);
}

#[test]
fn negative_values_are_for_review_and_leave_dominance_undefined() {
    let checks = default_checks("region,count,top1,top2,total\nNorth,20,-5,1,100\nSouth,30,10,9,200\n");
    let negative = find(&checks, NEGATIVE);
    assert_eq!(negative.outcome, Outcome::Review);
    assert!(
        negative.detail.starts_with("1 cell with a negative value (row 2): region=North, top1 -5"),
        "{}",
        negative.detail
    );
    assert_eq!(outcome(&checks, DOMINANCE), Outcome::Review);
    assert_eq!(outcome(&checks, P_RATIO), Outcome::Review);
    let dominance = find(&checks, DOMINANCE);
    assert!(
        dominance
            .detail
            .starts_with("1 cell with a negative value, for which the N-K rule is not defined (row 2)"),
        "{}",
        dominance.detail
    );
}

#[test]
fn a_negative_value_in_one_cell_does_not_hide_dominance_in_another() {
    let checks = default_checks("region,count,top1,top2,total\nNorth,20,-5,1,100\nSouth,2,60,40,100\n");
    let dominance = find(&checks, DOMINANCE);
    assert_eq!(dominance.outcome, Outcome::Fail);
    assert!(
        dominance
            .detail
            .starts_with("1 cell where the 2 largest contributors make 90% or more of the total (row 3)")
    );
    assert!(
        dominance
            .detail
            .contains("1 cell with a negative value, for which the N-K rule is not defined (row 2)")
    );
}

#[test]
fn a_table_without_negatives_passes_the_negative_check() {
    let checks = default_checks("region,count\nNorth,20\n");
    assert_eq!(outcome(&checks, NEGATIVE), Outcome::Pass);
}

#[test]
fn missing_values_are_reported_only_when_the_permit_asks() {
    let text = "region,count\nNorth,\nSouth,NA\nEast,40\n";
    let checks = default_checks(text);
    assert!(checks.iter().all(|c| c.check != MISSING), "ACRO skips missing values by default");
    assert_eq!(outcome(&checks, THRESHOLD), Outcome::Pass, "an empty cell shows nothing");

    let checks = csv_checks(text, &policy(|p| p.thresholds.check_missing_values = true));
    let missing = find(&checks, MISSING);
    assert_eq!(missing.outcome, Outcome::Review);
    assert!(missing.detail.starts_with("2 cells with an empty value (rows 2, 3)"), "{}", missing.detail);
}

#[test]
fn cells_the_researcher_suppressed_are_skipped() {
    let checks = default_checks("region,count\nNorth,*\nSouth,<10\nEast,[c]\nWest,40\n");
    assert_eq!(outcome(&checks, THRESHOLD), Outcome::Pass);
    let structure = find(&checks, TABLE_STRUCTURE);
    assert_eq!(structure.outcome, Outcome::Pass);
    assert!(structure.detail.contains("3 cells already suppressed"), "{}", structure.detail);
}

#[test]
fn a_cell_with_two_or_fewer_contributors_fails_dominance() {
    let checks = default_checks("region,count,top1,top2,total\nNorth,2,60,40,100\nSouth,50,10,9,300\n");
    let dominance = find(&checks, DOMINANCE);
    assert_eq!(dominance.outcome, Outcome::Fail);
    assert!(
        dominance
            .detail
            .starts_with("1 cell where the 2 largest contributors make 90% or more of the total (row 2)")
    );
    assert!(
        dominance.detail.contains("region=North, 2 contributors make 100% of total 100"),
        "{}",
        dominance.detail
    );
}

#[test]
fn few_contributors_fail_dominance_even_without_enough_top_columns() {
    let checks = csv_checks(
        "region,count,top1,top2,total\nNorth,3,50,30,100\nSouth,50,10,9,300\n",
        &policy(|p| p.thresholds.dominance_n = 3),
    );
    let dominance = find(&checks, DOMINANCE);
    assert_eq!(dominance.outcome, Outcome::Fail);
    assert!(dominance.detail.contains("column top3 is missing"), "{}", dominance.detail);
}

#[test]
fn dominance_needs_n_top_columns_and_says_which_is_missing() {
    let checks = csv_checks(
        "region,count,top1,top2,total\nSouth,50,10,9,300\n",
        &policy(|p| p.thresholds.dominance_n = 3),
    );
    let dominance = find(&checks, DOMINANCE);
    assert_eq!(dominance.outcome, Outcome::Review);
    assert!(dominance.detail.contains("column top3 is missing"), "{}", dominance.detail);
}

#[test]
fn the_n_largest_at_exactly_k_fail_as_in_acro_and_below_k_pass() {
    // (50 + 40) / 100 = 90%: not less than K, so not safe (ACRO: safe only below K).
    let checks = default_checks("region,count,top1,top2,total\nNorth,20,50,40,100\n");
    assert_eq!(outcome(&checks, DOMINANCE), Outcome::Fail);
    let checks = default_checks("region,count,top1,top2,total\nNorth,20,50,39.99,100\n");
    assert_eq!(outcome(&checks, DOMINANCE), Outcome::Pass);
    let checks = default_checks("region,count,top1,top2,total\nNorth,20,50,41,100\n");
    let dominance = find(&checks, DOMINANCE);
    assert_eq!(dominance.outcome, Outcome::Fail);
    assert!(dominance.detail.contains("largest 2 make 91% of total 100"), "{}", dominance.detail);
}

#[test]
fn magnitude_headers_accept_acro_style_aliases() {
    let checks = default_checks("Region,N,Largest,Second_Largest,Sum\nNorth,20,50,41,100\n");
    assert_eq!(outcome(&checks, DOMINANCE), Outcome::Fail);
    let checks = default_checks("region,freq,max,second,total\nNorth,20,50,41,100\n");
    assert_eq!(outcome(&checks, DOMINANCE), Outcome::Fail);
}

#[test]
fn the_p_ratio_at_exactly_p_passes_and_below_p_fails() {
    // (160 - 100 - 50) / 100 = 0.1: not below p.
    let checks = default_checks("region,count,top1,top2,total\nNorth,20,100,50,160\n");
    assert_eq!(outcome(&checks, P_RATIO), Outcome::Pass);
    // (159 - 100 - 50) / 100 = 0.09.
    let checks = default_checks("region,count,top1,top2,total\nNorth,20,100,50,159\n");
    let p_ratio = find(&checks, P_RATIO);
    assert_eq!(p_ratio.outcome, Outcome::Fail);
    assert!(p_ratio.detail.contains("p 0.09 (total 159, top1 100, top2 50)"), "{}", p_ratio.detail);
}

#[test]
fn fewer_than_two_contributors_fail_the_p_ratio() {
    let checks = default_checks("region,count,top1,top2,total\nNorth,1,100,,100\n");
    assert_eq!(outcome(&checks, P_RATIO), Outcome::Fail);
    let checks = csv_checks(
        "region,count,top1,top2,total\nNorth,1,100,,100\n",
        &policy(|p| p.thresholds.zeros_are_disclosive = false),
    );
    assert_eq!(outcome(&checks, P_RATIO), Outcome::Fail, "p = 0 whatever zeros_are_disclosive says");
}

#[test]
fn all_zero_cells_fail_the_p_ratio_only_when_zeros_are_disclosive_and_pass_dominance() {
    let text = "region,count,top1,top2,total\nNorth,12,0,0,0\nSouth,50,10,9,300\n";
    let checks = default_checks(text);
    assert_eq!(outcome(&checks, P_RATIO), Outcome::Fail);
    assert_eq!(outcome(&checks, DOMINANCE), Outcome::Pass, "agg_nk passes a total of zero");

    let checks = csv_checks(text, &policy(|p| p.thresholds.zeros_are_disclosive = false));
    assert_eq!(outcome(&checks, P_RATIO), Outcome::Pass);
}

#[test]
fn the_p_ratio_needs_a_top2_column() {
    let checks = default_checks("region,count,top1,total\nNorth,20,10,300\n");
    let p_ratio = find(&checks, P_RATIO);
    assert_eq!(p_ratio.outcome, Outcome::Review);
    assert!(p_ratio.detail.contains("column top2 is missing"), "{}", p_ratio.detail);
}

#[test]
fn a_count_table_without_magnitude_evidence_runs_no_dominance_rules() {
    let checks = default_checks("region,count,mean_income\nNorth,20,31000.5\n");
    assert!(checks.iter().all(|c| c.check != DOMINANCE && c.check != P_RATIO));
    let structure = find(&checks, TABLE_STRUCTURE);
    assert!(structure.detail.contains("dominance rules were not run"), "{}", structure.detail);
}

#[test]
fn evidence_that_does_not_add_up_is_for_review() {
    let checks = default_checks("region,count,top1,top2,total\nNorth,20,10,50,300\nSouth,20,200,150,300\n");
    let structure = find(&checks, TABLE_STRUCTURE);
    assert_eq!(structure.outcome, Outcome::Review);
    assert!(structure.detail.starts_with("2 rows whose largest contributions"), "{}", structure.detail);
}

#[test]
fn values_that_are_not_numbers_are_for_review() {
    let checks = default_checks("region,count\nNorth,twelve\nSouth,40\n");
    let structure = find(&checks, TABLE_STRUCTURE);
    assert_eq!(structure.outcome, Outcome::Review);
    assert!(structure.detail.contains("(row 2): count is \"twelve\""), "{}", structure.detail);
}

#[test]
fn a_negative_contribution_hidden_in_a_cell_shows_in_a_min_column_and_asks_for_review() {
    // Twelve positives and one -50: total and top-2 are positive and pass on their own.
    let plain = default_checks("region,count,top1,top2,total\nNorth,13,100,90,1000\n");
    assert_eq!(outcome(&plain, NEGATIVE), Outcome::Pass, "the canary: invisible without min");
    let shown = default_checks("region,count,top1,top2,total,min\nNorth,13,100,90,1000,-50\n");
    let negative = find(&shown, NEGATIVE);
    assert_eq!(negative.outcome, Outcome::Review, "{}", negative.detail);
    let positive = default_checks("region,count,top1,top2,total,min\nNorth,13,100,90,1000,5\n");
    assert_eq!(outcome(&positive, NEGATIVE), Outcome::Pass);
    // Evidence of negatives without a min column: the reviewers are told others may hide some.
    let evident = default_checks("region,count,top1,top2,total\nNorth,13,100,90,1000\nSouth,13,100,90,-20\n");
    assert!(
        find(&evident, NEGATIVE).detail.contains("without a min column"),
        "{}",
        find(&evident, NEGATIVE).detail
    );
}
