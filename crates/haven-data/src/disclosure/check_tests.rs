use super::*;
use crate::disclosure::Thresholds;

#[test]
fn only_hard_checks_block_and_only_when_they_fail() {
    for hard in HARD_CHECKS {
        assert!(Check::fail(hard, "x").blocks(), "{hard}");
        assert!(!Check::review(hard, "x").blocks(), "{hard}");
        assert!(!Check::pass(hard, "x").blocks(), "{hard}");
    }
    for sdc in [THRESHOLD, ZEROS, DOMINANCE, P_RATIO, DEGREES_OF_FREEDOM, TABLE_STRUCTURE, CONTENT] {
        assert!(!Check::fail(sdc, "x").blocks(), "{sdc} failures are for the reviewers");
    }
}

#[test]
fn scanner_is_a_hard_check() {
    assert!(Check::fail("scanner", "EICAR test signature").blocks());
}

#[test]
fn summary_counts_outcomes_for_the_checks_column() {
    let checks = [
        Check::pass(FILE_POLICY, ""),
        Check::pass(ROW_LEVEL, ""),
        Check::pass(ZEROS, ""),
        Check::review(NEGATIVE, ""),
        Check::fail(THRESHOLD, ""),
    ];
    assert_eq!(summary(&checks), "3 pass, 1 review, 1 fail");
    assert_eq!(summary(&[]), "0 pass, 0 review, 0 fail");
}

#[test]
fn outcomes_serialise_lowercase_and_checks_round_trip() {
    let check = Check::review(CONTENT, "look at it");
    let json = serde_json::to_value(&check).expect("serialise");
    assert_eq!(json, serde_json::json!({"check": "content", "outcome": "review", "detail": "look at it"}));
    assert_eq!(serde_json::from_value::<Check>(json).expect("deserialise"), check);
}

#[test]
fn worst_outcome_orders_fail_over_review_over_pass() {
    assert_eq!(Outcome::Pass.worst(Outcome::Review), Outcome::Review);
    assert_eq!(Outcome::Fail.worst(Outcome::Review), Outcome::Fail);
    assert_eq!(Outcome::Pass.worst(Outcome::Pass), Outcome::Pass);
}

#[test]
fn default_thresholds_are_acro_default_yaml() {
    let t = Thresholds::default();
    assert_eq!(t.min_cell_count, 10);
    assert_eq!(t.dominance_n, 2);
    assert_eq!(t.dominance_k, 0.9);
    assert_eq!(t.p_ratio, 0.1);
    assert_eq!(t.min_degrees_of_freedom, 10);
    assert!(t.zeros_are_disclosive);
    assert!(!t.check_missing_values);
}

#[test]
fn thresholds_from_the_permits_percentages_keep_acros_zero_and_missing_defaults() {
    let t = Thresholds::from_percent(10, 2, 90, 10, 10);
    assert_eq!(t, Thresholds::default());
    let t = Thresholds::from_percent(5, 3, 75, 20, 30);
    assert_eq!((t.min_cell_count, t.dominance_n, t.min_degrees_of_freedom), (5, 3, 30));
    assert_eq!((t.dominance_k, t.p_ratio), (0.75, 0.2));
    assert!(t.zeros_are_disclosive && !t.check_missing_values);
}

#[test]
fn thresholds_serialise_with_acros_names() {
    let json = serde_json::to_value(Thresholds::default()).expect("serialise");
    assert_eq!(
        json,
        serde_json::json!({
            "safe_threshold": 10, "safe_nk_n": 2, "safe_nk_k": 0.9, "safe_pratio_p": 0.1,
            "safe_dof_threshold": 10, "zeros_are_disclosive": true, "check_missing_values": false
        })
    );
}
