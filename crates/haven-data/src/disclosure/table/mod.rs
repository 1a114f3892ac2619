//! Checks for a CSV: `row-level` always; the disclosure rules when it is a tidy table;
//! `degrees-of-freedom` when it carries a model's residual degrees of freedom. One streaming
//! pass over byte records: memory is bounded by the longest row, the few cells each rule
//! lists, and the hashes `row-level` keeps.

mod columns;
mod dof;
mod row_level;
mod rules;
mod structure;
mod values;

use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

use csv::ByteRecord;

pub use row_level::UNIQUE_KEY_MIN_ROWS;
pub use structure::CONVENTION;

use self::columns::Layout;
use self::dof::DofRows;
use self::row_level::RowLevel;
use self::rules::TableRules;
use self::structure::Structure;
use super::check::{Check, ROW_LEVEL, TABLE_STRUCTURE};
use super::policy::CheckPolicy;
use crate::line_limit::LineLimit;

/// The longest line a table may have: no table of cells has one near it, and a record is held
/// in memory whole while it is checked.
const MAX_TABLE_LINE_BYTES: u64 = 1 << 20;

pub(super) fn check_csv(path: &Path, policy: &CheckPolicy) -> io::Result<Vec<Check>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(BufReader::new(LineLimit::new(File::open(path)?, MAX_TABLE_LINE_BYTES)));
    let mut record = ByteRecord::new();
    let mut structure = Structure::default();
    if !read(&mut reader, &mut record, &mut structure)? {
        return Ok(vec![
            Check::pass(ROW_LEVEL, "the file is empty"),
            Check::review(TABLE_STRUCTURE, format!("the file is empty; {CONVENTION}")),
        ]);
    }
    let layout = Layout::from_header(&record);
    let mut row_level = RowLevel::new(&layout, &policy.pseudonym_hex_lengths);
    let mut rules = layout.is_table().then(|| TableRules::new(&layout, &policy.thresholds));
    let mut dof = layout.dof.map(|column| DofRows::new(column, policy.thresholds.min_degrees_of_freedom));
    let mut rows = 0u64;
    while read(&mut reader, &mut record, &mut structure)? {
        rows += 1;
        // The spreadsheet row: the header is row 1.
        let row = rows + 1;
        if record.len() != layout.headers.len() {
            structure.ragged.flag(row, || format!("{} fields", record.len()));
        }
        row_level.observe(&record);
        if let Some(rules) = &mut rules {
            rules.observe(row, &record, &layout, &mut structure);
        }
        if let Some(dof) = &mut dof {
            dof.observe(row, &record, || rules::cell_label(&layout, &record));
        }
    }

    let mut checks = vec![row_level.finish(&layout)];
    match &rules {
        Some(rules) => checks.push(structure.table_check(&layout, rows, rules.suppressed)),
        None if layout.dof.is_some() => checks.extend(structure.model_check(&layout)),
        None => checks.push(structure.unrecognised(&layout)),
    }
    if let Some(rules) = &rules {
        checks.extend(rules.finish(&layout));
    }
    if let Some(dof) = dof {
        checks.push(dof.finish());
    }
    Ok(checks)
}

/// The next record; `false` at the end, or where the file stops being CSV (noted in
/// `structure`). Only I/O errors are errors.
fn read(
    reader: &mut csv::Reader<BufReader<LineLimit<File>>>,
    record: &mut ByteRecord,
    structure: &mut Structure,
) -> io::Result<bool> {
    match reader.read_byte_record(record) {
        Ok(more) => Ok(more),
        Err(error) => {
            let message = error.to_string();
            match error.into_kind() {
                // A line past the bound: the table cannot be checked, and says where.
                csv::ErrorKind::Io(error) if error.kind() == io::ErrorKind::InvalidData => {
                    structure.unreadable = Some(error.to_string());
                    Ok(false)
                }
                csv::ErrorKind::Io(error) => Err(error),
                _ => {
                    structure.unreadable = Some(message);
                    Ok(false)
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
