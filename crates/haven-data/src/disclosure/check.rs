//! One check's outcome on one file, the stable check names, and which of them block.

use serde::{Deserialize, Serialize};

/// The file's extension, size and content type break the permit's file rules. Hard.
pub const FILE_POLICY: &str = "file-policy";
/// The file holds records, not aggregates: a column of pseudonyms or a unique key. Hard.
pub const ROW_LEVEL: &str = "row-level";
/// The malware scanner found something (the operator runs it). Hard.
pub const SCANNER: &str = "scanner";
/// Whether a CSV follows the tidy-table convention, so the rules below could run.
pub const TABLE_STRUCTURE: &str = "table-structure";
/// Cells with 0 < count < `min_cell_count` (ACRO `threshold`).
pub const THRESHOLD: &str = "threshold";
/// Cells with a count of zero, failing when zeros are disclosive (ACRO `PresenceOfZeroCheck`).
pub const ZEROS: &str = "zeros";
/// Empty cells, when the permit asks for it (ACRO `missing`).
pub const MISSING: &str = "missing";
/// Negative values, which make the dominance rules undefined (ACRO `negative`).
pub const NEGATIVE: &str = "negative";
/// The N-K rule (ACRO `nk-rule`).
pub const DOMINANCE: &str = "dominance";
/// The p% rule (ACRO `p-ratio`).
pub const P_RATIO: &str = "p-ratio";
/// Residual degrees of freedom of a model (ACRO `MinimumDoFCheck`).
pub const DEGREES_OF_FREEDOM: &str = "degrees-of-freedom";
/// A file no rule can read; the reviewers must look at it.
pub const CONTENT: &str = "content";

/// Checks whose failure blocks a request outright: no reviewer may approve an exception.
/// Disclosure-control failures are not among them: as in ACRO, an output checker may
/// approve an exception the researcher justifies.
pub const HARD_CHECKS: [&str; 3] = [FILE_POLICY, ROW_LEVEL, SCANNER];

/// The outcome of a check, as ACRO reports it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Review,
    Fail,
}

impl Outcome {
    /// The more serious of two outcomes (fail > review > pass).
    pub fn worst(self, other: Outcome) -> Outcome {
        if self.severity() >= other.severity() { self } else { other }
    }

    /// `pass`, `review` or `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Review => "review",
            Outcome::Fail => "fail",
        }
    }

    fn severity(self) -> u8 {
        match self {
            Outcome::Pass => 0,
            Outcome::Review => 1,
            Outcome::Fail => 2,
        }
    }
}

/// One automated check on one file.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Check {
    /// A stable kebab-case name: one of the constants in this module.
    pub check: String,
    pub outcome: Outcome,
    /// What the check found, written for the researcher and the reviewers.
    pub detail: String,
}

impl Check {
    pub fn new(check: &str, outcome: Outcome, detail: impl Into<String>) -> Self {
        Self { check: check.to_owned(), outcome, detail: detail.into() }
    }

    pub fn pass(check: &str, detail: impl Into<String>) -> Self {
        Self::new(check, Outcome::Pass, detail)
    }

    pub fn review(check: &str, detail: impl Into<String>) -> Self {
        Self::new(check, Outcome::Review, detail)
    }

    pub fn fail(check: &str, detail: impl Into<String>) -> Self {
        Self::new(check, Outcome::Fail, detail)
    }

    /// True only when a hard check ([`HARD_CHECKS`]) failed: the request cannot be approved.
    pub fn blocks(&self) -> bool {
        self.outcome == Outcome::Fail && HARD_CHECKS.contains(&self.check.as_str())
    }
}

/// Counts of outcomes, e.g. `3 pass, 1 review, 1 fail`, for kubectl's Checks column.
pub fn summary<'a>(checks: impl IntoIterator<Item = &'a Check>) -> String {
    let (mut pass, mut review, mut fail) = (0u64, 0u64, 0u64);
    for check in checks {
        match check.outcome {
            Outcome::Pass => pass += 1,
            Outcome::Review => review += 1,
            Outcome::Fail => fail += 1,
        }
    }
    format!("{pass} pass, {review} review, {fail} fail")
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
