//! ACRO's statistical disclosure control rules, applied to a finished tidy table one row (one
//! cell) at a time. Each rule mirrors `acro/acro_tables.py` (v0.4.12: `agg_threshold`,
//! `agg_negative`, `agg_missing`, `agg_nk`, `agg_p_percent`) and `acro/sdcchecks.py` (v1.0:
//! `PresenceOfZeroCheck`, the review when negative values are present); the differences,
//! all forced by reading a finished table instead of the raw data, are noted where they are.

mod verdicts;

use csv::ByteRecord;

use super::columns::Layout;
use super::structure::Structure;
use super::values::{Value, below, exceeds, parse_value};
use crate::disclosure::cells::Flagged;

use crate::disclosure::policy::Thresholds;
use crate::disclosure::text::{number, round_to, sanitise};

/// Category values longer than this are left out of details.
const SHORT_VALUE: usize = 24;
/// Category columns named in a detail.
const LISTED_DIMENSIONS: usize = 3;

#[derive(Debug)]
pub(super) struct TableRules<'a> {
    thresholds: &'a Thresholds,
    /// Has both `top1` and `total`, so the dominance rules can run.
    magnitude: bool,
    cells: u64,
    pub(super) suppressed: u64,
    threshold: Flagged,
    zeros: Flagged,
    missing: Flagged,
    negative: Flagged,
    dominance: Flagged,
    dominance_unchecked: u64,
    p_ratio: Flagged,
    p_ratio_unchecked: u64,
}

impl<'a> TableRules<'a> {
    pub(super) fn new(layout: &Layout, thresholds: &'a Thresholds) -> Self {
        Self {
            thresholds,
            magnitude: layout.total.is_some() && layout.top1().is_some(),
            cells: 0,
            suppressed: 0,
            threshold: Flagged::default(),
            zeros: Flagged::default(),
            missing: Flagged::default(),
            negative: Flagged::default(),
            dominance: Flagged::default(),
            dominance_unchecked: 0,
            p_ratio: Flagged::default(),
            p_ratio_unchecked: 0,
        }
    }

    pub(super) fn observe(
        &mut self,
        row: u64,
        record: &ByteRecord,
        layout: &Layout,
        structure: &mut Structure,
    ) {
        self.cells += 1;
        let read = |index: Option<usize>| index.map(|i| parse_value(record.get(i).unwrap_or_default()));
        let count = read(layout.count);
        let total = read(layout.total);
        let tops: Vec<Option<Value>> = layout.top.iter().map(|column| read(*column)).collect();

        // Every evidence value: what is suppressed, missing, negative or unreadable.
        let evidence =
            layout.count.iter().chain(&layout.total).chain(&layout.min).chain(layout.top.iter().flatten());
        let (mut suppressed, mut missing, mut negative) = (false, None, None);
        for &column in evidence {
            let raw = record.get(column).unwrap_or_default();
            match parse_value(raw) {
                Value::Suppressed => suppressed = true,
                Value::Missing => missing = missing.or(Some(column)),
                Value::Number(x) if x < 0.0 => negative = negative.or(Some((column, x))),
                Value::Number(_) => {}
                Value::Invalid => structure.invalid.flag(row, || {
                    format!("{} is {:?}", layout.header(column), sanitise(&String::from_utf8_lossy(raw), 20))
                }),
            }
        }
        let label = || cell_label(layout, record);
        if suppressed {
            self.suppressed += 1;
        }
        if let Some(column) = missing
            && self.thresholds.check_missing_values
        {
            self.missing.flag(row, || join(label(), format!("{} empty", layout.header(column))));
        }
        if let Some((column, x)) = negative {
            self.negative.flag(row, || join(label(), format!("{} {}", layout.header(column), number(x))));
        }

        // Counts: agg_threshold is `count < threshold`; a zero is left to `zeros` (below).
        if let Some(Value::Number(c)) = count {
            if c == 0.0 {
                self.zeros.flag(row, || join(label(), "count 0".into()));
            } else if c > 0.0 && c < self.thresholds.min_cell_count as f64 {
                self.threshold.flag(row, || join(label(), format!("count {}", number(c))));
            }
        }

        if !self.magnitude || negative.is_some() {
            return;
        }
        let Some(Value::Number(total)) = total else { return };
        let contributors = match count {
            Some(Value::Number(c)) => Some(c),
            _ => None,
        };
        let top = |k: usize| -> Option<f64> {
            match tops.get(k - 1).copied().flatten()? {
                Value::Number(x) => Some(x),
                // An empty top-k: the cell has fewer than k contributors.
                Value::Missing => Some(0.0),
                Value::Suppressed | Value::Invalid => None,
            }
        };
        self.check_consistency(row, total, &tops, structure);
        self.check_dominance(row, total, contributors, &top, &label);
        self.check_p_ratio(row, total, contributors, &top, &label, structure);
    }

