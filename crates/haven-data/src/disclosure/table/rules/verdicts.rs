//! The checks a table's tallies add up to, worded for the researcher and the reviewers.

use super::TableRules;
use crate::disclosure::cells::Flagged;
use crate::disclosure::check::{Check, DOMINANCE, MISSING, NEGATIVE, P_RATIO, THRESHOLD, ZEROS};
use crate::disclosure::table::columns::Layout;
use crate::disclosure::text::{number, plural, round_to};

impl TableRules<'_> {
    /// The rule checks, in a fixed order.
    pub(in crate::disclosure::table) fn finish(&self, layout: &Layout) -> Vec<Check> {
        let t = self.thresholds;
        let mut checks = Vec::new();
        if layout.count.is_some() {
            checks.push(self.threshold_check());
            checks.push(self.zeros_check());
        }
        if t.check_missing_values {
            checks.push(if self.missing.is_empty() {
                Check::pass(MISSING, "no empty values")
            } else {
                Check::review(
                    MISSING,
                    format!(
                        "{}; missing values found: the reviewers must check what they mean",
                        self.missing.detail("cell", "with an empty value")
                    ),
                )
            });
        }
        checks.push(if self.negative.is_empty() {
            Check::pass(NEGATIVE, "no negative values")
        } else {
            Check::review(
                NEGATIVE,
                format!(
                    "{}; negative values found: the dominance rules are not defined for them{}",
                    self.negative.detail("cell", "with a negative value"),
                    if self.magnitude && layout.min.is_none() {
                        "; without a min column (each cell's smallest contribution) other cells may hide negative contributions too"
                    } else {
                        ""
                    }
                ),
            )
        });
        if self.magnitude {
            checks.push(self.dominance_check(layout));
            checks.push(self.p_ratio_check(layout));
        }
        checks
    }

    fn threshold_check(&self) -> Check {
        let min = self.thresholds.min_cell_count;
        if self.threshold.is_empty() {
            return Check::pass(THRESHOLD, format!("no count below {min} in {}", plural(self.cells, "cell")));
        }
        Check::fail(
            THRESHOLD,
            format!(
                "{}; suppress, round or combine cells below the threshold of {min}",
                self.threshold.detail("cell", &format!("with a count below {min}"))
            ),
        )
    }

    fn zeros_check(&self) -> Check {
        if self.zeros.is_empty() {
            return Check::pass(ZEROS, "no zero cells");
        }
        let detail = self.zeros.detail("cell", "with a count of zero");
        if self.thresholds.zeros_are_disclosive {
            Check::fail(
                ZEROS,
                format!(
                    "{detail}; zeros are disclosive under this permit: a zero tells that nobody in the group has the attribute"
                ),
            )
        } else {
            Check::pass(ZEROS, format!("{detail}; zeros are not considered disclosive under this permit"))
        }
    }

    fn dominance_check(&self, layout: &Layout) -> Check {
        let n = self.thresholds.dominance_n;
        let k = number(round_to(100.0 * self.thresholds.dominance_k, 4));
        let unchecked = (self.dominance_unchecked > 0).then(|| {
            let column = missing_top(layout, n).map_or_else(String::new, |c| format!(": column {c} is missing"));
            format!(
                "{} could not be checked: the N-K rule needs the {n} largest contributions, top1 to top{n}{column}",
                plural(self.dominance_unchecked, "cell")
            )
        });
        self.rule_check(
            DOMINANCE,
            "N-K rule",
            &self.dominance,
            &format!("where the {n} largest contributors make {k}% or more of the total"),
            unchecked,
            format!("in no cell do the {n} largest contributors make {k}% or more of the total"),
        )
    }

    fn p_ratio_check(&self, layout: &Layout) -> Check {
        let p = number(round_to(100.0 * self.thresholds.p_ratio, 4));
        let unchecked = (self.p_ratio_unchecked > 0).then(|| {
            let column = missing_top(layout, 2).map_or_else(String::new, |c| format!(": column {c} is missing"));
            format!(
                "{} could not be checked: the p% rule needs the two largest contributions, top1 and top2{column}",
                plural(self.p_ratio_unchecked, "cell")
            )
        });
        self.rule_check(
            P_RATIO,
            "p% rule",
            &self.p_ratio,
            &format!("where the total less the two largest contributions is under {p}% of the largest"),
            unchecked,
            format!(
                "in every cell the total less the two largest contributions is at least {p}% of the largest"
            ),
        )
    }

    /// A dominance rule's outcome: fail when a cell breaks it; otherwise review when negative
    /// values (for which ACRO calls the rules undefined) or missing evidence kept cells from
    /// being checked; otherwise pass. Unlike ACRO 1.0, whose `NKCheck` returns review for the
    /// whole table as soon as one value is negative, the cells without negatives are still
    /// judged, so a dominated cell is not hidden behind another cell's negative value.
    fn rule_check(
        &self,
        name: &str,
        rule: &str,
        flagged: &Flagged,
        what: &str,
        unchecked: Option<String>,
        pass: String,
    ) -> Check {
        let mut notes = Vec::new();
        if !self.negative.is_empty() {
            notes.push(
                self.negative
                    .detail("cell", &format!("with a negative value, for which the {rule} is not defined")),
            );
        }
        notes.extend(unchecked);
        if !flagged.is_empty() {
            let mut detail = flagged.detail("cell", what);
            for note in notes {
                detail.push_str("; ");
                detail.push_str(&note);
            }
            return Check::fail(name, detail);
        }
        if notes.is_empty() {
            return Check::pass(name, pass);
        }
        Check::review(name, format!("{}; the reviewers must judge these cells", notes.join("; ")))
    }
}

/// The first of `top1` … `top{n}` the table lacks.
fn missing_top(layout: &Layout, n: usize) -> Option<String> {
    (1..=n).find(|k| layout.top.get(k - 1).copied().flatten().is_none()).map(|k| format!("top{k}"))
}
