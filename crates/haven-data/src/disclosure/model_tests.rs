use super::*;
use crate::disclosure::test_support::{checks_of, find, names};
use crate::disclosure::{CONTENT, FILE_POLICY, Outcome};

const STATSMODELS_OLS: &str = "\
                            OLS Regression Results
==============================================================================
Dep. Variable:                      y   R-squared:                       0.873
Model:                            OLS   Adj. R-squared:                  0.842
Method:                 Least Squares   F-statistic:                     28.43
Date:                Tue, 11 Aug 2026   Prob (F-statistic):            0.00193
Time:                        10:00:00   Log-Likelihood:                -12.345
No. Observations:                   7   AIC:                             28.69
Df Residuals:                       5   BIC:                             28.58
Df Model:                           1
Covariance Type:            nonrobust
==============================================================================
";

#[test]
fn a_statsmodels_summary_with_five_residual_degrees_of_freedom_fails() {
    let checks = checks_of("models/ols.txt", STATSMODELS_OLS);
    assert_eq!(names(&checks), [FILE_POLICY, DEGREES_OF_FREEDOM]);
    let dof = find(&checks, DEGREES_OF_FREEDOM);
    assert_eq!(dof.outcome, Outcome::Fail);
    assert!(!dof.blocks());
    assert!(
        dof.detail.starts_with("1 model with residual degrees of freedom below 10 (line 9): Df Residuals 5")
    );
    assert!(dof.detail.contains("dof=5 < 10"), "{}", dof.detail);
}

#[test]
fn a_statsmodels_summary_with_enough_degrees_of_freedom_passes() {
    let checks = checks_of(
        "ols.txt",
        STATSMODELS_OLS
            .replace("Df Residuals:                       5", "Df Residuals:                      95"),
    );
    let dof = find(&checks, DEGREES_OF_FREEDOM);
    assert_eq!(dof.outcome, Outcome::Pass);
    assert_eq!(dof.detail, "dof=95 >= 10 (Df Residuals, line 9)");
}

#[test]
fn exactly_the_minimum_degrees_of_freedom_passes() {
    assert_eq!(residual_dof("Df Residuals:   10   BIC: 1"), Some((10.0, "Df Residuals")));
    let checks = checks_of("ols.txt", "Df Residuals:   10   BIC: 1\n");
    assert_eq!(find(&checks, DEGREES_OF_FREEDOM).outcome, Outcome::Pass);
}

#[test]
fn r_summaries_state_residual_degrees_of_freedom_too() {
    assert_eq!(
        residual_dof("Residual standard error: 0.4532 on 48 degrees of freedom"),
        Some((48.0, "R residual degrees of freedom"))
    );
    assert_eq!(
        residual_dof("Residual deviance:  12.31  on 4  degrees of freedom"),
        Some((4.0, "R residual degrees of freedom"))
    );
    assert_eq!(residual_dof("    Null deviance: 43.23  on 49  degrees of freedom"), None);
}

#[test]
fn the_lowest_of_several_models_decides() {
    let text = "Df Residuals: 120\nsome text\nDf Residuals: 3\n";
    let checks = checks_of("models.txt", text);
    let dof = find(&checks, DEGREES_OF_FREEDOM);
    assert_eq!(dof.outcome, Outcome::Fail);
    assert!(
        dof.detail.starts_with("1 model with residual degrees of freedom below 10 (line 3)"),
        "{}",
        dof.detail
    );
}

#[test]
fn free_text_without_a_model_is_for_review() {
    let checks = checks_of("notes.txt", "The cohort was followed for five years.\n");
    assert_eq!(names(&checks), [FILE_POLICY, CONTENT]);
    assert_eq!(find(&checks, CONTENT).outcome, Outcome::Review);
}