    /// agg_nk: a cell is safe only when its N largest contributors account for less than K of
    /// its total (ACRO's own definition), so `sum(N largest) / total >= K` fails, within
    /// floating-point noise; a total of zero or less passes. A cell of N
    /// or fewer contributors has its N largest equal to its total, so it fails (for K < 100%)
    /// even when the table carries fewer than N top-k columns.
    fn check_dominance(
        &mut self,
        row: u64,
        total: f64,
        contributors: Option<f64>,
        top: &impl Fn(usize) -> Option<f64>,
        label: &impl Fn() -> String,
    ) {
        let n = self.thresholds.dominance_n;
        let few = contributors.is_some_and(|c| c <= n as f64);
        let largest = if few { Some(total) } else { (1..=n).map(top).sum::<Option<f64>>() };
        let Some(largest) = largest else {
            self.dominance_unchecked += 1;
            return;
        };
        if total > 0.0 && !below(largest / total, self.thresholds.dominance_k) {
            self.dominance.flag(row, || {
                let share = number(round_to(100.0 * largest / total, 1));
                let who = match contributors {
                    Some(c) if few => format!("{} contributors", number(c)),
                    _ => format!("largest {n}"),
                };
                join(label(), format!("{who} make {share}% of total {}", number(total)))
            });
        }
    }

    /// agg_p_percent: `(total - top1 - top2) / top1 < p` fails. A cell whose total is zero or
    /// less, or with no contributors, fails only when zeros are disclosive, as in ACRO; a cell
    /// of one contributor has p = 0 and fails. (ACRO 0.4 ties the one-contributor case to
    /// `zeros_are_disclosive` too; ACRO 1.0 and the formula fail it, and so do we.)
    fn check_p_ratio(
        &mut self,
        row: u64,
        total: f64,
        contributors: Option<f64>,
        top: &impl Fn(usize) -> Option<f64>,
        label: &impl Fn() -> String,
        structure: &mut Structure,
    ) {
        let p = self.thresholds.p_ratio;
        if total <= 0.0 || contributors == Some(0.0) {
            if self.thresholds.zeros_are_disclosive {
                self.p_ratio.flag(row, || join(label(), format!("total {}", number(total))));
            }
            return;
        }
        if contributors.is_some_and(|c| c <= 1.0) {
            self.p_ratio.flag(row, || join(label(), "1 contributor".into()));
            return;
        }
        let (Some(top1), Some(top2)) = (top(1), top(2)) else {
            self.p_ratio_unchecked += 1;
            return;
        };
        if top1 <= 0.0 {
            structure.inconsistent.flag(row, || format!("total {} but top1 {}", number(total), number(top1)));
            return;
        }
        let ratio = (total - top1 - top2) / top1;
        if below(ratio, p) {
            self.p_ratio.flag(row, || {
                join(
                    label(),
                    format!(
                        "p {} (total {}, top1 {}, top2 {})",
                        number(round_to(ratio, 4)),
                        number(total),
                        number(top1),
                        number(top2)
                    ),
                )
            });
        }
    }

    /// The evidence must add up: top-k in descending order, together no more than the total.
    fn check_consistency(&self, row: u64, total: f64, tops: &[Option<Value>], structure: &mut Structure) {
        let numbers: Vec<f64> = tops
            .iter()
            .map_while(|value| match value {
                Some(Value::Number(x)) => Some(*x),
                _ => None,
            })
            .collect();
        let descending = numbers.windows(2).all(|pair| !exceeds(pair[1], pair[0]));
        let sum: f64 = numbers.iter().sum();
        if !descending || exceeds(sum, total) {
            structure.inconsistent.flag(row, || {
                let listed: Vec<String> = numbers.iter().map(|x| number(*x)).collect();
                format!("top values {} with total {}", listed.join(", "), number(total))
            });
        }
    }
}

/// `region=North, sex=F`: the short category values of a row.
pub(super) fn cell_label(layout: &Layout, record: &ByteRecord) -> String {
    let parts: Vec<String> = layout
        .dimensions
        .iter()
        .take(LISTED_DIMENSIONS)
        .filter_map(|&column| {
            let value = String::from_utf8_lossy(record.get(column).unwrap_or_default()).trim().to_owned();
            (value.chars().count() <= SHORT_VALUE)
                .then(|| format!("{}={}", layout.header(column), sanitise(&value, SHORT_VALUE)))
        })
        .collect();
    parts.join(", ")
}

fn join(label: String, evidence: String) -> String {
    if label.is_empty() { evidence } else { format!("{label}, {evidence}") }
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
