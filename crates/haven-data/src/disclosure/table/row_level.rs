//! `row-level` (hard): a CSV that holds records rather than aggregates. Two signs, both
//! computed in one pass over hashes, so memory does not grow with the length of the values:
//!
//! - a column most of whose values are shaped like the permit's pseudonyms (lower-case hex of
//!   one of the permit's lengths): the records are linkable to the extract;
//! - a long file (at least [`UNIQUE_KEY_MIN_ROWS`] rows carrying the column) with a column
//!   whose non-empty values are all distinct: a unique key, so each row is one subject.
//!
//! Evidence columns (count, top-k, total, dof) and columns of decimal numbers (means,
//! coefficients) are not taken for keys: in a large table of aggregates they are all distinct
//! without identifying anyone. Distinct values are counted by 64-bit xxh3 hash; a collision
//! (about one in 10^7 for a million values) can only hide a key, never invent one, and a
//! column stops being tracked at its first repeated value.

use std::collections::HashSet;

use csv::ByteRecord;
use xxhash_rust::xxh3::xxh3_64;

use super::columns::Layout;
use crate::disclosure::check::{Check, ROW_LEVEL};

/// Rows a unique-key column must cover before the file counts as row-level records.
pub const UNIQUE_KEY_MIN_ROWS: u64 = 1000;

#[derive(Debug)]
struct ColumnStats {
    non_empty: u64,
    pseudonyms: u64,
    /// Hashes seen, while every value so far was distinct; `None` once one repeats, or for
    /// evidence columns.
    distinct: Option<HashSet<u64>>,
    all_decimal: bool,
}

#[derive(Debug)]
pub(super) struct RowLevel<'a> {
    columns: Vec<ColumnStats>,
    pseudonym_lengths: &'a [usize],
}

impl<'a> RowLevel<'a> {
    pub(super) fn new(layout: &Layout, pseudonym_lengths: &'a [usize]) -> Self {
        let columns = (0..layout.headers.len())
            .map(|index| ColumnStats {
                non_empty: 0,
                pseudonyms: 0,
                distinct: (!layout.is_evidence(index)).then(HashSet::new),
                all_decimal: true,
            })
            .collect();
        Self { columns, pseudonym_lengths }
    }

    pub(super) fn observe(&mut self, record: &ByteRecord) {
        for (stats, raw) in self.columns.iter_mut().zip(record.iter()) {
            let value = raw.trim_ascii();
            if value.is_empty() {
                continue;
            }
            stats.non_empty += 1;
            if is_pseudonym(value, self.pseudonym_lengths) {
                stats.pseudonyms += 1;
            }
            if stats.all_decimal && !is_decimal(value) {
                stats.all_decimal = false;
            }
            if let Some(seen) = &mut stats.distinct
                && !seen.insert(xxh3_64(value))
            {
                stats.distinct = None;
            }
        }
    }

    pub(super) fn finish(self, layout: &Layout) -> Check {
        let lengths: Vec<String> = self.pseudonym_lengths.iter().map(usize::to_string).collect();
        let mut findings = Vec::new();
        for (index, stats) in self.columns.iter().enumerate() {
            let header = layout.header(index);
            if stats.pseudonyms * 2 > stats.non_empty {
                findings.push(format!(
                    "column {header}: {} of {} values look like the permit's pseudonyms ({}-character hex)",
                    stats.pseudonyms,
                    stats.non_empty,
                    lengths.join(" or ")
                ));
            }
            let is_key = stats.distinct.as_ref().is_some_and(|seen| seen.len() as u64 >= UNIQUE_KEY_MIN_ROWS);
            if is_key && !stats.all_decimal {
                findings.push(format!(
                    "column {header} has a different value in each of its {} rows: a unique key, so the rows \
                     are records, not table cells",
                    stats.non_empty
                ));
            }
        }
        if findings.is_empty() {
            Check::pass(
                ROW_LEVEL,
                "no column of pseudonyms and no unique-key column: the rows look like aggregates",
            )
        } else {
            Check::fail(
                ROW_LEVEL,
                format!("{}; row-level data cannot leave: export aggregates instead", findings.join("; ")),
            )
        }
    }
}

fn is_pseudonym(value: &[u8], lengths: &[usize]) -> bool {
    lengths.contains(&value.len()) && value.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

/// A number written with a decimal point or exponent.
fn is_decimal(value: &[u8]) -> bool {
    value.iter().any(|b| matches!(b, b'.' | b'e' | b'E'))
        && std::str::from_utf8(value).is_ok_and(|text| text.parse::<f64>().is_ok_and(f64::is_finite))
}
