//! Why a preparation failed. Every message names the dataset and, where it applies, the
//! column and the row (1-based data row, the header not counted) with the CSV line it starts
//! on, and says what to do: the operator puts the message in the permit's status, where a
//! data custodian has to act on it without reading code.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum PrepareError {
    #[error("dataset {dataset}: invalid rules{}: {reason}; fix the dataset's rules in the permit", on_column(.column))]
    InvalidSpec { dataset: String, column: Option<String>, reason: String },

    #[error("dataset {dataset}: cannot read the source {path}: {source}; check that it exists and is readable", path = path.display())]
    ReadInput { dataset: String, path: PathBuf, source: io::Error },

    #[error("dataset {dataset}: cannot write {path}: {source}; check the data store has space and is writable", path = path.display())]
    WriteOutput { dataset: String, path: PathBuf, source: io::Error },

    #[error("dataset {dataset}: the source has no header row; its first line must name the columns")]
    MissingHeader { dataset: String },

    #[error("dataset {dataset}: header column {position} is not valid UTF-8; re-encode the source as UTF-8")]
    HeaderNotUtf8 { dataset: String, position: usize },

    #[error(
        "dataset {dataset}: header columns {first} and {second} have the same name; rename one of them in the source, or add a header row if the file has none"
    )]
    /// By position only: in a file without a header row the "names" are a row of data.
    DuplicateColumn { dataset: String, first: usize, second: usize },

    #[error(
        "dataset {dataset}: a rule names column {column:?}, which the source header does not have; fix the column name in the permit or the source"
    )]
    MissingColumn { dataset: String, column: String },

    #[error(
        "dataset {dataset}: source column {position} (counted from 1 in the header) has no rule and onUnknownColumn is Fail; add a rule for it (rule: Drop leaves it out) or set onUnknownColumn: Drop"
    )]
    /// By position only, like [`PrepareError::DuplicateColumn`].
    UnknownColumn { dataset: String, position: usize },

    #[error(
        "dataset {dataset}: row {row} (line {line}) has {found} fields but the header has {expected}; fix the row, or quote values that contain the delimiter"
    )]
    RaggedRow { dataset: String, row: u64, line: u64, expected: u64, found: u64 },

    #[error(
        "dataset {dataset}: row {row} (line {line}) opens a quoted field that is never closed; add the closing quote (write a quote inside a quoted value as \"\")"
    )]
    UnterminatedQuote { dataset: String, row: u64, line: u64 },

    #[error(
        "dataset {dataset}: row {row} (line {line}), column {column:?} is not valid UTF-8; re-encode the source as UTF-8"
    )]
    InvalidUtf8 { dataset: String, row: u64, line: u64, column: String },

    #[error(
        "dataset {dataset}: row {row} (line {line}), column {column:?} ({rule}): {reason}; fix the value in the source or change the column's rule"
    )]
    InvalidValue { dataset: String, row: u64, line: u64, column: String, rule: &'static str, reason: String },

    #[error("dataset {dataset}: malformed CSV at row {row} (line {line}): {reason}; fix the source")]
    MalformedCsv { dataset: String, row: u64, line: u64, reason: String },

    #[error(
        "dataset {dataset}: k-anonymity (k={k}) would suppress {suppressed} of {rows} rows, more than the maximum {max_percent}%; generalise the quasi-identifiers further, lower k, or raise maxSuppressedPercent"
    )]
    TooManySuppressed { dataset: String, k: u32, suppressed: u64, rows: u64, max_percent: u32 },

    #[error(
        "dataset {dataset}: the source changed between the two passes of k-anonymity suppression; prepare again once the source is stable"
    )]
    InputChanged { dataset: String },
}

fn on_column(column: &Option<String>) -> String {
    column.as_ref().map(|c| format!(" for column {c:?}")).unwrap_or_default()
}
