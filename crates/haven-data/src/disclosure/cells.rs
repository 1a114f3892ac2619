//! The cells a rule flags, and how a detail names them.
//!
//! A detail reads `2 cells with a count below 10 (rows 3, 7): region=North, count 4;
//! region=South, count 2`. Everything before the `(rows …)` group is written by the rule and
//! never holds a parenthesis, and the group holds only numbers, so [`parse`] can read the count
//! and rows back for the report's ACRO `cells` without trusting text that came from the file.

use super::text::plural;

/// Rows listed in a detail; beyond this it says `and N more`.
const LISTED_ROWS: usize = 20;
/// Cells described (with their category values) in a detail.
const LISTED_EXAMPLES: usize = 5;

/// Cells flagged by one rule, in file order. Memory is bounded: only the first few are kept.
#[derive(Debug, Default)]
pub(super) struct Flagged {
    count: u64,
    rows: Vec<u64>,
    examples: Vec<String>,
}

impl Flagged {
    /// Flags the cell on spreadsheet row `row`; `describe` is only called for cells listed.
    pub(super) fn flag(&mut self, row: u64, describe: impl FnOnce() -> String) {
        self.count += 1;
        if self.rows.len() < LISTED_ROWS {
            self.rows.push(row);
        }
        if self.examples.len() < LISTED_EXAMPLES {
            self.examples.push(describe());
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// `{n} {noun}s {what} (rows …): {examples}`. `what` must not contain `(`.
    pub(super) fn detail(&self, noun: &str, what: &str) -> String {
        debug_assert!(!what.contains('('), "a rule's own text must not hold a parenthesis");
        let listed: Vec<String> = self.rows.iter().map(u64::to_string).collect();
        let unlisted = self.count.saturating_sub(self.rows.len() as u64);
        let more = if unlisted > 0 { format!(" and {unlisted} more") } else { String::new() };
        let rows_word = if self.count == 1 { "row" } else { "rows" };
        let mut detail = format!(
            "{} {what} ({rows_word} {}{more}): {}",
            plural(self.count, noun),
            listed.join(", "),
            self.examples.join("; ")
        );
        let undescribed = self.count.saturating_sub(self.examples.len() as u64);
        if undescribed > 0 {
            detail.push_str(&format!("; and {undescribed} more"));
        }
        detail
    }
}

/// The number of cells a detail counts, and the rows it lists, if it starts with a count.
pub(super) fn parse(detail: &str) -> Option<(u64, Vec<u64>)> {
    let digits = detail.split(' ').next()?;
    let count: u64 = digits.parse().ok()?;
    let before_examples = detail.split_once(':').map_or(detail, |(head, _)| head);
    let rows = before_examples
        .split_once(" (row")
        .map(|(_, group)| {
            let group = group.trim_start_matches('s').trim_end_matches(')');
            let listed = group.split(" and ").next().unwrap_or_default();
            listed.split(',').filter_map(|row| row.trim().parse().ok()).collect()
        })
        .unwrap_or_default();
    Some((count, rows))
}

#[cfg(test)]
#[path = "cells_tests.rs"]
mod tests;
