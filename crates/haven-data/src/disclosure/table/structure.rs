//! `table-structure`: whether a CSV follows the tidy-table convention, so that the rules could
//! run, and what got in their way.

use super::columns::Layout;
use crate::disclosure::cells::Flagged;
use crate::disclosure::check::{Check, TABLE_STRUCTURE};
use crate::disclosure::text::plural;

/// How to make a CSV checkable; shown whenever one is not.
pub const CONVENTION: &str = "to be checked automatically, a table must be tidy: one row per cell, \
     the category columns, and a count column (count, n, freq or frequency: the number of \
     contributors); a table of sums or means also needs the largest contributions top1, top2, … \
     (largest/max, second_largest/second) and the cell's total (total or sum); a model output \
     needs a df_resid or dof column; header names are case-insensitive";

/// What stopped the rules from reading some rows.
#[derive(Debug, Default)]
pub(super) struct Structure {
    /// Rows with more or fewer fields than the header.
    pub ragged: Flagged,
    /// Evidence values that are neither numbers, missing nor suppression marks.
    pub invalid: Flagged,
    /// Top-k values out of order, or adding up to more than the total.
    pub inconsistent: Flagged,
    /// The CSV reader gave up here (the rows before were checked).
    pub unreadable: Option<String>,
}

impl Structure {
    fn problems(&self, layout: &Layout) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(error) = &self.unreadable {
            problems.push(format!("the file is not valid CSV after the rows checked: {error}"));
        }
        if !self.ragged.is_empty() {
            problems.push(self.ragged.detail("row", "with a different number of fields than the header"));
        }
        if !self.invalid.is_empty() {
            problems.push(self.invalid.detail("value", "that are not numbers"));
        }
        if !self.inconsistent.is_empty() {
            problems.push(self.inconsistent.detail(
                "row",
                "whose largest contributions are not in descending order or exceed the total",
            ));
        }
        if layout.has_magnitude() && (layout.total.is_none() || layout.top1().is_none()) {
            let (has, lacks) =
                if layout.total.is_some() { ("a total", "top1") } else { ("top-k columns", "total") };
            problems.push(format!(
                "the table has {has} but no {lacks}: the dominance and p% rules need both, so they were not checked"
            ));
        }
        if layout.has_magnitude() && layout.count.is_none() {
            problems.push(
                "no count column: the threshold rule needs the number of contributors to each cell".into(),
            );
        }
        problems
    }

    /// The check for a CSV that has some evidence column.
    pub(super) fn table_check(&self, layout: &Layout, cells: u64, suppressed: u64) -> Check {
        let problems = self.problems(layout);
        if !problems.is_empty() {
            return Check::review(TABLE_STRUCTURE, format!("{}; {CONVENTION}", problems.join("; ")));
        }
        let mut parts = vec![format!("tidy table of {}", plural(cells, "cell"))];
        if let Some(count) = layout.count {
            parts.push(format!("counts in {}", layout.header(count)));
        }
        if let (Some(total), Some(_)) = (layout.total, layout.top1()) {
            let tops: Vec<&str> = layout.top.iter().flatten().map(|&c| layout.header(c)).collect();
            parts.push(format!(
                "totals in {}, largest contributions in {}",
                layout.header(total),
                tops.join(", ")
            ));
        } else {
            parts.push("no magnitude evidence (top1, total), so the dominance rules were not run".into());
        }
        let categories: Vec<&str> = layout.dimensions.iter().map(|&c| layout.header(c)).collect();
        if !categories.is_empty() {
            parts.push(format!("categories {}", categories.join(", ")));
        }
        if suppressed > 0 {
            parts.push(format!("{} already suppressed and skipped", plural(suppressed, "cell")));
        }
        parts.extend(layout.notes.iter().cloned());
        Check::pass(TABLE_STRUCTURE, parts.join("; "))
    }

    /// The check for a model output (a dof column, no table): only problems are reported.
    pub(super) fn model_check(&self, layout: &Layout) -> Option<Check> {
        let problems = self.problems(layout);
        (!problems.is_empty()).then(|| Check::review(TABLE_STRUCTURE, problems.join("; ")))
    }

    /// The check for a CSV with no evidence column at all.
    pub(super) fn unrecognised(&self, layout: &Layout) -> Check {
        let mut problems = self.problems(layout);
        problems
            .insert(0, "no count, total, top1 or df_resid column, so no disclosure rule could run".into());
        Check::review(TABLE_STRUCTURE, format!("{}; {CONVENTION}", problems.join("; ")))
    }
}
